// The Host executor (see exec.cuh): the kernels' __host__ __device__ bodies run on the CPU, for
// tests only (tests/cuda_emu/emulate.cu), with the launch checks of the Device executor. gemm::emulate walks the blocks of gemm_kernel's grid and,
// inside a block, the 256 threads phase by phase between the barriers, calling the same fetch,
// stash, multiply and write as the kernel (the float32 path; TF32 needs tensor cores).
#pragma once
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "exec.cuh"

namespace hdl::cuda {

namespace gemm {

template <class T, class LoadA, class LoadB, class Store>
void emulate_with(int M, int N, int K, const LoadA& a, const LoadB& b, const Store& store, Split split) {
  static float As[BK][T::BM], Bs[BK][T::BN];
  std::vector<float> ra(kThreads * T::A_LOADS), rb(kThreads * T::B_LOADS), acc(kThreads * 16);
  float* RA = ra.data();
  float* RB = rb.data();
  std::vector<typename RowsOf<LoadA>::Row> rows(kThreads * T::A_LOADS);
  auto* ROWS = rows.data();
  auto ACC = [&](int t) { return reinterpret_cast<float(*)[4]>(&acc[16 * t]); };
  const Grid grid = grid_for<T>(M, N, split);
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx) {
        const int m0 = int(bx) * T::BM, n0 = int(by) * T::BN, k_begin = int(z) * split.k_per_split;
        const int k_end = K < k_begin + split.k_per_split ? K : k_begin + split.k_per_split;
        std::fill(acc.begin(), acc.end(), 0.0f);
        for (int t = 0; t < kThreads; ++t) a_rows<T>(t, m0, M, a, ROWS + T::A_LOADS * t);
        for (int t = 0; t < kThreads; ++t)
          fetch<T>(t, m0, n0, k_begin, k_end, M, N, a, b, ROWS + T::A_LOADS * t, RA + T::A_LOADS * t,
                   RB + T::B_LOADS * t);
        for (int k0 = k_begin; k0 < k_end; k0 += BK) {
          for (int t = 0; t < kThreads; ++t) stash<T, LoadA, LoadB>(t, RA + T::A_LOADS * t, RB + T::B_LOADS * t, As, Bs);
          // __syncthreads()
          for (int t = 0; t < kThreads; ++t) {
            if (k0 + BK < k_end)
              fetch<T>(t, m0, n0, k0 + BK, k_end, M, N, a, b, ROWS + T::A_LOADS * t, RA + T::A_LOADS * t,
                       RB + T::B_LOADS * t);
            multiply<T>(t, As, Bs, ACC(t));
          }
          // __syncthreads()
        }
        for (int t = 0; t < kThreads; ++t) write<T>(t, m0, n0, M, N, ACC(t), store, z);
      }
}

// TF32 as the tensor cores see it (cvt.rna.tf32.f32): 10 mantissa bits, to nearest, ties away from zero.
HDL_HD inline float round_tf32(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7f800000u) == 0x7f800000u) return x;  // inf, nan
  u = (u + 0x1000u) & ~0x1fffu;
  std::memcpy(&x, &u, 4);
  return x;
}

// With TF32 on, the emulation rounds every operand as the tensor cores do and sums in float32 (in
// the float32 path's order, not the tensor cores'): the accuracy effect of TF32, measured without a GPU.
template <class Load>
struct Tf32 : Load {
  Tf32(const Load& l) : Load(l) {}
  HDL_HD float operator()(int r, int c) const { return round_tf32(Load::operator()(r, c)); }
  template <class Row>
  HDL_HD float at(const Row& row, int k) const { return round_tf32(Load::at(row, k)); }  // gemm::RowsOf's
};

template <class LoadA, class LoadB, class Store>
void emulate(int M, int N, int K, const LoadA& a, const LoadB& b, const Store& store, Split split) {
  if (M <= 0 || N <= 0) return;
  if (split.count <= 1) split = {K > 1 ? K : 1, 1};
  with_tile(M, N, [&](auto tile) {
    using T = decltype(tile);
    if (tf32())
      emulate_with<T>(M, N, K, Tf32<LoadA>(a), Tf32<LoadB>(b), store, split);
    else
      emulate_with<T>(M, N, K, a, b, store, split);
  });
}

}  // namespace gemm

// Fault injection (tests only): a kernel named here fails when the Host runs it, leaving the
// context's sticky error as an illegal address on a GPU would; the emulation's runtime table
// (emulate.cu) reports it from the next synchronisation or error peek.
inline std::string& injected_fault() {
  static std::string name;
  return name;
}
inline cudaError_t& sticky_error() {
  static cudaError_t e = cudaSuccess;
  return e;
}
inline void host_launched(const char* kernel) {
  if (injected_fault() == kernel) sticky_error() = cudaErrorIllegalAddress;
  launched(kernel, nullptr);
}

class HostScratch {
 public:
  explicit HostScratch(std::size_t bytes) : p_(std::malloc(bytes ? bytes : 1)) { std::memset(p_, 0xff, bytes); }
  ~HostScratch() { std::free(p_); }
  HostScratch(const HostScratch&) = delete;
  HostScratch& operator=(const HostScratch&) = delete;
  template <class T>
  T* as() const {
    return static_cast<T*>(p_);
  }

 private:
  void* p_;
};

struct Host {
  template <class F>
  void each(std::int64_t n, const F& f) const {
    if (n <= 0) return;
    enter();
    for (std::int64_t i = 0; i < n; ++i) f(i);
    host_launched(kernel_name<F>());
  }
  template <class LoadA, class LoadB, class Store>
  void gemm(int M, int N, int K, const LoadA& a, const LoadB& b, const Store& store,
            gemm::Split split = {0, 1}) const {
    static const std::string name = std::string("gemm:") + kernel_name<Store>();
    if (M <= 0 || N <= 0) return;
    enter();
    gemm::emulate(M, N, K, a, b, store, split);
    host_launched(name.c_str());
  }
  HostScratch scratch(std::size_t bytes) const { return HostScratch(bytes); }  // filled with NaN bytes
};

}  // namespace hdl::cuda
