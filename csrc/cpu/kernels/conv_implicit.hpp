// Convolution as an implicit GEMM: the products of gemm.hpp with one operand packed straight from the
// patches of the (padded) input, im2col without forming it:
//   forward          y (P, O) = A (P, K) Wk^T + b        P = N*Ho*Wo output pixels, K = kh*kw*C,
//   backward filter  dWk^T (K, O) = A^T dy, or dWk (O, K) = dy^T A for large patches
//                                                         (the sum over the pixels, cf. (5.8))
//   A(p, k) = xp[n][i*sh + u][j*sw + v][c]  for p = (n, i, j), k = (u*kw + v)*C + c,
// Wk the filters in that patch order. The data gradient is a stride-1 forward convolution per phase
// (conv.cpp's data_gradient_subpixel), which comes here too. Filter row u's (v, c) are kw*C consecutive
// values of xp, so a panel of MR pixels packs as pack_rows packs a row-major matrix, one run of a filter
// row at a time. The packed blocks, the micro-kernel and the threads are those of the GEMM core, which is
// what the direct kernel (conv_tile.hpp) lacks where the channels are many: its weights stream from L2
// for every six pixels (8x8x256 -> 256 3x3 at batch 16: 9.97 -> 5.89 ms; conv.cpp says when).
#pragma once
#include <omp.h>

#include <algorithm>

#include "conv_gemm.hpp"  // transpose_each
#include "gemm.hpp"
#include "scratch.hpp"

