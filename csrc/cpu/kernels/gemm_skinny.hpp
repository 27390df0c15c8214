// Products with few rows (M <= kSkinnyRows: a batch of 1..16 samples), without packing: packing B
// would cost as much as the product itself. Two kernels, by how B is stored:
//   gemm_dot     B stored (N, K) (op(B) = B^T, as x W^T), A's rows contiguous: C[i, j] = <A_i, B_j>,
//                vectors along k, up to 8 rows of A x 2-12 rows of B per register tile, summed across lanes;
//   gemm_direct  B stored (K, N): the micro-kernel of gemm_blocked.hpp reading B's rows in place.
#pragma once
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "gemm_blocked.hpp"

namespace hdl {
namespace HDL_ISA {

constexpr int64 kSkinnyRows = 16;

// The sum of v's lanes: halves added as vectors down to 16 bytes, then the last lanes (a lane at a time
// from the top took L - 1 dependent adds of extracted lanes per sum, most of a small product's time).
template <class T, int Bytes>
inline T lane_sum(typename Simd<T, Bytes>::vec v) {
  if constexpr (Bytes > 16) {
    typename Simd<T, Bytes / 2>::vec lo, hi;
    std::memcpy(&lo, &v, Bytes / 2);
    std::memcpy(&hi, reinterpret_cast<const char*>(&v) + Bytes / 2, Bytes / 2);
    return lane_sum<T, Bytes / 2>(lo + hi);
  } else {
    T sum = v[0];
    for (int l = 1; l < Bytes / int(sizeof(T)); ++l) sum += v[l];
    return sum;
  }
}

// Rows of A (RA) and of B (RB) per register tile of dot products: about 16-24 sums, with the RA vectors
// of A and one of B beside them in the registers, so that a step of k loads RA + RB vectors for RA * RB
// multiply-adds.
// (AVX2 and SSE have 16 registers: at most 4 x 2.)
constexpr int kDotRowsA = kVectorBytes == 64 ? 8 : 4;
constexpr int kDotRowsB[9] = {0, kVectorBytes == 64 ? 12 : 8, kVectorBytes == 64 ? 8 : 5, kVectorBytes == 64 ? 6 : 3,
                              kVectorBytes == 64 ? 4 : 2, 3, 3, 2, 2};

// out[r * RB + s] = sum_k a[r*lda + k] b[s*ldb + k] for RA rows of A and RB rows of B.
template <class T, int RA, int RB>
inline void dot_tile(int64 K, const T* HDL_RESTRICT a, int64 lda, const T* HDL_RESTRICT b, int64 ldb, T* out) {
  using S = Simd<T>;
  using V = typename S::vec;
  constexpr int L = S::lanes;
  V acc[RA][RB];
  for (int r = 0; r < RA; ++r)
    for (int s = 0; s < RB; ++s) acc[r][s] = S::zero();
  int64 k = 0;
  for (; k + L <= K; k += L) {
    V va[RA];
    for (int r = 0; r < RA; ++r) va[r] = S::load(a + r * lda + k);
    for (int s = 0; s < RB; ++s) {
      const V vb = S::load(b + s * ldb + k);
      for (int r = 0; r < RA; ++r) acc[r][s] += va[r] * vb;
    }
  }
  for (int r = 0; r < RA; ++r)
    for (int s = 0; s < RB; ++s) {
      T sum = lane_sum<T, kVectorBytes>(acc[r][s]);
      for (int64 q = k; q < K; ++q) sum += a[r * lda + q] * b[s * ldb + q];
      out[r * RB + s] = sum;
    }
}

// The tile for RA rows of A and rb <= kDotRowsB[RA] rows of B.
template <class T, int RA, int RB = kDotRowsB[RA]>
inline void dot_tile_rb(int rb, int64 K, const T* a, int64 lda, const T* b, int64 ldb, T* out) {
  if constexpr (RB > 1) {
    if (rb < RB) return dot_tile_rb<T, RA, RB - 1>(rb, K, a, lda, b, ldb, out);
  }
  dot_tile<T, RA, RB>(K, a, lda, b, ldb, out);
}

template <class T, int RA = kDotRowsA>
inline void dot_tile_ra(int ra, int rb, int64 K, const T* a, int64 lda, const T* b, int64 ldb, T* out) {
  if constexpr (RA > 1) {
    if (ra < RA) return dot_tile_ra<T, RA - 1>(ra, rb, K, a, lda, b, ldb, out);
  }
  dot_tile_rb<T, RA>(rb, K, a, lda, b, ldb, out);
}

// C = sigma(alpha A B + beta C + bias) with A.cs == 1 and B.rs == 1 (op(B)(k, j) = B.p[j * B.cs + k]): jobs
// of kDotRowsB[ra] rows of B (columns of C), each over all rows of A, ra = min(M, 8) of them at a time.
template <class T>
void gemm_dot(int64 M, int64 N, int64 K, T alpha, Mat<const T> A, Mat<const T> B, T beta, Mat<T> C,
              const Epilogue<T>& ep, int threads) {
  const int ra_max = int(std::min<int64>(M, kDotRowsA)), rb_max = kDotRowsB[ra_max];
  const int64 blocks = (N + rb_max - 1) / rb_max;
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    const FloatModeGuard float_mode;
#pragma omp for schedule(static)
    for (int64 jb = 0; jb < blocks; ++jb) {
      const int64 j0 = jb * rb_max;
      const int rb = int(std::min<int64>(rb_max, N - j0));
      for (int64 i0 = 0; i0 < M; i0 += ra_max) {
        const int ra = int(std::min<int64>(ra_max, M - i0));
        T out[kDotRowsA * 12];
        dot_tile_ra<T>(ra, rb, K, A.p + i0 * A.rs, A.rs, B.p + j0 * B.cs, B.cs, out);
        for (int r = 0; r < ra; ++r)
          for (int s = 0; s < rb; ++s) ep.store(C(i0 + r, j0 + s), out[r * rb + s], alpha, beta, i0 + r, j0 + s);
      }
    }
  }
}

// acc = A(0..R, :) b over all K, b's rows brs apart (the micro-kernel on unpacked operands). The rows
// ahead are prefetched: rows far apart (W of a dense layer, a row of 3136 float32 12.5 KB long) are a
// stride no hardware prefetcher follows.
constexpr int64 kDirectAhead = 16;
template <class T, int R>
inline void direct_kernel(int64 K, Mat<const T> A, const T* HDL_RESTRICT b, int64 brs,
                          typename Simd<T>::vec (&acc)[GemmSizes<T>::MR][2]) {
  using S = Simd<T>;
  using V = typename S::vec;
  constexpr int L = S::lanes;
  V c[R][2];
  for (int r = 0; r < R; ++r) c[r][0] = c[r][1] = S::zero();
  for (int64 k = 0; k < K; ++k) {
    const V b0 = S::load(b + k * brs), b1 = S::load(b + k * brs + L);
    __builtin_prefetch(b + (k + kDirectAhead) * brs);
    __builtin_prefetch(b + (k + kDirectAhead) * brs + L);
    for (int r = 0; r < R; ++r) {
      const T x = A.p[r * A.rs + k * A.cs];
      c[r][0] += x * b0;
      c[r][1] += x * b1;
    }
  }
  for (int r = 0; r < R; ++r) {
    acc[r][0] = c[r][0];
    acc[r][1] = c[r][1];
  }
}

template <class T, int R = GemmSizes<T>::MR>
inline void direct_tile(int rows, int64 K, Mat<const T> A, const T* b, int64 brs,
                        typename Simd<T>::vec (&acc)[GemmSizes<T>::MR][2]) {
  if constexpr (R > 1) {
    if (rows < R) return direct_tile<T, R - 1>(rows, K, A, b, brs, acc);
  }
  direct_kernel<T, R>(K, A, b, brs, acc);
}

// C = sigma(alpha A B + beta C + bias) with B.cs == 1, one job per (panel of NR columns, MR rows). The last,
// partial panel of columns is copied once into a zero-padded one, unless b_padded says that B's rows may be
// read a whole panel wide (zeros past N).
template <class T>
void gemm_direct(int64 M, int64 N, int64 K, T alpha, Mat<const T> A, Mat<const T> B, T beta, Mat<T> C,
                 const Epilogue<T>& ep, int threads, bool b_padded = false) {
  using G = GemmSizes<T>;
  using V = typename Simd<T>::vec;
  constexpr int MR = G::MR, NR = G::NR;
  const int64 panels = (N + NR - 1) / NR, row_blocks = (M + MR - 1) / MR, last = (panels - 1) * NR;
  Buffer<T> edge;
  if (N - last < NR && !b_padded) {
    edge.assign(K * NR, T(0));
    for (int64 k = 0; k < K; ++k)
      for (int64 j = last; j < N; ++j) edge[k * NR + j - last] = B(k, j);
  }
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    const FloatModeGuard float_mode;
#pragma omp for schedule(static)
    for (int64 job = 0; job < panels * row_blocks; ++job) {  // panel-major: a thread keeps to its panels
      const int64 j0 = job / row_blocks * NR, i0 = job % row_blocks * MR;
      const int cols = int(std::min<int64>(NR, N - j0)), rows = int(std::min<int64>(MR, M - i0));
      const bool copied = j0 == last && !edge.empty();
      V acc[MR][2];
      direct_tile<T>(rows, K, A.at(i0, 0), copied ? edge.data() : B.p + j0, copied ? NR : B.rs, acc);
      store_tile(C.at(i0, j0), rows, cols, acc, alpha, beta, ep, true, i0, j0);
    }
  }
}

