// A fully connected layer with the points of a batch as rows: a_in (m, n_in), a_out (m, n_out),
// a_out = sigma(a_in W^T + b), the row form of hdl.Model's Dense layers. The mini-batches of
// stochastic_gradient.cpp take this form when a layer runs on the GEMM core: each point is then one
// contiguous row to gather, and the products pack their operands by plain copies (the column form
// (dense_impl.hpp) transposes both operands of dW = delta a_in^T, a fifth slower at batch 64).
#pragma once
#include "gemm.hpp"
#include "hdl/common.hpp"
#include "math.hpp"

namespace hdl {
namespace HDL_ISA {

// a_out (m, n_out) = sigma(a_in W^T + b)   (5.2), (5.3), a point per row
template <class T>
inline void dense_forward_rows(T* HDL_RESTRICT a_out, const T* W, const T* b, const T* a_in, int64 n_out,
                               int64 n_in, int64 m, Activation act, T slope) {
  gemm_mat<T>(m, n_out, n_in, T(1), {a_in, n_in, 1}, {W, 1, n_in}, T(0), {a_out, n_out, 1}, {b, false, act, slope});
}

// Back propagation through one layer fused with the update, a point per row (dense_backward_update_impl's
// twin): delta = sigma'(z) o g; g_in = delta W (with W before the update);
// W = (1 - eta decay) W - eta delta^T a_in;  b -= eta sum_p delta[p, :]      (4.6)-(4.8), (8.2)
// g already carries the 1/m of the batch average; bsum is scratch of n_out values.
template <class T>
inline void dense_backward_update_rows(T* HDL_RESTRICT delta, T* HDL_RESTRICT g_in, const T* HDL_RESTRICT g,
                                       const T* HDL_RESTRICT a_out, T* W, T* HDL_RESTRICT b, const T* a_in,
                                       int64 n_out, int64 n_in, int64 m, Activation act, T slope, T eta, T decay,
                                       T* HDL_RESTRICT bsum) {
  activate_backward(delta, g, a_out, n_out * m, act, slope);
  if (g_in) gemm_mat<T>(m, n_in, n_out, T(1), {delta, n_out, 1}, {W, n_in, 1}, T(0), {g_in, n_in, 1});
  for (int64 j = 0; j < n_out; ++j) bsum[j] = T(0);
  for (int64 p = 0; p < m; ++p)
    for (int64 j = 0; j < n_out; ++j) bsum[j] += delta[p * n_out + j];
  for (int64 j = 0; j < n_out; ++j) b[j] -= eta * bsum[j];
  gemm_mat<T>(n_out, n_in, m, -eta, {delta, 1, n_out}, {a_in, n_in, 1}, T(1) - eta * decay, {W, n_in, 1});
}

}  // namespace HDL_ISA
}  // namespace hdl
