// Max and average pooling on the GPU, NHWC, with MatConvNet's border rules (hdl/shapes.hpp):
// padding never wins a max, an average divides by the window's cells inside the image.
// Forward: one thread per output value (n, i, j, c), c fastest so that reads coalesce.
// Backward: one thread per input value gathers from the windows that cover it, in the CPU's order
// (rows i, then columns j); no atomics, so the result does not depend on scheduling. The max pool's
// backward either searches each window again or reads the argmax its forward pass kept; the forward
// pass can fuse the ReLU that follows (argmax -1 where the ReLU cut the maximum), as the CPU's.
#include "exec.cuh"
#include "hdl/cuda/kernels.hpp"

namespace hdl::cuda {
namespace {

struct PoolGeometry {
  int N, H, W, C, kh, kw, sh, sw, pt, pl, Ho, Wo;
  explicit PoolGeometry(const PoolShape& s)
      : N(int(s.N)), H(int(s.H)), W(int(s.W)), C(int(s.C)), kh(int(s.kh)), kw(int(s.kw)), sh(int(s.sh)),
        sw(int(s.sw)), pt(int(s.pad_top)), pl(int(s.pad_left)), Ho(int(s.out_h())), Wo(int(s.out_w())) {}
};

// The window of output (i, j) clipped to the image: rows [r0, r1), columns [c0, c1).
struct Window {
  int r0, r1, c0, c1;
  HDL_HD Window(const PoolGeometry& g, int i, int j) {
    const int r = i * g.sh - g.pt, c = j * g.sw - g.pl;
    r0 = r > 0 ? r : 0, r1 = r + g.kh < g.H ? r + g.kh : g.H;
    c0 = c > 0 ? c : 0, c1 = c + g.kw < g.W ? c + g.kw : g.W;
  }
  HDL_HD int cells() const { return (r1 - r0) * (c1 - c0); }
};

// The first maximal cell (row-major) of channel c in window w of one image, and its value.
struct Argmax {
  int row, col;
  float value;
};
HDL_HD inline Argmax first_max(const float* image, const Window& w, const PoolGeometry& g, int c) {
  Argmax best{w.r0, w.c0, image[(w.r0 * g.W + w.c0) * g.C + c]};
  for (int r = w.r0; r < w.r1; ++r)
    for (int q = w.c0; q < w.c1; ++q) {
      const float v = image[(r * g.W + q) * g.C + c];
      if (v > best.value) best = {r, q, v};
    }
  return best;
}

// The outputs i whose windows hold input row h (i sh - pad <= h < i sh - pad + k), as [first, last].
struct Range {
  int first, last;
};
HDL_HD inline Range covering(int h, int k, int s, int pad, int out) {
  const int last = (h + pad) / s;                                    // largest i with i s - pad <= h
  const int first = h + pad - k + 1 <= 0 ? 0 : (h + pad - k + s) / s;  // smallest i with i s - pad + k > h
  return {first, last < out - 1 ? last : out - 1};
}

// Output index e = ((n Ho + i) Wo + j) C + c, or input index e = ((n H + h) W + w) C + c, as (n, row, col, c).
struct Pixel {
  int n, row, col, c;
  HDL_HD Pixel(std::int64_t e, int rows, int cols, int C) {
    c = int(e % C);
    const std::int64_t p = e / C;
    col = int(p % cols), row = int((p / cols) % rows), n = int(p / (std::int64_t(cols) * rows));
  }
};

struct MaxForward {  // y = max over the window (then max(y, 0) with relu); argmax = r W + q of it, or -1
  float* y;
  std::int32_t* argmax;  // may be null
  const float* x;
  PoolGeometry g;
  bool relu;
  HDL_HD void operator()(std::int64_t e) const {
    const Pixel p(e, g.Ho, g.Wo, g.C);
    const Argmax best = first_max(x + std::int64_t(p.n) * g.H * g.W * g.C, Window(g, p.row, p.col), g, p.c);
    const bool cut = relu && !(best.value > 0.0f);  // the fused ReLU: no gradient flows back here
    y[e] = cut ? 0.0f : best.value;
    if (argmax) argmax[e] = cut ? -1 : best.row * g.W + best.col;
  }
};

struct MaxBackward {  // dx = the sum of the dy whose window has its first maximum here
  float* dx;
  const float *dy, *x;
  PoolGeometry g;
  HDL_HD void operator()(std::int64_t e) const {
    const Pixel p(e, g.H, g.W, g.C);
    const float* image = x + std::int64_t(p.n) * g.H * g.W * g.C;
    const Range is = covering(p.row, g.kh, g.sh, g.pt, g.Ho), js = covering(p.col, g.kw, g.sw, g.pl, g.Wo);
    float sum = 0.0f;
    for (int i = is.first; i <= is.last; ++i)
      for (int j = js.first; j <= js.last; ++j) {
        const Argmax at = first_max(image, Window(g, i, j), g, p.c);
        if (at.row == p.row && at.col == p.col) sum += dy[((std::int64_t(p.n) * g.Ho + i) * g.Wo + j) * g.C + p.c];
      }
    dx[e] = sum;
  }
};

struct MaxBackwardArgmax {  // dx = the sum of the dy whose window's argmax is this cell (no window search)
  float* dx;
  const float* dy;
  const std::int32_t* argmax;
  PoolGeometry g;
  HDL_HD void operator()(std::int64_t e) const {
    const Pixel p(e, g.H, g.W, g.C);
    const Range is = covering(p.row, g.kh, g.sh, g.pt, g.Ho), js = covering(p.col, g.kw, g.sw, g.pl, g.Wo);
    const int here = p.row * g.W + p.col;
    float sum = 0.0f;
    for (int i = is.first; i <= is.last; ++i)
      for (int j = js.first; j <= js.last; ++j) {
        const std::int64_t at = ((std::int64_t(p.n) * g.Ho + i) * g.Wo + j) * g.C + p.c;
        if (argmax[at] == here) sum += dy[at];
      }
    dx[e] = sum;
  }
};

struct AvgForward {  // y = mean over the window's cells inside the image
  float* y;
  const float* x;
  PoolGeometry g;
  HDL_HD void operator()(std::int64_t e) const {
    const Pixel p(e, g.Ho, g.Wo, g.C);
    const float* image = x + std::int64_t(p.n) * g.H * g.W * g.C;
    const Window w(g, p.row, p.col);
    float sum = 0.0f;
    for (int r = w.r0; r < w.r1; ++r)
      for (int q = w.c0; q < w.c1; ++q) sum += image[(r * g.W + q) * g.C + p.c];
    y[e] = sum * (1.0f / float(w.cells()));
  }
};

struct AvgBackward {  // dx = sum over covering windows of dy / cells
  float* dx;
  const float* dy;
  PoolGeometry g;
  HDL_HD void operator()(std::int64_t e) const {
    const Pixel p(e, g.H, g.W, g.C);
    const Range is = covering(p.row, g.kh, g.sh, g.pt, g.Ho), js = covering(p.col, g.kw, g.sw, g.pl, g.Wo);
    float sum = 0.0f;
    for (int i = is.first; i <= is.last; ++i)
      for (int j = js.first; j <= js.last; ++j)
        sum += (1.0f / float(Window(g, i, j).cells())) * dy[((std::int64_t(p.n) * g.Ho + i) * g.Wo + j) * g.C + p.c];
    dx[e] = sum;
  }
};

std::int64_t outputs(const PoolGeometry& g) { return std::int64_t(g.N) * g.Ho * g.Wo * g.C; }
std::int64_t inputs(const PoolGeometry& g) { return std::int64_t(g.N) * g.H * g.W * g.C; }

}  // namespace

template <class Exec>
void max_pool2d_forward_on(const Exec& exec, float* y, std::int32_t* argmax, const float* x, const PoolShape& s,
                           bool relu) {
  const PoolGeometry g(s);
  exec.each(outputs(g), MaxForward{y, argmax, x, g, relu});
}
template <class Exec>
void max_pool2d_backward_argmax_on(const Exec& exec, float* dx, const float* dy, const std::int32_t* argmax,
                                   const PoolShape& s) {
  const PoolGeometry g(s);
  exec.each(inputs(g), MaxBackwardArgmax{dx, dy, argmax, g});
}
template <class Exec>
void max_pool2d_backward_on(const Exec& exec, float* dx, const float* dy, const float* x, const PoolShape& s) {
  const PoolGeometry g(s);
  exec.each(inputs(g), MaxBackward{dx, dy, x, g});
}
template <class Exec>
void avg_pool2d_forward_on(const Exec& exec, float* y, const float* x, const PoolShape& s) {
  const PoolGeometry g(s);
  exec.each(outputs(g), AvgForward{y, x, g});
}
template <class Exec>
void avg_pool2d_backward_on(const Exec& exec, float* dx, const float* dy, const PoolShape& s) {
  const PoolGeometry g(s);
  exec.each(inputs(g), AvgBackward{dx, dy, g});
}

void max_pool2d_forward(float* y, std::int32_t* argmax, const float* x, const PoolShape& s, bool relu,
                        cudaStream_t stream) {
  max_pool2d_forward_on(Device{stream}, y, argmax, x, s, relu);
}
void max_pool2d_backward_argmax(float* dx, const float* dy, const std::int32_t* argmax, const PoolShape& s,
                                cudaStream_t stream) {
  max_pool2d_backward_argmax_on(Device{stream}, dx, dy, argmax, s);
}
void max_pool2d_backward(float* dx, const float* dy, const float* x, const PoolShape& s, cudaStream_t stream) {
  max_pool2d_backward_on(Device{stream}, dx, dy, x, s);
}
void avg_pool2d_forward(float* y, const float* x, const PoolShape& s, cudaStream_t stream) {
  avg_pool2d_forward_on(Device{stream}, y, x, s);
}
void avg_pool2d_backward(float* dx, const float* dy, const PoolShape& s, cudaStream_t stream) {
  avg_pool2d_backward_on(Device{stream}, dx, dy, s);
}

}  // namespace hdl::cuda
