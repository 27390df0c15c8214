// The BLAS-style entry to the GEMM core of gemm.hpp, for one instruction set (see kernels.inc).
#include "gemm.hpp"

#include "kernels.inc"

namespace hdl {
namespace HDL_ISA {

// C (M, N) = alpha op(A) op(B) + beta C, row-major with leading dimensions; op(A) is A (M, K),
// or A^T for A stored (K, M) when trans_a; the same for B.
template <class T>
void gemm(bool trans_a, bool trans_b, int64 M, int64 N, int64 K, T alpha, const T* A, int64 lda, const T* B,
          int64 ldb, T beta, T* C, int64 ldc) {
  const Mat<const T> a = trans_a ? Mat<const T>{A, 1, lda} : Mat<const T>{A, lda, 1};
  const Mat<const T> b = trans_b ? Mat<const T>{B, 1, ldb} : Mat<const T>{B, ldb, 1};
  gemm_mat(M, N, K, alpha, a, b, beta, Mat<T>{C, ldc, 1});
}

}  // namespace HDL_ISA
}  // namespace hdl

HDL_INSTANTIATE(gemm)
