// One matrix product for every dense computation of hdl:
//
//   C (M, N) = alpha A (M, K) B (K, N) + beta C,  then  C = sigma(C + bias)   (the epilogue)
//
// Matrices are strided views (element (i, j) at p[i*rs + j*cs]), so transposes and leading
// dimensions are just strides. gemm_mat chooses, by shape:
//   - the orientation: the micro-kernel runs along the rows of C; when C has fewer columns than a
//     tile and more rows, the transposed product C^T = B^T A^T wastes less of each tile;
//   - a few rows (a batch of 1..16): the unpacked kernels of gemm_skinny.hpp (x W^T with W read in place
//     when the batch fills half a vector or a panel, else dot products);
//   - long, thin products on several threads: independent slices of C, one per thread (gemm_slices);
//   - otherwise the packed, cache-blocked BLIS loops of gemm_blocked.hpp.
#pragma once
#include <omp.h>

#include <algorithm>

#include "gemm_blocked.hpp"
#include "gemm_skinny.hpp"

namespace hdl {
namespace HDL_ISA {

// Below this many multiply-adds a product stays on the calling thread (the tiny layers of
// Section 6 run a million times; a parallel region costs microseconds).
constexpr int64 kGemmParallelWork = int64(1) << 17;

// The threads a product of `work` multiply-adds gets: one below kGemmParallelWork or inside a parallel region.
inline int gemm_threads(int64 work) {
  return work < kGemmParallelWork || omp_in_parallel() ? 1 : omp_get_max_threads();
}

// Threads on independent slices of C: whole panels of rows (or columns), each thread a serial
// gemm_blocked with its own packed blocks, so that no thread waits for another until the end and
// none reads panels another core packed (on a mesh of cores, as on this Intel machine, the shared
// packed A block of gemm_blocked's threads crosses between cores: 256 x 128 x 784 on two threads ran
// no faster than on one, 318 us, and 189 us in slices). Each thread packs all of the other operand;
// that costs threads / (its side) of the product, little once a slice is kSliceRows rows. (96 rows left
// products such as a batch of 64 on 784 -> 128 on the shared path, where two threads ran no faster than one:
// 100 us, against 65 us in slices and 55 us for torch.matmul; 32 x 128 x 784 61 -> 40 us.)
constexpr int64 kSliceRows = 32;

inline bool slices_pay(int64 M, int64 N, int threads) { return std::max(M, N) >= kSliceRows * threads; }

template <class T, class PackAFn, class PackBFn>
void gemm_slices(int64 M, int64 N, int64 K, T alpha, const PackAFn& pack_a, const PackBFn& pack_b, T beta, Mat<T> C,
                 const Epilogue<T>& ep, int threads) {
  using G = GemmSizes<T>;
  const bool rows = M >= N;  // split the longer side
  const int64 len = rows ? M : N, unit = rows ? G::MR : G::NR, units = (len + unit - 1) / unit;
#pragma omp parallel num_threads(threads)
  {
    const FloatModeGuard float_mode;
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64 u0 = units * t / nt, u1 = units * (t + 1) / nt;
    const int64 i0 = std::min(len, u0 * unit), i1 = std::min(len, u1 * unit);
    if (i1 > i0) {
      Epilogue<T> e = ep;
      if (rows) {
        if (e.bias && e.bias_per_row) e.bias += i0;
        const auto slice = [&](T* ap, int64 i, int64 r, int64 k0, int64 kc) { pack_a(ap, i0 + i, r, k0, kc); };
        gemm_blocked(i1 - i0, N, K, alpha, slice, pack_b, beta, C.at(i0, 0), e, 1);
      } else {
        if (e.bias && !e.bias_per_row) e.bias += i0;
        const auto slice = [&](T* bp, int64 k0, int64 j0, int64 kc, int64 nc, int64 p0, int64 p1) {
          pack_b(bp, k0, i0 + j0, kc, nc, p0, p1);
        };
        gemm_blocked(M, i1 - i0, K, alpha, pack_a, slice, beta, C.at(0, i0), e, 1);
      }
    }
  }
}

// C = alpha A B + beta C (+ epilogue) with A and B given by their packers, on `threads` threads: in slices, or
// the shared blocked loops where the product is too small to slice.
template <class T, class PackAFn, class PackBFn>
void gemm_packed(int64 M, int64 N, int64 K, T alpha, const PackAFn& pack_a, const PackBFn& pack_b, T beta, Mat<T> C,
                 const Epilogue<T>& ep, int threads) {
  using G = GemmSizes<T>;
  if (M <= 0 || N <= 0) return;
  if (threads > 1 && slices_pay(M, N, threads))
    return gemm_slices(M, N, K, alpha, pack_a, pack_b, beta, C, ep, threads);
  const int64 tiles = ((M + G::MR - 1) / G::MR) * ((std::min(N, G::NC) + G::NR - 1) / G::NR);
  gemm_blocked(M, N, K, alpha, pack_a, pack_b, beta, C, ep, int(std::max<int64>(1, std::min<int64>(threads, tiles))));
}

template <class T>
void gemm_mat(int64 M, int64 N, int64 K, T alpha, Mat<const T> A, Mat<const T> B, T beta, Mat<T> C,
              const Epilogue<T>& ep = {}) {
  using G = GemmSizes<T>;
  if (M <= 0 || N <= 0) return;
  const auto padded = [](int64 m, int64 n) {
    return (m + G::MR - 1) / G::MR * G::MR * ((n + G::NR - 1) / G::NR * G::NR);
  };
  if (padded(N, M) * 4 < padded(M, N) * 3) return gemm_mat(N, M, K, alpha, B.t(), A.t(), beta, C.t(), ep.transposed());
  const int64 work = M * N * std::max<int64>(K, 1);
  const int threads = gemm_threads(work);
  if (B.rs == 1 && N >= 64 && K > 0) {
    // x W^T for a batch that fills at least half a vector or panel, and W of enough rows to share out
    // (measured, batch 16 on 784 -> 512: 104 against 292 us by dot products; 10 outputs stay faster by dot
    // products)
    if (rows_of_w_narrow_serves<T>(M)) return gemm_rows_of_w_narrow(M, N, K, alpha, A, B, beta, C, ep, threads);
    if (2 * M > G::NR && M <= kSkinnyRows) return gemm_rows_of_w(M, N, K, alpha, A, B, beta, C, ep, threads);
  }
  if (M <= kSkinnyRows && K > 0) {
    if (A.cs == 1 && B.rs == 1) return gemm_dot(M, N, K, alpha, A, B, beta, C, ep, threads);
    if (B.cs == 1) return gemm_direct(M, N, K, alpha, A, B, beta, C, ep, threads);
  }
  gemm_packed(M, N, K, alpha, PackA<T>{A}, PackB<T>{B}, beta, C, ep, threads);
}

}  // namespace HDL_ISA
}  // namespace hdl
