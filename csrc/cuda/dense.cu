// Fully connected layers on the GPU (Sections 2-5), batch in columns, forward and backward side
// by side; the products are gemm.cuh's tiles with the bias and activation in the epilogue.
#include "gemm.cuh"
#include "hdl/cuda/kernels.hpp"
#include "launch.cuh"

namespace hdl::cuda {
namespace {

// sigma(z) (2.1), (7.3), Section 8
__device__ inline float sigma(float z, Activation act, float slope) {
  switch (act) {
    case Activation::sigmoid: return 1.0f / (1.0f + expf(-z));
    case Activation::relu: return z > 0.0f ? z : 0.0f;
    case Activation::leaky_relu: return z > 0.0f ? z : slope * z;
    case Activation::step: return z > 0.0f ? 1.0f : 0.0f;
    default: return z;
  }
}

// sigma'(z) g, with sigma'(z) written through a = sigma(z) (2.2)
__device__ inline float sigma_prime_times(float g, float a, Activation act, float slope) {
  switch (act) {
    case Activation::sigmoid: return g * a * (1.0f - a);
    case Activation::relu: return a > 0.0f ? g : 0.0f;
    case Activation::leaky_relu: return a > 0.0f ? g : slope * g;
    case Activation::step: return 0.0f;
    default: return g;
  }
}

// A row-major matrix p (rows x cols) read as X(r, c), or as its transpose X(c, r).
template <bool Transposed, bool RowsContiguous>
struct Matrix {
  const float* p;
  int cols;  // of the stored matrix
  static constexpr bool m_major = RowsContiguous, k_major = RowsContiguous;
  __device__ float operator()(int r, int c) const { return Transposed ? p[c * cols + r] : p[r * cols + c]; }
};
// Stored (R x C) row-major, read as A(m, k) = p[m, k]: contiguous in k.
using Plain = Matrix<false, false>;
// Stored (C x R) row-major, read as A(m, k) = p[k, m]: contiguous in m (and, as a B operand, in k).
using Transposed = Matrix<true, true>;

struct BiasActivation {  // a_out[j, p] = sigma(acc + b[j])  (5.2), (5.3)
  float* a_out;
  const float* b;
  int m;
  Activation act;
  float slope;
  __device__ void operator()(int j, int p, float acc, int) const { a_out[j * m + p] = sigma(acc + b[j], act, slope); }
};

struct Scaled {  // out[r, c] = scale acc
  float* out;
  int cols;
  float scale;
  __device__ void operator()(int r, int c, float acc, int) const { out[r * cols + c] = scale * acc; }
};

__global__ void delta_kernel(float* delta, const float* g, const float* a_out, std::int64_t n, Activation act,
                             float slope) {
  HDL_GRID_STRIDE(i, n) delta[i] = sigma_prime_times(g[i], a_out[i], act, slope);
}

// out[r] = scale sum_c x[r, c]: one warp per row
__global__ void row_sums_kernel(float* out, const float* x, int rows, int cols, float scale) {
  const int lane = threadIdx.x % 32;
  for (int r = (blockIdx.x * blockDim.x + threadIdx.x) / 32; r < rows; r += gridDim.x * blockDim.x / 32) {
    float s = 0.0f;
    for (int c = lane; c < cols; c += 32) s += x[std::int64_t(r) * cols + c];
    for (int d = 16; d > 0; d /= 2) s += __shfl_down_sync(0xffffffffu, s, d);
    if (lane == 0) out[r] = scale * s;
  }
}

}  // namespace

void dense_forward(float* a_out, const float* W, const float* b, const float* a_in, int64 n_out, int64 n_in, int64 m,
                   Activation act, float slope, cudaStream_t stream) {
  // z (n_out, m) = W (n_out, n_in) a_in (n_in, m): A = W, B = a_in (contiguous along the batch)
  gemm::run(stream, int(n_out), int(m), int(n_in), Plain{W, int(n_in)}, Plain{a_in, int(m)},
            BiasActivation{a_out, b, int(m), act, slope});
}

void dense_backward(float* delta, float* dW, float* db, float* g_in, const float* g, const float* a_out,
                    const float* W, const float* a_in, int64 n_out, int64 n_in, int64 m, Activation act, float slope,
                    float scale, cudaStream_t stream) {
  delta_kernel<<<blocks_for(n_out * m), kThreads, 0, stream>>>(delta, g, a_out, n_out * m, act, slope);  // (5.5)
  HDL_CUDA_LAUNCHED();
  row_sums_kernel<<<blocks_for(n_out * 32), kThreads, 0, stream>>>(db, delta, int(n_out), int(m), scale);  // (5.7)
  HDL_CUDA_LAUNCHED();
  // dW (n_out, n_in) = scale delta (n_out, m) a_in^T (m, n_in)   (5.8)
  gemm::run(stream, int(n_out), int(n_in), int(m), Plain{delta, int(m)}, Transposed{a_in, int(m)},
            Scaled{dW, int(n_in), scale});
  // g_in (n_in, m) = W^T (n_in, n_out) delta (n_out, m)   (5.6)
  if (g_in)
    gemm::run(stream, int(n_in), int(m), int(n_out), Transposed{W, int(n_in)}, Plain{delta, int(m)},
              Scaled{g_in, int(m), 1.0f});
}

}  // namespace hdl::cuda
