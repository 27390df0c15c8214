// Softmax log-loss (7.4) and top-k on the GPU. One warp per row of scores (log-sum-exp in double,
// as the CPU kernel); the batch mean is summed by one block in a fixed order, so the loss does not
// depend on scheduling and stays on the device until the caller reads it.
#include "hdl/cuda/kernels.hpp"
#include "launch.cuh"

namespace hdl::cuda {
namespace {

__device__ inline double warp_sum(double s) {
  for (int d = 16; d > 0; d /= 2) s += __shfl_xor_sync(0xffffffffu, s, d);
  return s;
}

__device__ inline float warp_max(float s) {
  for (int d = 16; d > 0; d /= 2) s = fmaxf(s, __shfl_xor_sync(0xffffffffu, s, d));
  return s;
}

// row_loss[i] = log sum_k e^{v_ik} - v_i,label;  dv_i = (softmax(v_i) - e_label) / N
__global__ void softmax_log_loss_rows(float* dv, double* row_loss, const float* v, const std::int64_t* labels, int N,
                                      int K) {
  const int lane = threadIdx.x % 32;
  for (int i = (blockIdx.x * blockDim.x + threadIdx.x) / 32; i < N; i += gridDim.x * blockDim.x / 32) {
    const float* s = v + std::int64_t(i) * K;
    float top = -INFINITY;
    for (int k = lane; k < K; k += 32) top = fmaxf(top, s[k]);
    top = warp_max(top);
    double sum = 0.0;
    for (int k = lane; k < K; k += 32) sum += exp(double(s[k] - top));
    const double log_sum = log(warp_sum(sum)) + double(top);  // log sum_k e^{v_k}, without overflow
    const std::int64_t label = labels[i];
    const bool ok = label >= 0 && label < K;
    for (int k = lane; k < K; k += 32)
      dv[std::int64_t(i) * K + k] = float(exp(double(s[k]) - log_sum) / double(N)) - (k == label ? float(1.0 / N) : 0.0f);
    if (lane == 0) row_loss[i] = ok ? log_sum - double(s[label]) : NAN;
  }
}

// *loss = mean of row_loss, summed by one block of 256 threads in a fixed order
__global__ void mean_kernel(double* loss, const double* row_loss, int N) {
  __shared__ double part[256];
  double s = 0.0;
  for (int i = threadIdx.x; i < N; i += 256) s += row_loss[i];
  part[threadIdx.x] = s;
  __syncthreads();
  for (int d = 128; d > 0; d /= 2) {
    if (threadIdx.x < d) part[threadIdx.x] += part[threadIdx.x + d];
    __syncthreads();
  }
  if (threadIdx.x == 0) *loss = part[0] / double(N);
}

// One thread per row: k passes of selection (k and K are small: class counts).
__global__ void top_k_kernel(std::int64_t* idx, const float* v, int N, int K, int k) {
  HDL_GRID_STRIDE(i, N) {
    const float* s = v + i * K;
    std::int64_t* out = idx + i * k;
    for (int r = 0; r < k; ++r) {
      // the best index not yet taken: largest score, ties to the lower index
      int best = -1;
      for (int c = 0; c < K; ++c) {
        bool taken = false;
        for (int q = 0; q < r; ++q) taken |= out[q] == c;
        if (!taken && (best < 0 || s[c] > s[best])) best = c;
      }
      out[r] = best;
    }
  }
}

}  // namespace

void softmax_log_loss(float* dv, double* loss, const float* v, const std::int64_t* labels, int64 N, int64 K,
                      cudaStream_t stream) {
  Scratch row_loss(sizeof(double) * N);
  softmax_log_loss_rows<<<blocks_for(N * 32), kThreads, 0, stream>>>(dv, row_loss.as<double>(), v, labels, int(N),
                                                                      int(K));
  HDL_CUDA_LAUNCHED();
  mean_kernel<<<1, 256, 0, stream>>>(loss, row_loss.as<double>(), int(N));
  HDL_CUDA_LAUNCHED();
}

void top_k(std::int64_t* idx, const float* v, int64 N, int64 K, int64 k, cudaStream_t stream) {
  top_k_kernel<<<blocks_for(N), kThreads, 0, stream>>>(idx, v, int(N), int(K), int(k));
  HDL_CUDA_LAUNCHED();
}

}  // namespace hdl::cuda
