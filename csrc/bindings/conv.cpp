// Bindings of the convolution (hdl/kernels.def, conv.cpp).
#include "hdl/kernels.hpp"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "checks.hpp"

namespace hdl::bind {

namespace {

ConvShape shape_of(const char* fn, const py::array& x, const py::array& w, int64 sh, int64 sw, int64 pt, int64 pb,
                   int64 pl, int64 pr) {
  const std::string f(fn);
  require(x.ndim() == 4, f + ": x must be (N, H, W, C) (NHWC), got shape " + shape_str(x));
  require(w.ndim() == 4, f + ": w must be (out_channels, in_channels, kh, kw), got shape " + shape_str(w));
  require(w.shape(1) == x.shape(3), f + ": w " + shape_str(w) + " expects " + std::to_string(w.shape(1)) +
                                        " input channels but x " + shape_str(x) + " has " + std::to_string(x.shape(3)));
  require(sh > 0 && sw > 0, f + ": stride must be positive");
  require(pt >= 0 && pb >= 0 && pl >= 0 && pr >= 0, f + ": padding must be non-negative");
  ConvShape s{x.shape(0), x.shape(1), x.shape(2), x.shape(3), w.shape(0), w.shape(2), w.shape(3), sh, sw, pt, pb, pl, pr};
  // x is (N, H, W, C): s.H = x.shape(1), s.W = x.shape(2), s.C = x.shape(3)
  require(s.N > 0 && s.C > 0 && s.O > 0 && s.kh > 0 && s.kw > 0, f + ": empty x or w");
  require(s.H + pt + pb >= s.kh && s.W + pl + pr >= s.kw,
          f + ": filter " + shape_str(w) + " larger than the padded input " + shape_str(x));
  return s;
}

template <class T>
py::array forward(const py::array& x_, const py::array& w_, const py::array& b_, const ConvShape& s, bool relu,
                  const py::object& out) {
  const T* x = data_of<T>("conv2d", "x", x_, {s.N, s.H, s.W, s.C});
  const T* w = data_of<T>("conv2d", "w", w_, {s.O, s.C, s.kh, s.kw});
  const T* b = data_of<T>("conv2d", "b", b_, {s.O});
  py::array_t<T> y = output<T>("conv2d", out, {s.N, s.out_h(), s.out_w(), s.O});
  T* yp = y.mutable_data();
  {
    py::gil_scoped_release release;
    conv2d_forward<T>(yp, x, w, b, s, relu);
  }
  return y;
}

template <class T>
py::tuple backward(const py::array& dy_, const py::array& x_, const py::array& w_, const ConvShape& s, bool want_dx,
                   const py::object& dx_out) {
  const char* fn = "conv2d_backward";
  const T* x = data_of<T>(fn, "x", x_, {s.N, s.H, s.W, s.C});
  const T* w = data_of<T>(fn, "w", w_, {s.O, s.C, s.kh, s.kw});
  const T* dy = data_of<T>(fn, "dy", dy_, {s.N, s.out_h(), s.out_w(), s.O});
  py::array_t<T> dw({s.O, s.C, s.kh, s.kw}), db({s.O});
  py::object dx = py::none();
  T* dxp = nullptr;
  if (want_dx) {
    py::array_t<T> arr = output<T>(fn, dx_out, {s.N, s.H, s.W, s.C});
    dxp = arr.mutable_data();
    dx = arr;
  }
  T *dwp = dw.mutable_data(), *dbp = db.mutable_data();
  {
    py::gil_scoped_release release;
    conv2d_backward<T>(dxp, dwp, dbp, dy, x, w, s);
  }
  return py::make_tuple(dx, dw, db);
}

}  // namespace

void bind_conv(py::module_& m) {
  m.def(
      "conv2d",
      [](const py::array& x, const py::array& w, const py::array& b, int64 sh, int64 sw, int64 pt, int64 pb, int64 pl,
         int64 pr, bool relu, const py::object& out) {
        const ConvShape s = shape_of("conv2d", x, w, sh, sw, pt, pb, pl, pr);
        return is_float32(x) ? forward<float>(x, w, b, s, relu, out) : forward<double>(x, w, b, s, relu, out);
      },
      py::arg("x"), py::arg("w"), py::arg("b"), py::arg("sh"), py::arg("sw"), py::arg("pad_top"),
      py::arg("pad_bottom"), py::arg("pad_left"), py::arg("pad_right"), py::arg("relu") = false, py::arg("out") = py::none(),
      "Convolution of x (N, H, W, C) with w (O, C, kh, kw): y (N, out_h, out_w, O), ReLU fused on request.");
  m.def(
      "conv2d_backward",
      [](const py::array& dy, const py::array& x, const py::array& w, int64 sh, int64 sw, int64 pt, int64 pb, int64 pl,
         int64 pr, bool want_dx, const py::object& dx_out) {
        const ConvShape s = shape_of("conv2d_backward", x, w, sh, sw, pt, pb, pl, pr);
        return is_float32(x) ? backward<float>(dy, x, w, s, want_dx, dx_out)
                             : backward<double>(dy, x, w, s, want_dx, dx_out);
      },
      py::arg("dy"), py::arg("x"), py::arg("w"), py::arg("sh"), py::arg("sw"), py::arg("pad_top"),
      py::arg("pad_bottom"), py::arg("pad_left"), py::arg("pad_right"), py::arg("want_dx") = true, py::arg("dx_out") = py::none(),
      "(dx, dw, db) of the NHWC convolution given dy (N, out_h, out_w, O).");
}

}  // namespace hdl::bind
