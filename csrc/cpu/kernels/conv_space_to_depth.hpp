// A strided convolution as a stride-1 one ("space to depth"), so that Winograd serves it: each sh x sw
// block of the padded input becomes one pixel of sh*sw*C channels,
//   X'[n, i, j, (a*sw + b)*C + c] = xp[n, i*sh + a, j*sw + b, c],
// and each filter becomes ceil(kh/sh) x ceil(kw/sw) taps over those channels (zero where u or v passes
// the filter's edge),
//   W'[o, (a*sw + b)*C + c, u', v'] = w[o, c, u'*sh + a, v'*sw + b],
// so that y = the unpadded stride-1 convolution of X' with W' (the same sums, plus products with zeros).
// The stems users write have large strided filters: AlexNet's 11x11 stride 4 is a 3x3 over 48 channels
// (121 of 144 taps real), ResNet's 7x7 stride 2 a 4x4 over 12 (49 of 64); F(6x6, 3x3) and F(5x5, 4x4) then
// take a third of the multiplications of the direct kernel. conv.cpp offers it where the multiplications
// per output (tiles' waste and zero taps counted) fall below kSpaceToDepthGain of the direct kernel's, and
// the autotune measures it against the strided paths (the Winograd passes' keys, at the strided shape).
// Float32, forward / backward (dx and dw), direct -> space to depth, AMD EPYC Zen 4, 2 threads: batch 64
// 64x64x3 -> 48 11x11 stride 4 3.8 / 16.6 -> 2.2 / 5.6 ms; batch 8 224x224x3 -> 64 7x7 stride 2 10.5 / 50.7
// -> 7.4 / 19.2 ms; batch 64 32x32x3 -> 32 7x7 stride 2 0.97 / 4.3 -> 1.3 / 2.8 ms (the forward slower: the
// autotune keeps the direct kernel there).
#pragma once
#include <algorithm>

#include "dense_impl.hpp"
#include "scratch.hpp"
#include "winograd.hpp"

