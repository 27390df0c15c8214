// Bindings of max and average pooling (hdl/kernels.def, pool.cpp).
#include "hdl/kernels.hpp"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

#include "checks.hpp"

namespace hdl::bind {

namespace {

PoolShape shape_of(const char* fn, const py::array& x, int64 kh, int64 kw, int64 sh, int64 sw, int64 pt, int64 pb,
                   int64 pl, int64 pr) {
  require(x.ndim() == 4, std::string(fn) + ": x must be (N, H, W, C) (NHWC), got shape " + shape_str(x));
  require(kh > 0 && kw > 0, std::string(fn) + ": window must be positive, got (" + std::to_string(kh) + ", " +
                                std::to_string(kw) + ")");
  require(sh > 0 && sw > 0, std::string(fn) + ": stride must be positive, got (" + std::to_string(sh) + ", " +
                                std::to_string(sw) + ")");
  require(pt >= 0 && pb >= 0 && pl >= 0 && pr >= 0, std::string(fn) + ": padding must be non-negative");
  require(pt < kh && pb < kh && pl < kw && pr < kw,
          std::string(fn) + ": padding (" + std::to_string(pt) + ", " + std::to_string(pb) + ", " +
              std::to_string(pl) + ", " + std::to_string(pr) + ") must be smaller than the window (" +
              std::to_string(kh) + ", " + std::to_string(kw) + ")");
  PoolShape s{x.shape(0), x.shape(1), x.shape(2), x.shape(3), kh, kw, sh, sw, pt, pb, pl, pr};
  require(s.H + pt + pb >= kh && s.W + pl + pr >= kw,
          std::string(fn) + ": window (" + std::to_string(kh) + ", " + std::to_string(kw) +
              ") larger than the padded input " + shape_str(x));
  return s;
}

// An int32 array of y's shape for the argmax: a fresh one, or `out` after checking it.
py::array_t<std::int32_t> argmax_output(const std::string& fn, const py::object& out, const PoolShape& s) {
  const std::vector<py::ssize_t> shape{s.N, s.out_h(), s.out_w(), s.C};
  if (out.is_none()) return py::array_t<std::int32_t>(shape);
  if (!py::isinstance<py::array_t<std::int32_t>>(out) || py::reinterpret_borrow<py::array>(out).dtype().kind() != 'i')
    throw py::type_error(fn + ": argmax must be an int32 array");
  py::array a = py::reinterpret_borrow<py::array>(out);
  bool ok = (a.flags() & py::array::c_style) && a.writeable() && a.ndim() == 4;
  for (int i = 0; ok && i < 4; ++i) ok = a.shape(i) == shape[i];
  if (!ok)
    throw py::value_error(fn + ": argmax must be a writeable C-contiguous int32 array of shape (" +
                          std::to_string(s.N) + ", " + std::to_string(s.out_h()) + ", " + std::to_string(s.out_w()) +
                          ", " + std::to_string(s.C) + "), got " + shape_str(a));
  return py::reinterpret_borrow<py::array_t<std::int32_t>>(a);
}

template <class T>
py::object forward(bool is_max, const py::array& x_, const PoolShape& s, const py::object& out, bool relu,
                   bool want_argmax, const py::object& argmax_out) {
  const char* fn = is_max ? "max_pool2d" : "avg_pool2d";
  const T* x = data_of<T>(fn, "x", x_, {s.N, s.H, s.W, s.C});
  py::array_t<T> y = output<T>(fn, out, {s.N, s.out_h(), s.out_w(), s.C});
  T* yp = y.mutable_data();
  if (!is_max) {
    py::gil_scoped_release release;
    avg_pool2d_forward<T>(yp, x, s);
    return std::move(y);
  }
  py::array_t<std::int32_t> at;
  if (want_argmax) at = argmax_output(fn, argmax_out, s);
  std::int32_t* atp = want_argmax ? at.mutable_data() : nullptr;
  {
    py::gil_scoped_release release;
    max_pool2d_forward<T>(yp, atp, x, s, relu);
  }
  if (want_argmax) return py::make_tuple(y, at);
  return std::move(y);
}

template <class T>
py::array backward(bool is_max, const py::array& dy_, const py::array& x_, const PoolShape& s,
                   const py::object& out, const py::object& argmax_) {
  const char* fn = is_max ? "max_pool2d_backward" : "avg_pool2d_backward";
  const T* x = data_of<T>(fn, "x", x_, {s.N, s.H, s.W, s.C});
  const T* dy = data_of<T>(fn, "dy", dy_, {s.N, s.out_h(), s.out_w(), s.C});
  const std::int32_t* at = nullptr;
  if (!argmax_.is_none()) {
    if (!is_max) throw py::value_error(std::string(fn) + ": argmax belongs to max pooling");
    at = argmax_output(fn, argmax_, s).data();
  }
  py::array_t<T> dx = output<T>(fn, out, {s.N, s.H, s.W, s.C});
  T* dxp = dx.mutable_data();
  {
    py::gil_scoped_release release;
    if (at) max_pool2d_backward_argmax<T>(dxp, dy, at, s);
    else if (is_max) max_pool2d_backward<T>(dxp, dy, x, s);
    else avg_pool2d_backward<T>(dxp, dy, s);
  }
  return dx;
}

}  // namespace

void bind_pool(py::module_& m) {
  for (bool is_max : {true, false}) {
    const std::string name = is_max ? "max_pool2d" : "avg_pool2d";
    m.def(
        name.c_str(),
        [is_max, name](const py::array& x, int64 kh, int64 kw, int64 sh, int64 sw, int64 pt, int64 pb, int64 pl,
                       int64 pr, const py::object& out, bool relu, bool want_argmax, const py::object& argmax) {
          const PoolShape s = shape_of(name.c_str(), x, kh, kw, sh, sw, pt, pb, pl, pr);
          require(is_max || !(relu || want_argmax), name + ": relu and argmax belong to max pooling");
          return is_float32(x) ? forward<float>(is_max, x, s, out, relu, want_argmax, argmax)
                               : forward<double>(is_max, x, s, out, relu, want_argmax, argmax);
        },
        py::arg("x"), py::arg("kh"), py::arg("kw"), py::arg("sh"), py::arg("sw"), py::arg("pad_top"),
        py::arg("pad_bottom"), py::arg("pad_left"), py::arg("pad_right"), py::arg("out") = py::none(),
        py::arg("relu") = false, py::arg("want_argmax") = false, py::arg("argmax") = py::none());
    m.def(
        (name + "_backward").c_str(),
        [is_max, name](const py::array& dy, const py::array& x, int64 kh, int64 kw, int64 sh, int64 sw, int64 pt,
                       int64 pb, int64 pl, int64 pr, const py::object& out, const py::object& argmax) {
          const PoolShape s = shape_of((name + "_backward").c_str(), x, kh, kw, sh, sw, pt, pb, pl, pr);
          return is_float32(x) ? backward<float>(is_max, dy, x, s, out, argmax)
                               : backward<double>(is_max, dy, x, s, out, argmax);
        },
        py::arg("dy"), py::arg("x"), py::arg("kh"), py::arg("kw"), py::arg("sh"), py::arg("sw"), py::arg("pad_top"),
        py::arg("pad_bottom"), py::arg("pad_left"), py::arg("pad_right"), py::arg("out") = py::none(),
        py::arg("argmax") = py::none());
  }
}

}  // namespace hdl::bind
