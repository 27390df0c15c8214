// The extension module hdl._C: thin pybind11 wrappers over the C++ kernels.
#include <omp.h>
#include <pybind11/pybind11.h>

#include "hdl/float_mode.hpp"
#include "hdl/kernels.hpp"

namespace py = pybind11;

namespace hdl::bind {
void bind_dense(py::module_& m);
void bind_training(py::module_& m);
void bind_pool(py::module_& m);
void bind_pointwise(py::module_& m);
void bind_loss(py::module_& m);
void bind_conv(py::module_& m);
}  // namespace hdl::bind

PYBIND11_MODULE(_C, m) {
  m.doc() = "hdl's compiled kernels (C++17, OpenMP); use the Python API in hdl and hdl.ops";
  m.def(
      "set_num_threads",
      [](int n) {
        if (n < 1) throw py::value_error("set_num_threads: need n >= 1, got " + std::to_string(n));
        omp_set_num_threads(n);
      },
      py::arg("n"), "Threads for hdl's kernels (OpenMP).");
  m.def("get_num_threads", &omp_get_max_threads);
  m.def(
      "set_flush_denormal",
      [](bool on) {
        if (on && !hdl::kCanFlushDenormals) return false;
        hdl::flush_denormal_setting.store(on);
        return true;
      },
      py::arg("on"),
      "Flush subnormal floats to zero inside hdl's CPU kernels (on by default; the caller's own floating-point "
      "mode is untouched). Returns False where this processor cannot (then nothing changes).");
  m.def(
      "get_flush_denormal", [] { return hdl::flush_denormal_setting.load(); },
      "Whether hdl's CPU kernels flush subnormal floats to zero.");
  m.def(
      "fma_peak_gflops",
      [](double seconds) {
        py::gil_scoped_release release;
        return hdl::fma_peak_gflops(seconds);
      },
      py::arg("seconds") = 0.5, "Measured float32 fused multiply-add peak of hdl's threads, GFLOP/s.");
  m.def("isa", &hdl::isa_name, "Instruction set the kernels were dispatched to: avx512, avx2, generic or native.");
  hdl::bind::bind_dense(m);
  hdl::bind::bind_training(m);
  hdl::bind::bind_pool(m);
  hdl::bind::bind_pointwise(m);
  hdl::bind::bind_loss(m);
  hdl::bind::bind_conv(m);
}
