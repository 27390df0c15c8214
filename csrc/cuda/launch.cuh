// Small helpers shared by the .cu files: grid sizes and the launch check.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "hdl/cuda/memory.hpp"

namespace hdl::cuda {

constexpr int kThreads = 256;

// Blocks of kThreads for n elements, capped (the kernels loop with a grid stride).
inline unsigned blocks_for(std::int64_t n) {
  return static_cast<unsigned>(std::max<std::int64_t>(1, std::min<std::int64_t>((n + kThreads - 1) / kThreads, 65535LL * 8)));
}

#define HDL_CUDA_LAUNCHED() HDL_CUDA_CHECK(cudaGetLastError())

// for i in [0, n) over the whole grid
#define HDL_GRID_STRIDE(i, n)                                                                   \
  for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < (n); \
       i += std::int64_t(gridDim.x) * blockDim.x)

}  // namespace hdl::cuda
