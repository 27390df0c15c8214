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

// w (O, C, kh, kw) in patch order (O, kh, kw, C), or w itself when the orders agree.
template <class T>
const T* conv_patch_filters(const T* w, const ConvShape& s) {
  const int64 taps = s.kh * s.kw;
  if (taps == 1 || s.C == 1) return w;
  T* buf = scratch<T, 9>(s.O * taps * s.C);
  for (int64 o = 0; o < s.O; ++o)
    for (int64 c = 0; c < s.C; ++c)
      for (int64 t = 0; t < taps; ++t) buf[(o * taps + t) * s.C + c] = w[(o * s.C + c) * taps + t];
  return buf;
}

template <class T>
void conv_gemm_forward(T* y, const T* x, const T* w, const T* b, const ConvShape& s, bool relu) {
  int64 P, K;
  conv_gemm_sizes(s, P, K);
  const T* wk = conv_patch_filters(w, s);
  gemm_mat<T>(P, s.O, K, T(1), {x, K, 1}, {wk, 1, K}, T(0), {y, s.O, 1},
              {b, false, relu ? Activation::relu : Activation::linear, T(0)});
}

template <class T>
void conv_gemm_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, const ConvShape& s) {
  int64 P, K;
  conv_gemm_sizes(s, P, K);
  const int64 O = s.O, taps = s.kh * s.kw;
  if (dx) gemm_mat<T>(P, K, O, T(1), {dy, O, 1}, {conv_patch_filters(w, s), K, 1}, T(0), {dx, K, 1});
  const bool permuted = taps > 1 && s.C > 1;
  T* dwk = permuted ? scratch<T, 16>(O * K) : nullptr;
  gemm_mat<T>(O, K, P, T(1), {dy, 1, O}, {x, K, 1}, T(0), {permuted ? dwk : dw, K, 1});
  if (permuted)
    for (int64 o = 0; o < O; ++o)
      for (int64 c = 0; c < s.C; ++c)
        for (int64 t = 0; t < taps; ++t) dw[(o * s.C + c) * taps + t] = dwk[(o * taps + t) * s.C + c];
  constexpr int64 cols = 16;  // db for one run of 16 columns per job: a cache line of float32
  parallel_for((O + cols - 1) / cols, P * O > kParallelWork, [&](int64 job) {
    const int64 o0 = job * cols, o1 = std::min(O, o0 + cols);
    for (int64 o = o0; o < o1; ++o) db[o] = T(0);
    for (int64 p = 0; p < P; ++p)
      for (int64 o = o0; o < o1; ++o) db[o] += dy[p * O + o];
  });
}

}  // namespace HDL_ISA
}  // namespace hdl
