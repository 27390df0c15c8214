// The Host executor (see exec.cuh): the kernels' __host__ __device__ bodies run on the CPU, for
// tests only (tests/cuda_emu/emulate.cu), with the launch checks of the Device executor. gemm::emulate walks the blocks of gemm_kernel's grid and,
// inside a block, the 256 threads phase by phase between the barriers, calling the same fetch,
// stash, multiply and write as the kernel, float4 groups and both shared-memory stages included (the
// float32 path; TF32 needs tensor cores).
#pragma once
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "exec.cuh"

namespace hdl::cuda {

namespace gemm {

// gemm_kernel's k_loop for every thread of a block, phase by phase. The stage about to be stashed is
// filled with NaN first, so that a cell no thread stores (or a stage read while it is written) shows.
template <class T, class LoadA, class LoadB, class Store>
void emulate_with(int M, int N, int K, const LoadA& a, const LoadB& b, const Store& store, Split split) {
  static float As[2][BK][T::BM], Bs[2][BK][T::BN];
  const bool va = use_vec4<T::A_LOADS>(a), vb = use_vec4<T::B_LOADS>(b);
  std::vector<float> ra(kThreads * T::A_LOADS), rb(kThreads * T::B_LOADS), acc(kThreads * 16);
  std::vector<typename RowsOf<LoadA>::Row> rows(kThreads * T::A_LOADS);
  auto RA = [&](int t) { return &ra[T::A_LOADS * t]; };
  auto RB = [&](int t) { return &rb[T::B_LOADS * t]; };
  auto ROWS = [&](int t) { return &rows[T::A_LOADS * t]; };
  auto ACC = [&](int t) { return reinterpret_cast<float(*)[4]>(&acc[16 * t]); };
  auto poison = [](int s) {
    std::fill(&As[s][0][0], &As[s][0][0] + BK * T::BM, std::numeric_limits<float>::quiet_NaN());
    std::fill(&Bs[s][0][0], &Bs[s][0][0] + BK * T::BN, std::numeric_limits<float>::quiet_NaN());
  };
  const Grid grid = grid_for<T>(M, N, split);
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx) {
        const int m0 = int(bx) * T::BM, n0 = int(by) * T::BN, k_begin = int(z) * split.k_per_split;
        const int k_end = K < k_begin + split.k_per_split ? K : k_begin + split.k_per_split;
        std::fill(acc.begin(), acc.end(), 0.0f);
        poison(0);
        for (int t = 0; t < kThreads; ++t) {
          a_rows<T>(t, m0, M, a, va, ROWS(t));
          fetch<T>(t, m0, n0, k_begin, k_end, M, N, a, b, va, vb, ROWS(t), RA(t), RB(t));
          stash<T, LoadA, LoadB>(t, va, vb, RA(t), RB(t), As[0], Bs[0]);
        }
        // __syncthreads()
        for (int k0 = k_begin, s = 0; k0 < k_end; k0 += BK, s ^= 1) {
          const bool next = k0 + BK < k_end;
          if (next) poison(s ^ 1);
          for (int t = 0; t < kThreads; ++t) {
            if (next) fetch<T>(t, m0, n0, k0 + BK, k_end, M, N, a, b, va, vb, ROWS(t), RA(t), RB(t));
            multiply<T>(t, As[s], Bs[s], ACC(t));
            if (next) stash<T, LoadA, LoadB>(t, va, vb, RA(t), RB(t), As[s ^ 1], Bs[s ^ 1]);
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
HDL_HD inline float4 round_tf32(float4 v) {
  return make_float4(round_tf32(v.x), round_tf32(v.y), round_tf32(v.z), round_tf32(v.w));
}
template <class Load>
struct Tf32 : Load {
  Tf32(const Load& l) : Load(l) {}
  HDL_HD float operator()(int r, int c) const { return round_tf32(Load::operator()(r, c)); }
  template <class Row>
  HDL_HD float at(const Row& row, int k) const { return round_tf32(Load::at(row, k)); }  // gemm::RowsOf's
  HDL_HD float4 load4(int r, int c) const { return round_tf32(Load::load4(r, c)); }
  template <class Row>
  HDL_HD float4 at4(const Row& row, int k) const { return round_tf32(Load::at4(row, k)); }
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
