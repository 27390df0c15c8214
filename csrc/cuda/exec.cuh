// Where a kernel body runs. Every op is written once, as __host__ __device__ function objects (one
// call per element, or gemm.cuh's loaders and epilogues), over an executor:
//   Device{stream}  launches them on the GPU: the public functions of hdl/cuda/kernels.hpp;
//   Host            (host_exec.cuh) runs the same objects on the CPU, thread by thread, so that
//                   tests/cuda_emu checks the kernels' index arithmetic where there is no GPU.
#pragma once
#include "gemm.cuh"
#include "launch.cuh"

namespace hdl::cuda {

// f(i) for every i in [0, n), grid-stride.
template <class F>
__global__ void each_kernel(std::int64_t n, const __grid_constant__ F f) {  // f read in place from the parameters
  HDL_GRID_STRIDE(i, n) f(i);
}

struct Device {
  cudaStream_t stream;

  template <class F>
  void each(std::int64_t n, const F& f) const {
    if (n <= 0) return;
    enter();
    each_kernel<<<blocks_for(n), kThreads, 0, stream>>>(n, f);
    launched(kernel_name<F>(), stream);
  }

  template <class LoadA, class LoadB, class Store>
  void gemm(int M, int N, int K, const LoadA& a, const LoadB& b, const Store& store,
            gemm::Split split = {0, 1}) const {
    gemm::run(stream, M, N, K, a, b, store, split);
  }

  // Scratch memory from the caching allocator, returned to it at the end of the scope (reuse on the
  // same stream is ordered after the kernels queued here).
  Scratch scratch(std::size_t bytes) const { return Scratch(bytes); }
};

}  // namespace hdl::cuda
