// Max and average pooling in NHWC for one instruction set; forward and backward
// side by side. The innermost loops run along the channels, which are contiguous.
// Images are shared among the threads (windows overlap within an image).
#include <algorithm>
#include <type_traits>
#include <vector>

#include "dense_impl.hpp"
#include "gemm_blocked.hpp"  // Buffer: a std::vector instantiated apart per instruction set
#include "hdl/pool.hpp"
#include "kernels.inc"
#include "simd.hpp"

namespace hdl {
namespace HDL_ISA {
namespace {

// The window of output (i, j) clipped to the image: rows [r0, r1), columns [c0, c1).
struct Window {
  int64 r0, r1, c0, c1;
  int64 cells() const { return (r1 - r0) * (c1 - c0); }
};

inline Window window(const PoolShape& s, int64 i, int64 j) {
  const int64 r = i * s.sh - s.pad_top, c = j * s.sw - s.pad_left;
  return {std::max<int64>(r, 0), std::min(r + s.kh, s.H), std::max<int64>(c, 0), std::min(c + s.kw, s.W)};
}

// body(image x, image y, i, j, window) for every output pixel, images across the threads.
template <class T, class F>
void for_each_output(const PoolShape& s, F&& body) {
  const int64 Ho = s.out_h(), Wo = s.out_w();
  parallel_for(s.N, s.N > 1 && s.N * s.H * s.W * s.C > kParallelWork, [&](int64 n) {
    for (int64 i = 0; i < Ho; ++i)
      for (int64 j = 0; j < Wo; ++j) body(n, i, j, window(s, i, j), (n * Ho + i) * Wo + j);
  });
}

// Max pooling runs over the channels one vector (X = Simd<T>::vec) at a time, the tail one
// channel (X = T) at a time (simd.hpp's load_as, store_as), with the window's running maximum
// held in a register.

// Indices carried as T (exact below 2^24), stored as int32.
template <class T, class X>
inline X load_index(const std::int32_t* p) {
  if constexpr (std::is_same_v<X, T>) return T(*p);
  else return __builtin_convertvector(*reinterpret_cast<const typename Simd<T>::ivec*>(p), X);
}
template <class T, class X>
inline void store_index(std::int32_t* p, const X& x) {
  if constexpr (std::is_same_v<X, T>) *p = std::int32_t(x);
  else *reinterpret_cast<typename Simd<T>::ivec*>(p) = __builtin_convertvector(x, typename Simd<T>::ivec);
}

// The maximum over window w of channels [c, c + lanes) of an image (cells C apart, rows W cells apart),
// and where (r*W + q) it first occurs.
template <class T, class X>
inline X window_max(const T* image, const Window& w, const PoolShape& s, int64 c, X* where = nullptr) {
  X best = load_as<T, X>(image + (w.r0 * s.W + w.c0) * s.C + c), at = X{} + T(w.r0 * s.W + w.c0);
  for (int64 r = w.r0; r < w.r1; ++r)
    for (int64 q = w.c0; q < w.c1; ++q) {
      const X cell = load_as<T, X>(image + (r * s.W + q) * s.C + c);
      if (where) at = cell > best ? X{} + T(r * s.W + q) : at;
      best = cell > best ? cell : best;
    }
  if (where) *where = at;
  return best;
}

// d += dy routed to the first cell (row-major) of window w that holds the maximum, channels [c, c + lanes).
template <class T, class X>
inline void route(T* d, const T* g, const T* image, const Window& w, const PoolShape& s, int64 c) {
  const X best = window_max<T, X>(image, w, s, c), zero{};
  X rest = load_as<T, X>(g + c);  // what is still to give
  for (int64 r = w.r0; r < w.r1; ++r)
    for (int64 q = w.c0; q < w.c1; ++q) {
      const int64 at = (r * s.W + q) * s.C + c;
      const X take = load_as<T, X>(image + at) == best ? rest : zero;
      store_as<T, X>(d + at, load_as<T, X>(d + at) + take);
      rest -= take;
    }
}

template <class T, class F>
inline void over_channels(int64 C, F&& body) {
  using V = typename Simd<T>::vec;
  constexpr int L = Simd<T>::lanes;
  int64 c = 0;
  for (; c + L <= C; c += L) body(c, V{});
  for (; c < C; ++c) body(c, T{});
}

template <class T>
inline void add_into(T* HDL_RESTRICT sum, const T* HDL_RESTRICT cell, T scale, int64 C) {
  for (int64 c = 0; c < C; ++c) sum[c] += scale * cell[c];
}

}  // namespace

template <class T>
void max_pool2d_forward(T* y, std::int32_t* argmax, const T* x, const PoolShape& s, bool relu) {
  for_each_output<T>(s, [&](int64 n, int64, int64, const Window& w, int64 out) {
    const T* image = x + n * s.H * s.W * s.C;
    over_channels<T>(s.C, [&](int64 c, auto lanes) {
      using X = decltype(lanes);
      X at, best = window_max<T, X>(image, w, s, c, argmax ? &at : nullptr);
      if (relu) {
        const X zero{};
        at = best > zero ? at : X{} - T(1);
        best = best > zero ? best : zero;
      }
      store_as<T, X>(y + out * s.C + c, best);
      if (argmax) store_index<T, X>(argmax + out * s.C + c, at);
    });
  });
}

template <class T>
void max_pool2d_backward(T* dx, const T* dy, const T* x, const PoolShape& s) {
  const int64 C = s.C, Ho = s.out_h(), Wo = s.out_w();
  parallel_for(s.N, s.N > 1 && s.N * s.H * s.W * C > kParallelWork, [&](int64 n) {
    const T* image = x + n * s.H * s.W * C;
    T* d = dx + n * s.H * s.W * C;
    std::fill(d, d + s.H * s.W * C, T(0));  // each thread its images, while they are in its cache
    for (int64 i = 0; i < Ho; ++i)
      for (int64 j = 0; j < Wo; ++j) {
        const Window w = window(s, i, j);
        const T* g = dy + ((n * Ho + i) * Wo + j) * C;
        over_channels<T>(C, [&](int64 c, auto lanes) { route<T, decltype(lanes)>(d, g, image, w, s, c); });
      }
  });
}

// dx[cell] = sum of dy over the windows whose argmax is the cell: the windows (i, j) that hold cell
// (r, q) are those with i*sh - pt <= r < i*sh - pt + kh (and likewise for j).
template <class T>
void max_pool2d_backward_argmax(T* dx, const T* dy, const std::int32_t* argmax, const PoolShape& s) {
  const int64 C = s.C, Ho = s.out_h(), Wo = s.out_w();
  Buffer<int64> first(s.W), last(s.W);  // the windows [first, last] along a row that hold column q
  for (int64 q = 0; q < s.W; ++q) {
    first[q] = first_inside(q + s.pad_left - s.kw + 1, s.sw);
    last[q] = std::min(Wo - 1, (q + s.pad_left) / s.sw);
  }
  parallel_for(s.N * s.H, s.N > 1 && s.N * s.H * s.W * C > kParallelWork, [&](int64 row) {
    const int64 n = row / s.H, r = row % s.H;
    const int64 i0 = first_inside(r + s.pad_top - s.kh + 1, s.sh), i1 = std::min(Ho - 1, (r + s.pad_top) / s.sh);
    for (int64 q = 0; q < s.W; ++q) {
      const int64 j0 = first[q], j1 = last[q];
      T* d = dx + (row * s.W + q) * C;
      over_channels<T>(C, [&](int64 c, auto lanes) {
        using X = decltype(lanes);
        const X here = X{} + T(r * s.W + q), zero{};
        X sum{};
        for (int64 i = i0; i <= i1; ++i)
          for (int64 j = j0; j <= j1; ++j) {
            const int64 at = ((n * Ho + i) * Wo + j) * C + c;
            sum += load_index<T, X>(argmax + at) == here ? load_as<T, X>(dy + at) : zero;
          }
        store_as<T, X>(d + c, sum);
      });
    }
  });
}

template <class T>
void avg_pool2d_forward(T* y, const T* x, const PoolShape& s) {
  const int64 C = s.C;
  for_each_output<T>(s, [&](int64 n, int64, int64, const Window& w, int64 out) {
    const T* image = x + n * s.H * s.W * C;
    const T scale = T(1) / T(w.cells());
    over_channels<T>(C, [&](int64 c, auto lanes) {  // the window's sum in a register
      using X = decltype(lanes);
      X sum{};
      for (int64 r = w.r0; r < w.r1; ++r)
        for (int64 q = w.c0; q < w.c1; ++q) sum += load_as<T, X>(image + (r * s.W + q) * C + c);
      store_as<T, X>(y + out * C + c, sum * scale);
    });
  });
}

template <class T>
void avg_pool2d_backward(T* dx, const T* dy, const PoolShape& s) {
  const int64 C = s.C;
  for_each_output<T>(s, [&](int64 n, int64 i, int64 j, const Window& w, int64 out) {
    if (i == 0 && j == 0) std::fill(dx + n * s.H * s.W * C, dx + (n + 1) * s.H * s.W * C, T(0));  // image n starts
    const T* HDL_RESTRICT g = dy + out * C;
    T* d = dx + n * s.H * s.W * C;
    const T scale = T(1) / T(w.cells());
    for (int64 r = w.r0; r < w.r1; ++r)
      for (int64 q = w.c0; q < w.c1; ++q) add_into(d + (r * s.W + q) * C, g, scale, C);
  });
}

#define HDL_INSTANTIATE(T)                                                        \
  template void max_pool2d_forward<T>(T*, std::int32_t*, const T*, const PoolShape&, bool); \
  template void max_pool2d_backward_argmax<T>(T*, const T*, const std::int32_t*, const PoolShape&); \
  template void max_pool2d_backward<T>(T*, const T*, const T*, const PoolShape&); \
  template void avg_pool2d_forward<T>(T*, const T*, const PoolShape&);            \
  template void avg_pool2d_backward<T>(T*, const T*, const PoolShape&);
HDL_INSTANTIATE(float)
HDL_INSTANTIATE(double)
#undef HDL_INSTANTIATE

}  // namespace HDL_ISA
}  // namespace hdl
