// Softmax log-loss (7.4) and top-k on the GPU, one thread per row of scores (K is a class count:
// tens or hundreds). Log-sum-exp in double, as the CPU kernel; the batch mean is summed in chunks
// and then over the chunks, in a fixed order, so the loss does not depend on scheduling, and it
// stays on the device until the caller reads it.
#include <cmath>

#include "exec.cuh"
#include "hdl/cuda/kernels.hpp"

namespace hdl::cuda {
namespace {

// row_loss[i] = log sum_k e^{v_ik} - v_i,label (NaN for a label outside [0, K));
// dv_i = (softmax(v_i) - e_label) / N
struct SoftmaxRows {
  float* dv;
  double* row_loss;
  const float* v;
  const std::int64_t* labels;
  int N, K;
  HDL_HD void operator()(std::int64_t i) const {
    const float* s = v + i * K;
    float* d = dv + i * K;
    float top = s[0];
    for (int k = 1; k < K; ++k) top = s[k] > top ? s[k] : top;
    double sum = 0.0;
    for (int k = 0; k < K; ++k) sum += exp(double(s[k] - top));
    const double log_sum = log(sum) + double(top);  // log sum_k e^{v_k}, without overflow
    for (int k = 0; k < K; ++k) d[k] = float(exp(double(s[k]) - log_sum) / double(N));
    const std::int64_t label = labels[i];
    if (label >= 0 && label < K) {
      d[label] -= float(1.0 / double(N));
      row_loss[i] = log_sum - double(s[label]);
    } else {
      row_loss[i] = NAN;
    }
  }
};

// *loss = mean of row_loss, in two passes in a fixed order (the loss does not depend on scheduling):
// partial[chunk] over kLossRowsPerChunk rows, one thread each, then one thread over the chunks.
constexpr int kLossRowsPerChunk = 64;
struct MeanPartial {
  double* partial;
  const double* row_loss;
  int N;
  HDL_HD void operator()(std::int64_t chunk) const {
    const int r0 = int(chunk) * kLossRowsPerChunk, r1 = N < r0 + kLossRowsPerChunk ? N : r0 + kLossRowsPerChunk;
    double s = 0.0;
    for (int i = r0; i < r1; ++i) s += row_loss[i];
    partial[chunk] = s;
  }
};
struct MeanFinal {
  double* loss;
  const double* partial;
  int chunks, N;
  HDL_HD void operator()(std::int64_t) const {
    double s = 0.0;
    for (int c = 0; c < chunks; ++c) s += partial[c];
    *loss = s / double(N);
  }
};

struct TopK {  // k passes of selection: the best index not yet taken, ties to the lower index
  std::int64_t* idx;
  const float* v;
  int K, k;
  HDL_HD void operator()(std::int64_t i) const {
    const float* s = v + i * K;
    std::int64_t* out = idx + i * k;
    for (int r = 0; r < k; ++r) {
      int best = -1;
      for (int c = 0; c < K; ++c) {
        bool taken = false;
        for (int q = 0; q < r; ++q) taken = taken || out[q] == c;
        if (!taken && (best < 0 || s[c] > s[best])) best = c;
      }
      out[r] = best;
    }
  }
};

}  // namespace

template <class Exec>
void softmax_log_loss_on(const Exec& exec, float* dv, double* loss, const float* v, const std::int64_t* labels,
                         int64 N, int64 K) {
  auto row_loss = exec.scratch(sizeof(double) * N);
  exec.each(N, SoftmaxRows{dv, row_loss.template as<double>(), v, labels, int(N), int(K)});
  const int chunks = int((N + kLossRowsPerChunk - 1) / kLossRowsPerChunk);
  auto partial = exec.scratch(sizeof(double) * chunks);
  exec.each(chunks, MeanPartial{partial.template as<double>(), row_loss.template as<double>(), int(N)});
  exec.each(1, MeanFinal{loss, partial.template as<double>(), chunks, int(N)});
}

template <class Exec>
void top_k_on(const Exec& exec, std::int64_t* idx, const float* v, int64 N, int64 K, int64 k) {
  exec.each(N, TopK{idx, v, int(K), int(k)});
}

void softmax_log_loss(float* dv, double* loss, const float* v, const std::int64_t* labels, int64 N, int64 K,
                      cudaStream_t stream) {
  softmax_log_loss_on(Device{stream}, dv, loss, v, labels, N, K);
}

void top_k(std::int64_t* idx, const float* v, int64 N, int64 K, int64 k, cudaStream_t stream) {
  top_k_on(Device{stream}, idx, v, N, K, k);
}

}  // namespace hdl::cuda
