// One register's vector of T through GCC's vector extensions: a zmm with AVX-512, a ymm
// with AVX2, an xmm otherwise, from the same source. (Vectors wider than the registers
// are lowered through the stack by GCC: every kernel ran 4-10x slower on AVX2 with 64 bytes.)
#pragma once
#include <cstdint>
#include <type_traits>

#include "hdl/common.hpp"

namespace hdl {
namespace HDL_ISA {

#if defined(__AVX512F__)
constexpr int kVectorBytes = 64;
#elif defined(__AVX__)
constexpr int kVectorBytes = 32;
#else
constexpr int kVectorBytes = 16;
#endif

template <class T>
struct Simd {
  static constexpr int lanes = kVectorBytes / sizeof(T);
  typedef T vec __attribute__((vector_size(kVectorBytes), aligned(sizeof(T)), may_alias));
  static vec load(const T* p) { return *reinterpret_cast<const vec*>(p); }
  static void store(T* p, vec v) { *reinterpret_cast<vec*>(p) = v; }
  static vec zero() { return vec{}; }
  // int32 indices, one per lane
  typedef std::int32_t ivec __attribute__((vector_size(4 * lanes), aligned(4), may_alias));
};

// Loads and stores of X: a vector of T (Simd<T>::vec) or a single T, so that one loop body serves
// the vector part of a row of channels and its scalar tail.
template <class T, class X>
inline X load_as(const T* p) {
  if constexpr (std::is_same_v<X, T>) return *p;
  else return Simd<T>::load(p);
}
template <class T, class X>
inline void store_as(T* p, const X& x) {
  if constexpr (std::is_same_v<X, T>) *p = x;
  else Simd<T>::store(p, x);
}

// Output pixels per register tile: 6 x 2 vectors of accumulators, with the two filter
// vectors and a broadcast, fit the 16 registers of AVX2 and SSE (15) and leave AVX-512 room.
constexpr int kTileRows = 6;

}  // namespace HDL_ISA
}  // namespace hdl