// C = sigma(alpha A B + beta C + bias) for a few rows of A (a small batch x) with op(B) stored as the
// rows of W (B.rs == 1: x W^T), computed as C^T = W A^T by gemm_direct: A^T is packed once into K x NR
// panels (zero past M, at most NR / 2 of a panel's columns idle), and the micro-kernel runs down W's rows
// MR at a time, broadcasting W in place, so that W is read once and nothing of it packed.
template <class T>
void gemm_rows_of_w(int64 M, int64 N, int64 K, T alpha, Mat<const T> A, Mat<const T> B, T beta, Mat<T> C,
                    const Epilogue<T>& ep, int threads) {
  constexpr int NR = GemmSizes<T>::NR;
  thread_local Buffer<T> packed;
  T* ap = gemm_buffer(packed, std::size_t((M + NR - 1) / NR * K * NR));
  for (int64 p0 = 0; p0 < M; p0 += NR) {
    const int64 cols = std::min<int64>(NR, M - p0);
    T* panel = ap + p0 * K;
    pack_b_panel(panel, A.t().at(0, p0), K, cols);
    Epilogue<T> et = ep.transposed();
    if (et.bias && !et.bias_per_row) et.bias += p0;
    gemm_direct<T>(N, cols, K, alpha, B.t(), {panel, NR, 1}, beta, C.t().at(0, p0), et, threads, true);
  }
}

