// One matrix product for every dense computation of hdl:
//
//   C (M, N) = alpha A (M, K) B (K, N) + beta C,  then  C = sigma(C + bias)   (the epilogue)
//
// Matrices are strided views (element (i, j) at p[i*rs + j*cs]), so transposes and leading
// dimensions are just strides. gemm_mat chooses, by shape:
//   - the orientation: the micro-kernel runs along the rows of C; when C has fewer columns than a
//     tile and more rows, the transposed product C^T = B^T A^T wastes less of each tile;
//   - a few rows (a batch of 1..16): the unpacked kernels of gemm_skinny.hpp;
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
  const int threads = work < kGemmParallelWork || omp_in_parallel() ? 1 : omp_get_max_threads();
  if (M <= kSkinnyRows && K > 0) {
    if (A.cs == 1 && B.rs == 1) return gemm_dot(M, N, K, alpha, A, B, beta, C, ep, threads);
    if (B.cs == 1) return gemm_direct(M, N, K, alpha, A, B, beta, C, ep, threads);
  }
  const int64 tiles = ((M + G::MR - 1) / G::MR) * ((std::min(N, G::NC) + G::NR - 1) / G::NR);
  gemm_blocked(M, N, K, alpha, A, B, beta, C, ep, int(std::max<int64>(1, std::min<int64>(threads, tiles))));
}

}  // namespace HDL_ISA
}  // namespace hdl
