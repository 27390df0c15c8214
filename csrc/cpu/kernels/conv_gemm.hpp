// Convolutions that are one matrix product, run on the GEMM core (gemm.hpp):
//  - a filter that covers its whole unpadded input (one output pixel: a fully connected layer, as
//    FullyConnected writes it): P = N "pixels" of K = H*W*C channels;
//  - a 1x1 filter, stride 1, no padding: P = N*H*W pixels of K = C channels.
// With x as X (P, K) and the filters as Wk (O, K) in the patch order (u, v, c) of NHWC:
//   forward          y (P, O) = X Wk^T + b        (bias per column, ReLU fused in the store)
//   backward data    dx (P, K) = dy Wk
//   backward filter  dWk (O, K) = dy^T X,  db = sum over pixels of dy     (cf. (5.7), (5.8))
#pragma once
#include <algorithm>
#include <vector>

#include "dense_impl.hpp"
#include "gemm.hpp"
#include "hdl/shapes.hpp"
#include "scratch.hpp"

namespace hdl {
namespace HDL_ISA {

inline bool conv_is_gemm(const ConvShape& s) {
  const bool unpadded = !(s.pad_top || s.pad_bottom || s.pad_left || s.pad_right);
  const bool covers = s.kh == s.H && s.kw == s.W;
  const bool pointwise = s.kh == 1 && s.kw == 1 && s.sh == 1 && s.sw == 1;
  return unpadded && (covers || pointwise);
}

// (pixels P, channels K) of the product.
inline void conv_gemm_sizes(const ConvShape& s, int64& P, int64& K) {
  const bool covers = s.kh == s.H && s.kw == s.W;
  P = covers ? s.N : s.N * s.H * s.W;
  K = s.kh * s.kw * s.C;
}

// The two orders of a patch's K = taps * C values: x's own (tap, c) of NHWC, and the filters' (c, tap) of
// w (O, C, kh, kw). A product needs both operands in one order, so one side is permuted: the filters
// (O x K values) or the activations (P x K), whichever is smaller. A fully connected layer over a
// 7x7x64 map into 1024 features at batch 1 permuted its 3.2 M weights (4.7 ms of the 5.3 ms forward
// pass, where torch.matmul takes 0.36 ms); it now permutes the 3136 inputs.
inline bool conv_gemm_permutes(const ConvShape& s) { return s.kh * s.kw > 1 && s.C > 1; }
inline bool conv_gemm_permutes_inputs(const ConvShape& s, int64 P) { return P < s.O; }

// dst[i][b][a] = src[i][a][b] for `count` (A x B) matrices: in G x G register blocks, on all threads
// when there is enough of it.
template <class T>
void transpose_each(T* dst, const T* src, int64 count, int64 A, int64 B) {
  const int64 n = A * B;
  parallel_for(count, count * n > kParallelWork, [&](int64 i) { transpose_rect(dst + i * n, A, src + i * n, B, A, B); });
}

// w (O, C, taps) in patch order (O, taps, C), or w itself when the orders agree.
template <class T>
const T* conv_patch_filters(const T* w, const ConvShape& s) {
  if (!conv_gemm_permutes(s)) return w;
  T* buf = scratch<T, 9>(s.O * s.kh * s.kw * s.C);
  transpose_each(buf, w, s.O, s.C, s.kh * s.kw);
  return buf;
}

// x (P, taps, C) in the filters' order (P, C, taps), in scratch `Use`.
template <int Use, class T>
const T* conv_filter_order_inputs(const T* x, const ConvShape& s, int64 P) {
  T* buf = scratch<T, Use>(P * s.kh * s.kw * s.C);
  transpose_each(buf, x, P, s.kh * s.kw, s.C);
  return buf;
}

// db (O) = the sum of dy's P rows (cf. (5.7)), in blocks of rows whose partial sums are then added, so that
// float32 rounding grows with the block, not with the batch's pixels.
template <class T>
void bias_gradient(T* db, const T* dy, int64 P, int64 O) {
  constexpr int64 cols = 16, rows = 256;  // a job: 16 columns (a cache line of float32)
  parallel_for((O + cols - 1) / cols, P * O > kParallelWork, [&](int64 job) {
    const int64 o0 = job * cols, n = std::min(O, o0 + cols) - o0;
    T total[cols] = {}, part[cols];
    for (int64 p0 = 0; p0 < P; p0 += rows) {
      std::fill_n(part, n, T(0));
      for (int64 p = p0; p < std::min(P, p0 + rows); ++p)
        for (int64 o = 0; o < n; ++o) part[o] += dy[p * O + o0 + o];
      for (int64 o = 0; o < n; ++o) total[o] += part[o];
    }
    std::copy_n(total, n, db + o0);
  });
}

// y = sigma(x * w + b) as one GEMM, sigma and b applied as each tile of y is stored (ep).
template <class T>
void conv_gemm_forward(T* y, const T* x, const T* w, const ConvShape& s, const Epilogue<T>& ep) {
  int64 P, K;
  conv_gemm_sizes(s, P, K);
  const bool inputs = conv_gemm_permutes(s) && conv_gemm_permutes_inputs(s, P);
  const T* xk = inputs ? conv_filter_order_inputs<20>(x, s, P) : x;
  const T* wk = inputs ? w : conv_patch_filters(w, s);
  gemm_mat<T>(P, s.O, K, T(1), {xk, K, 1}, {wk, 1, K}, T(0), {y, s.O, 1}, ep);
}

template <class T>
void conv_gemm_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, const ConvShape& s) {
  int64 P, K;
  conv_gemm_sizes(s, P, K);
  const int64 O = s.O, taps = s.kh * s.kw;
  const bool permutes = conv_gemm_permutes(s), inputs = permutes && conv_gemm_permutes_inputs(s, P);
  if (inputs) {  // both products in the filters' order; dx permuted back to x's
    if (dx) {
      T* dxk = scratch<T, 21>(P * K);
      gemm_mat<T>(P, K, O, T(1), {dy, O, 1}, {w, K, 1}, T(0), {dxk, K, 1});
      transpose_each(dx, dxk, P, s.C, taps);
    }
    gemm_mat<T>(O, K, P, T(1), {dy, 1, O}, {conv_filter_order_inputs<20>(x, s, P), K, 1}, T(0), {dw, K, 1});
  } else {  // both in x's order; dw permuted back to w's
    if (dx) gemm_mat<T>(P, K, O, T(1), {dy, O, 1}, {conv_patch_filters(w, s), K, 1}, T(0), {dx, K, 1});
    T* dwk = permutes ? scratch<T, 16>(O * K) : dw;
    gemm_mat<T>(O, K, P, T(1), {dy, 1, O}, {x, K, 1}, T(0), {dwk, K, 1});
    if (permutes) transpose_each(dw, dwk, O, taps, s.C);
  }
  bias_gradient(db, dy, P, O);
}

}  // namespace HDL_ISA
}  // namespace hdl
