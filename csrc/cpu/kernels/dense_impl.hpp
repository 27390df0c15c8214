// The loops of a fully connected layer, inline so that the training loop of
// stochastic_gradient.cpp fuses them. Rows are neurons, columns are the m
// points of a batch; the innermost loops run along a row and vectorise.
#pragma once
#include "gemm.hpp"
#include "hdl/common.hpp"
#include "hdl/float_mode.hpp"
#include "math.hpp"
#include "simd.hpp"

namespace hdl {
namespace HDL_ISA {

// Below this many multiply-adds a layer stays on the calling thread.
constexpr int64 kParallelWork = 1 << 16;

// body(i) for i in [0, n), across the OpenMP threads when parallel is true. The
// serial branch avoids even a one-thread parallel region: the tiny layers of
// Section 6 run a million times.
template <class F>
inline void parallel_for(int64 n, bool parallel, F&& body) {
  if (parallel) {
#pragma omp parallel
    {
      const FloatModeGuard float_mode;  // each thread's own MXCSR (hdl/float_mode.hpp)
#pragma omp for schedule(static)
      for (int64 i = 0; i < n; ++i) body(i);
    }
  } else {
    for (int64 i = 0; i < n; ++i) body(i);
  }
}

// Elementwise passes go over their n values in chunks of this many, across the threads when there is more than one.
constexpr int64 kChunk = 1 << 14;

// body(begin, end) over [0, n) in chunks of kChunk, across threads when n is large.
template <class F>
inline void for_chunks(int64 n, F&& body) {
  const int64 chunks = (n + kChunk - 1) / kChunk;
  parallel_for(chunks, chunks > 1, [&](int64 c) { body(c * kChunk, std::min(n, (c + 1) * kChunk)); });
}

// Layers of at least this many multiply-adds per call run on the GEMM core (gemm.hpp); smaller ones
// (the tiny networks of Section 6, one sample at a time) keep the plain loops, which pack nothing.
constexpr int64 kGemmMinWork = 1 << 13;

// The first index i >= 0 with i * stride >= edge (the first output window past a border).
inline int64 first_inside(int64 edge, int64 stride) { return edge <= 0 ? 0 : (edge + stride - 1) / stride; }

// sum_k x[k] y[k], in four vectors of partial sums (then the lanes, then the tail).
template <class T>
inline T dot(const T* HDL_RESTRICT x, const T* HDL_RESTRICT y, int64 n) {
  using S = Simd<T>;
  constexpr int L = S::lanes;
  typename S::vec acc[4] = {};
  int64 k = 0;
  for (; k + 4 * L <= n; k += 4 * L)
    for (int q = 0; q < 4; ++q) acc[q] += S::load(x + k + q * L) * S::load(y + k + q * L);
  for (; k + L <= n; k += L) acc[0] += S::load(x + k) * S::load(y + k);
  acc[0] += acc[1] + acc[2] + acc[3];
  T sum = T(0);
  for (int l = 0; l < L; ++l) sum += acc[0][l];
  for (; k < n; ++k) sum += x[k] * y[k];
  return sum;
}

// a_out = sigma(W a_in + b)   (5.2), (5.3)
// M > 0 fixes the batch size at compile time (M = 1: the single samples of (4.6), (4.7)).
template <class T, int64 M = 0>
inline void dense_forward_impl(T* HDL_RESTRICT a_out, const T* HDL_RESTRICT W, const T* HDL_RESTRICT b,
                               const T* HDL_RESTRICT a_in, int64 n_out, int64 n_in, int64 m_, Activation act,
                               T slope) {
  const int64 m = M > 0 ? M : m_;
  // One sample: a dot product per row of W, four vectors of partial sums along it; at run time (batch-1
  // inference) only below the GEMM core's size (whose dot tiles reuse a_in across 12 rows of W): the loop at
  // the end ran a 256 -> 10 float64 layer in 6.5 us (its sums are one dependent chain per output), these 0.8 us.
  const bool one = M == 1 ? n_out * n_in >= kGemmMinWork
                          : m == 1 && n_in >= 4 * Simd<T>::lanes && n_out * n_in < kGemmMinWork;
  if (one) {
    parallel_for(n_out, n_out * n_in > kParallelWork, [&](int64 j) {
      a_out[j] = b[j] + dot(W + j * n_in, a_in, n_in);
      activate(a_out + j, 1, act, slope);
    });
    return;
  }
  if (M == 0 && n_out * n_in * m >= kGemmMinWork) {  // a_out (n_out, m) = sigma(W a_in + b), b per row
    gemm_mat<T>(n_out, m, n_in, T(1), {W, n_in, 1}, {a_in, m, 1}, T(0), {a_out, m, 1}, {b, true, act, slope});
    return;
  }
  parallel_for(n_out, n_out * n_in * m > kParallelWork, [&](int64 j) {
    T* HDL_RESTRICT z = a_out + j * m;
    const T bj = b[j];
    for (int64 p = 0; p < m; ++p) z[p] = bj;
    for (int64 k = 0; k < n_in; ++k) {
      const T w = W[j * n_in + k];
      const T* HDL_RESTRICT a = a_in + k * m;
      for (int64 p = 0; p < m; ++p) z[p] += w * a[p];
    }
    activate(z, m, act, slope);
  });
}

// g_in = W^T delta for a layer too small for the GEMM core: g_in (n_in, m), W (n_out, n_in), delta (n_out, m).
template <class T>
inline void small_transposed_product(T* HDL_RESTRICT g_in, const T* HDL_RESTRICT W, const T* HDL_RESTRICT delta,
                                     int64 n_out, int64 n_in, int64 m, bool parallel) {
  parallel_for(n_in, parallel, [&](int64 k) {
    T* HDL_RESTRICT gk = g_in + k * m;
    for (int64 p = 0; p < m; ++p) gk[p] = T(0);
    for (int64 j = 0; j < n_out; ++j) {
      const T w = W[j * n_in + k];
      const T* HDL_RESTRICT d = delta + j * m;
      for (int64 p = 0; p < m; ++p) gk[p] += w * d[p];
    }
  });
}

// delta = sigma'(z) o g (5.5)/(5.6); dW = scale delta a_in^T (5.8); db = scale sum_p delta (5.7);
// g_in = W^T delta (null for the first layer).
template <class T, int64 M = 0>
inline void dense_backward_impl(T* HDL_RESTRICT delta, T* HDL_RESTRICT dW, T* HDL_RESTRICT db, T* HDL_RESTRICT g_in,
                                const T* HDL_RESTRICT g, const T* HDL_RESTRICT a_out, const T* HDL_RESTRICT W,
                                const T* HDL_RESTRICT a_in, int64 n_out, int64 n_in, int64 m_, Activation act,
                                T slope, T scale) {
  const int64 m = M > 0 ? M : m_;
  const bool parallel = n_out * n_in * m > kParallelWork;
  const bool gemm = M == 0 && n_out * n_in * m >= kGemmMinWork;
  parallel_for(n_out, parallel, [&](int64 j) {
    T* HDL_RESTRICT d = delta + j * m;
    activate_backward(d, g + j * m, a_out + j * m, m, act, slope);
    T sum = T(0);
    for (int64 p = 0; p < m; ++p) sum += d[p];
    db[j] = scale * sum;
    if (gemm) return;
    for (int64 k = 0; k < n_in; ++k) {
      const T* HDL_RESTRICT a = a_in + k * m;
      T s = T(0);
      for (int64 p = 0; p < m; ++p) s += d[p] * a[p];
      dW[j * n_in + k] = scale * s;
    }
  });
  if (gemm) {
    gemm_mat<T>(n_out, n_in, m, scale, {delta, m, 1}, {a_in, 1, m}, T(0), {dW, n_in, 1});  // delta a_in^T
    if (g_in) gemm_mat<T>(n_in, m, n_out, T(1), {W, 1, n_in}, {delta, m, 1}, T(0), {g_in, m, 1});  // W^T delta
    return;
  }
  if (g_in != nullptr) small_transposed_product(g_in, W, delta, n_out, n_in, m, parallel);
}

// Back propagation through one layer fused with the stochastic gradient update:
//   delta = sigma'(z) o g,  g_in = W^T delta   (with W before the update, as Lemma 5.1 needs)
//   W -= eta (scale delta a_in^T + decay W),  b -= eta scale sum_p delta      (4.6)-(4.8), (8.2)
template <class T, int64 M = 0>
inline void dense_backward_update_impl(T* HDL_RESTRICT delta, T* HDL_RESTRICT g_in, const T* HDL_RESTRICT g,
                                       const T* HDL_RESTRICT a_out, T* HDL_RESTRICT W, T* HDL_RESTRICT b,
                                       const T* HDL_RESTRICT a_in, int64 n_out, int64 n_in, int64 m_, Activation act,
                                       T slope, T scale, T eta, T decay) {
  const int64 m = M > 0 ? M : m_;
  const bool parallel = n_out * n_in * m > kParallelWork;
  activate_backward(delta, g, a_out, n_out * m, act, slope);
  if (M == 1 && n_out * n_in >= kGemmMinWork) {
    // One sample: g_in = W^T delta and the update in one pass over W, by ranges of columns (each thread its
    // own part of g_in), vectors along the rows. (Column by column, g_in read W across its rows, and then
    // the update read it again: 784-512-512-10 trained one sample at a time ran 0.67 ms a step, now 0.30.)
    // The tiny layers of Section 6 keep the loops below (their sums in the same order as ever).
    for (int64 j = 0; j < n_out; ++j) b[j] -= eta * scale * delta[j];
    constexpr int64 kCols = 256;
    parallel_for((n_in + kCols - 1) / kCols, parallel, [&](int64 job) {
      const int64 k0 = job * kCols, k1 = std::min(n_in, k0 + kCols);
      if (g_in)
        for (int64 k = k0; k < k1; ++k) g_in[k] = T(0);
      for (int64 j = 0; j < n_out; ++j) {
        const T dj = delta[j];
        T* HDL_RESTRICT w = W + j * n_in;
        if (g_in)
          for (int64 k = k0; k < k1; ++k) g_in[k] += w[k] * dj;
        for (int64 k = k0; k < k1; ++k) w[k] -= eta * (scale * (dj * a_in[k]) + decay * w[k]);
      }
    });
    return;
  }
  if (M == 0 && n_out * n_in * m >= kGemmMinWork) {
    if (g_in) gemm_mat<T>(n_in, m, n_out, T(1), {W, 1, n_in}, {delta, m, 1}, T(0), {g_in, m, 1});  // W^T delta
    parallel_for(n_out, parallel, [&](int64 j) {
      T sum = T(0);
      for (int64 p = 0; p < m; ++p) sum += delta[j * m + p];
      b[j] -= eta * scale * sum;
    });
    // W = (1 - eta decay) W - eta scale delta a_in^T
    gemm_mat<T>(n_out, n_in, m, -eta * scale, {delta, m, 1}, {a_in, 1, m}, T(1) - eta * decay, {W, n_in, 1});
    return;
  }
  if (g_in != nullptr) small_transposed_product(g_in, W, delta, n_out, n_in, m, parallel);
  parallel_for(n_out, parallel, [&](int64 j) {
    const T* HDL_RESTRICT d = delta + j * m;
    T sum = T(0);
    for (int64 p = 0; p < m; ++p) sum += d[p];
    b[j] -= eta * scale * sum;
    for (int64 k = 0; k < n_in; ++k) {
      const T* HDL_RESTRICT a = a_in + k * m;
      T s = T(0);
      for (int64 p = 0; p < m; ++p) s += d[p] * a[p];
      T& w = W[j * n_in + k];
      w -= eta * (scale * s + decay * w);
    }
  });
}

// Blocked layout for whole-data-set passes: columns are taken B at a time and a
// block of a layer is stored (n, B), B a compile-time width of two cache lines.
// Loops of fixed length B vectorise without remainders and the activations of
// one block stay in L1 from layer to layer.
template <class T>
constexpr int64 kBlock = 128 / sizeof(T);

// out = sigma(W in + b) for one block: out (n_out, B), in (n_in, B); sigma only on the first `valid`
// columns (the rest of a last, short block is padding: the sigmoid's division is most of a small net's time).
template <class T>
inline void dense_forward_block(T* HDL_RESTRICT out, const T* HDL_RESTRICT W, const T* HDL_RESTRICT b,
                                const T* HDL_RESTRICT in, int64 n_out, int64 n_in, Activation act, T slope,
                                int64 valid = kBlock<T>) {
  constexpr int64 B = kBlock<T>;
  if (n_out * n_in * B >= kGemmMinWork) {
    gemm_mat<T>(n_out, B, n_in, T(1), {W, n_in, 1}, {in, B, 1}, T(0), {out, B, 1}, {b, true, act, slope});
    return;
  }
  for (int64 j = 0; j < n_out; ++j) {
    T z[B];
    for (int64 p = 0; p < B; ++p) z[p] = b[j];
    for (int64 k = 0; k < n_in; ++k) {
      const T w = W[j * n_in + k];
      for (int64 p = 0; p < B; ++p) z[p] += w * in[k * B + p];
    }
    for (int64 p = 0; p < B; ++p) out[j * B + p] = z[p];
  }
  if (valid >= B || act != Activation::sigmoid) return activate(out, n_out * B, act, slope);
  // a short block: whole vectors of each row (the scalar remainder of 10 lanes costs more than 16 in vectors)
  constexpr int64 V = Simd<T>::lanes;
  const int64 lanes = (valid + V - 1) / V * V;
  if (lanes >= B) return activate(out, n_out * B, act, slope);
  for (int64 j = 0; j < n_out; ++j) activate(out + j * B, lanes, act, slope);
}

// scale * sum 1/2 ||y - a||^2 over the columns; g = scale (a - y) when g is not null.
template <class T>
inline double quadratic_cost_impl(T* HDL_RESTRICT g, const T* HDL_RESTRICT a, const T* HDL_RESTRICT y, int64 count,
                                  double scale) {
  double sum = 0.0;
  for (int64 i = 0; i < count; ++i) {
    const double r = double(a[i]) - double(y[i]);
    sum += r * r;
  }
  if (g != nullptr) {
    const T s = T(scale);
    for (int64 i = 0; i < count; ++i) g[i] = s * (a[i] - y[i]);
  }
  return 0.5 * scale * sum;
}

}  // namespace HDL_ISA
}  // namespace hdl
