// The extension module hdl._C: thin pybind11 wrappers over the C++ kernels.
#include <pybind11/pybind11.h>

#include "hdl/dispatch.hpp"

namespace py = pybind11;

namespace hdl::bind {
void bind_dense(py::module_& m);
void bind_training(py::module_& m);
void bind_pool(py::module_& m);
void bind_pointwise(py::module_& m);
void bind_loss(py::module_& m);
}  // namespace hdl::bind

PYBIND11_MODULE(_C, m) {
  m.doc() = "hdl's compiled kernels (C++17, OpenMP); use the Python API in hdl and hdl.ops";
  m.def("isa", &hdl::isa_name, "Instruction set the kernels were dispatched to: avx512, avx2, generic or native.");
  hdl::bind::bind_dense(m);
  hdl::bind::bind_training(m);
  hdl::bind::bind_pool(m);
  hdl::bind::bind_pointwise(m);
  hdl::bind::bind_loss(m);
}
