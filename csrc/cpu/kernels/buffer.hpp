// Buffer: the vector every kernel allocates its temporaries in.
#pragma once
#include <cstddef>
#include <new>
#include <vector>

namespace hdl {
namespace HDL_ISA {

// A cache line: every Buffer starts on one, so that no full-width vector load or store of a buffer splits
// two lines (malloc aligns to 16 bytes: then every AVX-512 access of a buffer of floats did).
constexpr std::size_t kBufferAlignment = 64;

// std::vector's allocator, aligned to kBufferAlignment, in this instruction set's namespace, so that the
// vector's member functions are instantiated apart for each instruction set: the linker keeps one copy of
// std::vector<float>'s, from whichever object comes first, which may be the AVX-512 one (an illegal
// instruction on AVX2).
template <class T>
struct IsaAllocator {
  using value_type = T;
  IsaAllocator() = default;
  template <class U>
  IsaAllocator(const IsaAllocator<U>&) {}
  T* allocate(std::size_t n) {
    return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(kBufferAlignment)));
  }
  void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, std::align_val_t(kBufferAlignment)); }
  template <class U>
  bool operator==(const IsaAllocator<U>&) const { return true; }
  template <class U>
  bool operator!=(const IsaAllocator<U>&) const { return false; }
};
template <class T>
using Buffer = std::vector<T, IsaAllocator<T>>;

}  // namespace HDL_ISA
}  // namespace hdl
