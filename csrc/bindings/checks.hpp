// Checks at the Python boundary: dtype, shape and contiguity of every array,
// with messages that name the function, the argument and the shapes.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <initializer_list>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "hdl/shapes.hpp"

namespace hdl::bind {

namespace py = pybind11;
using hdl::shape_str;  // of extents; the one below of an array

// The extents of a, as the shape checks of hdl/shapes.hpp take them.
inline std::vector<int64> dims(const py::array& a) { return {a.shape(), a.shape() + a.ndim()}; }

inline std::string shape_str(const py::array& a) { return hdl::shape_str(dims(a)); }

template <class T>
const char* dtype_name() {
  return sizeof(T) == 4 ? "float32" : "float64";
}

// The array as T*, after checking its dtype, C-contiguity and shape (-1 matches any extent).
template <class T>
T* data_of(const char* fn, const char* name, const py::array& a, std::initializer_list<int64> shape) {
  if (!py::isinstance<py::array_t<T>>(a) || a.dtype().kind() != 'f' || a.itemsize() != sizeof(T))
    throw py::type_error(std::string(fn) + ": " + name + " must be " + dtype_name<T>() +
                         " (float32 or float64, one dtype for all arrays of a call), got " +
                         std::string(py::str(a.dtype())));
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(fn) + ": " + name + " must be C-contiguous (use numpy.ascontiguousarray)");
  bool ok = a.ndim() == static_cast<py::ssize_t>(shape.size());
  int i = 0;
  for (int64 d : shape) {
    if (ok && d >= 0 && a.shape(i) != d) ok = false;
    ++i;
  }
  if (!ok)
    throw py::value_error(std::string(fn) + ": " + name + " must have shape " + hdl::shape_str(shape) + ", got " +
                          shape_str(a));
  return static_cast<T*>(const_cast<void*>(a.data()));
}

// The array as T*, any shape, after checking dtype and C-contiguity.
template <class T>
T* data_any(const std::string& fn, const std::string& name, const py::array& a) {
  if (a.dtype().kind() != 'f' || a.itemsize() != sizeof(T))
    throw py::type_error(fn + ": " + name + " must be " + dtype_name<T>() +
                         " (one float dtype for all arrays of a call), got " + std::string(py::str(a.dtype())));
  if (!(a.flags() & py::array::c_style)) throw py::value_error(fn + ": " + name + " must be C-contiguous");
  return static_cast<T*>(const_cast<void*>(a.data()));
}

// As data_any, and of the same shape as ref.
template <class T>
T* data_like(const std::string& fn, const std::string& name, const py::array& a, const std::string& ref_name,
             const py::array& ref) {
  T* p = data_any<T>(fn, name, a);
  bool same = a.ndim() == ref.ndim();
  for (py::ssize_t i = 0; same && i < a.ndim(); ++i) same = a.shape(i) == ref.shape(i);
  if (!same)
    throw py::value_error(fn + ": " + name + " has shape " + shape_str(a) + " but " + ref_name + " has " +
                          shape_str(ref));
  return p;
}

// A fresh (shape) array of T, or `out` after checking that it is one to write into.
template <class T>
py::array_t<T> output(const std::string& fn, const py::object& out, const std::vector<py::ssize_t>& shape) {
  if (out.is_none()) return py::array_t<T>(shape);
  if (!py::isinstance<py::array>(out)) throw py::type_error(fn + ": out must be a numpy array");
  py::array a = py::reinterpret_borrow<py::array>(out);
  data_any<T>(fn, "out", a);
  bool same = a.ndim() == static_cast<py::ssize_t>(shape.size());
  for (size_t i = 0; same && i < shape.size(); ++i) same = a.shape(i) == shape[i];
  if (!same) {
    std::ostringstream want;
    want << "(";
    for (size_t i = 0; i < shape.size(); ++i) want << (i ? ", " : "") << shape[i];
    want << ")";
    throw py::value_error(fn + ": out must have shape " + want.str() + ", got " + shape_str(a));
  }
  if (!a.writeable()) throw py::value_error(fn + ": out is read-only");
  return py::reinterpret_borrow<py::array_t<T>>(a);
}

inline bool is_float32(const py::array& a) { return a.dtype().kind() == 'f' && a.itemsize() == 4; }

// body(T()) with T = float when a is float32, double otherwise: a binding written once for both
// dtypes, as [&](auto t) { using T = decltype(t); ... } (its checks name the arrays that are not T).
template <class F>
auto by_dtype(const py::array& a, F&& body) {
  static_assert(std::is_same_v<decltype(body(float())), decltype(body(double()))>,
                "by_dtype: the body must return one type for float and double (py::object, say)");
  return is_float32(a) ? body(float()) : body(double());
}

// f() with the GIL released: the kernel calls, which touch no Python object (take the arrays'
// pointers before).
template <class F>
auto without_gil(F&& f) {
  py::gil_scoped_release release;
  return f();
}

inline void require(bool ok, const std::string& message) {
  if (!ok) throw py::value_error(message);
}

inline Activation activation_of(long long code) {
  require(code >= 0 && code <= int(Activation::tanh), "unknown activation code " + std::to_string(code));
  return static_cast<Activation>(code);
}

}  // namespace hdl::bind