// The same for a batch that fits one register (M <= 16 float32 rows on a zmm under AVX-512): A^T packed
// once into a K x lanes panel (zero past M), and R rows of W broadcast in place against it, one vector of
// accumulators per row of W: a whole vector of the batch per multiply-add, where gemm_rows_of_w's
// two-vector panel left half its lanes idle and the dot products of gemm_dot then spent their time summing
// across lanes (784 -> 512, 2 threads, AVX-512: batch 16 184 -> 81 us; torch.matmul 77 us). 12 rows of W
// a tile: with 24 the row addresses spilled and it ran 128 us.
constexpr int kRowsOfW = 12;  // rows of W per tile (24 ran out of address registers)

template <class T, int R>
inline void rows_of_w_kernel(int64 K, const T* HDL_RESTRICT w, int64 ldw, const T* HDL_RESTRICT ap,
                             typename Simd<T>::vec (&acc)[kRowsOfW]) {
  using S = Simd<T>;
  using V = typename S::vec;
  constexpr int L = S::lanes;
  V c[R];
  for (int r = 0; r < R; ++r) c[r] = V{};
  for (int64 k = 0; k < K; ++k) {
    const V b = S::load(ap + k * L);
    for (int r = 0; r < R; ++r) c[r] += w[r * ldw + k] * b;
  }
  for (int r = 0; r < R; ++r) acc[r] = c[r];
}

template <class T, int R = kRowsOfW>
inline void rows_of_w_tile(int rows, int64 K, const T* w, int64 ldw, const T* ap,
                           typename Simd<T>::vec (&acc)[kRowsOfW]) {
  if constexpr (R > 1) {
    if (rows < R) return rows_of_w_tile<T, R - 1>(rows, K, w, ldw, ap, acc);
  }
  rows_of_w_kernel<T, R>(K, w, ldw, ap, acc);
}

template <class T>
void gemm_rows_of_w_narrow(int64 M, int64 N, int64 K, T alpha, Mat<const T> A, Mat<const T> B, T beta, Mat<T> C,
                           const Epilogue<T>& ep, int threads) {
  using S = Simd<T>;
  constexpr int L = S::lanes, R = kRowsOfW;
  thread_local Buffer<T> packed;
  T* ap = gemm_buffer(packed, std::size_t(K * L));
  for (int64 k = 0; k < K; ++k)
    for (int64 j = 0; j < L; ++j) ap[k * L + j] = j < M ? A(j, k) : T(0);
  const int64 blocks = (N + R - 1) / R;
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    const FloatModeGuard float_mode;
#pragma omp for schedule(static)
    for (int64 blk = 0; blk < blocks; ++blk) {
      const int64 n0 = blk * R;
      const int rows = int(std::min<int64>(R, N - n0));
      typename S::vec acc[R];
      rows_of_w_tile<T>(rows, K, B.p + n0 * B.cs, B.cs, ap, acc);  // W's row n: B.p + n * B.cs
      for (int r = 0; r < rows; ++r)
        for (int64 j = 0; j < M; ++j) ep.store(C(j, n0 + r), acc[r][j], alpha, beta, j, n0 + r);
    }
  }
}

// x W^T for a batch of M rows that fills more than half a register (9..16 float32 rows under AVX-512,
// 5..8 under AVX2, 5..8 float64 rows under AVX-512). Smaller batches take gemm_dot's dot products: on a
// ymm under AVX-512, batch 5 on 784 -> 512 ran 53 us against 40 us by dot products, batch 8 on 784 -> 128
// 29 against 16 us (batch 8 on 512 -> 512 was the other way, 34 against 43 us).
template <class T>
bool rows_of_w_narrow_serves(int64 M) {
  const int64 lanes = Simd<T>::lanes;
  return kVectorBytes >= 32 && M <= lanes && 2 * M > lanes;
}

}  // namespace HDL_ISA
}  // namespace hdl
