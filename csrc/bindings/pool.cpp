// Bindings of max and average pooling (csrc/include/hdl/pool.hpp).
#include "hdl/pool.hpp"

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

template <class T>
py::array forward(bool is_max, const py::array& x_, const PoolShape& s, const py::object& out) {
  const T* x = data_of<T>(is_max ? "max_pool2d" : "avg_pool2d", "x", x_, {s.N, s.H, s.W, s.C});
  py::array_t<T> y = output<T>(is_max ? "max_pool2d" : "avg_pool2d", out, {s.N, s.out_h(), s.out_w(), s.C});
  T* yp = y.mutable_data();
  {
    py::gil_scoped_release release;
    if (is_max) max_pool2d_forward<T>(yp, x, s);
    else avg_pool2d_forward<T>(yp, x, s);
  }
  return y;
}

template <class T>
py::array backward(bool is_max, const py::array& dy_, const py::array& x_, const PoolShape& s,
                   const py::object& out) {
  const char* fn = is_max ? "max_pool2d_backward" : "avg_pool2d_backward";
  const T* x = data_of<T>(fn, "x", x_, {s.N, s.H, s.W, s.C});
  const T* dy = data_of<T>(fn, "dy", dy_, {s.N, s.out_h(), s.out_w(), s.C});
  py::array_t<T> dx = output<T>(fn, out, {s.N, s.H, s.W, s.C});
  T* dxp = dx.mutable_data();
  {
    py::gil_scoped_release release;
    if (is_max) max_pool2d_backward<T>(dxp, dy, x, s);
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
                       int64 pr, const py::object& out) {
          const PoolShape s = shape_of(name.c_str(), x, kh, kw, sh, sw, pt, pb, pl, pr);
          return is_float32(x) ? forward<float>(is_max, x, s, out) : forward<double>(is_max, x, s, out);
        },
        py::arg("x"), py::arg("kh"), py::arg("kw"), py::arg("sh"), py::arg("sw"), py::arg("pad_top"),
        py::arg("pad_bottom"), py::arg("pad_left"), py::arg("pad_right"), py::arg("out") = py::none());
    m.def(
        (name + "_backward").c_str(),
        [is_max, name](const py::array& dy, const py::array& x, int64 kh, int64 kw, int64 sh, int64 sw, int64 pt,
                       int64 pb, int64 pl, int64 pr, const py::object& out) {
          const PoolShape s = shape_of((name + "_backward").c_str(), x, kh, kw, sh, sw, pt, pb, pl, pr);
          return is_float32(x) ? backward<float>(is_max, dy, x, s, out) : backward<double>(is_max, dy, x, s, out);
        },
        py::arg("dy"), py::arg("x"), py::arg("kh"), py::arg("kw"), py::arg("sh"), py::arg("sw"), py::arg("pad_top"),
        py::arg("pad_bottom"), py::arg("pad_left"), py::arg("pad_right"), py::arg("out") = py::none());
  }
}

}  // namespace hdl::bind
