// Fully connected layers (Sections 2-5), batched over columns: a mini-batch of
// m inputs is a matrix whose columns are the inputs. All arrays are row-major
// and contiguous; W is (n_out, n_in), b is (n_out), activations are (n, m).
#pragma once
#include "hdl/common.hpp"

namespace hdl {

// z = W a_in + b (5.2), a_out = sigma(z) (5.3), the activation fused.
//   a_out: (n_out, m)   W: (n_out, n_in)   b: (n_out)   a_in: (n_in, m)
template <class T>
void dense_forward(T* a_out, const T* W, const T* b, const T* a_in, int64 n_out, int64 n_in, int64 m,
                   Activation act, T slope);

// Back propagation through one layer (Lemma 5.1), given g = dC/da_out:
//   delta = sigma'(z) o g                          (5.5), (5.6)   delta: (n_out, m)
//   dW    = scale * delta a_in^T                    (5.8)          dW: (n_out, n_in)
//   db    = scale * sum over columns of delta       (5.7)          db: (n_out)
//   g_in  = W^T delta, dC/da_in for the layer below (5.6)          g_in: (n_in, m), may be null
// sigma'(z) is computed from a_out = sigma(z). scale = 1 sums over the batch, 1/m averages.
template <class T>
void dense_backward(T* delta, T* dW, T* db, T* g_in, const T* g, const T* a_out, const T* W, const T* a_in,
                    int64 n_out, int64 n_in, int64 m, Activation act, T slope, T scale);

// The matrix product under every dense layer (csrc/cpu/kernels/gemm.hpp), row-major:
//   C (M, N) = alpha op(A) op(B) + beta C,  op(A) (M, K) is A or, when trans_a, A^T for A stored (K, M);
//   the same for B. lda, ldb, ldc: the distance between rows of A, B, C as stored.
template <class T>
void gemm(bool trans_a, bool trans_b, int64 M, int64 N, int64 K, T alpha, const T* A, int64 lda, const T* B,
          int64 ldb, T beta, T* C, int64 ldc);

// Quadratic cost (3.3) of outputs a against targets y, both (n, m):
//   returns scale * sum_i 1/2 ||y_i - a_i||^2 and writes g = dC/da = scale * (a - y) when g is not null.
template <class T>
double quadratic_cost(T* g, const T* a, const T* y, int64 n, int64 m, double scale);

}  // namespace hdl
