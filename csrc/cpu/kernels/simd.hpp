// One register's vector of T through GCC's vector extensions: a zmm with AVX-512, a ymm
// with AVX2, an xmm otherwise, from the same source. (Vectors wider than the registers
// are lowered through the stack by GCC: every kernel ran 4-10x slower on AVX2 with 64 bytes.)
#pragma once
#include <cstdint>
#include <type_traits>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

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

// Bytes: a narrower vector where a kernel's channels fill no more (the direct convolution of 6 channels
// on 8 lanes of a ymm, not 16 of a zmm).
template <class T, int Bytes = kVectorBytes>
struct Simd {
  static constexpr int lanes = Bytes / sizeof(T);
  typedef T vec __attribute__((vector_size(Bytes), aligned(sizeof(T)), may_alias));
  static vec load(const T* p) { return *reinterpret_cast<const vec*>(p); }
  static void store(T* p, vec v) { *reinterpret_cast<vec*>(p) = v; }
  static vec zero() { return vec{}; }
  // int32 indices, one per lane
  typedef std::int32_t ivec __attribute__((vector_size(4 * lanes), aligned(4), may_alias));
};

// The narrowest vector (16, 32 or the register's bytes) that holds n values of T, for kernels whose
// vectors run along channels.
template <class T>
constexpr int narrowest_bytes(int64 n) {
  for (int bytes = 16; bytes < kVectorBytes; bytes *= 2)
    if (n * int64(sizeof(T)) <= bytes) return bytes;
  return kVectorBytes;
}

// p[0, n) = the first n lanes of v (0 <= n <= lanes), p[n, lanes) untouched: a masked store (AVX-512,
// AVX2), lane by lane elsewhere. (A tmp array and memcpy of n values was a library call per store.)
template <class T, int Bytes>
inline void store_first(T* p, typename Simd<T, Bytes>::vec v, int n) {
  constexpr bool f32 = std::is_same_v<T, float>;
#if defined(__AVX512F__) && defined(__AVX512VL__)
  const unsigned m = (1u << n) - 1;
  if constexpr (f32 && Bytes == 64) _mm512_mask_storeu_ps(p, __mmask16(m), (__m512)v);
  else if constexpr (f32 && Bytes == 32) _mm256_mask_storeu_ps(p, __mmask8(m), (__m256)v);
  else if constexpr (f32) _mm_mask_storeu_ps(p, __mmask8(m), (__m128)v);
  else if constexpr (Bytes == 64) _mm512_mask_storeu_pd(p, __mmask8(m), (__m512d)v);
  else if constexpr (Bytes == 32) _mm256_mask_storeu_pd(p, __mmask8(m), (__m256d)v);
  else _mm_mask_storeu_pd(p, __mmask8(m), (__m128d)v);
#elif defined(__AVX2__)
  if constexpr (f32 && Bytes == 32)
    _mm256_maskstore_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)),
                        (__m256)v);
  else if constexpr (f32) _mm_maskstore_ps(p, _mm_cmpgt_epi32(_mm_set1_epi32(n), _mm_setr_epi32(0, 1, 2, 3)), (__m128)v);
  else if constexpr (Bytes == 32)
    _mm256_maskstore_pd(p, _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3)), (__m256d)v);
  else _mm_maskstore_pd(p, _mm_cmpgt_epi64(_mm_set1_epi64x(n), _mm_set_epi64x(1, 0)), (__m128d)v);
#else
  for (int l = 0; l < n; ++l) p[l] = v[l];
#endif
}

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
