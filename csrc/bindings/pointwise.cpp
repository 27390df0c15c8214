// Bindings of ReLU, the sigmoid and dropout (hdl/kernel_list.hpp, pointwise.cpp).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>

#include "checks.hpp"
#include "hdl/kernels.hpp"

namespace hdl::bind {

void bind_pointwise(py::module_& m) {
  m.def(
      "relu",
      [](const py::array& x_, double slope, const py::object& out) {
        return by_dtype(x_, [&](auto t) -> py::object {
          using T = decltype(t);
          const T* x = data_any<T>("relu", "x", x_);
          py::array_t<T> y = output<T>("relu", out, dims(x_));
          T* yp = y.mutable_data();
          without_gil([&] { relu_forward<T>(yp, x, x_.size(), T(slope)); });
          return y;
        });
      },
      py::arg("x"), py::arg("slope") = 0.0, py::arg("out") = py::none());
  m.def(
      "relu_backward",
      [](const py::array& dy_, const py::array& x_, double slope, const py::object& out) {
        return by_dtype(x_, [&](auto t) -> py::object {
          using T = decltype(t);
          const T* x = data_any<T>("relu_backward", "x", x_);
          const T* dy = data_like<T>("relu_backward", "dy", dy_, "x", x_);
          py::array_t<T> dx = output<T>("relu_backward", out, dims(x_));
          T* dxp = dx.mutable_data();
          without_gil([&] { relu_backward<T>(dxp, dy, x, x_.size(), T(slope)); });
          return dx;
        });
      },
      py::arg("dy"), py::arg("x"), py::arg("slope") = 0.0, py::arg("out") = py::none());
  m.def(
      "sigmoid",
      [](const py::array& x_, const py::object& out) {
        return by_dtype(x_, [&](auto t) -> py::object {
          using T = decltype(t);
          const T* x = data_any<T>("sigmoid", "x", x_);
          py::array_t<T> y = output<T>("sigmoid", out, dims(x_));
          T* yp = y.mutable_data();
          without_gil([&] { sigmoid_forward<T>(yp, x, x_.size()); });
          return y;
        });
      },
      py::arg("x"), py::arg("out") = py::none());
  m.def(
      "sigmoid_backward",
      [](const py::array& dy_, const py::array& y_, const py::object& out) {
        return by_dtype(y_, [&](auto t) -> py::object {
          using T = decltype(t);
          const T* y = data_any<T>("sigmoid_backward", "y", y_);
          const T* dy = data_like<T>("sigmoid_backward", "dy", dy_, "y", y_);
          py::array_t<T> dx = output<T>("sigmoid_backward", out, dims(y_));
          T* dxp = dx.mutable_data();
          without_gil([&] { sigmoid_backward<T>(dxp, dy, y, y_.size()); });
          return dx;
        });
      },
      py::arg("dy"), py::arg("y"), py::arg("out") = py::none());
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
