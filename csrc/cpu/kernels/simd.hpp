// A 64-byte vector of T through GCC's vector extensions: one zmm register with
// AVX-512, two ymm with AVX2, four xmm otherwise, from the same source.
#pragma once
#include <cstdint>
#include <type_traits>

#include "hdl/common.hpp"

namespace hdl {
namespace HDL_ISA {

template <class T>
struct Simd {
  static constexpr int lanes = 64 / sizeof(T);
  typedef T vec __attribute__((vector_size(64), aligned(sizeof(T)), may_alias));
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

// Output pixels per register tile: 6 x 2 vectors of accumulators fill AVX-512's 32
// registers well; with 16 registers (AVX2 and below) 2 x 2 vectors (8 halves) fit.
#if defined(__AVX512F__)
constexpr int kTileRows = 6;
#else
constexpr int kTileRows = 2;
#endif

}  // namespace HDL_ISA
}  // namespace hdl
