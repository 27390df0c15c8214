// Buffer: the vector every kernel allocates its temporaries in.
#pragma once
#include <cstddef>
#include <new>
#include <vector>

namespace hdl {
namespace HDL_ISA {

// A cache line: every Buffer starts on one. malloc's 16-byte alignment let a buffer start anywhere in a line,
// so that every AVX-512 load or store of it split two lines, and which buffers did changed with the heap's
// history: Winograd's forward pass of 4 x 16x16x128 -> 128 3x3 ran 1.25 or 3.2 ms in the same process,
// before and after other layers had grown and freed their buffers.
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
