// Bindings of ReLU, the activations of HDL_ACTIVATIONS and dropout (hdl/kernel_list.hpp, pointwise.cpp).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "checks.hpp"
#include "hdl/kernels.hpp"

namespace hdl::bind {

namespace {

// y = f(x) elementwise into out (or a new array); run(y, x, n) is called with T* pointers.
template <class F>
py::object unary(const char* fn, const py::array& x_, const py::object& out, F&& run) {
  return by_dtype(x_, [&](auto t) -> py::object {
    using T = decltype(t);
    const T* x = data_any<T>(fn, "x", x_);
    py::array_t<T> y = output<T>(fn, out, dims(x_));
    T* yp = y.mutable_data();
    without_gil([&] { run(yp, x, x_.size()); });
    return y;
  });
}

// dx = f(dy, x) elementwise for a backward pass (out may be dy: in place); run(dx, dy, x, n).
template <class F>
py::object backward(const char* fn, const char* name, const py::array& dy_, const py::array& x_, const py::object& out,
                    F&& run) {
  return by_dtype(x_, [&](auto t) -> py::object {
    using T = decltype(t);
    const T* x = data_any<T>(fn, name, x_);
    const T* dy = data_like<T>(fn, "dy", dy_, name, x_);
    py::array_t<T> dx = output<T>(fn, out, dims(x_));
    T* dxp = dx.mutable_data();
    without_gil([&] { run(dxp, dy, x, x_.size()); });
    return dx;
  });
}

}  // namespace

void bind_pointwise(py::module_& m) {
  m.def(
      "all_finite",
      [](const py::array& x_) {
        if (x_.dtype().kind() != 'f' || (x_.itemsize() != 4 && x_.itemsize() != 8))
          throw py::type_error("all_finite: x must be float32 or float64, got " + std::string(py::str(x_.dtype())));
        if (!(x_.flags() & (py::array::c_style | py::array::f_style)))
          throw py::value_error("all_finite: x must be C- or F-contiguous");
        return by_dtype(x_, [&](auto t) {
          using T = decltype(t);
          const T* x = static_cast<const T*>(x_.data());
          const int64 n = x_.size();
          bool ok = true;
          without_gil([&] { ok = all_finite<T>(x, n); });
          return ok;
        });
      },
      py::arg("x"), "Whether no element of a float32 or float64 array, C- or F-contiguous, is NaN or infinite.");
  m.def(
      "relu",
      [](const py::array& x_, double slope, const py::object& out) {
        return unary("relu", x_, out, [&](auto* y, const auto* x, int64 n) {
          using T = std::remove_pointer_t<decltype(y)>;
          relu_forward<T>(y, x, n, T(slope));
        });
      },
      py::arg("x"), py::arg("slope") = 0.0, py::arg("out") = py::none());
  m.def(
      "relu_backward",
      [](const py::array& dy_, const py::array& x_, double slope, const py::object& out) {
        return backward("relu_backward", "x", dy_, x_, out, [&](auto* dx, const auto* dy, const auto* x, int64 n) {
          using T = std::remove_pointer_t<decltype(dx)>;
          relu_backward<T>(dx, dy, x, n, T(slope));
        });
      },
      py::arg("dy"), py::arg("x"), py::arg("slope") = 0.0, py::arg("out") = py::none());
  // hdl._C.<name>(x, out=None) and <name>_backward(dy, y, out=None) for every line of HDL_ACTIVATIONS;
  // hdl._C.activations names them.
  std::vector<std::string> names;
#define HDL_BIND_ACTIVATION(K, name, Struct)                                                                   \
  m.def(                                                                                                       \
      #name,                                                                                                   \
      [](const py::array& x_, const py::object& out) {                                                         \
        return unary(#name, x_, out, [](auto* y, const auto* x, int64 n) {                                     \
          name##_forward<std::remove_pointer_t<decltype(y)>>(y, x, n);                                         \
        });                                                                                                    \
      },                                                                                                       \
      py::arg("x"), py::arg("out") = py::none());                                                              \
  m.def(                                                                                                       \
      #name "_backward",                                                                                       \
      [](const py::array& dy_, const py::array& y_, const py::object& out) {                                   \
        return backward(#name "_backward", "y", dy_, y_, out, [](auto* dx, const auto* dy, const auto* y, int64 n) { \
          name##_backward<std::remove_pointer_t<decltype(dx)>>(dx, dy, y, n);                                  \
        });                                                                                                    \
      },                                                                                                       \
      py::arg("dy"), py::arg("y"), py::arg("out") = py::none());                                               \
  names.push_back(#name);
  HDL_ACTIVATIONS(HDL_BIND_ACTIVATION, _)
#undef HDL_BIND_ACTIVATION
  m.attr("activations") = py::tuple(py::cast(names));
  m.def(
      "dropout",
      [](const py::array& x_, double rate, std::uint64_t seed, const py::object& out, const py::object& mask_out) {
        require(std::isfinite(rate) && rate >= 0.0 && rate < 1.0, "dropout: rate must be in [0, 1), got " +
                                                                      std::to_string(rate));
        return by_dtype(x_, [&](auto t) -> py::object {
          using T = decltype(t);
          const T* x = data_any<T>("dropout", "x", x_);
          py::array_t<T> y = output<T>("dropout", out, dims(x_)), mask = output<T>("dropout (mask)", mask_out, dims(x_));
          T *yp = y.mutable_data(), *mp = mask.mutable_data();
          without_gil([&] { dropout_forward<T>(yp, mp, x, x_.size(), rate, seed); });
          return py::make_tuple(y, mask);
        });
      },
      py::arg("x"), py::arg("rate"), py::arg("seed"), py::arg("out") = py::none(), py::arg("mask_out") = py::none());
}

}  // namespace hdl::bind
