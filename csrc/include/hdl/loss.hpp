// Softmax log-loss (7.4) and top-k predictions.
#pragma once
#include <cstdint>

#include "hdl/common.hpp"

namespace hdl {

// v: (N, K) class scores, labels in [0, K). Returns the mean over the batch of
// log(sum_k e^{v_ik}) - v_i,label (by log-sum-exp); dv = (softmax(v_i) - e_label) / N.
template <class T>
double softmax_log_loss(T* dv, const T* v, const std::int64_t* labels, int64 N, int64 K);

// idx: (N, k), the k largest scores of each row, largest first (ties: lower index first).
template <class T>
void top_k(std::int64_t* idx, const T* v, int64 N, int64 K, int64 k);

}  // namespace hdl
