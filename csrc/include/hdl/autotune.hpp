// The measured choice between a convolution's algorithms, per shape and per machine (the "autotune").
//
// A shape rule measured on one processor can be wrong on another: the direct kernel's forward pass ran
// 1.15-1.56x slower than the implicit GEMM on 128-256 channels on an Intel Xeon, and 1.04-1.16x faster on
// an AMD EPYC (Zen 4); and a rule that counts multiplications misses what a few tiles cost Winograd. So,
// where no switch forces a path (HDL_CONV_IMPLICIT, HDL_CONV_WINOGRAD=1), the first call of a shape
// times each candidate on the call's own data, keeps the fastest in this table, and every later call of
// that shape runs it. hdl.autotune saves the table per machine and loads it in the next process;
// HDL_AUTOTUNE=0 turns measuring off (the shape rules decide, as they do for products too small to time).
#pragma once
#include <array>
#include <cstdint>
#include <vector>

namespace hdl::autotune {

// What is chosen: the direct kernel or the implicit GEMM, for a convolution (the forward pass and the
// data gradient's convolutions) or for a filter gradient; for each of the three passes that Winograd
// could serve, Winograd or not (what serves the shape otherwise is then chosen as the other passes say);
// for a strided data gradient, its sub-pixel convolutions or one GEMM and a gather (col2im); and the forward
// pass's two choices again for an inference over filters that held still (filters_held below), measured
// reading them kept: without the filters' packing and transform, Winograd pays on fewer tiles (a batch of
// one 8x8 map) and the direct kernel on more shapes.
enum class Pass : int { conv = 0, filter_gradient = 1, winograd_forward = 2, winograd_data_gradient = 3,
                        winograd_filter_gradient = 4, data_gradient = 5, conv_kept = 6, winograd_forward_kept = 7 };
enum class Algorithm : int { direct = 0, implicit_gemm = 1, winograd = 2, not_winograd = 3, subpixel = 4,
                             col2im = 5 };
constexpr int kPasses = 8, kAlgorithms = 6;

// The two algorithms a pass chooses between: passes 0-1 and 6 algorithms 0-1, 2-4 and 7 2-3, 5 4-5.
constexpr int first_choice(int pass) { return pass < 2 || pass == 6 ? 0 : pass == 5 ? 4 : 2; }

// The pass an inference over held filters (filters_held below) records a forward pass's choice under.
constexpr Pass kept(Pass pass) {
  return pass == Pass::conv ? Pass::conv_kept : pass == Pass::winograd_forward ? Pass::winograd_forward_kept : pass;
}
constexpr bool pass_chooses(int pass, int algorithm) {
  return pass >= 0 && pass < kPasses && (algorithm == first_choice(pass) || algorithm == first_choice(pass) + 1);
}

// The pass, the element size, the threads, then the shape: N, Hp, Wp, C, Ho, Wo, O, kh, kw, sh, sw and
// the rows and columns of the padded input not known to be zero (lo, hi, lo, hi).
constexpr int kKeyLength = 18;
using Key = std::array<std::int64_t, kKeyLength>;

// HDL_AUTOTUNE unset or anything but "0".
bool enabled();
// The recorded choice for key, if any (false: none).
bool lookup(const Key& key, Algorithm& choice);
void record(const Key& key, Algorithm choice);
// The whole table, for hdl.autotune to save, and its emptying.
std::vector<std::pair<Key, Algorithm>> entries();
void clear();

}  // namespace hdl::autotune

namespace hdl {

// Whether this thread's convolutions may keep their transformed filters between calls (an inference pass:
// cpu/kernels/filter_cache.hpp), one switch per thread for every instruction set (autotune.cpp).
bool& keep_filters();

// Whether the filters of the forward pass now running hold the values the last inference pass over them
// saw (a sample of them: filter_cache.hpp's filters_hold), which conv2d_forward sets where keep_filters is
// on. Only then are their transforms kept and read, and the pass's algorithms chosen as for filters read
// kept (autotune::kept's passes, Winograd on few tiles): filters that a training step changes between
// inference passes run training's algorithms, whose transforms are cheap to make again.
bool& filters_held();

// Sets filters_held for a scope.
struct HoldFilters {
  bool saved;
  explicit HoldFilters(bool on) : saved(filters_held()) { filters_held() = on; }
  ~HoldFilters() { filters_held() = saved; }
  HoldFilters(const HoldFilters&) = delete;
  HoldFilters& operator=(const HoldFilters&) = delete;
};

}  // namespace hdl
