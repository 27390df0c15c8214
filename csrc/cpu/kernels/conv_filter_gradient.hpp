// The direct filter gradient of a convolution in NHWC (cf. (5.8)):
//   dw[o, c, u, v] = sum over (n, i, j) of x_padded[n, i*sh + u, j*sw + v, c] dy[n, i, j, o],
//   db[o] = sum over (n, i, j) of dy[n, i, j, o]  (cf. (5.7)).
// The rows q = (u*kw + v)*C + c of dw (taps and channels flattened) form the register tile's rows:
// R rows times NV vectors of output channels, summed over an image's pixels. Flattening keeps the
// tile full when C is small (an image's 1 or 3 channels), and NV = 1 with 12 rows serves O <= one
// vector (LeNet's 6 or 16 channels), the narrowest that holds them, without computing lanes of zeros.
#pragma once
#include <algorithm>
#include <vector>

#include <omp.h>

#include "dense_impl.hpp"
#include "gemm_blocked.hpp"  // Buffer: a std::vector instantiated apart per instruction set
#include "hdl/shapes.hpp"
#include "scratch.hpp"
#include "simd.hpp"

namespace hdl {
namespace HDL_ISA {

// acc[r][:] = sum over pixels (i, j) in [i0, i1) x [j0, j1) of x[i*xrow + j*xpix + off[r]] g[i*grow + j*gpix][:],
// added to out[r * ldo] for the first `rows` rows.
template <class T, int R, int NV, int Bytes>
inline void dw_tile(T* out, int64 ldo, int rows, const T* x, const int64* off_, int64 xrow, int64 xpix, const T* g,
                    int64 grow, int64 gpix, int64 i0, int64 i1, int64 j0, int64 j1) {
  using S = Simd<T, Bytes>;
  using V = typename S::vec;
  constexpr int L = S::lanes;
  int64 off[R];
  for (int r = 0; r < R; ++r) off[r] = off_[r];
  V acc[R][NV];
  for (int r = 0; r < R; ++r)
    for (int k = 0; k < NV; ++k) acc[r][k] = S::zero();
  for (int64 i = i0; i < i1; ++i) {
    const T* xi = x + i * xrow;
    const T* gi = g + i * grow;
    for (int64 j = j0; j < j1; ++j) {
      V gv[NV];
      for (int k = 0; k < NV; ++k) gv[k] = S::load(gi + j * gpix + k * L);
      const T* a = xi + j * xpix;
      for (int r = 0; r < R; ++r) {
        const T ar = a[off[r]];
        for (int k = 0; k < NV; ++k) acc[r][k] += ar * gv[k];
      }
    }
  }
  for (int r = 0; r < rows; ++r)
    for (int k = 0; k < NV; ++k) S::store(out + r * ldo + k * L, S::load(out + r * ldo + k * L) + acc[r][k]);
}

// xs: x inside its zero padding (N, Hp, Wp, C); dw (O, C, kh, kw), db (O).
template <class T, int NV, int Bytes>
void filter_gradient_direct(T* dw, T* db, const T* dy, const T* xs, int64 Hp, int64 Wp, const ConvShape& s) {
  constexpr int L = Simd<T, Bytes>::lanes, R = NV == 1 ? 2 * kTileRows : kTileRows;
  constexpr int64 B = NV * L;
  const int64 Ho = s.out_h(), Wo = s.out_w(), taps = s.kh * s.kw, rows_total = taps * s.C;
  const int64 blocks = (s.O + B - 1) / B, Op = blocks * B;
  const T* g = dy;  // dy with its channels padded to whole blocks, when they are not
  if (Op != s.O) {
    T* dyp = scratch<T, 2>(s.N * Ho * Wo * Op);
    parallel_for(s.N, s.N * Ho * Wo * Op > kParallelWork, [&](int64 n) {
      for (int64 p = n * Ho * Wo; p < (n + 1) * Ho * Wo; ++p) {
        const T* HDL_RESTRICT src = dy + p * s.O;
        T* HDL_RESTRICT dst = dyp + p * Op;
        for (int64 o = 0; o < s.O; ++o) dst[o] = src[o];
        for (int64 o = s.O; o < Op; ++o) dst[o] = T(0);
      }
    });
    g = dyp;
  }
  // Per tile of rows: the offsets of its (u, v, c) in a padded image and the outputs whose taps read the image
  // (the union over its taps; a pixel whose tap reads the padding adds zero).
  struct Rows {
    int64 off[R];
    int64 i0, i1, j0, j1;
  };
  std::vector<Rows> tiles;
  for (int64 q0 = 0; q0 < rows_total; q0 += R) {
    Rows t{};
    int64 umin = s.kh, umax = 0, vmin = s.kw, vmax = 0;
    for (int r = 0; r < R; ++r) {
      const int64 q = std::min(q0 + r, rows_total - 1), tap = q / s.C, c = q % s.C, u = tap / s.kw, v = tap % s.kw;
      t.off[r] = (u * Wp + v) * s.C + c;
      umin = std::min(umin, u), umax = std::max(umax, u), vmin = std::min(vmin, v), vmax = std::max(vmax, v);
    }
    t.i0 = first_inside(s.pad_top - umax, s.sh), t.i1 = std::min(Ho, first_inside(s.pad_top + s.H - umin, s.sh));
    t.j0 = first_inside(s.pad_left - vmax, s.sw), t.j1 = std::min(Wo, first_inside(s.pad_left + s.W - vmin, s.sw));
    tiles.push_back(t);
  }
  const bool parallel = s.N > 1 && s.N * Ho * Wo * s.O * s.C * taps > kParallelWork;
  const int threads = parallel ? omp_get_max_threads() : 1;
  T* part = scratch_zeroed<T, 4>(threads * rows_total * Op);
  T* bpart = scratch_zeroed<T, 5>(threads * Op);
#pragma omp parallel num_threads(threads) if (parallel)
  {
    const FloatModeGuard float_mode;
    T* mine = &part[omp_get_thread_num() * rows_total * Op];  // [q][o]
    T* bmine = &bpart[omp_get_thread_num() * Op];
#pragma omp for schedule(static)
    for (int64 n = 0; n < s.N; ++n) {
      const T* gn = g + n * Ho * Wo * Op;
      const T* xn = xs + n * Hp * Wp * s.C;
      for (int64 p = 0; p < Ho * Wo; ++p)  // db  (5.7)
        for (int64 o = 0; o < Op; ++o) bmine[o] += gn[p * Op + o];
      for (int64 ob = 0; ob < blocks; ++ob)
        for (size_t k = 0; k < tiles.size(); ++k) {
          const Rows& t = tiles[k];
          const int64 q0 = int64(k) * R;
          dw_tile<T, R, NV, Bytes>(mine + q0 * Op + ob * B, Op, int(std::min<int64>(R, rows_total - q0)), xn, t.off,
                            s.sh * Wp * s.C, s.sw * s.C, gn + ob * B, Wo * Op, Op, t.i0, t.i1, t.j0, t.j1);
        }
    }
  }
  // The threads' sums [q = t*C + c][o] into dw (O, C, kh, kw), an input channel at a time through a staging
  // tile [o][t], so that part is read along its rows and each dw row written whole (element by element, the
  // rows C*Op apart fell into one L1 set: 0.1-0.2 ms at batch 1, 64 -> 128 channels 4x4).
  for (int64 o = 0; o < s.O; ++o) {
    T sum = T(0);
    for (int th = 0; th < threads; ++th) sum += bpart[th * Op + o];
    db[o] = sum;
  }
  parallel_for(s.C, s.O * rows_total * threads > kParallelWork, [&](int64 c) {
    T* stage = scratch<T, 19>(s.O * taps);  // each thread its own
    for (int64 t = 0; t < taps; ++t)
      for (int64 o = 0; o < s.O; ++o) {
        T acc = T(0);
        for (int th = 0; th < threads; ++th) acc += part[(th * rows_total + t * s.C + c) * Op + o];
        stage[o * taps + t] = acc;
      }
    for (int64 o = 0; o < s.O; ++o) std::copy_n(stage + o * taps, taps, dw + (o * s.C + c) * taps);
  });
}

}  // namespace HDL_ISA
}  // namespace hdl
