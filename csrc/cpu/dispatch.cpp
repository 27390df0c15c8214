// Run-time choice of instruction set: the kernels of csrc/cpu/kernels/ are
// compiled once per set (CMakeLists.txt) and each public function here calls
// the copy for the best set this processor supports.
#include <cstdlib>
#include <cstring>

#include "hdl/float_mode.hpp"
#include "hdl/kernels.hpp"

#ifdef HDL_HAVE_NATIVE
#define HDL_ISA native
#include "kernels/kernels.inc"
#undef HDL_ISA
#endif
#ifdef HDL_HAVE_AVX512
#define HDL_ISA avx512
#include "kernels/kernels.inc"
#undef HDL_ISA
#endif
#ifdef HDL_HAVE_AVX2
#define HDL_ISA avx2
#include "kernels/kernels.inc"
#undef HDL_ISA
#endif
#ifdef HDL_HAVE_GENERIC
#define HDL_ISA generic
#include "kernels/kernels.inc"
#undef HDL_ISA
#endif

namespace hdl {
namespace {

enum class Isa { native, avx512, avx2, generic };

// HDL_ISA=avx2 or generic in the environment caps the choice (for tests and benchmarks).
Isa detect() {
#ifdef HDL_HAVE_NATIVE
  return Isa::native;
#else
#if defined(HDL_HAVE_AVX2) || defined(HDL_HAVE_AVX512)  // x86-64: ask the processor
  const char* cap = std::getenv("HDL_ISA");
  const bool allow512 = !cap || std::strcmp(cap, "avx512") == 0;
  const bool allow2 = allow512 || std::strcmp(cap, "avx2") == 0;
  __builtin_cpu_init();
  if (allow512 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    return Isa::avx512;
  if (allow2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2"))
    return Isa::avx2;
#endif
  return Isa::generic;  // or the one portable copy (HDL_PORTABLE, other processors)
#endif
}

Isa isa() {
  static const Isa chosen = detect();
  return chosen;
}

}  // namespace

// Each call runs with subnormals flushed (hdl/float_mode.hpp).
#ifdef HDL_HAVE_NATIVE
#define HDL_DISPATCH(call)            \
  const FloatModeGuard float_mode_; \
  return native::call
#elif !defined(HDL_HAVE_AVX2) && !defined(HDL_HAVE_AVX512)
#define HDL_DISPATCH(call)            \
  const FloatModeGuard float_mode_; \
  return generic::call
#else
#define HDL_DISPATCH(call)                  \
  const FloatModeGuard float_mode_;         \
  switch (isa()) {                          \
    case Isa::avx512: return avx512::call;  \
    case Isa::avx2: return avx2::call;      \
    default: return generic::call;          \
  }
#endif

const char* isa_name() {
  switch (isa()) {
    case Isa::native: return "native";
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    default: return "generic";
  }
}

// hdl::name<T> of every kernel of the list, calling the chosen instruction set's copy, and its
// instantiations for float and double.
#define HDL_DISPATCH_T(R, name, params, args) \
  template <class T>                          \
  R name params {                             \
    HDL_DISPATCH(name<T> args);               \
  }                                           \
  template decltype(name<float>) name<float>; \
  template decltype(name<double>) name<double>;
#define HDL_DISPATCH1(R, name, params, args) \
  R name params { HDL_DISPATCH(name args); }
HDL_KERNELS(HDL_DISPATCH_T, HDL_DISPATCH1)

}  // namespace hdl