namespace hdl {
namespace HDL_ISA {

constexpr double kSpaceToDepthGain = 0.6;

// The stride-1 convolution of X' with W' (no padding; its output is s's).
inline ConvShape space_to_depth_shape(const ConvShape& s) {
  const int64 Kh = (s.kh + s.sh - 1) / s.sh, Kw = (s.kw + s.sw - 1) / s.sw;
  return {s.N, s.out_h() + Kh - 1, s.out_w() + Kw - 1, s.sh * s.sw * s.C, s.O, Kh, Kw, 1, 1, 0, 0, 0, 0};
}

// The Winograd tile that serves s through space to depth, or none: strided, and Winograd offered for the
// stride-1 shape with fewer multiplications per output (kSpaceToDepthGain) than the direct kernel.
inline WinogradTile space_to_depth_winograd(const ConvShape& s) {
  if (s.sh == 1 && s.sw == 1) return {};
  const ConvShape t = space_to_depth_shape(s);
  const WinogradTile k = winograd_filter(t);
  const bool pays = k && winograd_cost(t, k.alpha) * double(t.C) < kSpaceToDepthGain * double(s.kh * s.kw * s.C);
  return pays ? k : WinogradTile{};
}

// The stride-1 data gradient of space_to_depth_shape(s): dy (N, Ho, Wo, O) padded by the filter less one
// into X' (C' channels), and the Winograd tile that serves it, or none.
inline ConvShape space_to_depth_data_gradient_shape(const ConvShape& s) {
  const ConvShape t = space_to_depth_shape(s);
  return {s.N, s.out_h(), s.out_w(), s.O, t.C, t.kh, t.kw, 1, 1, t.kh - 1, t.kh - 1, t.kw - 1, t.kw - 1};
}

// X' of x (N, H, W, C) for s: t.H x t.W pixels of sh*sw*C channels, zero where they read the padding
// or past x, in scratch slot `Use`.
template <int Use, class T>
const T* space_to_depth(const T* x, const ConvShape& s, const ConvShape& t) {
  T* xs = scratch<T, Use>(t.N * t.H * t.W * t.C);
  parallel_for(t.N * t.H, t.N * t.H * t.W * t.C > kParallelWork, [&](int64 row) {
    const int64 n = row / t.H, i = row % t.H;
    T* out = xs + row * t.W * t.C;
    for (int64 a = 0; a < s.sh; ++a) {
      const int64 r = i * s.sh + a - s.pad_top, run = s.sw * s.C;  // a run: row a of one block
      const T* src = x + (n * s.H + r) * s.W * s.C;
      for (int64 j = 0; j < t.W; ++j) {
        T* cell = out + j * t.C + a * run;
        const int64 q0 = j * s.sw - s.pad_left;
        if (r < 0 || r >= s.H) {
          std::fill_n(cell, run, T(0));
        } else if (q0 >= 0 && q0 + s.sw <= s.W) {
          std::copy_n(src + q0 * s.C, run, cell);
        } else {
          for (int64 b = 0, q = q0; b < s.sw; ++b, ++q)
            if (q < 0 || q >= s.W) std::fill_n(cell + b * s.C, s.C, T(0));
            else std::copy_n(src + q * s.C, s.C, cell + b * s.C);
        }
      }
    }
  });
  return xs;
}

// dx (N, H, W, C) from dX' (t.N, t.H, t.W, t.C): each pixel of x is one channel block of one pixel of X'
// (its padding and the rows and columns past it dropped); pixels that no output reads get zero.
template <class T>
void depth_to_space(T* dx, const T* dxs, const ConvShape& s, const ConvShape& t) {
  parallel_for(s.N * s.H, s.N * s.H * s.W * s.C > kParallelWork, [&](int64 row) {
    const int64 n = row / s.H, r = row % s.H + s.pad_top, i = r / s.sh, a = r % s.sh;
    T* out = dx + row * s.W * s.C;
    const T* src = dxs + (n * t.H + i) * t.W * t.C + a * s.sw * s.C;
    for (int64 q = 0; q < s.W; ++q) {
      const int64 qp = q + s.pad_left, j = qp / s.sw, b = qp % s.sw;
      T* cell = out + q * s.C;
      if (i >= t.H || j >= t.W) std::fill_n(cell, s.C, T(0));
      else std::copy_n(src + j * t.C + b * s.C, s.C, cell);
    }
  });
}

// W'(o, c', u', v') from w (O, C, kh, kw).
// (`flipped`: W' flipped in space and transposed in channels, for the data gradient, W'(cp, o, Kh-1-up, Kw-1-vp).)
template <class T>
struct SpaceToDepthFilter {
  const T* w;
  ConvShape s;
  bool flipped = false;
  T operator()(int64 o, int64 cp, int64 up, int64 vp) const {
    if (flipped) {
      std::swap(o, cp);
      up = (s.kh + s.sh - 1) / s.sh - 1 - up;
      vp = (s.kw + s.sw - 1) / s.sw - 1 - vp;
    }
    const int64 block = cp / s.C, c = cp % s.C, u = up * s.sh + block / s.sw, v = vp * s.sw + block % s.sw;
    return u < s.kh && v < s.kw ? w[((o * s.C + c) * s.kh + u) * s.kw + v] : T(0);
  }
};

// y = conv(x, w) + b for a strided s, through X' and Winograd tile k.
template <class T>
void space_to_depth_forward(T* y, const T* x, const T* w, const T* b, const ConvShape& s, WinogradTile k,
                            Rectify<T> rectify) {
  const ConvShape t = space_to_depth_shape(s);
  const Padded<T> xs{space_to_depth<27>(x, s, t), t.H, t.W, t.C, 0, 0};
  const SpaceToDepthFilter<T> filter{w, s};
  const winograd::FilterSource<T> source{w, s.O * s.C * s.kh * s.kw, s.sh, s.sw, s.kh};
  with_winograd(k, [&](auto R, auto A) {
    winograd_forward<R, A>(y, xs, s.N, s.out_h(), s.out_w(), s.O, filter, b, rectify, {}, source);
  });
}

// dx: the data gradient of the stride-1 convolution (a full correlation of dy with W' flipped and
// transposed, Winograd tile k for that shape) into dX', then back to x's pixels.
template <class T>
void space_to_depth_data_gradient(T* dx, const T* dy, const T* w, const ConvShape& s, WinogradTile k) {
  const ConvShape t = space_to_depth_shape(s);
  T* dxs = scratch<T, 28>(t.N * t.H * t.W * t.C);
  const SpaceToDepthFilter<T> flipped{w, s, true};
  const Buffer<T> zero(t.C, T(0));
  const Padded<T> dyp{dy, s.out_h(), s.out_w(), s.O, t.kh - 1, t.kw - 1};
  with_winograd(k, [&](auto R, auto A) { winograd_forward<R, A>(dxs, dyp, t.N, t.H, t.W, t.C, flipped, zero.data(), {}); });
  depth_to_space(dx, dxs, s, t);
}

// dw (O, C, kh, kw) and db: the filter gradient of the stride-1 convolution (dW', O x C' x Kh x Kw, tile k),
// the taps that W' adds past the filter's edge dropped.
template <class T>
void space_to_depth_filter_gradient(T* dw, T* db, const T* dy, const T* x, const ConvShape& s, WinogradTile k) {
  const ConvShape t = space_to_depth_shape(s);
  const Padded<T> xs{space_to_depth<27>(x, s, t), t.H, t.W, t.C, 0, 0};
  Buffer<T> dws(t.O * t.C * t.kh * t.kw);
  with_winograd(k, [&](auto R, auto A) { winograd_filter_gradient<R, A>(dws.data(), db, dy, xs, s.N, s.out_h(), s.out_w(), s.O); });
  for (int64 o = 0; o < s.O; ++o)
    for (int64 c = 0; c < s.C; ++c)
      for (int64 u = 0; u < s.kh; ++u)
        for (int64 v = 0; v < s.kw; ++v)
          dw[((o * s.C + c) * s.kh + u) * s.kw + v] =
              dws[((o * t.C + (u % s.sh * s.sw + v % s.sw) * s.C + c) * t.kh + u / s.sh) * t.kw + v / s.sw];
}

}  // namespace HDL_ISA
}  // namespace hdl