namespace hdl {
namespace HDL_ISA {

// The patches of a stride-(sh, sw) unpadded convolution of xp (N, Hp, Wp, C) giving Ho x Wo pixels per image.
template <class T>
struct Patches {
  const T* xp;
  int64 N, Hp, Wp, C, Ho, Wo, kh, kw, sh, sw;
  int64 pixels() const { return N * Ho * Wo; }
  int64 size() const { return kh * kw * C; }
  int64 run() const { return kw * C; }      // values of one filter row, contiguous in xp
  int64 pitch() const { return Wp * C; }    // from one row of xp to the next
  // pixel p's patch, and p's successor (n, i, j) -> (n, i, j + 1) ...
  struct Walk {
    const Patches& x;
    int64 n, i, j;
    Walk(const Patches& x, int64 p) : x(x), n(p / (x.Ho * x.Wo)), i(p % (x.Ho * x.Wo) / x.Wo), j(p % x.Wo) {}
    const T* patch() const { return x.xp + ((n * x.Hp + i * x.sh) * x.Wp + j * x.sw) * x.C; }
    void next() {
      if (++j == x.Wo && (j = 0, ++i) == x.Ho) i = 0, ++n;
    }
  };
};

// A's rows for gemm_blocked's packer interface, pack(ap, i0, rows, k0, kc): pixels i0 .. i0+rows, patch
// values k0 .. k0+kc.
template <class T>
struct PatchRows {
  Patches<T> x;
  void operator()(T* ap, int64 i0, int64 rows, int64 k0, int64 kc) const {
    constexpr int MR = GemmSizes<T>::MR;
    const T* base[MR];
    typename Patches<T>::Walk walk(x, i0);
    for (int r = 0; r < MR; ++r, walk.next()) base[r] = r < rows ? walk.patch() : nullptr;
    const int64 run = x.run(), pitch = x.pitch();
    for (int64 k = k0; k < k0 + kc;) {
      const int64 u = k / run, q = k % run, len = std::min(k0 + kc, (u + 1) * run) - k;
      T* dst = ap + (k - k0) * MR;
      if (rows == MR) {
        const T* row[MR];
        for (int r = 0; r < MR; ++r) row[r] = base[r] + u * pitch + q;
        pack_rows(dst, row, len);
      } else {
        for (int64 t = 0; t < len; ++t)
          for (int r = 0; r < MR; ++r) dst[t * MR + r] = r < rows ? base[r][u * pitch + q + t] : T(0);
      }
      k += len;
    }
  }
};

// A^T's rows for the filter gradient: patch values i0 .. i0+rows of pixels k0 .. k0+kc.
template <class T>
struct PatchCols {
  Patches<T> x;
  void operator()(T* ap, int64 i0, int64 rows, int64 k0, int64 kc) const {
    constexpr int MR = GemmSizes<T>::MR;
    const int64 run = x.run(), pitch = x.pitch();
    int64 off[MR];
    for (int r = 0; r < MR; ++r) {
      const int64 q = i0 + std::min<int64>(r, rows - 1);
      off[r] = q / run * pitch + q % run;
    }
    const bool contiguous = rows == MR && off[MR - 1] == off[0] + MR - 1;  // within one run of a filter row
    typename Patches<T>::Walk walk(x, k0);
    for (int64 t = 0; t < kc; ++t, walk.next()) {
      const T* base = walk.patch();
      T* dst = ap + t * MR;
      if (contiguous) {
        std::copy_n(base + off[0], MR, dst);
      } else {
        for (int r = 0; r < MR; ++r) dst[r] = r < rows ? base[off[r]] : T(0);
      }
    }
  }
};

// The patches as B for gemm_blocked's packer interface, pack(bp, k0, j0, kc, nc, p0, p1): row k is pixel k's
// patch, so that panel p of the block holds patch values j0 + p*NR .. of pixels k0 .. k0+kc, copied a run of
// a filter row at a time. A pixel's patch is read once for all the panels.
template <class T>
struct PatchPanels {
  Patches<T> x;
  void operator()(T* bp, int64 k0, int64 j0, int64 kc, int64 nc, int64 p0, int64 p1) const {
    constexpr int NR = GemmSizes<T>::NR;
    const int64 run = x.run(), pitch = x.pitch();
    typename Patches<T>::Walk walk(x, k0);
    for (int64 t = 0; t < kc; ++t, walk.next()) {
      const T* base = walk.patch();
      for (int64 p = p0; p < p1; ++p) {
        T* dst = bp + (p * kc + t) * NR;
        const int64 first = j0 + p * NR, cols = std::min<int64>(NR, nc - p * NR);
        for (int64 q = first; q < first + cols;) {  // one run of a filter row at a time
          const int64 u = q / run, len = std::min(first + cols, (u + 1) * run) - q;
          std::copy_n(base + u * pitch + q % run, len, dst + (q - first));
          q += len;
        }
        std::fill(dst + cols, dst + NR, T(0));
      }
    }
  }
};

// y = rectify(conv(x, Wk) + b) into output pixels laid out by `out`: y + n*image + i*row + j*pixel, in
// place where that is a (P, O) matrix, else into scratch and copied out a pixel at a time (the phases of a
// strided data gradient, every sh-th row and sw-th column of dx). wk: O filters in patch order (O, kh, kw, C).
template <class T>
void conv_implicit_forward(T* y, int64 image, int64 row, int64 pixel, const Patches<T>& x, int64 O, const T* wk,
                           const T* b, Rectify<T> rectify) {
  const int64 P = x.pixels(), K = x.size();
  const bool dense = pixel == O && row == x.Wo * O && image == x.Ho * row;
  T* c = dense ? y : scratch<T, 23>(P * O);
  gemm_packed<T>(P, O, K, T(1), PatchRows<T>{x}, PackB<T>{{wk, 1, K}}, T(0), {c, O, 1},
                 {b, false, rectify.act, rectify.slope}, gemm_threads(P * O * K));
  if (dense) return;
  parallel_for(x.N * x.Ho, P * O > kParallelWork, [&](int64 r) {
    const int64 n = r / x.Ho, i = r % x.Ho;
    for (int64 j = 0; j < x.Wo; ++j) std::copy_n(c + (r * x.Wo + j) * O, O, y + n * image + i * row + j * pixel);
  });
}

// The filters get(o, c, u, v) in patch order (O, kh, kw, C), in scratch (the flipped, transposed filters of
// a data gradient, which no stored array holds).
template <class T, class Get>
const T* patch_filters_of(int64 O, int64 C, int64 kh, int64 kw, Get get) {
  T* wk = scratch<T, 22>(O * kh * kw * C);
  parallel_for(O, O * kh * kw * C > kParallelWork, [&](int64 o) {
    T* out = wk + o * kh * kw * C;
    for (int64 u = 0; u < kh; ++u)
      for (int64 v = 0; v < kw; ++v)
        for (int64 c = 0; c < C; ++c) *out++ = get(o, c, u, v);
  });
  return wk;
}

// A data gradient's filters w'(c, o, u, v) = w(o, c, kh-1-u, kw-1-v) for w (O, C, kh, kw), in patch order
// (C, kh, kw, O): per c, w's (O x taps) block transposed, its taps in reverse (a negative row pitch).
template <class T>
const T* flipped_patch_filters(const T* w, int64 O, int64 C, int64 taps) {
  T* wk = scratch<T, 22>(C * taps * O);
  parallel_for(C, C * taps * O > kParallelWork,
               [&](int64 c) { transpose_rect(wk + (c * taps + taps - 1) * O, -O, w + c * taps, C * taps, O, taps); });
  return wk;
}

// Patches of at least this many values take the filter gradient as dWk = dy^T A, the patches packed as B,
// whole runs of a filter row at a time (bench/implicit_rule.py's shapes with the implicit GEMM, AMD EPYC,
// float32, A^T dy / dy^T A: 1.01-1.11 from 11x11x3 (363 values) to 3x3x256, 0.84 on 7x7x3, 0.46 on 3x3x3).
constexpr int64 kPatchPanelsMin = 320;

// dw (O, C, kh, kw) = the sum over the pixels of x's patches times dy (P, O).
template <class T>
void conv_implicit_filter_gradient(T* dw, const T* dy, const Patches<T>& x, int64 O) {
  const int64 P = x.pixels(), K = x.size(), taps = x.kh * x.kw, C = x.C;
  if (K >= kPatchPanelsMin) {  // dWk (O, K) = dy^T A, then each filter from patch order to (C, kh, kw)
    T* dwk = taps > 1 && C > 1 ? scratch<T, 25>(K * O) : dw;
    gemm_packed<T>(O, K, P, T(1), PackA<T>{{dy, 1, O}}, PatchPanels<T>{x}, T(0), {dwk, K, 1}, {},
                   gemm_threads(P * O * K));
    if (dwk != dw) transpose_each(dw, dwk, O, taps, C);
    return;
  }
  T* dwt = scratch<T, 24>(K * O);  // dWk^T (K, O), its rows in patch order (u, v, c)
  gemm_packed<T>(K, O, P, T(1), PatchCols<T>{x}, PackB<T>{{dy, O, 1}}, T(0), {dwt, O, 1}, {}, gemm_threads(P * O * K));
  // dw[o][c][t] = dwt[t][c][o]: dwt transposed to dWk (O, K), a band of its rows per job, then each filter
  // from patch order to (C, kh, kw) (read a column at a time, the stride-O reads took 1.1 of the 1.5 ms of
  // an 8x8x256 -> 256 3x3 filter gradient at batch 1)
  T* dwk = taps > 1 && C > 1 ? scratch<T, 25>(K * O) : dw;
  constexpr int64 band = 64;
  parallel_for((K + band - 1) / band, K * O > kParallelWork, [&](int64 job) {
    const int64 k0 = job * band;
    transpose_rect(dwk + k0, K, dwt + k0 * O, O, std::min(band, K - k0), O);
  });
  if (dwk != dw) transpose_each(dw, dwk, O, taps, C);
}

}  // namespace HDL_ISA
}  // namespace hdl
