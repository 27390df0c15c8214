// Bindings of max and average pooling (hdl/kernel_list.hpp, pool.cpp) and of their shape check, which
// the CUDA backend shares (hdl/shapes.hpp).
#include "hdl/kernels.hpp"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "checks.hpp"

namespace hdl::bind {

namespace {

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
    without_gil([&] { avg_pool2d_forward<T>(yp, x, s); });
    return std::move(y);
  }
  py::array_t<std::int32_t> at;
  if (want_argmax) at = argmax_output(fn, argmax_out, s);
  std::int32_t* atp = want_argmax ? at.mutable_data() : nullptr;
  without_gil([&] { max_pool2d_forward<T>(yp, atp, x, s, relu); });
  if (want_argmax) return py::make_tuple(y, at);
  return std::move(y);
}

template <class T>
py::object backward(bool is_max, const py::array& dy_, const py::array& x_, const PoolShape& s,
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
  without_gil([&] {
    if (at) max_pool2d_backward_argmax<T>(dxp, dy, at, s);
    else if (is_max) max_pool2d_backward<T>(dxp, dy, x, s);
    else avg_pool2d_backward<T>(dxp, dy, s);
  });
  return std::move(dx);
}

}  // namespace

void bind_pool(py::module_& m) {
  for (bool is_max : {true, false}) {
    const std::string name = is_max ? "max_pool2d" : "avg_pool2d";
    m.def(
        name.c_str(),
        [is_max, name](const py::array& x, int64 kh, int64 kw, int64 sh, int64 sw, int64 pt, int64 pb, int64 pl,
                       int64 pr, const py::object& out, bool relu, bool want_argmax, const py::object& argmax) {
          const PoolShape s = pool_shape(name, dims(x), kh, kw, sh, sw, pt, pb, pl, pr);
          require(is_max || !(relu || want_argmax), name + ": relu and argmax belong to max pooling");
          return by_dtype(x, [&](auto t) { return forward<decltype(t)>(is_max, x, s, out, relu, want_argmax, argmax); });
        },
        py::arg("x"), py::arg("kh"), py::arg("kw"), py::arg("sh"), py::arg("sw"), py::arg("pad_top"),
        py::arg("pad_bottom"), py::arg("pad_left"), py::arg("pad_right"), py::arg("out") = py::none(),
        py::arg("relu") = false, py::arg("want_argmax") = false, py::arg("argmax") = py::none());
    m.def(
        (name + "_backward").c_str(),
        [is_max, name](const py::array& dy, const py::array& x, int64 kh, int64 kw, int64 sh, int64 sw, int64 pt,
                       int64 pb, int64 pl, int64 pr, const py::object& out, const py::object& argmax) {
          const PoolShape s = pool_shape(name + "_backward", dims(x), kh, kw, sh, sw, pt, pb, pl, pr);
          return by_dtype(x, [&](auto t) { return backward<decltype(t)>(is_max, dy, x, s, out, argmax); });
        },
        py::arg("dy"), py::arg("x"), py::arg("kh"), py::arg("kw"), py::arg("sh"), py::arg("sw"), py::arg("pad_top"),
        py::arg("pad_bottom"), py::arg("pad_left"), py::arg("pad_right"), py::arg("out") = py::none(),
        py::arg("argmax") = py::none());
  }
  m.def(
      "pool_shape",
      [](const std::string& fn, const std::vector<int64>& x, int64 kh, int64 kw, int64 sh, int64 sw, int64 pt,
         int64 pb, int64 pl, int64 pr) {
        const PoolShape s = pool_shape(fn, x, kh, kw, sh, sw, pt, pb, pl, pr);
        return py::make_tuple(s.fields(), py::make_tuple(s.N, s.out_h(), s.out_w(), s.C));
      },
      py::arg("fn"), py::arg("x_shape"), py::arg("kh"), py::arg("kw"), py::arg("sh"), py::arg("sw"),
      py::arg("pad_top"), py::arg("pad_bottom"), py::arg("pad_left"), py::arg("pad_right"),
      "The pooling's shape after the checks of max_pool2d/avg_pool2d (ValueError naming fn otherwise): (its "
      "fields, as the CUDA bindings take them, and the shape of y). Shared by both backends (hdl/shapes.hpp).");
}

}  // namespace hdl::bind
