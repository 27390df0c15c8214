// The register tile of the direct convolution, shared by conv.cpp and winograd.hpp:
// R output pixels times one block of NV vectors of output channels, accumulated over
// a rectangle of filter taps and the input channels. NV = 2 with 6 pixels in general;
// NV = 1 with 12 pixels when the output channels fit one vector (LeNet's 6, an RGB
// data gradient's 3), and that vector the narrowest that holds them (8 lanes of a ymm for 6
// channels under AVX-512), so that fewer lanes compute zeros.
#pragma once
#include <algorithm>
#include <vector>

#include "dense_impl.hpp"
#include "gemm_blocked.hpp"  // Buffer: a std::vector instantiated apart per instruction set
#include "hdl/common.hpp"
#include "filter_cache.hpp"
#include "scratch.hpp"
#include "simd.hpp"

namespace hdl {
namespace HDL_ISA {

template <class T, int NV = 2, int Bytes = kVectorBytes>
constexpr int64 kBlockO = NV * Simd<T, Bytes>::lanes;  // output channels per tile

template <int NV>
constexpr int kRowsFor = NV == 1 ? 2 * kTileRows : kTileRows;  // pixels per tile: 12 accumulators


// Filters packed for the tile: wp[ob][tap][c][kBlockO], tap = u*kw + v, zero beyond O; get(o, c, u, v).
// Blocks of channels at a time through a staging tile [tap][c][o] of at most 16 KB, copied out a row per
// tap: each filter's (c, u, v) run is read in order (a forward pass's w row by row), and the taps' rows
// of wp, C*B apart (a multiple of 4 KB for 64 channels), are not filled element by element, which
// thrashed one L1 set (the pack of a 64 -> 128 channel 4x4 filter took 0.45 ms, all of a batch-1 forward).
// Filters stored plainly, w (O, C, kh, kw) with get(o, c, u, v) == w[((o*C + c)*kh + u)*kw + v] (a forward
// pass), go through G x G transposes in registers (8 float32, 4 float64) wherever a whole block is there:
// that pack 0.10 -> 0.01 ms, and the batch-1 forward pass of that 4x4 layer 0.18 -> 0.09 ms on one thread.
constexpr int64 kParallelPack = int64(1) << 16;  // filter values: below this the pack stays on one thread

template <class T, int NV, int Bytes, class Get>
void pack_into(T* wp, int64 O, int64 C, int64 kh, int64 kw, Get get, const T* plain) {
  constexpr int64 B = kBlockO<T, NV, Bytes>;
  const int64 blocks = (O + B - 1) / B, taps = kh * kw;
  const int64 cb = std::clamp<int64>(4096 / int64(sizeof(T)) / (taps * B), 1, C);  // channels per stage
  // blocks of filters on all threads, each through its own stage (a batch-1 forward pass of 8x8x256 -> 256
  // 3x3 spent 0.23 of its 0.86 ms packing on one thread while the other waited)
  parallel_for(blocks, blocks > 1 && blocks * taps * C * B > kParallelPack, [&](int64 ob) {
    T* stage = scratch<T, 18>(taps * cb * B);
    const int64 count = std::min(B, O - ob * B);
    for (int64 c0 = 0; c0 < C; c0 += cb) {
      const int64 cn = std::min(cb, C - c0);
      int64 t_done = 0;  // taps [0, t_done) staged by the transposes
      if constexpr (kHave256) {
        constexpr int64 G = V256<T>::lanes;
        if (plain && count == B && B % G == 0) {
          t_done = taps / G * G;
          for (int64 c = 0; c < cn; ++c)
            for (int64 l0 = 0; l0 < B; l0 += G)
              for (int64 t0 = 0; t0 < t_done; t0 += G)
                transpose_block(stage + (t0 * cn + c) * B + l0, cn * B,
                                plain + ((ob * B + l0) * C + c0 + c) * taps + t0, C * taps);
        }
      }
      for (int64 l = 0; l < B; ++l)
        for (int64 c = 0; c < cn; ++c)
          for (int64 t = t_done, u = t_done / kw, v = t_done % kw; t < taps; ++t, v = v + 1 == kw ? (++u, 0) : v + 1)
            stage[(t * cn + c) * B + l] = l < count ? get(ob * B + l, c0 + c, u, v) : T(0);
      for (int64 t = 0; t < taps; ++t)
        std::copy_n(stage + t * cn * B, cn * B, wp + ((ob * taps + t) * C + c0) * B);
    }
  });
}

// An inference pass keeps the packed filters of plain ones (filter_cache.hpp).
template <class T, int NV, int Bytes, class Get>
const T* pack(int64 O, int64 C, int64 kh, int64 kw, Get get, const T* plain = nullptr) {
  constexpr int64 B = kBlockO<T, NV, Bytes>;
  const int64 blocks = (O + B - 1) / B, taps = kh * kw, size = blocks * taps * C * B;
  return kept_filters<T>({0, NV, Bytes, O, C, taps, 0, 0}, plain, O * C * taps, size, [&] { return scratch<T, 3>(size); },
                         [&](T* wp) { pack_into<T, NV, Bytes>(wp, O, C, kh, kw, get, plain); });
}

// The taps (u, v), u in [u0, u1), v in [v0, v1), of a filter with kw columns, reading an input whose
// rows are `pitch` elements apart.
struct Taps {
  int64 u0, u1, v0, v1, kw, pitch;
};

// R output pixels at x + xoff[r] (inputs) and y + yoff[r] (outputs) times one block of channels:
//   y[r] = bias + sum over taps (u, v) and channels c of x[xoff[r] + u*pitch + v*C + c] wp[u*kw + v][c][:]
template <class T, int R, int NV, int Bytes>
inline void tile(T* y, const int64* yoff_, int64 ocount, const T* x, const int64* xoff_, const Taps& k, const T* wp,
                 int64 C, const T* bias, Rectify<T> rectify) {
  using S = Simd<T, Bytes>;
  using V = typename S::vec;
  constexpr int L = S::lanes;
  int64 xoff[R];
  for (int r = 0; r < R; ++r) xoff[r] = xoff_[r];
  V acc[R][NV];
  for (int r = 0; r < R; ++r)
    for (int k = 0; k < NV; ++k) acc[r][k] = S::load(bias + k * L);
  // For one filter row u, the taps (v, c) with v in [v0, v1) are contiguous in x and in wp: one loop.
  const int64 run = (k.v1 - k.v0) * C;
  for (int64 u = k.u0; u < k.u1; ++u) {
    const T* xt = x + u * k.pitch + k.v0 * C;
    const T* wt = wp + (u * k.kw + k.v0) * C * NV * L;
    for (int64 c = 0; c < run; ++c) {
      V wv[NV];
      for (int k = 0; k < NV; ++k) wv[k] = S::load(wt + (c * NV + k) * L);
      for (int r = 0; r < R; ++r) {
        const T a = xt[xoff[r] + c];
        for (int k = 0; k < NV; ++k) acc[r][k] += a * wv[k];
      }
    }
  }
  const V zero = S::zero();
  for (int r = 0; r < R; ++r) {
    for (int k = 0; k < NV; ++k) acc[r][k] = rectify(acc[r][k], zero);
    T* out = y + yoff_[r];
    if (ocount == NV * L) {
      for (int k = 0; k < NV; ++k) S::store(out + k * L, acc[r][k]);
    } else {
      for (int k = 0; k < NV; ++k)
        store_first<T, Bytes>(out + k * L, acc[r][k], int(std::clamp<int64>(ocount - k * L, 0, L)));
    }
  }
}

// `rows` (<= R) pixels at arbitrary offsets.
template <class T, int NV = 2, int Bytes = kVectorBytes, int R = kRowsFor<NV>>
inline void tile_pixels(int rows, T* y, const int64* yoff, int64 ocount, const T* x, const int64* xoff,
                        const Taps& k, const T* wp, int64 C, const T* bias, Rectify<T> rectify) {
  if constexpr (R > 1) {
    if (rows < R) return tile_pixels<T, NV, Bytes, R - 1>(rows, y, yoff, ocount, x, xoff, k, wp, C, bias, rectify);
  }
  tile<T, R, NV, Bytes>(y, yoff, ocount, x, xoff, k, wp, C, bias, rectify);
}

// `rows` (<= kRowsFor<NV>) pixels evenly spaced: x advances by xstep, y by ystride.
template <class T, int NV = 2>
inline void tile_rows(int rows, T* y, int64 ystride, int64 ocount, const T* x, int64 xstep, const Taps& k,
                      const T* wp, int64 C, const T* bias, Rectify<T> rectify = {}) {
  constexpr int R = kRowsFor<NV>;
  int64 xoff[R], yoff[R];
  for (int r = 0; r < R; ++r) {
    xoff[r] = r * xstep;
    yoff[r] = r * ystride;
  }
  tile_pixels<T, NV>(rows, y, yoff, ocount, x, xoff, k, wp, C, bias, rectify);
}

}  // namespace HDL_ISA
}  // namespace hdl
