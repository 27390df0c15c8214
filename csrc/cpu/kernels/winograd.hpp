// Winograd's minimal filtering F(2x2, 5x5) (Lavin & Gray, 2016) for stride-1 5x5
// convolutions in NHWC: each 2x2 block of outputs comes from a 6x6 block of inputs
// with 36 multiplications per channel pair instead of 100, the "fast transform"
// route of Section 7.1. Points 0, 1, -1, 2, -2 and infinity:
//   Y = A^T [ (G w G^T) o (B^T d B) ] A.
// conv.cpp uses it for the forward pass, the data gradient (itself a stride-1 5x5
// convolution) and the filter gradient dw = G^T [ sum over tiles (B^T d B) o (A dY A^T) ] G.
#pragma once
#include <algorithm>
#include <type_traits>
#include <vector>

#include <omp.h>

#include "conv_tile.hpp"
#include "dense_impl.hpp"
#include "hdl/conv.hpp"
#include "scratch.hpp"

namespace hdl {
namespace HDL_ISA {

// Whether F(2x2, 5x5) serves this convolution (else the direct kernel does).
inline bool winograd_fits(const ConvShape& s) {
  return s.kh == 5 && s.kw == 5 && s.sh == 1 && s.sw == 1 && s.C >= 8 && s.O >= 8 && s.out_h() >= 2 &&
         s.out_w() >= 2;
}

// winograd_forward: y (N, Ho, Wo, O) = bias + conv(xp, w) over a zero-padded input xp (N, Hp, Wp, C)
// with Hp >= 2*ceil(Ho/2) + 4 and Wp >= 2*ceil(Wo/2) + 4; w(o, c, u, v) gives the filters.
// winograd_filter_gradient: dw (O, C, 5, 5) and db (O) from dy (N, Ho, Wo, O) and xp as above.


namespace winograd {

constexpr int kTile = 6;  // input block; outputs come 2x2
constexpr int kPoints = kTile * kTile;
constexpr double BT[6][6] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
                             {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
constexpr double G[6][5] = {{1.0 / 4, 0, 0, 0, 0},
                            {-1.0 / 6, -1.0 / 6, -1.0 / 6, -1.0 / 6, -1.0 / 6},
                            {-1.0 / 6, 1.0 / 6, -1.0 / 6, 1.0 / 6, -1.0 / 6},
                            {1.0 / 24, 1.0 / 12, 1.0 / 6, 1.0 / 3, 2.0 / 3},
                            {1.0 / 24, -1.0 / 12, 1.0 / 6, -1.0 / 3, 2.0 / 3},
                            {0, 0, 0, 0, 1}};
constexpr double AT[2][6] = {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 1}};

// B^T d for one column d of 6 values (vectors of channels, or single channels).
template <class T, class X>
inline void bt(const X (&d)[6], X (&o)[6]) {
  const T two = 2, four = 4, five = 5;
  o[0] = four * d[0] - five * d[2] + d[4];
  o[1] = d[3] + d[4] - four * (d[1] + d[2]);
  o[2] = d[4] - d[3] + four * (d[1] - d[2]);
  o[3] = d[4] - d[2] + two * (d[3] - d[1]);
  o[4] = d[4] - d[2] + two * (d[1] - d[3]);
  o[5] = four * d[1] - five * d[3] + d[5];
}

// A^T m for one column m of 6 values: the 2 outputs.
template <class T, class X>
inline void at(const X (&m)[6], X& o0, X& o1) {
  const T two = 2;
  o0 = m[0] + m[1] + m[2] + m[3] + m[4];
  o1 = m[1] - m[2] + two * (m[3] - m[4]) + m[5];
}

// Loads and stores of X: a vector of channels (Simd<T>::vec) or one channel (T).
template <class T, class X>
inline X load_as(const T* p) {
  if constexpr (std::is_same_v<X, T>) return *p;
  else return Simd<T>::load(p);
}
template <class T, class X>
inline void store_as(T* p, const X& x) {
  if constexpr (std::is_same_v<X, T>) *p = x;
  else Simd<T>::store(p, x);
}

// v[point * ld] = (B^T d B)[point] for the 6x6 block d at `patch` (rows `pitch` apart), for the
// channels X covers at this offset.
template <class T, class X>
inline void input_transform_lanes(T* v, int64 ld, const T* patch, int64 pitch, int64 C) {
  X t[6][6];
  for (int j = 0; j < 6; ++j) {  // columns: t[.][j] = B^T d[.][j]
    X d[6], o[6];
    for (int i = 0; i < 6; ++i) d[i] = load_as<T, X>(patch + i * pitch + j * C);
    bt<T>(d, o);
    for (int a = 0; a < 6; ++a) t[a][j] = o[a];
  }
  for (int a = 0; a < 6; ++a) {  // rows: v[a][.] = t[a][.] B
    X o[6];
    bt<T>(t[a], o);
    for (int b = 0; b < 6; ++b) store_as<T, X>(v + (a * 6 + b) * ld, o[b]);
  }
}

template <class T>
inline void input_transform(T* v, int64 ld, const T* patch, int64 pitch, int64 C) {
  constexpr int L = Simd<T>::lanes;
  int64 c = 0;
  for (; c + L <= C; c += L) input_transform_lanes<T, typename Simd<T>::vec>(v + c, ld, patch + c, pitch, C);
  for (; c < C; ++c) input_transform_lanes<T, T>(v + c, ld, patch + c, pitch, C);
}

// The 2x2 outputs A^T m A of the 36 points m[point * ld] (channels X covers), into out[(r*2 + q) * ldo].
template <class T, class X>
inline void output_transform_lanes(T* out, int64 ldo, const T* m, int64 ld) {
  X t0[6], t1[6];
  for (int b = 0; b < 6; ++b) {  // columns: A^T m[.][b]
    X col[6];
    for (int a = 0; a < 6; ++a) col[a] = load_as<T, X>(m + (a * 6 + b) * ld);
    at<T>(col, t0[b], t1[b]);
  }
  X y00, y01, y10, y11;
  at<T>(t0, y00, y01);
  at<T>(t1, y10, y11);
  store_as<T, X>(out, y00);
  store_as<T, X>(out + ldo, y01);
  store_as<T, X>(out + 2 * ldo, y10);
  store_as<T, X>(out + 3 * ldo, y11);
}

// U[point][c][o] = G w(o, c) G^T, packed per point as the tile kernel reads filters.
template <class T, class Filter>
std::vector<T> filter_transform(Filter w, int64 O, int64 C) {
  constexpr int64 B = kBlockO<T>;
  const int64 Op = (O + B - 1) / B * B;
  std::vector<T> U(kPoints * C * Op, T(0));  // [point][ob][c][B]
  for (int64 o = 0; o < O; ++o)
    for (int64 c = 0; c < C; ++c) {
      double g[5][5], t[6][5];
      for (int u = 0; u < 5; ++u)
        for (int v = 0; v < 5; ++v) g[u][v] = double(w(o, c, u, v));
      for (int a = 0; a < 6; ++a)
        for (int v = 0; v < 5; ++v) {
          t[a][v] = 0;
          for (int u = 0; u < 5; ++u) t[a][v] += G[a][u] * g[u][v];
        }
      for (int a = 0; a < 6; ++a)
        for (int b = 0; b < 6; ++b) {
          double sum = 0;
          for (int v = 0; v < 5; ++v) sum += t[a][v] * G[b][v];
          U[((a * 6 + b) * (Op / B) + o / B) * C * B + c * B + o % B] = T(sum);
        }
    }
  return U;
}

// Blocks of one image: tiles (ty, tx) cover outputs (2ty..2ty+1, 2tx..2tx+1).
struct Tiling {
  int64 ty, tx;
  int64 count() const { return ty * tx; }
};

}  // namespace winograd

template <class T, class Filter>
void winograd_forward(T* y, const T* xp, int64 N, int64 Hp, int64 Wp, int64 C, int64 Ho, int64 Wo, int64 O,
                      Filter w, const T* bias_, bool relu) {
  using namespace winograd;
  constexpr int64 B = kBlockO<T>;
  const int64 blocks = (O + B - 1) / B, Op = blocks * B;
  const Tiling tiles{(Ho + 1) / 2, (Wo + 1) / 2};
  const int64 P = tiles.count();
  const std::vector<T> U = filter_transform<T>(w, O, C);
  std::vector<T> zero(Op, T(0)), bias(Op, T(0));
  std::copy(bias_, bias_ + O, bias.begin());
  parallel_for(N, N > 1, [&](int64 n) {
    // per image: V[point][tile][c], M[point][tile][o]
    T* V = scratch<T, 10>(kPoints * P * C);
    T* M = scratch<T, 11>(kPoints * P * Op);
    T* t = scratch<T, 12>(4 * Op);
    const T* image = xp + n * Hp * Wp * C;
    for (int64 i = 0; i < tiles.ty; ++i)
      for (int64 j = 0; j < tiles.tx; ++j)
        input_transform(V + (i * tiles.tx + j) * C, P * C, image + (2 * i * Wp + 2 * j) * C, Wp * C, C);
    const Taps one{0, 1, 0, 1, 1, 0};
    for (int64 pt = 0; pt < kPoints; ++pt)
      for (int64 ob = 0; ob < blocks; ++ob)
        for (int64 p = 0; p < P; p += kTileRows)
          tile_rows<T>(int(std::min<int64>(kTileRows, P - p)), M + (pt * P + p) * Op + ob * B, Op, B,
                       V + (pt * P + p) * C, C, one, U.data() + (pt * blocks + ob) * C * B, C, zero.data(), false);
    // Y = A^T M A for each tile, plus the bias
    constexpr int L = Simd<T>::lanes;
    for (int64 i = 0; i < tiles.ty; ++i)
      for (int64 j = 0; j < tiles.tx; ++j) {
        const int64 p = i * tiles.tx + j;
        for (int64 o = 0; o < Op; o += L)  // Op is whole vectors
          output_transform_lanes<T, typename Simd<T>::vec>(t + o, Op, M + p * Op + o, P * Op);
        for (int r = 0; r < 2; ++r)
          for (int q = 0; q < 2; ++q) {
            if (2 * i + r >= Ho || 2 * j + q >= Wo) continue;
            T* HDL_RESTRICT out = y + ((n * Ho + 2 * i + r) * Wo + 2 * j + q) * O;
            const T* HDL_RESTRICT s = t + (r * 2 + q) * Op;
            const T* HDL_RESTRICT bo = bias.data();
            for (int64 o = 0; o < O; ++o) {
              const T v = s[o] + bo[o];
              out[o] = relu && v < T(0) ? T(0) : v;
            }
          }
      }
  });
}

template <class T>
void winograd_filter_gradient(T* dw, T* db, const T* dy, const T* xp, int64 N, int64 Hp, int64 Wp, int64 C,
                              int64 Ho, int64 Wo, int64 O) {
  using namespace winograd;
  using S = Simd<T>;
  using Vec = typename S::vec;
  constexpr int L = S::lanes;
  constexpr int64 B = kBlockO<T>;
  const int64 blocks = (O + B - 1) / B, Op = blocks * B;
  const Tiling tiles{(Ho + 1) / 2, (Wo + 1) / 2};
  const int64 P = tiles.count();
  const bool parallel = N > 1;
  const int threads = parallel ? omp_get_max_threads() : 1;
  std::vector<T> part(threads * kPoints * C * Op, T(0)), bpart(threads * Op, T(0));
#pragma omp parallel num_threads(threads) if (parallel)
  {
    T* acc_dw = &part[omp_get_thread_num() * kPoints * C * Op];
    T* acc_db = &bpart[omp_get_thread_num() * Op];
#pragma omp for schedule(static)
    for (int64 n = 0; n < N; ++n) {
      T* V = scratch<T, 13>(kPoints * P * C);
      T* D = scratch<T, 14>(kPoints * P * Op);  // A dY A^T per point and tile
      T* t = scratch<T, 15>(16 * Op);
      const T* image = xp + n * Hp * Wp * C;
      for (int64 i = 0; i < tiles.ty; ++i)
        for (int64 j = 0; j < tiles.tx; ++j) {
          const int64 p = i * tiles.tx + j;
          input_transform(V + p * C, P * C, image + (2 * i * Wp + 2 * j) * C, Wp * C, C);
          // the 2x2 block of dy (zero beyond the output), channels padded to Op
          T* g = t + 12 * Op;
          for (int r = 0; r < 2; ++r)
            for (int q = 0; q < 2; ++q) {
              T* dst = g + (r * 2 + q) * Op;
              std::fill(dst, dst + Op, T(0));
              if (2 * i + r < Ho && 2 * j + q < Wo) {
                const T* src = dy + ((n * Ho + 2 * i + r) * Wo + 2 * j + q) * O;
                std::copy(src, src + O, dst);
                for (int64 o = 0; o < O; ++o) acc_db[o] += src[o];
              }
            }
          // D = A dY A^T: first over q (columns), then over r (rows)
          for (int r = 0; r < 2; ++r)
            for (int b = 0; b < 6; ++b) {
              T* out = t + (r * 6 + b) * Op;
              for (int64 o = 0; o < Op; ++o) out[o] = T(AT[0][b]) * g[(r * 2) * Op + o] + T(AT[1][b]) * g[(r * 2 + 1) * Op + o];
            }
          for (int a = 0; a < 6; ++a)
            for (int b = 0; b < 6; ++b) {
              T* out = D + ((a * 6 + b) * P + p) * Op;
              const T* r0 = t + b * Op;
              const T* r1 = t + (6 + b) * Op;
              for (int64 o = 0; o < Op; ++o) out[o] = T(AT[0][a]) * r0[o] + T(AT[1][a]) * r1[o];
            }
        }
      // acc_dw[point][c][o] += sum over tiles V[point][tile][c] D[point][tile][o]
      for (int64 pt = 0; pt < kPoints; ++pt)
        for (int64 ob = 0; ob < blocks; ++ob)
          for (int64 c0 = 0; c0 < C; c0 += kTileRows) {
            const int rows = int(std::min<int64>(kTileRows, C - c0));
            Vec acc[kTileRows][2];
            for (int r = 0; r < kTileRows; ++r) acc[r][0] = acc[r][1] = S::zero();
            for (int64 p = 0; p < P; ++p) {
              const T* d = D + (pt * P + p) * Op + ob * B;
              const Vec g0 = S::load(d), g1 = S::load(d + L);
              const T* a = V + (pt * P + p) * C + c0;
              for (int r = 0; r < kTileRows; ++r) {
                acc[r][0] += a[r < rows ? r : 0] * g0;
                acc[r][1] += a[r < rows ? r : 0] * g1;
              }
            }
            for (int r = 0; r < rows; ++r) {
              T* out = acc_dw + (pt * C + c0 + r) * Op + ob * B;
              S::store(out, S::load(out) + acc[r][0]);
              S::store(out + L, S::load(out + L) + acc[r][1]);
            }
          }
    }
  }
  // dw = G^T [sum] G, summing the threads' parts first
  for (int th = 1; th < threads; ++th)
    for (int64 i = 0; i < kPoints * C * Op; ++i) part[i] += part[th * kPoints * C * Op + i];
  for (int64 o = 0; o < O; ++o) {
    T sum = T(0);
    for (int th = 0; th < threads; ++th) sum += bpart[th * Op + o];
    db[o] = sum;
  }
  for (int64 o = 0; o < O; ++o)
    for (int64 c = 0; c < C; ++c) {
      double t[6][5];
      for (int a = 0; a < 6; ++a)
        for (int v = 0; v < 5; ++v) {
          t[a][v] = 0;
          for (int b = 0; b < 6; ++b) t[a][v] += double(part[((a * 6 + b) * C + c) * Op + o]) * G[b][v];
        }
      for (int u = 0; u < 5; ++u)
        for (int v = 0; v < 5; ++v) {
          double sum = 0;
          for (int a = 0; a < 6; ++a) sum += G[a][u] * t[a][v];
          dw[((o * C + c) * 5 + u) * 5 + v] = T(sum);
        }
    }
}

}  // namespace HDL_ISA
}  // namespace hdl

