// The forward convolution of a single input channel (grayscale images) into fewer output channels than a
// vector holds, such as LeNet-5's first layer (1 -> 6, 5x5): the direct kernel's vectors run along the
// output channels, which would fill 6 of their 16 lanes, so this one runs its vectors along the output
// row instead, 2 vectors of pixels x 8 channels of accumulators, at stride 1 along the row:
//   y[n, i, j, o] = b[o] + sum_{u, v} xp[n, i sh + u, j + v] w[o, 0, u, v]
// for xp the input inside its zero border (Hp x Wp). 28x28x1 -> 6, 5x5 pad 2, ReLU, against the direct
// kernel: batch 256 1.05-1.10 -> 0.71-0.75 ms, 64 0.28-0.29 -> 0.24, 16 0.077 -> 0.065 (AVX-512, 2 threads);
// LeNet-5's inference in the zoo, batch 256 2.50-2.65 -> 1.93-1.98 ms, 64 0.70-0.72 -> 0.57.
// The backward pass keeps the direct kernels.
#pragma once
#include <algorithm>

#include "dense_impl.hpp"
#include "gemm_blocked.hpp"
#include "hdl/shapes.hpp"
#include "simd.hpp"

namespace hdl {
namespace HDL_ISA {

// Whether conv_one_channel serves the forward pass of s. Not a stride along the row: its pixels are not
// contiguous, and gathering them measured slower than the direct kernel (7x7 stride 2 on 64x64, 1 -> 8
// channels, batch 64: 0.77 against 0.53 ms; 4x4 stride 2, 1 -> 4: 0.12 against 0.07-0.10 ms).
template <class T>
inline bool conv_one_channel_serves(const ConvShape& s) {
  return s.C == 1 && s.sw == 1 && s.O < Simd<T>::lanes;
}

template <class T>
void conv_one_channel(T* y, const T* xp, int64 Hp, int64 Wp, const T* w, const T* b, const ConvShape& s,
                      Rectify<T> rectify) {
  using S = Simd<T>;
  using V = typename S::vec;
  constexpr int L = S::lanes, P = 2, OB = 8;  // P vectors of pixels x OB channels of accumulators
  const int64 Ho = s.out_h(), Wo = s.out_w(), O = s.O, kh = s.kh, kw = s.kw, sh = s.sh, taps = kh * kw;
  const int64 blocks = (O + OB - 1) / OB;
  // the filters as [block][u][v][q], zero past O: every pass multiplies OB channels
  Buffer<T> wq(blocks * taps * OB, T(0)), bq(blocks * OB, T(0));
  for (int64 o = 0; o < O; ++o) {
    bq[o] = b ? b[o] : T(0);
    for (int64 t = 0; t < taps; ++t) wq[((o / OB) * taps + t) * OB + o % OB] = w[o * taps + t];
  }
  parallel_for(s.N * Ho, s.N * Ho * Wo * O * taps > kParallelWork, [&](int64 row) {
    const int64 n = row / Ho, i = row % Ho;
    const T* xr = xp + (n * Hp + i * sh) * Wp;  // the window's first input row
    T* yr = y + row * Wo * O;
    for (int64 j0 = 0; j0 < Wo; j0 += P * L) {
      const int64 nj = std::min<int64>(P * L, Wo - j0);
      // whole vectors wherever they stay inside xp (lanes past the row's end read the next row, unused)
      const bool whole = (n * Hp + i * sh + kh - 1) * Wp + j0 + kw - 1 + P * L <= s.N * Hp * Wp;
      for (int64 blk = 0; blk < blocks; ++blk) {
        const T* wb = &wq[blk * taps * OB];
        V acc[OB][P];
        for (int q = 0; q < OB; ++q)
          for (int p = 0; p < P; ++p) acc[q][p] = S::zero() + bq[blk * OB + q];
        for (int64 u = 0; u < kh; ++u)
          for (int64 v = 0; v < kw; ++v) {
            const T* src = xr + u * Wp + j0 + v;
            V xv[P];
            if (whole) {
              for (int p = 0; p < P; ++p) xv[p] = S::load(src + p * L);
            } else {  // the buffer's end: lane l of vector p reads pixel j0 + p L + l, if there is one
              T buf[P * L] = {};
              for (int64 l = 0; l < nj; ++l) buf[l] = src[l];
              for (int p = 0; p < P; ++p) xv[p] = S::load(buf + p * L);
            }
            const T* wt = wb + (u * kw + v) * OB;
            for (int q = 0; q < OB; ++q)
              for (int p = 0; p < P; ++p) acc[q][p] += wt[q] * xv[p];
          }
        const int64 oq = std::min<int64>(OB, O - blk * OB);
        T out[OB][P * L];
        for (int q = 0; q < OB; ++q)
          for (int p = 0; p < P; ++p) {
            S::store(out[q] + p * L, rectify(acc[q][p], S::zero()));  // in registers: a branch per value of
            // random sign costs 3x the sums
          }
        for (int64 l = 0; l < nj; ++l)
          for (int64 q = 0; q < oq; ++q) yr[(j0 + l) * O + blk * OB + q] = out[q][l];
      }
    }
  });
}

}  // namespace HDL_ISA
}  // namespace hdl
