// Winograd's minimal filtering F(m x m, r x r) (Lavin & Gray, 2016) on A x A input tiles, m + r - 1 = A,
// for stride-1 convolutions in NHWC, the "fast transform" route of Section 7.1:
//   F(4x4, 5x5) on 8x8 tiles: each 4x4 block of outputs from 64 multiplications per channel pair, not 400;
//   F(6x6, 3x3) on 8x8 tiles: each 6x6 block from 64 instead of 324;
//   F(4x4, 3x3) on 6x6 tiles: each 4x4 block from 36 instead of 144, for the maps that 6x6 blocks cover
//   badly (8x8, 7x7, 4x4: a late stage of a ResNet or VGG; 8x8x128 -> 128 at batch 64 forward 6.0 -> 3.1 ms,
//   PyTorch 5.0);
//   F(5x5, 4x4), F(7x7, 2x2) on 8x8 tiles and F(5x5, 2x2) on 6x6 tiles, the same points: 4x4 and 2x2
//   filters, which strided filters become through space to depth (conv_space_to_depth.hpp). Batch 64,
//   float32, forward / backward: 15x15x64 -> 64 4x4 6.1 / 16.9 -> 2.3 / 5.7 ms; 16x16x64 -> 64 2x2
//   2.5 / 5.8 -> 1.4 / 4.0 ms;
//   F(4x4, 2x2) on 5x5 tiles: 2x2 filters on maps of 4k x 4k outputs, which 7x7 and 5x5 blocks cover
//   with waste (16x16: 21x21 or 20x20), as a 4x4 stride-2 convolution (a DCGAN's, a U-Net's) leaves
//   them: 25 multiplications per 16 outputs, not 36 per 16 (36 for 25 outputs, 1.56 times the area).
// Points 0, 1, -1, 2, -2, 1/2, -1/2 and infinity (NNPACK's; the first five and infinity on 6x6 tiles, the
// first four and infinity on 5x5); the matrices come from Toom-Cook with 1/f_j put in G, so B^T (A x A)
// is the same for every filter size and A^T (m x A), G (A x r) are powers of the points:
//   Y = A^T [ (G w G^T) o (B^T d B) ] A.
// conv.cpp uses it for the forward pass, the data gradient (itself a stride-1 r x r convolution) and
// the filter gradient dw = G^T [ sum over tiles (B^T d B) o (A dY A^T) ] G.
// In float32 the outputs carry relative errors of a few 1e-6 (direct: about 1e-7); F(6x6, 3x3) about
// 1e-5 of the output scale, measured in tests/test_conv.py.
//
// The tiles of the whole batch are numbered t = (n*ty + i)*tx + j and handed out in chunks:
// a chunk's transformed inputs, products and outputs stay in the core's L2 cache.
#pragma once
#include <algorithm>
#include <cstdlib>
#include <type_traits>
#include <vector>

#include <omp.h>

#include "conv_tile.hpp"
#include "filter_cache.hpp"
#include "dense_impl.hpp"
#include "hdl/shapes.hpp"
#include "scratch.hpp"

