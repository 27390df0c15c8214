// The seeded generator behind every random choice of the training loops:
// xoshiro256** (Blackman & Vigna) seeded through splitmix64, and Lemire's
// unbiased bounded integers. python/hdl/reference/rng.py is its twin.
#pragma once
#include <cstdint>

namespace hdl {

// The generator's four words: all a stream is, so a run that stops can hand it to the next.
struct RngState {
  std::uint64_t s[4];
};

class Rng {
 public:
  explicit Rng(std::uint64_t seed) {
    for (auto& word : s_) word = splitmix64(seed);
  }
  explicit Rng(const RngState& state) {
    for (int i = 0; i < 4; ++i) s_[i] = state.s[i];
  }
  RngState state() const { return {{s_[0], s_[1], s_[2], s_[3]}}; }

  std::uint64_t next() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  // Uniform integer in {0, ..., n-1}, n < 2^32 (Lemire 2019, 32-bit form).
  std::uint32_t below(std::uint32_t n) {
    std::uint64_t m = (next() >> 32) * n;
    std::uint32_t low = static_cast<std::uint32_t>(m);
    if (low < n) {
      const std::uint32_t threshold = static_cast<std::uint32_t>(-n) % n;
      while (low < threshold) {
        m = (next() >> 32) * n;
        low = static_cast<std::uint32_t>(m);
      }
    }
    return static_cast<std::uint32_t>(m >> 32);
  }

  // Uniform double in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

  // Fisher-Yates shuffle of idx[0..n-1] in place.
  template <class Int>
  void shuffle(Int* idx, std::int64_t n) {
    for (std::int64_t i = n - 1; i > 0; --i) {
      const std::int64_t j = below(static_cast<std::uint32_t>(i + 1));
      const Int t = idx[i];
      idx[i] = idx[j];
      idx[j] = t;
    }
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static std::uint64_t splitmix64(std::uint64_t& x) {
    std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  std::uint64_t s_[4];
};

}  // namespace hdl
