// The shapes of the convolution and pooling kernels, one definition for both backends: the structs
// the CPU and CUDA kernels take, their output extents, the checks every binding makes of them (the
// same rules and messages on both backends) and the flat form the CUDA bindings receive. Plain
// C++17, no Python: a failed check throws std::invalid_argument, which pybind11 raises as ValueError.
#pragma once
#include <stdexcept>
#include <string>
#include <vector>

#include "hdl/common.hpp"

namespace hdl {

// 2-D convolution with bias (Section 7.1) in NHWC (channels-last) layout, any filter size, stride
// and per-side padding:
//   y[n, i, j, o] = b[o] + sum_{u,v,c} w[o, c, u, v] x[n, i*sh - pt + u, j*sw - pl + v, c]
// (cross-correlation as in MatConvNet and PyTorch; cells outside the image are 0).
// Filters keep PyTorch's (O, C, kh, kw) order. hdl.ops offers NCHW on top.
struct ConvShape {
  int64 N, H, W, C;  // input x: (N, H, W, C)
  int64 O, kh, kw;   // filters w: (O, C, kh, kw), bias b: (O)
  int64 sh, sw;
  int64 pad_top, pad_bottom, pad_left, pad_right;
  int64 out_h() const { return (H + pad_top + pad_bottom - kh) / sh + 1; }
  int64 out_w() const { return (W + pad_left + pad_right - kw) / sw + 1; }
  // The fields in the order above: the flat form of the CUDA bindings (13 numbers).
  static constexpr int kFields = 13;
  std::vector<int64> fields() const { return {N, H, W, C, O, kh, kw, sh, sw, pad_top, pad_bottom, pad_left, pad_right}; }
  static ConvShape from_fields(const int64* v) {
    return {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12]};
  }
};

// Max and average pooling (Section 7.1) in NHWC layout, with MatConvNet's meaning at the border:
// padding never wins a max, and an average divides by the number of window cells inside the
// image. Each pad must be smaller than the window on its axis, so every window holds at least one
// image cell.
struct PoolShape {
  int64 N, H, W, C;                                // input x: (N, H, W, C)
  int64 kh, kw, sh, sw;                            // window and stride
  int64 pad_top, pad_bottom, pad_left, pad_right;  // per side
  int64 out_h() const { return (H + pad_top + pad_bottom - kh) / sh + 1; }
  int64 out_w() const { return (W + pad_left + pad_right - kw) / sw + 1; }
  // The fields in the order above: the flat form of the CUDA bindings (12 numbers).
  static constexpr int kFields = 12;
  std::vector<int64> fields() const { return {N, H, W, C, kh, kw, sh, sw, pad_top, pad_bottom, pad_left, pad_right}; }
  static PoolShape from_fields(const int64* v) {
    return {v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11]};
  }
};

// "(2, 3, 4)", "(5,)", as Python prints a shape; a negative extent prints as "*" (any).
inline std::string shape_str(const std::vector<int64>& dims) {
  std::string s = "(";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + (dims[i] < 0 ? "*" : std::to_string(dims[i]));
  return s + (dims.size() == 1 ? ",)" : ")");
}

inline void require_shape(bool ok, const std::string& fn, const std::string& what) {
  if (!ok) throw std::invalid_argument(fn + ": " + what);
}

// The convolution of x, extents (N, H, W, C), with filters w, extents (O, C, kh, kw), after
// checking them and the strides and pads; the messages name fn and the shapes.
inline ConvShape conv_shape(const std::string& fn, const std::vector<int64>& x, const std::vector<int64>& w, int64 sh,
                            int64 sw, int64 pt, int64 pb, int64 pl, int64 pr) {
  require_shape(x.size() == 4, fn, "x must be (N, H, W, C) (NHWC), got shape " + shape_str(x));
  require_shape(w.size() == 4, fn, "w must be (out_channels, in_channels, kh, kw), got shape " + shape_str(w));
  require_shape(w[1] == x[3], fn,
                "w " + shape_str(w) + " expects " + std::to_string(w[1]) + " input channels but x " + shape_str(x) +
                    " has " + std::to_string(x[3]));
  require_shape(sh > 0 && sw > 0, fn, "stride must be positive");
  require_shape(pt >= 0 && pb >= 0 && pl >= 0 && pr >= 0, fn, "padding must be non-negative");
  const ConvShape s{x[0], x[1], x[2], x[3], w[0], w[2], w[3], sh, sw, pt, pb, pl, pr};
  require_shape(s.N > 0 && s.C > 0 && s.O > 0 && s.kh > 0 && s.kw > 0, fn, "empty x or w");
  require_shape(s.H + pt + pb >= s.kh && s.W + pl + pr >= s.kw, fn,
                "filter " + shape_str(w) + " larger than the padded input " + shape_str(x));
  return s;
}

// The pooling of x, extents (N, H, W, C), with window (kh, kw), stride and pads, after checking them.
inline PoolShape pool_shape(const std::string& fn, const std::vector<int64>& x, int64 kh, int64 kw, int64 sh,
                            int64 sw, int64 pt, int64 pb, int64 pl, int64 pr) {
  const auto pair = [](int64 a, int64 b) { return "(" + std::to_string(a) + ", " + std::to_string(b) + ")"; };
  require_shape(x.size() == 4, fn, "x must be (N, H, W, C) (NHWC), got shape " + shape_str(x));
  require_shape(kh > 0 && kw > 0, fn, "window must be positive, got " + pair(kh, kw));
  require_shape(sh > 0 && sw > 0, fn, "stride must be positive, got " + pair(sh, sw));
  require_shape(pt >= 0 && pb >= 0 && pl >= 0 && pr >= 0, fn, "padding must be non-negative");
  require_shape(pt < kh && pb < kh && pl < kw && pr < kw, fn,
                "padding (" + std::to_string(pt) + ", " + std::to_string(pb) + ", " + std::to_string(pl) + ", " +
                    std::to_string(pr) + ") must be smaller than the window " + pair(kh, kw));
  const PoolShape s{x[0], x[1], x[2], x[3], kh, kw, sh, sw, pt, pb, pl, pr};
  require_shape(s.H + pt + pb >= kh && s.W + pl + pr >= kw, fn,
                "window " + pair(kh, kw) + " larger than the padded input " + shape_str(x));
  return s;
}

}  // namespace hdl
