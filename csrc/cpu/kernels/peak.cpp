// The machine's fused multiply-add peak in float32, measured: every thread runs
// independent chains of vector FMAs, enough to cover the latency. The benchmarks
// report their speed as a share of this figure.
#include <omp.h>

#include <chrono>
#include <vector>

#include "buffer.hpp"
#include "kernels.inc"
#include "simd.hpp"

namespace hdl {
namespace HDL_ISA {

double fma_peak_gflops(double seconds) {
  using S = Simd<float>;
  using V = S::vec;
  // Independent chains to cover the FMA latency (4 cycles, 2 pipes), without spilling the 16 registers.
  constexpr int chains = 12;
  constexpr long block = 1 << 16;
  double total_flops = 0.0, elapsed = 0.0;
  Buffer<float> results(omp_get_max_threads() * S::lanes);  // keeps every chain's value observable
#pragma omp parallel reduction(+ : total_flops) reduction(max : elapsed)
  {
    V acc[chains];
    for (int i = 0; i < chains; ++i) acc[i] = S::zero() + float(i);
    const V a = S::zero() + 0.999999f, b = S::zero() + 1e-7f;
    const auto start = std::chrono::steady_clock::now();
    long rounds = 0;
    double t = 0.0;
    do {
      for (long k = 0; k < block; ++k)
        for (int i = 0; i < chains; ++i) acc[i] = acc[i] * a + b;
      ++rounds;
      t = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    } while (t < seconds);
    V sum = S::zero();
    for (int i = 0; i < chains; ++i) sum += acc[i];
    S::store(&results[omp_get_thread_num() * S::lanes], sum);
    total_flops = double(rounds) * block * chains * S::lanes * 2.0;
    elapsed = t;
  }
  volatile float sink = 0.0f;
  for (float r : results) sink = sink + r;
  return total_flops / elapsed / 1e9;
}

}  // namespace HDL_ISA
}  // namespace hdl

HDL_INSTANTIATE(peak)