namespace hdl {
namespace HDL_ISA {

// The filter size r of the Winograd F(m x m, r x r) that serves this convolution, or 0 for the direct
// kernel. Shape rule (measured, bench/conv_shapes.py and bench/winograd_rule.py): square 2x2 to 5x5
// filters at stride 1 whose channel counts have a harmonic mean 2 C O / (C + O) of at least
// kWinogradChannels: the transforms cost C + O per tile, the products save C O, and the direct kernel
// gains on wider vectors. Forward + backward, direct / Winograd, float32, batch 64 and 256, 14x14 and
// 16x16 maps: AVX-512, 6 -> 16 (8.7) 0.88-1.00, 8 -> 16 and 16 -> 8 (10.7) 0.67-1.04, 16 -> 16 0.95-1.34,
// 16 -> 32 1.24-2.13 (LeNet-5's 6 -> 16 5x5 forward 0.94 -> 0.56 ms at batch 256); AVX2, 6 -> 16
// 0.98-1.09, 8 -> 8 0.80-1.08, 8 -> 16 and 16 -> 8 0.97-1.50, 16 -> 16 1.29-1.86. (The earlier rule,
// C >= 4 and O >= 8, took them all.) And
//  - at least kMinTiles m x m output tiles in the batch: the filter transform and the threads' chunks
//    want a few (forward + backward, Winograd / direct: 4-8 tiles 1.1-1.8, 16 tiles 0.8-1.0, 32 and
//    more 0.4-0.7, on 8x8 to 32x32 maps of 16-64 channels); any number in an inference that reads its
//    filters' transform kept (filters_held), which the autotune then measures so;
//  - tiles that cover the output with at most kMaxWaste times its area: 3x3 on 8x8 outputs takes
//    2 x 2 tiles of 6 x 6 (2.25 times the area) and measured 1.18 times slower than direct at 64 tiles.
//    3x3 filters take 4x4 blocks on 6x6 tiles where those cost 5% fewer multiplications per output,
//    waste counted (36/16 per output against 64/36 on 8x8 tiles): 8x8, 7x7 and 4x4 maps, not 16x16 or 32x32.
//    2x2 filters take 4x4 blocks on 5x5 tiles by the same 5% (25/16 against 64/49 and 36/25, waste
//    counted): 16x16, 8x8 and 4x4 maps, not 14x14 or 32x32.
// HDL_CONV_WINOGRAD=0 in the environment turns Winograd off (every convolution runs the direct kernel);
// HDL_CONV_WINOGRAD=1 takes the earlier channel rule (the tests run Winograd on small shapes).
constexpr int64 kWinogradChannels = kVectorBytes == 64 ? 16 : 10;
constexpr int64 kMinTiles = 16;
constexpr double kMaxWaste = 1.7;

// Where output pixel (n, i, j) lives: y + n*image + i*row + j*pixel (its channels contiguous).
struct Grid {
  int64 image, row, pixel;
};

// Filters f(o, c, u, v) = w[offset + o*so + c*sc + u*su + v*sv] (o the output channel of the pass): a forward
// pass's w (O, C, R, R) as stored, or a data gradient's view of it, flipped and transposed (and a sub-pixel
// phase's every sh-th row and sw-th column of it). One type for them all, so that the transforms below are
// instantiated once for them (space to depth's filters, which read zeros past the edge, are the other).
template <class T>
struct FilterView {
  const T* w;
  int64 offset, so, sc, su, sv;
  T operator()(int64 o, int64 c, int64 u, int64 v) const { return w[offset + o * so + c * sc + u * su + v * sv]; }
};

// F(m x m, r x r) on alpha x alpha tiles (r == 0: none).
struct WinogradTile {
  int r = 0, alpha = 8;
  explicit operator bool() const { return r != 0; }
};

// Multiplications per output and channel pair of F(m x m, r x r) on alpha x alpha tiles for the stride-1
// s (r = kh), the tiles' waste counted; 0 where they do not serve (too few, or too much waste).
inline double winograd_cost(const ConvShape& s, int alpha) {
  const int64 Ho = s.out_h(), Wo = s.out_w(), m = alpha - s.kh + 1, th = (Ho + m - 1) / m, tw = (Wo + m - 1) / m;
  if (Ho < m || Wo < m || s.N * th * tw < (filters_held() ? 1 : kMinTiles)) return 0.0;
  const double waste = double(th * m) * double(tw * m) / (double(Ho) * double(Wo));
  return waste > kMaxWaste ? 0.0 : waste * alpha * alpha / double(m * m);
}

inline WinogradTile winograd_filter(const ConvShape& s) {
  const char* env = std::getenv("HDL_CONV_WINOGRAD");  // to measure the rule, and to test small shapes
  if (env && env[0] == '0') return {};
  const bool channels = env && env[0] == '1' ? s.C >= 4 && s.O >= 8 : 2 * s.C * s.O >= kWinogradChannels * (s.C + s.O);
  if (s.sh != 1 || s.sw != 1 || s.kh != s.kw || !channels || s.kh < 2 || s.kh > 5) return {};
  // the largest tile unless a smaller one takes 5% fewer multiplications per output
  WinogradTile best{};
  double least = 0.0;
  for (const int alpha : {8, 6, 5}) {
    if ((alpha == 6 && s.kh > 3) || (alpha == 5 && s.kh != 2)) continue;
    const double cost = winograd_cost(s, alpha);
    if (cost > 0 && (least == 0 || cost < 0.95 * least)) best = {int(s.kh), alpha}, least = cost;
  }
  return best;
}

// f(R, A) with the filter size and tile side as integral constants.
template <class F>
void with_winograd(WinogradTile k, F&& f) {
  using std::integral_constant;
  if (k.alpha == 5) return f(integral_constant<int, 2>(), integral_constant<int, 5>());
  if (k.alpha == 6) {
    if (k.r == 2) return f(integral_constant<int, 2>(), integral_constant<int, 6>());
    return f(integral_constant<int, 3>(), integral_constant<int, 6>());
  }
  switch (k.r) {
    case 2: return f(integral_constant<int, 2>(), integral_constant<int, 8>());
    case 3: return f(integral_constant<int, 3>(), integral_constant<int, 8>());
    case 4: return f(integral_constant<int, 4>(), integral_constant<int, 8>());
    default: return f(integral_constant<int, 5>(), integral_constant<int, 8>());
  }
}

// winograd_forward<R, A>: y (N, Ho, Wo, O) = bias + conv(x, w), x a Padded input; w(o, c, u, v) gives the
// R x R filters; tiles of A x A inputs; y laid out as `out` says (contiguous unless given: a sub-pixel
// phase of a data gradient writes every sh-th row and sw-th column of dx). winograd_filter_gradient<R, A>: dw (O, C, R, R) and db (O) from
// dy (N, Ho, Wo, O) and x.

namespace winograd {

constexpr int64 kChunk = 18;          // tiles per chunk, forward
constexpr int64 kChunkFilter = 24;    // tiles per chunk, filter gradient (the reduction runs over them)
constexpr int64 kChunkNarrow = 32;    // tiles per chunk for inputs of few channels, both
constexpr int64 kSplitU = int64(4) << 20;  // bytes of transformed filters past which few tiles split them

// G[a][u] = p_a^u / f_a for the finite points p_a (f_a = prod over the other finite points of p_a - p_b,
// up to the sign folded into B^T's first row), and u == r-1 for the point at infinity.
constexpr double kPoint[8] = {0, 1, -1, 2, -2, 0.5, -0.5, 0};
constexpr double kScale[8] = {-1, -2.0 / 9, -2.0 / 9, 1.0 / 90, 1.0 / 90, 32.0 / 45, 32.0 / 45, 1};
// F(4x4, 3x3) on 6x6 tiles: the points 0, 1, -1, 2, -2 and infinity, Lavin and Gray's matrices
constexpr double kScale6[6] = {1.0 / 4, -1.0 / 6, -1.0 / 6, 1.0 / 24, 1.0 / 24, 1};
// F(4x4, 2x2) on 5x5 tiles: the points 0, 1, -1, 2 and infinity, 1/f_a itself
constexpr double kScale5[5] = {1.0 / 2, -1.0 / 2, -1.0 / 6, 1.0 / 6, 1};
constexpr double G(int a, int u, int r, int A = 8) {
  if (a == A - 1) return u == r - 1 ? 1 : 0;
  double p = A == 8 ? kScale[a] : A == 6 ? kScale6[a] : kScale5[a];
  for (int k = 0; k < u; ++k) p *= kPoint[a];
  return p;
}

// The transforms below are forced inline (HDL_ALWAYS_INLINE): GCC left the 8x8 tiles' B^T a call per column,
// its 8 vectors passed through memory; inlined, forward and backward of 3x3 and 5x5 layers on 8x8 tiles ran
// 1.07-1.3x faster (64x32x32 -> 64 3x3, 16x28x28 -> 16 3x3, 32x16x16 -> 32 5x5 at batch 64, A/B in turns).
// G as a table of T, built once per (T, R, A): G's loop is not folded where the transforms call it.
template <class T, int R, int A>
struct GTable {
  T g[A][R];
  constexpr GTable() : g() {
    for (int a = 0; a < A; ++a)
      for (int u = 0; u < R; ++u) g[a][u] = T(G(a, u, R, A));
  }
};
template <class T, int R, int A>
inline constexpr GTable<T, R, A> kG{};

// B^T d for one column d of 8 values (vectors of channels, or single channels). B^T's rows:
//   (-1, 0, 21/4, 0, -21/4, 0, 1, 0), (0, +-1, 1, -+17/4, -17/4, +-1, 1, 0),
//   (0, +-1/2, 1/4, -+5/2, -5/4, +-2, 1, 0), (0, +-2, 4, -+5/2, -5, +-1/2, 1, 0), (0, -1, 0, 21/4, 0, -21/4, 0, 1).
template <class T, class X>
HDL_ALWAYS_INLINE void bt(const X (&d)[5], X (&o)[5]) {  // F(4x4, 2x2): rows (2, -1, -2, 1, 0), (0, -2, -1, 1, 0),
  const T two = 2, three = 3;                   // (0, 2, -3, 1, 0), (0, -1, 0, 1, 0), (0, 2, -1, -2, 1)
  const X e = d[3] - d[2];
  o[0] = two * (d[0] - d[2]) + (d[3] - d[1]);
  o[1] = e - two * d[1];
  o[2] = two * d[1] - three * d[2] + d[3];
  o[3] = d[3] - d[1];
  o[4] = two * (d[1] - d[3]) + (d[4] - d[2]);
}
template <class T, class X>
HDL_ALWAYS_INLINE void bt(const X (&d)[6], X (&o)[6]) {  // F(4x4, 3x3): B^T of Lavin and Gray
  const T two = 2, four = 4, five = 5;
  o[0] = four * d[0] - five * d[2] + d[4];
  o[5] = four * d[1] - five * d[3] + d[5];
  const X p1 = d[4] - four * d[2], q1 = d[3] - four * d[1];
  o[1] = p1 + q1;
  o[2] = p1 - q1;
  const X p2 = d[4] - d[2], q2 = two * (d[3] - d[1]);
  o[3] = p2 + q2;
  o[4] = p2 - q2;
}
template <class T, class X>
HDL_ALWAYS_INLINE void bt(const X (&d)[8], X (&o)[8]) {
  const T half = 0.5, quarter = 0.25, two = 2, four = 4, five = 5, c125 = 1.25, c25 = 2.5, c425 = 4.25,
          c525 = 5.25;
  o[0] = (d[6] - d[0]) + c525 * (d[2] - d[4]);
  o[7] = (d[7] - d[1]) + c525 * (d[3] - d[5]);
  const X p1 = d[2] + d[6] - c425 * d[4], q1 = d[1] + d[5] - c425 * d[3];
  o[1] = p1 + q1;
  o[2] = p1 - q1;
  const X p2 = d[6] + quarter * d[2] - c125 * d[4], q2 = half * d[1] - c25 * d[3] + two * d[5];
  o[3] = p2 + q2;
  o[4] = p2 - q2;
  const X p3 = d[6] + four * d[2] - five * d[4], q3 = two * d[1] - c25 * d[3] + half * d[5];
  o[5] = p3 + q3;
  o[6] = p3 - q3;
}

// A^T m for one column m of 8 values: the M outputs. A^T's rows are (1, 1, 1, 1, 1, 1, 1, 0) and
// (0, 1, +-1, 2^k, +-2^k, 2^-k, +-2^-k, 0) for k = 1 .. M-1, the last with a 1 at the end.
template <class T, int M, class X>
HDL_ALWAYS_INLINE void at(const X (&m)[5], X (&y)[M]) {  // F(4x4, 2x2): the points 0, +-1, 2, infinity
  const X s1 = m[1] + m[2], d1 = m[1] - m[2];
  y[0] = m[0] + s1 + m[3];
  for (int k = 1; k < M; ++k) y[k] = (k % 2 ? d1 : s1) + T(1 << k) * m[3];
  y[M - 1] += m[4];
}
template <class T, int M, class X>
HDL_ALWAYS_INLINE void at(const X (&m)[6], X (&y)[M]) {  // F(4x4, 3x3): the points 0, +-1, +-2, infinity
  const X s1 = m[1] + m[2], d1 = m[1] - m[2], s2 = m[3] + m[4], d2 = m[3] - m[4];
  y[0] = m[0] + s1 + s2;
  for (int k = 1; k < M; ++k) {
    const T up = T(1 << k);
    y[k] = k % 2 ? d1 + up * d2 : s1 + up * s2;
  }
  y[M - 1] += m[5];
}
template <class T, int M, class X>
HDL_ALWAYS_INLINE void at(const X (&m)[8], X (&y)[M]) {
  const X s1 = m[1] + m[2], d1 = m[1] - m[2], s2 = m[3] + m[4], d2 = m[3] - m[4], s3 = m[5] + m[6],
          d3 = m[5] - m[6];
  y[0] = m[0] + s1 + s2 + s3;
  for (int k = 1; k < M; ++k) {
    const T up = T(1 << k), down = T(1) / up;
    y[k] = k % 2 ? d1 + up * d2 + down * d3 : s1 + up * s2 + down * s3;
  }
  y[M - 1] += m[7];
}

// A g for one column g of M values (an M x M block of dY), the 8 points: at each point +-p,
// the even and odd powers' parts e +- o of sum_k p^k g[k].
template <class T, int M, int A, class X>
HDL_ALWAYS_INLINE void a_times(const X (&g)[M], X (&o)[A]) {
  o[0] = g[0];
  o[A - 1] = g[M - 1];
  for (int pair = 0; pair < (A - 2) / 2; ++pair) {
    const T p = T(kPoint[1 + 2 * pair]);
    X e = g[0], od = p * g[1];
    T pk = p;
    for (int k = 2; k < M; ++k) {
      pk *= p;
      if (k % 2) od += pk * g[k];
      else e += pk * g[k];
    }
    o[1 + 2 * pair] = e + od;
    o[2 + 2 * pair] = e - od;
  }
  if constexpr (A % 2 == 1) {  // 5x5 tiles: the point 2 has no partner
    const T p = T(kPoint[A - 2]);
    X sum = g[M - 1];
    for (int k = M - 2; k >= 0; --k) sum = g[k] + p * sum;
    o[A - 2] = sum;
  }
}

// v[point * ld] = (B^T d B)[point] for the 8x8 block d at `patch` (rows `pitch` apart, cells C apart),
// for the channels X covers at this offset.
template <class T, class X, int A>
inline void input_transform_lanes(T* v, int64 ld, const T* patch, int64 pitch, int64 C) {
  X t[A][A];
  for (int j = 0; j < A; ++j) {  // columns: t[.][j] = B^T d[.][j]
    X d[A], o[A];
    for (int i = 0; i < A; ++i) d[i] = load_as<T, X>(patch + i * pitch + j * C);
    bt<T>(d, o);
    for (int a = 0; a < A; ++a) t[a][j] = o[a];
  }
  for (int a = 0; a < A; ++a) {  // rows: v[a][.] = t[a][.] B
    X o[A];
    bt<T>(t[a], o);
    for (int b = 0; b < A; ++b) store_as<T, X>(v + (a * A + b) * ld, o[b]);
  }
}

template <class T, int A>
inline void input_transform(T* v, int64 ld, const T* patch, int64 pitch, int64 C) {
  constexpr int L = Simd<T>::lanes;
  int64 c = 0;
  for (; c + L <= C; c += L) input_transform_lanes<T, typename Simd<T>::vec, A>(v + c, ld, patch + c, pitch, C);
  for (; c < C; ++c) input_transform_lanes<T, T, A>(v + c, ld, patch + c, pitch, C);
}

// The M x M outputs y = A^T m A of the A x A points m[point * ld] (one vector of channels).
template <class T, int M, int A>
inline void output_transform(typename Simd<T>::vec (&y)[M][M], const T* m, int64 ld) {
  using X = typename Simd<T>::vec;
  X t[M][A];
  for (int b = 0; b < A; ++b) {  // columns: A^T m[.][b]
    X col[A], o[M];
    for (int a = 0; a < A; ++a) col[a] = Simd<T>::load(m + (a * A + b) * ld);
    at<T, M>(col, o);
    for (int r = 0; r < M; ++r) t[r][b] = o[r];
  }
  for (int r = 0; r < M; ++r) at<T, M>(t[r], y[r]);  // rows
}

// y[r * row_stride + q * pixel + o] = rectify(bias[o] + (A^T m A)[r][q]) for the first rows x cols
// outputs of one tile and its O channels; m[point * ld + o] holds the tile's A x A points.
template <class T, int M, int A>
inline void output_tile(T* y, int64 row_stride, int64 pixel, int rows, int cols, const T* m, int64 ld, const T* bias,
                        int64 O, Rectify<T> rectify) {
  using S = Simd<T>;
  constexpr int L = S::lanes;
  for (int64 o = 0; o < O; o += L) {
    typename S::vec out[M][M];
    output_transform<T, M, A>(out, m + o, ld);
    const auto b = S::load(bias + o), zero = S::zero();
    const int64 count = std::min<int64>(L, O - o);
    for (int r = 0; r < rows; ++r)
      for (int q = 0; q < cols; ++q) {
        auto v = out[r][q] + b;
        v = rectify(v, zero);
        T* dst = y + r * row_stride + q * pixel + o;
        if (count == L) {
          S::store(dst, v);
        } else {  // the last channels
          T part[L];
          S::store(part, v);
          std::copy(part, part + count, dst);
        }
      }
  }
}

// The A x A points (A g A^T) of the M x M block g[(r*M + q) * ldg] (one vector of channels), into d[point * ld].
template <class T, int M, int A>
inline void gradient_transform(T* d, int64 ld, const T* g, int64 ldg) {
  using X = typename Simd<T>::vec;
  X t[A][M];
  for (int q = 0; q < M; ++q) {  // columns
    X col[M], o[A];
    for (int r = 0; r < M; ++r) col[r] = Simd<T>::load(g + (r * M + q) * ldg);
    a_times<T, M, A>(col, o);
    for (int a = 0; a < A; ++a) t[a][q] = o[a];
  }
  for (int a = 0; a < A; ++a) {  // rows
    X o[A];
    a_times<T, M, A>(t[a], o);
    for (int b = 0; b < A; ++b) Simd<T>::store(d + (a * A + b) * ld, o[b]);
  }
}

// U[point][ob][c][B] = (G w(o, c) G^T)[point], packed as the tile kernel reads filters; the B
// output channels of a block are the vector lanes of the arithmetic. A job transforms kStage channels
// of one block (their filters read as runs of w) into a stage, and then writes a run of kStage*B
// values per point: written one (ob, c) at a time, a job's A*A lines lay a block's C*B values apart
// (64 KB at 128 x 128 float32, one cache set), and the transform took 0.6 ms of the 1.0 ms of
// 4 x 16x16x128 -> 128's forward pass, 0.44 ms now. (U itself, 2.4 MB there, outgrows L2.)
template <class T, int R, int A, int NV, class Filter>
void filter_transform_into(T* U, Filter w, int64 O, int64 C) {  // every entry of U written
  constexpr int64 B = kBlockO<T, NV>, kStage = 8;
  const int64 blocks = (O + B - 1) / B, runs = (C + kStage - 1) / kStage;
  parallel_for(blocks * runs, blocks * runs >= 4, [&](int64 job) {
    const int64 ob = job / runs, c0 = job % runs * kStage, cn = std::min(kStage, C - c0);
    alignas(64) T gs[kStage][R][R][B], t[A][R][B];
    T(*stage)[kStage][B] = reinterpret_cast<T(*)[kStage][B]>(scratch<T, 26>(A * A * kStage * B));  // 64 KB: not the stack
    for (int64 l = 0; l < B; ++l)  // a filter's channels c0 .. c0+cn at a time (contiguous in w)
      for (int64 k = 0; k < cn; ++k)
        for (int u = 0; u < R; ++u)
          for (int v = 0; v < R; ++v) gs[k][u][v][l] = ob * B + l < O ? T(w(ob * B + l, c0 + k, u, v)) : T(0);
    for (int64 k = 0; k < cn; ++k) {
      const T(&g)[R][R][B] = gs[k];
      for (int a = 0; a < A; ++a)  // t = G g
        for (int v = 0; v < R; ++v) {
          for (int64 l = 0; l < B; ++l) t[a][v][l] = T(0);
          for (int u = 0; u < R; ++u)
            for (int64 l = 0; l < B; ++l) t[a][v][l] += kG<T, R, A>.g[a][u] * g[u][v][l];
        }
      for (int a = 0; a < A; ++a)  // U = t G^T
        for (int b = 0; b < A; ++b) {
          T* HDL_RESTRICT out = stage[a * A + b][k];
          for (int64 l = 0; l < B; ++l) out[l] = T(0);
          for (int v = 0; v < R; ++v)
            for (int64 l = 0; l < B; ++l) out[l] += t[a][v][l] * kG<T, R, A>.g[b][v];
        }
    }
    for (int pt = 0; pt < A * A; ++pt) std::copy_n(stage[pt][0], cn * B, U + ((pt * blocks + ob) * C + c0) * B);
  });
}

// The filters as stored, w (count values), that a pass's Filter reads, and how it reads them (sh = sw = kh = 0:
// as they are; else space to depth's, for those strides and filter rows, the columns following from count):
// what an inference pass keeps their transform by (filter_cache.hpp). A data gradient's flipped filters give none.
template <class T>
struct FilterSource {
  const T* w = nullptr;
  int64 count = 0, sh = 0, sw = 0, kh = 0;
};

// U in scratch, or kept from an earlier inference pass over the same filters.
template <class T, int R, int A, int NV, class Filter>
const T* filter_transform(Filter w, int64 O, int64 C, const FilterSource<T>& source) {
  const int64 size = A * A * C * ((O + kBlockO<T, NV> - 1) / kBlockO<T, NV>) * kBlockO<T, NV>;
  return kept_filters<T>({1, R * 16 + A, NV, O, C, source.sh, source.sw, source.kh}, source.w, source.count, size,
                         [&] { return scratch<T, 6>(size); },
                         [&](T* U) { filter_transform_into<T, R, A, NV>(U, w, O, C); });
}

// The distance between points in a chunk's scratch: n rounded up to a cache line, plus one line,
// so that the 64 streams of a transform do not fall into one cache set (n is often 2^k floats).
template <class T>
inline int64 point_stride(int64 n) {
  constexpr int64 line = 64 / sizeof(T);
  return (n + line - 1) / line * line + line;
}

// The tiles of a batch: tile t covers outputs (m*i .. m*i+m-1, m*j .. m*j+m-1) of image n.
struct Tiling {
  int64 m, ty, tx;
  Tiling(int64 m_, int64 Ho, int64 Wo) : m(m_), ty((Ho + m_ - 1) / m_), tx((Wo + m_ - 1) / m_) {}
  int64 per_image() const { return ty * tx; }
  void locate(int64 t, int64& n, int64& i, int64& j) const {
    n = t / per_image();
    i = t % per_image() / tx;
    j = t % tx;
  }
};

// An input image batch x (N, H, W, C) seen through its zero padding (top, left, and whatever the
// tiles reach beyond the bottom and right): the 8x8 block whose first output is (i, j) of image n.
template <class T>
struct Padded {
  const T* x;
  int64 H, W, C, top, left;
  // The block's corner and the distance between its rows: in x itself when the block lies inside
  // the image, else in buf (8 * 8 * C), filled from x and zeros.
  template <int A>
  const T* block(int64 n, int64 i, int64 j, T* buf, int64& pitch) const {
    constexpr int64 kAlpha = A;
    const int64 r0 = i - top, c0 = j - left;
    const T* image = x + n * H * W * C;
    if (r0 >= 0 && c0 >= 0 && r0 + kAlpha <= H && c0 + kAlpha <= W) {
      pitch = W * C;
      return image + (r0 * W + c0) * C;
    }
    pitch = kAlpha * C;
    const int64 q0 = std::clamp<int64>(-c0, 0, kAlpha), q1 = std::clamp<int64>(W - c0, q0, kAlpha);
    for (int64 r = 0; r < kAlpha; ++r) {
      T* row = buf + r * kAlpha * C;
      if (r0 + r < 0 || r0 + r >= H) {
        std::fill(row, row + kAlpha * C, T(0));
        continue;
      }
      std::fill(row, row + q0 * C, T(0));
      std::copy(image + ((r0 + r) * W + c0 + q0) * C, image + ((r0 + r) * W + c0 + q1) * C, row + q0 * C);
      std::fill(row + q1 * C, row + kAlpha * C, T(0));
    }
    return buf;
  }
};

// Chunks of at most `most` tiles, as many as a multiple of the threads so that they share evenly.
inline int64 chunk_size(int64 tiles, int64 most) {
  const int64 threads = omp_get_max_threads();
  const int64 chunks = ((tiles + most - 1) / most + threads - 1) / threads * threads;
  return (tiles + chunks - 1) / chunks;
}

// Where V[point][tile p][channel c] = (B^T d B)[point] lives in a chunk's scratch. Wide inputs keep
// a tile's channels together and transform a vector of channels at a time; narrow ones (fewer
// channels than a vector: an RGB image) keep a channel's tiles together and transform a vector
// of tiles at a time.
template <class T>
struct Layout {
  bool narrow;
  int64 tile_step, channel_step, point_step;
  Layout(int64 C, int64 chunk) : narrow(C < Simd<T>::lanes) {
    constexpr int64 L = Simd<T>::lanes;
    tile_step = narrow ? 1 : C;
    channel_step = narrow ? (chunk + L - 1) / L * L : 1;
    point_step = point_stride<T>(narrow ? C * channel_step : chunk * C);
  }
  static int64 chunk(int64 C, int64 wide) { return C < Simd<T>::lanes ? kChunkNarrow : wide; }
};

// V for the P tiles t0, t0+1, ... of a chunk.
template <class T, int A>
void transform_inputs(T* V, const Layout<T>& lay, const Padded<T>& x, const Tiling& tiles, int64 t0, int64 P) {
  constexpr int L = Simd<T>::lanes, kAlpha = A, kPoints = A * A;
  const int64 C = x.C;
  T* buf = scratch<T, 12>(kPoints * C);
  if (!lay.narrow) {
    for (int64 p = 0; p < P; ++p) {
      int64 n, i, j, pitch;
      tiles.locate(t0 + p, n, i, j);
      const T* block = x.template block<A>(n, tiles.m * i, tiles.m * j, buf, pitch);  // sets pitch
      input_transform<T, A>(V + p * C, lay.point_step, block, pitch, C);
    }
    return;
  }
  T* stage = scratch<T, 17>(kPoints * C * L);  // stage[cell][c][lane]: the blocks of L tiles side by side
  for (int64 p0 = 0; p0 < P; p0 += L) {
    for (int lane = 0; lane < L; ++lane) {
      if (p0 + lane >= P) {
        for (int64 e = 0; e < kPoints * C; ++e) stage[e * L + lane] = T(0);
        continue;
      }
      int64 n, i, j, pitch;
      tiles.locate(t0 + p0 + lane, n, i, j);
      const T* block = x.template block<A>(n, tiles.m * i, tiles.m * j, buf, pitch);
      for (int r = 0; r < kAlpha; ++r)
        for (int64 e = 0; e < kAlpha * C; ++e) stage[(r * kAlpha * C + e) * L + lane] = block[r * pitch + e];
    }
    for (int64 c = 0; c < C; ++c)
      input_transform_lanes<T, typename Simd<T>::vec, A>(V + c * lay.channel_step + p0, lay.point_step,
                                                         stage + c * L, kAlpha * C * L, C * L);
  }
}

}  // namespace winograd

using winograd::Padded;

namespace winograd {

// The products' output channels in blocks of NV vectors: two (the tile kernel's widest), or one where O
// fits one vector (16 float32 channels on AVX-512 filled half of each two-vector block with zeros: a
// narrow deep net's 28x28x16 -> 16 3x3 layer at batch 64 forward 1.18 -> 0.82 ms, backward 2.75 -> 2.22 ms;
// at batch 256 5.43 -> 4.56 and 12.1 -> 11.3 ms; a 16x16x16 -> 16 5x5 0.61 -> 0.42 and 1.32 -> 1.12 ms).
template <class T, class F>
void with_output_vectors(int64 O, F&& f) {
  if (O <= Simd<T>::lanes) return f(std::integral_constant<int, 1>());
  f(std::integral_constant<int, 2>());
}

template <int R, int A, int NV, class T, class Filter>
void forward_blocks(T* y, const Padded<T>& x, int64 N, int64 Ho, int64 Wo, int64 O, Filter w, const T* bias_,
                    Rectify<T> rectify, Grid out, const FilterSource<T>& source) {
  constexpr int64 B = kBlockO<T, NV>;
  constexpr int kRows = kRowsFor<NV>, kPoints = A * A;
  const int64 blocks = (O + B - 1) / B, Op = blocks * B;
  constexpr int kM = A - R + 1;
  const Tiling tiles(kM, Ho, Wo);
  // A chunk streams all 64 transformed filters U (C x Op each) past its tiles: wide layers (4 MB of U at
  // 128 x 128) take longer chunks so that this traffic stays small beside the chunk's multiply-adds. Fewer
  // tiles than kChunk a thread with more than kSplitU of U (an inference of a batch of one on an 8x8x256
  // map, its filters kept) make one chunk whose output channels the threads share: each streams its part of
  // U, not all of it for a few tiles (the tiles' transform, done by each, is small beside U). Measured in
  // turns, kept filters, F(4x4, 3x3), batch 1: 8x8x256 -> 256 0.28 -> 0.24 ms, 8x8x512 -> 512 (37 MB of U)
  // 1.20x, batch 2 1.29x; 128 channels (2.4 MB of U) and fewer 0.92-0.98x, so they share the tiles.
  const int64 C = x.C, total = N * tiles.per_image();
  const int threads = omp_get_max_threads();
  const bool wide = kPoints * C * Op * int64(sizeof(T)) > kSplitU;
  const int64 parts = threads > 1 && wide && total < threads * kChunk && blocks >= threads ? threads : 1;
  const int64 chunk = parts > 1 ? total
                                : chunk_size(total, Layout<T>::chunk(C, std::clamp<int64>(C * Op / 160, kChunk, 4 * kChunk)));
  const Layout<T> lay(C, chunk);
  const int64 ldv = lay.point_step, ldm = point_stride<T>(chunk * Op);
  const T* U = filter_transform<T, R, A, NV>(w, O, C, source);
  Buffer<T> zero(Op, T(0)), bias(Op, T(0));
  std::copy(bias_, bias_ + O, bias.begin());
  const int64 jobs = (total + chunk - 1) / chunk * parts;
  parallel_for(jobs, jobs > 1, [&](int64 job) {
    T* V = scratch<T, 10>(kPoints * ldv);  // V[point][tile][c] = B^T d B
    T* M = scratch<T, 11>(kPoints * ldm);  // M[point][tile][o] = sum over c of U V
    const int64 k = job / parts, part = job % parts, ob0 = blocks * part / parts, ob1 = blocks * (part + 1) / parts;
    const int64 o0 = ob0 * B, o1 = std::min(O, ob1 * B);
    const int64 t0 = k * chunk, P = std::min(chunk, total - t0);
    transform_inputs<T, A>(V, lay, x, tiles, t0, P);
    // the channels as the tile kernel's reduction: contiguous (wide), or as C "taps" a row of V apart (narrow)
    const Taps taps = lay.narrow ? Taps{0, C, 0, 1, 1, lay.channel_step} : Taps{0, 1, 0, 1, 1, 0};
    const int64 run = lay.narrow ? 1 : C;
    for (int64 pt = 0; pt < kPoints; ++pt)
      for (int64 ob = ob0; ob < ob1; ++ob)
        for (int64 p = 0; p < P; p += kRows)
          tile_rows<T, NV>(int(std::min<int64>(kRows, P - p)), M + pt * ldm + p * Op + ob * B, Op, B,
                           V + pt * ldv + p * lay.tile_step, lay.tile_step, taps, U + (pt * blocks + ob) * C * B,
                           run, zero.data());
    for (int64 p = 0; p < P; ++p) {  // Y = A^T M A for each tile, plus the bias
      int64 n, i, j;
      tiles.locate(t0 + p, n, i, j);
      output_tile<T, kM, A>(y + n * out.image + kM * i * out.row + kM * j * out.pixel + o0, out.row, out.pixel,
                            int(std::min<int64>(kM, Ho - kM * i)), int(std::min<int64>(kM, Wo - kM * j)),
                            M + p * Op + o0, ldm, bias.data() + o0, o1 - o0, rectify);
    }
  });
}

}  // namespace winograd

template <int R, int A, class T, class Filter>
void winograd_forward(T* y, const Padded<T>& x, int64 N, int64 Ho, int64 Wo, int64 O, Filter w, const T* bias,
                      Rectify<T> rectify, Grid out = {}, const winograd::FilterSource<T>& source = {}) {
  if (out.pixel == 0) out = {Ho * Wo * O, Wo * O, O};
  winograd::with_output_vectors<T>(O, [&](auto nv) {
    winograd::forward_blocks<R, A, decltype(nv)::value>(y, x, N, Ho, Wo, O, w, bias, rectify, out, source);
  });
}

namespace winograd {

template <int R, int A, int NV, class T>
void filter_gradient_blocks(T* dw, T* db, const T* dy, const Padded<T>& x, int64 N, int64 Ho, int64 Wo, int64 O) {
  using S = Simd<T>;
  using Vec = typename S::vec;
  constexpr int L = S::lanes, kPoints = A * A, kRows = kRowsFor<NV>;
  constexpr int64 B = kBlockO<T, NV>;
  const int64 blocks = (O + B - 1) / B, Op = blocks * B;
  constexpr int kM = A - R + 1;
  const Tiling tiles(kM, Ho, Wo);
  const int64 C = x.C, total = N * tiles.per_image();
  // Each chunk adds into the thread's 64 x C x Op sums once: wide layers (4 MB of sums at 128 x 128) take
  // longer chunks so that this traffic stays small beside the chunk's multiply-adds.
  const int64 most = std::clamp<int64>(C * Op / 160, kChunkFilter, 4 * kChunkFilter);
  const int64 chunk = chunk_size(total, Layout<T>::chunk(C, most)), chunks = (total + chunk - 1) / chunk;
  const Layout<T> lay(C, chunk);
  const int64 ldv = lay.point_step, ldd = point_stride<T>(chunk * Op);
  const bool parallel = chunks > 1;
  const int threads = parallel ? omp_get_max_threads() : 1;
  T* part = scratch_zeroed<T, 7>(threads * kPoints * C * Op);
  T* bpart = scratch_zeroed<T, 8>(threads * Op);
#pragma omp parallel num_threads(threads) if (parallel)
  {
    const FloatModeGuard float_mode;
    T* acc_dw = &part[omp_get_thread_num() * kPoints * C * Op];  // [point][c][o]
    T* acc_db = &bpart[omp_get_thread_num() * Op];
#pragma omp for schedule(static)
    for (int64 k = 0; k < chunks; ++k) {
      T* V = scratch<T, 13>(kPoints * ldv);  // V[point][tile][c] = B^T d B
      T* D = scratch<T, 14>(kPoints * ldd);  // D[point][tile][o] = A dY A^T
      T* g = scratch<T, 15>(kM * kM * Op);   // one m x m block of dy, zero beyond the output
      const int64 t0 = k * chunk, P = std::min(chunk, total - t0);
      transform_inputs<T, A>(V, lay, x, tiles, t0, P);
      for (int64 p = 0; p < P; ++p) {
        int64 n, i, j;
        tiles.locate(t0 + p, n, i, j);
        std::fill(g, g + kM * kM * Op, T(0));
        for (int r = 0; r < kM && kM * i + r < Ho; ++r)
          for (int q = 0; q < kM && kM * j + q < Wo; ++q) {
            const T* HDL_RESTRICT src = dy + ((n * Ho + kM * i + r) * Wo + kM * j + q) * O;
            T* HDL_RESTRICT dst = g + (r * kM + q) * Op;
            T* HDL_RESTRICT sum = acc_db;
            for (int64 o = 0; o < O; ++o) {
              dst[o] = src[o];
              sum[o] += src[o];  // (5.7)
            }
          }
        for (int64 o = 0; o < Op; o += L) gradient_transform<T, kM, A>(D + p * Op + o, ldd, g + o, Op);
      }
      // acc_dw[point][c][o] += sum over the chunk's tiles of V[point][tile][c] D[point][tile][o]
      const int64 cs = lay.channel_step;
      for (int64 pt = 0; pt < kPoints; ++pt)
        for (int64 ob = 0; ob < blocks; ++ob)
          for (int64 c0 = 0; c0 < C; c0 += kRows) {
            const int rows = int(std::min<int64>(kRows, C - c0));
            Vec acc[kRows][NV];
            for (int r = 0; r < kRows; ++r)
              for (int v = 0; v < NV; ++v) acc[r][v] = S::zero();
            for (int64 p = 0; p < P; ++p) {
              const T* d = D + pt * ldd + p * Op + ob * B;
              Vec g[NV];
              for (int v = 0; v < NV; ++v) g[v] = S::load(d + v * L);
              const T* a = V + pt * ldv + p * lay.tile_step + c0 * cs;
              for (int r = 0; r < kRows; ++r)
                for (int v = 0; v < NV; ++v) acc[r][v] += a[(r < rows ? r : 0) * cs] * g[v];
            }
            for (int r = 0; r < rows; ++r) {
              T* out = acc_dw + (pt * C + c0 + r) * Op + ob * B;
              for (int v = 0; v < NV; ++v) S::store(out + v * L, S::load(out + v * L) + acc[r][v]);
            }
          }
    }
  }
  // dw = G^T [sum] G, the sum over the threads' parts
  for (int64 o = 0; o < O; ++o) {
    T sum = T(0);
    for (int th = 0; th < threads; ++th) sum += bpart[th * Op + o];
    db[o] = sum;
  }
  parallel_for(blocks * C, blocks * C >= 16, [&](int64 job) {  // the B channels of a block as lanes
    const int64 ob = job / C, c = job % C;
    alignas(64) T sum[kPoints][B], t[A][R][B], out[R][R][B];
    for (int pt = 0; pt < kPoints; ++pt) {
      for (int64 l = 0; l < B; ++l) sum[pt][l] = T(0);
      for (int th = 0; th < threads; ++th) {
        const T* HDL_RESTRICT m = part + ((th * kPoints + pt) * C + c) * Op + ob * B;
        for (int64 l = 0; l < B; ++l) sum[pt][l] += m[l];
      }
    }
    for (int a = 0; a < A; ++a)  // t = [sum] G
      for (int v = 0; v < R; ++v) {
        for (int64 l = 0; l < B; ++l) t[a][v][l] = T(0);
        for (int b = 0; b < A; ++b)
          for (int64 l = 0; l < B; ++l) t[a][v][l] += sum[a * A + b][l] * kG<T, R, A>.g[b][v];
      }
    for (int u = 0; u < R; ++u)  // dw = G^T t
      for (int v = 0; v < R; ++v) {
        for (int64 l = 0; l < B; ++l) out[u][v][l] = T(0);
        for (int a = 0; a < A; ++a)
          for (int64 l = 0; l < B; ++l) out[u][v][l] += kG<T, R, A>.g[a][u] * t[a][v][l];
      }
    for (int64 l = 0; l < B && ob * B + l < O; ++l)
      for (int u = 0; u < R; ++u)
        for (int v = 0; v < R; ++v) dw[(((ob * B + l) * C + c) * R + u) * R + v] = out[u][v][l];
  });
}

}  // namespace winograd

template <int R, int A, class T>
void winograd_filter_gradient(T* dw, T* db, const T* dy, const Padded<T>& x, int64 N, int64 Ho, int64 Wo, int64 O) {
  winograd::with_output_vectors<T>(O, [&](auto nv) {
    winograd::filter_gradient_blocks<R, A, decltype(nv)::value>(dw, db, dy, x, N, Ho, Wo, O);
  });
}

}  // namespace HDL_ISA
}  // namespace hdl
