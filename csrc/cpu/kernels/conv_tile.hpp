// The register tile of the direct convolution, shared by conv.cpp and winograd.hpp:
// R output pixels times one block of 2 vectors of output channels, accumulated over
// a rectangle of filter taps and the input channels.
#pragma once
#include <cstring>
#include <vector>

#include "dense_impl.hpp"
#include "hdl/common.hpp"
#include "simd.hpp"

namespace hdl {
namespace HDL_ISA {

template <class T>
constexpr int64 kBlockO = 2 * Simd<T>::lanes;  // output channels per tile


// Filters packed for the tile: wp[ob][tap][c][kBlockO], zero beyond O; get(o, c, tap).
template <class T, class Get>
std::vector<T> pack(int64 O, int64 C, int64 taps, Get get) {
  constexpr int64 B = kBlockO<T>;
  std::vector<T> wp(((O + B - 1) / B) * taps * C * B, T(0));
  for (int64 o = 0; o < O; ++o)
    for (int64 c = 0; c < C; ++c)
      for (int64 t = 0; t < taps; ++t) wp[(((o / B) * taps + t) * C + c) * B + o % B] = get(o, c, t);
  return wp;
}

// The taps (u, v), u in [u0, u1), v in [v0, v1), of a filter with kw columns, reading an input whose
// rows are `pitch` elements apart.
struct Taps {
  int64 u0, u1, v0, v1, kw, pitch;
};

// R output pixels at x + xoff[r] (inputs) and y + yoff[r] (outputs) times one block of channels:
//   y[r] = bias + sum over taps (u, v) and channels c of x[xoff[r] + u*pitch + v*C + c] wp[u*kw + v][c][:]
template <class T, int R>
inline void tile(T* y, const int64* yoff_, int64 ocount, const T* x, const int64* xoff_, const Taps& k, const T* wp,
                 int64 C, const T* bias, bool relu) {
  using S = Simd<T>;
  using V = typename S::vec;
  constexpr int L = S::lanes;
  int64 xoff[R];
  for (int r = 0; r < R; ++r) xoff[r] = xoff_[r];
  V acc[R][2];
  for (int r = 0; r < R; ++r) {
    acc[r][0] = S::load(bias);
    acc[r][1] = S::load(bias + L);
  }
  for (int64 u = k.u0; u < k.u1; ++u)
    for (int64 v = k.v0; v < k.v1; ++v) {
      const T* xt = x + u * k.pitch + v * C;
      const T* wt = wp + (u * k.kw + v) * C * 2 * L;
      for (int64 c = 0; c < C; ++c) {
        const V w0 = S::load(wt + c * 2 * L), w1 = S::load(wt + c * 2 * L + L);
        for (int r = 0; r < R; ++r) {
          const T a = xt[xoff[r] + c];
          acc[r][0] += a * w0;
          acc[r][1] += a * w1;
        }
      }
    }
  const V zero = S::zero();
  for (int r = 0; r < R; ++r) {
    if (relu) {
      acc[r][0] = acc[r][0] > zero ? acc[r][0] : zero;
      acc[r][1] = acc[r][1] > zero ? acc[r][1] : zero;
    }
    T* out = y + yoff_[r];
    if (ocount == 2 * L) {
      S::store(out, acc[r][0]);
      S::store(out + L, acc[r][1]);
    } else {
      T tmp[2 * L];
      S::store(tmp, acc[r][0]);
      S::store(tmp + L, acc[r][1]);
      std::memcpy(out, tmp, ocount * sizeof(T));
    }
  }
}

// `rows` (<= R) pixels at arbitrary offsets.
template <class T, int R = kTileRows>
inline void tile_pixels(int rows, T* y, const int64* yoff, int64 ocount, const T* x, const int64* xoff,
                        const Taps& k, const T* wp, int64 C, const T* bias, bool relu) {
  if constexpr (R > 1) {
    if (rows < R) return tile_pixels<T, R - 1>(rows, y, yoff, ocount, x, xoff, k, wp, C, bias, relu);
  }
  tile<T, R>(y, yoff, ocount, x, xoff, k, wp, C, bias, relu);
}

// `rows` (<= kTileRows) pixels evenly spaced: x advances by xstep, y by ystride.
template <class T>
inline void tile_rows(int rows, T* y, int64 ystride, int64 ocount, const T* x, int64 xstep, const Taps& k,
                      const T* wp, int64 C, const T* bias, bool relu) {
  int64 xoff[kTileRows], yoff[kTileRows];
  for (int r = 0; r < kTileRows; ++r) {
    xoff[r] = r * xstep;
    yoff[r] = r * ystride;
  }
  tile_pixels<T>(rows, y, yoff, ocount, x, xoff, k, wp, C, bias, relu);
}

}  // namespace HDL_ISA
}  // namespace hdl
