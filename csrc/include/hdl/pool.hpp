// Max and average pooling (Section 7.1) in NHWC layout, with MatConvNet's meaning
// at the border: padding never wins a max, and an average divides by the number
// of window cells inside the image. Each pad must be smaller than the window on
// its axis, so every window holds at least one image cell.
#pragma once
#include "hdl/common.hpp"

namespace hdl {

struct PoolShape {
  int64 N, H, W, C;                                // input x: (N, H, W, C)
  int64 kh, kw, sh, sw;                            // window and stride
  int64 pad_top, pad_bottom, pad_left, pad_right;  // per side
  int64 out_h() const { return (H + pad_top + pad_bottom - kh) / sh + 1; }
  int64 out_w() const { return (W + pad_left + pad_right - kw) / sw + 1; }
};

// y: (N, out_h, out_w, C) = max over each window of x; relu fuses y = max(y, 0) (the ReLU that
// follows a max pool in MatConvNet's networks). argmax (same shape as y, or null) receives the
// index r*W + q in its image of the first maximal cell (row-major) of each window, -1 where the
// fused ReLU cut the maximum (no gradient flows back there).
template <class T>
void max_pool2d_forward(T* y, std::int32_t* argmax, const T* x, const PoolShape& s, bool relu);
// dx: (N, H, W, C); each dy goes to the first maximal cell of its window (row-major order)
template <class T>
void max_pool2d_backward(T* dx, const T* dy, const T* x, const PoolShape& s);
// the same from the forward pass's argmax, without x: each cell of dx is written once
template <class T>
void max_pool2d_backward_argmax(T* dx, const T* dy, const std::int32_t* argmax, const PoolShape& s);
// y = mean over the in-image cells of each window
template <class T>
void avg_pool2d_forward(T* y, const T* x, const PoolShape& s);
template <class T>
void avg_pool2d_backward(T* dx, const T* dy, const PoolShape& s);

}  // namespace hdl
