// Shared vocabulary of the hdl kernels: plain C++17, no Python.
#pragma once
#include <cstdint>

namespace hdl {

using int64 = std::int64_t;

// Activation functions sigma of (2.1), (7.3) and Section 8, applied componentwise.
enum class Activation : int {
  linear = 0,      // sigma(z) = z
  sigmoid = 1,     // (2.1)  sigma(z) = 1 / (1 + e^-z),  sigma' = sigma (1 - sigma)  (2.2)
  relu = 2,        // (7.3)  max(0, z)
  leaky_relu = 3,  // Section 8: slope*z for z <= 0, z for z > 0
  step = 4,        // Section 8: 0 for z <= 0, 1 for z > 0 (derivative 0 almost everywhere)
  tanh = 5,        // tanh z = 2 sigma(2z) - 1,  tanh' = 1 - tanh^2 (hdl/activations.hpp's Tanh)
};

}  // namespace hdl

#if defined(__GNUC__)
#define HDL_RESTRICT __restrict__
#define HDL_ALWAYS_INLINE inline __attribute__((always_inline))  // where GCC's heuristics leave a call in a loop
#else
#define HDL_RESTRICT
#define HDL_ALWAYS_INLINE inline
#endif
