// Softmax log-loss (7.4) and top-k for one instruction set.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "dense_impl.hpp"
#include "kernels.inc"

namespace hdl {
namespace HDL_ISA {

template <class T>
double softmax_log_loss(T* dv, const T* v, const std::int64_t* labels, int64 N, int64 K) {
  Buffer<double> row_loss(N);
  parallel_for(N, N * K > kParallelWork, [&](int64 i) {
    const T* s = v + i * K;
    T* d = dv + i * K;
    const T top = *std::max_element(s, s + K);
    double sum = 0.0;
    for (int64 k = 0; k < K; ++k) sum += std::exp(double(s[k] - top));
    const double log_sum = std::log(sum) + double(top);  // log sum_k e^{v_k}, without overflow
    row_loss[i] = log_sum - double(s[labels[i]]);
    for (int64 k = 0; k < K; ++k) d[k] = T(std::exp(double(s[k]) - log_sum) / double(N));
    d[labels[i]] -= T(1.0 / double(N));
  });
  return std::accumulate(row_loss.begin(), row_loss.end(), 0.0) / double(N);
}

template <class T>
void top_k(std::int64_t* idx, const T* v, int64 N, int64 K, int64 k) {
  parallel_for(N, N * K > kParallelWork, [&](int64 i) {
    const T* s = v + i * K;
    std::vector<std::int64_t> order(K);
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      [s](std::int64_t a, std::int64_t b) { return s[a] > s[b] || (s[a] == s[b] && a < b); });
    std::copy(order.begin(), order.begin() + k, idx + i * k);
  });
}

}  // namespace HDL_ISA
}  // namespace hdl

HDL_INSTANTIATE(loss)
