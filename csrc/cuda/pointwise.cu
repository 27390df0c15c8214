// ReLU (7.3), leaky ReLU (Section 8) and inverted dropout on the GPU, one thread per element.
// Dropout draws u_i from the same counter-based hash of (seed, i) as the CPU kernel, so the two
// give the same mask bit for bit.
#include "hdl/cuda/kernels.hpp"
#include "launch.cuh"

namespace hdl::cuda {
namespace {

// A uniform [0, 1) value from (seed, i): splitmix64's finaliser on a Weyl sequence (pointwise.cpp).
__device__ inline double hash_uniform(std::uint64_t seed, std::uint64_t i) {
  std::uint64_t z = seed + (i + 1) * 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return double(z >> 11) * 0x1.0p-53;
}

__global__ void relu_forward_kernel(float* y, const float* x, std::int64_t n, float slope) {
  HDL_GRID_STRIDE(i, n) y[i] = x[i] * (x[i] > 0.0f ? 1.0f : slope);
}

__global__ void relu_backward_kernel(float* dx, const float* dy, const float* x, std::int64_t n, float slope) {
  HDL_GRID_STRIDE(i, n) dx[i] = dy[i] * (x[i] > 0.0f ? 1.0f : slope);
}

__global__ void dropout_forward_kernel(float* y, float* mask, const float* x, std::int64_t n, double rate, float keep,
                                       std::uint64_t seed) {
  HDL_GRID_STRIDE(i, n) {
    const float m = hash_uniform(seed, std::uint64_t(i)) >= rate ? keep : 0.0f;
    mask[i] = m;
    y[i] = x[i] * m;
  }
}

__global__ void multiply_kernel(float* out, const float* a, const float* b, std::int64_t n) {
  HDL_GRID_STRIDE(i, n) out[i] = a[i] * b[i];
}

}  // namespace

void relu_forward(float* y, const float* x, int64 n, float slope, cudaStream_t stream) {
  relu_forward_kernel<<<blocks_for(n), kThreads, 0, stream>>>(y, x, n, slope);
  HDL_CUDA_LAUNCHED();
}

void relu_backward(float* dx, const float* dy, const float* x, int64 n, float slope, cudaStream_t stream) {
  relu_backward_kernel<<<blocks_for(n), kThreads, 0, stream>>>(dx, dy, x, n, slope);
  HDL_CUDA_LAUNCHED();
}

void dropout_forward(float* y, float* mask, const float* x, int64 n, double rate, std::uint64_t seed,
                     cudaStream_t stream) {
  dropout_forward_kernel<<<blocks_for(n), kThreads, 0, stream>>>(y, mask, x, n, rate, float(1.0 / (1.0 - rate)),
                                                                 seed);
  HDL_CUDA_LAUNCHED();
}

void dropout_backward(float* dx, const float* dy, const float* mask, int64 n, cudaStream_t stream) {
  multiply_kernel<<<blocks_for(n), kThreads, 0, stream>>>(dx, dy, mask, n);
  HDL_CUDA_LAUNCHED();
}

}  // namespace hdl::cuda
