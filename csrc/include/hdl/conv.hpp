// 2-D convolution with bias (Section 7.1), NCHW, any filter size, stride and
// per-side padding: y[n, o, i, j] = b[o] + sum_{c,u,v} w[o, c, u, v] x[n, c, i*sh - pt + u, j*sw - pl + v]
// (cross-correlation, as in MatConvNet and PyTorch; cells outside the image are 0).
#pragma once
#include "hdl/common.hpp"

namespace hdl {

struct ConvShape {
  int64 N, C, H, W;  // input x: (N, C, H, W)
  int64 O, kh, kw;   // filters w: (O, C, kh, kw), bias b: (O)
  int64 sh, sw;
  int64 pad_top, pad_bottom, pad_left, pad_right;
  int64 out_h() const { return (H + pad_top + pad_bottom - kh) / sh + 1; }
  int64 out_w() const { return (W + pad_left + pad_right - kw) / sw + 1; }
};

// y: (N, O, out_h, out_w)
template <class T>
void conv2d_forward(T* y, const T* x, const T* w, const T* b, const ConvShape& s);

// From dy = dC/dy: dx = dC/dx (N, C, H, W) (skipped when null), dw (O, C, kh, kw), db (O).
template <class T>
void conv2d_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, const ConvShape& s);

}  // namespace hdl
