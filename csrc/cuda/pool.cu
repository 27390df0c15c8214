// Max and average pooling on the GPU, NHWC, with MatConvNet's border rules (hdl/pool.hpp):
// padding never wins a max, an average divides by the window's cells inside the image.
// Forward: one thread per output value (n, i, j, c), c fastest so that reads coalesce.
// Backward: one thread per input value gathers from the windows that cover it; no atomics, so the
// result does not depend on scheduling.
#include "hdl/cuda/kernels.hpp"
#include "launch.cuh"

namespace hdl::cuda {
namespace {

struct Geometry {
  int N, H, W, C, kh, kw, sh, sw, pt, pl, Ho, Wo;
  explicit Geometry(const PoolShape& s)
      : N(int(s.N)), H(int(s.H)), W(int(s.W)), C(int(s.C)), kh(int(s.kh)), kw(int(s.kw)), sh(int(s.sh)),
        sw(int(s.sw)), pt(int(s.pad_top)), pl(int(s.pad_left)), Ho(int(s.out_h())), Wo(int(s.out_w())) {}
};

// The window of output (i, j) clipped to the image: rows [r0, r1), columns [c0, c1).
struct Window {
  int r0, r1, c0, c1;
  __device__ Window(const Geometry& g, int i, int j) {
    const int r = i * g.sh - g.pt, c = j * g.sw - g.pl;
    r0 = max(r, 0), r1 = min(r + g.kh, g.H), c0 = max(c, 0), c1 = min(c + g.kw, g.W);
  }
  __device__ int cells() const { return (r1 - r0) * (c1 - c0); }
};

// Position (row, column) of the first maximal cell of the window in row-major order, as the CPU's.
__device__ inline int2 first_max(const float* image, const Window& w, const Geometry& g, int c, float* best_out) {
  float best = image[(w.r0 * g.W + w.c0) * g.C + c];
  int2 at = make_int2(w.r0, w.c0);
  for (int r = w.r0; r < w.r1; ++r)
    for (int q = w.c0; q < w.c1; ++q) {
      const float v = image[(r * g.W + q) * g.C + c];
      if (v > best) best = v, at = make_int2(r, q);
    }
  if (best_out) *best_out = best;
  return at;
}

__global__ void max_pool_forward_kernel(float* y, const float* x, Geometry g) {
  HDL_GRID_STRIDE(e, std::int64_t(g.N) * g.Ho * g.Wo * g.C) {
    const int c = int(e % g.C), p = int(e / g.C), j = p % g.Wo, i = (p / g.Wo) % g.Ho, n = p / (g.Wo * g.Ho);
    float best;
    first_max(x + std::int64_t(n) * g.H * g.W * g.C, Window(g, i, j), g, c, &best);
    y[e] = best;
  }
}

// The output rows i whose windows hold input row h: i sh - pt <= h < i sh - pt + kh.
__device__ inline int2 covering(int h, int k, int s, int pad, int out) {
  const int hi = (h + pad) / s;                                   // largest i with i s - pad <= h
  const int lo = h + pad - k + 1 <= 0 ? 0 : (h + pad - k + s) / s;  // smallest i with i s - pad + k > h
  return make_int2(lo, min(hi, out - 1));
}

__global__ void max_pool_backward_kernel(float* dx, const float* dy, const float* x, Geometry g) {
  HDL_GRID_STRIDE(e, std::int64_t(g.N) * g.H * g.W * g.C) {
    const int c = int(e % g.C), p = int(e / g.C), w = p % g.W, h = (p / g.W) % g.H, n = p / (g.W * g.H);
    const float* image = x + std::int64_t(n) * g.H * g.W * g.C;
    const int2 is = covering(h, g.kh, g.sh, g.pt, g.Ho), js = covering(w, g.kw, g.sw, g.pl, g.Wo);
    float sum = 0.0f;
    for (int i = is.x; i <= is.y; ++i)
      for (int j = js.x; j <= js.y; ++j) {
        const int2 at = first_max(image, Window(g, i, j), g, c, nullptr);
        if (at.x == h && at.y == w) sum += dy[((std::int64_t(n) * g.Ho + i) * g.Wo + j) * g.C + c];
      }
    dx[e] = sum;
  }
}

__global__ void avg_pool_forward_kernel(float* y, const float* x, Geometry g) {
  HDL_GRID_STRIDE(e, std::int64_t(g.N) * g.Ho * g.Wo * g.C) {
    const int c = int(e % g.C), p = int(e / g.C), j = p % g.Wo, i = (p / g.Wo) % g.Ho, n = p / (g.Wo * g.Ho);
    const float* image = x + std::int64_t(n) * g.H * g.W * g.C;
    const Window w(g, i, j);
    float sum = 0.0f;
    for (int r = w.r0; r < w.r1; ++r)
      for (int q = w.c0; q < w.c1; ++q) sum += image[(r * g.W + q) * g.C + c];
    y[e] = sum * (1.0f / float(w.cells()));
  }
}

__global__ void avg_pool_backward_kernel(float* dx, const float* dy, Geometry g) {
  HDL_GRID_STRIDE(e, std::int64_t(g.N) * g.H * g.W * g.C) {
    const int c = int(e % g.C), p = int(e / g.C), w = p % g.W, h = (p / g.W) % g.H, n = p / (g.W * g.H);
    const int2 is = covering(h, g.kh, g.sh, g.pt, g.Ho), js = covering(w, g.kw, g.sw, g.pl, g.Wo);
    float sum = 0.0f;
    for (int i = is.x; i <= is.y; ++i)
      for (int j = js.x; j <= js.y; ++j)
        sum += dy[((std::int64_t(n) * g.Ho + i) * g.Wo + j) * g.C + c] * (1.0f / float(Window(g, i, j).cells()));
    dx[e] = sum;
  }
}

}  // namespace

void max_pool2d_forward(float* y, const float* x, const PoolShape& s, cudaStream_t stream) {
  const Geometry g(s);
  max_pool_forward_kernel<<<blocks_for(std::int64_t(g.N) * g.Ho * g.Wo * g.C), kThreads, 0, stream>>>(y, x, g);
  HDL_CUDA_LAUNCHED();
}

void max_pool2d_backward(float* dx, const float* dy, const float* x, const PoolShape& s, cudaStream_t stream) {
  const Geometry g(s);
  max_pool_backward_kernel<<<blocks_for(std::int64_t(g.N) * g.H * g.W * g.C), kThreads, 0, stream>>>(dx, dy, x, g);
  HDL_CUDA_LAUNCHED();
}

void avg_pool2d_forward(float* y, const float* x, const PoolShape& s, cudaStream_t stream) {
  const Geometry g(s);
  avg_pool_forward_kernel<<<blocks_for(std::int64_t(g.N) * g.Ho * g.Wo * g.C), kThreads, 0, stream>>>(y, x, g);
  HDL_CUDA_LAUNCHED();
}

void avg_pool2d_backward(float* dx, const float* dy, const PoolShape& s, cudaStream_t stream) {
  const Geometry g(s);
  avg_pool_backward_kernel<<<blocks_for(std::int64_t(g.N) * g.H * g.W * g.C), kThreads, 0, stream>>>(dx, dy, g);
  HDL_CUDA_LAUNCHED();
}

}  // namespace hdl::cuda
