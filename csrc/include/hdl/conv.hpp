// 2-D convolution with bias (Section 7.1) in NHWC (channels-last) layout, any
// filter size, stride and per-side padding:
//   y[n, i, j, o] = b[o] + sum_{u,v,c} w[o, c, u, v] x[n, i*sh - pt + u, j*sw - pl + v, c]
// (cross-correlation as in MatConvNet and PyTorch; cells outside the image are 0).
// Filters keep PyTorch's (O, C, kh, kw) order. hdl.ops offers NCHW on top.
#pragma once
#include "hdl/common.hpp"

namespace hdl {

struct ConvShape {
  int64 N, H, W, C;  // input x: (N, H, W, C)
  int64 O, kh, kw;   // filters w: (O, C, kh, kw), bias b: (O)
  int64 sh, sw;
  int64 pad_top, pad_bottom, pad_left, pad_right;
  int64 out_h() const { return (H + pad_top + pad_bottom - kh) / sh + 1; }
  int64 out_w() const { return (W + pad_left + pad_right - kw) / sw + 1; }
};

// y: (N, out_h, out_w, O); relu fuses y = max(y, 0).
template <class T>
void conv2d_forward(T* y, const T* x, const T* w, const T* b, const ConvShape& s, bool relu);

// From dy = dC/dy (N, out_h, out_w, O): dx = dC/dx (N, H, W, C) (skipped when null),
// dw (O, C, kh, kw), db (O).
template <class T>
void conv2d_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, const ConvShape& s);

}  // namespace hdl
