// Subnormal floats flushed to zero inside hdl's CPU kernels (as TensorFlow's thread pools do and
// torch.set_flush_denormal(True) asks): a saturated sigmoid hands the next layer values near
// 1e-40, and x86 cores take a microcode assist on every multiply that touches one. A deep sigmoid
// net whose units saturate ran its training step 12x slower (1.8 -> 17 ms, batch 256). Values
// below 1.2e-38 (float32) or 2.2e-308 (float64) become 0; nothing else changes.
//
// FloatModeGuard sets FTZ and DAZ in the calling thread's MXCSR for its lifetime and restores the
// caller's mode after, so the user's NumPy keeps IEEE subnormals. Every kernel call (dispatch.cpp)
// and every OpenMP parallel region of the kernels holds one. hdl.set_flush_denormal(False) turns
// it off.
#pragma once
#include <atomic>

#if defined(__x86_64__) || defined(_M_X64) || defined(__SSE__)
#include <xmmintrin.h>
#define HDL_HAVE_MXCSR 1
#endif

namespace hdl {

inline std::atomic<bool> flush_denormal_setting{true};

class FloatModeGuard {
 public:
  // flush: FTZ and DAZ on (the kernels), or off (a Python callback inside a compiled loop)
  explicit FloatModeGuard(bool flush = flush_denormal_setting.load(std::memory_order_relaxed)) {
#ifdef HDL_HAVE_MXCSR
    saved_ = _mm_getcsr();
    const unsigned mode = flush ? saved_ | kFlushBits : saved_ & ~kFlushBits;
    if ((changed_ = mode != saved_)) _mm_setcsr(mode);
#else
    (void)flush;  // other processors: IEEE subnormals as they come
#endif
  }
  ~FloatModeGuard() {
#ifdef HDL_HAVE_MXCSR
    if (changed_) _mm_setcsr(saved_);
#endif
  }
  FloatModeGuard(const FloatModeGuard&) = delete;
  FloatModeGuard& operator=(const FloatModeGuard&) = delete;

 private:
#ifdef HDL_HAVE_MXCSR
  static constexpr unsigned kFlushBits = 0x8000 | 0x0040;  // FTZ (results), DAZ (operands)
  unsigned saved_;
  bool changed_;
#endif
};

// Whether this build can flush (x86-64 only).
constexpr bool kCanFlushDenormals =
#ifdef HDL_HAVE_MXCSR
    true;
#else
    false;
#endif

}  // namespace hdl
