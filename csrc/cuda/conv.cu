// NHWC convolution on the GPU as implicit GEMM (Chetlur et al. 2014, cuDNN's formulation): the
// column matrix of im2col is never stored; gemm.cuh's loaders compute its entries on the fly.
// With r = (n, i, j) an output pixel, q = (n, h, w) an input pixel and k = (u, v, c) a filter tap:
//   forward      y  (R x O)     = X_col (R x K) W^T (K x O),  K = kh kw C      + b, ReLU fused
//   data grad    dx (Q x C)     = dY_col (Q x K') W' (K' x C), K' = kh kw O     (a gather, no atomics)
//   filter grad  dw (O x K)     = dy^T (O x R) X_col (R x K)                    (split-K, summed in order)
//   bias grad    db (O)         = sum over R of dy
#include "gemm.cuh"
#include "hdl/cuda/kernels.hpp"
#include "launch.cuh"

namespace hdl::cuda {
namespace {

// 32-bit copy of the shape for the kernels.
struct Geometry {
  int N, H, W, C, O, kh, kw, sh, sw, pt, pl, Ho, Wo;
  explicit Geometry(const ConvShape& s)
      : N(int(s.N)), H(int(s.H)), W(int(s.W)), C(int(s.C)), O(int(s.O)), kh(int(s.kh)), kw(int(s.kw)), sh(int(s.sh)),
        sw(int(s.sw)), pt(int(s.pad_top)), pl(int(s.pad_left)), Ho(int(s.out_h())), Wo(int(s.out_w())) {}
};

// X_col(r, k) = x[n, i sh - pt + u, j sw - pl + v, c], 0 in the padding: contiguous along k (over c).
struct Im2col {
  const float* x;
  Geometry g;
  static constexpr bool m_major = false;  // contiguous along k (over c)
  __device__ float operator()(int r, int k) const {
    const int c = k % g.C, uv = k / g.C, v = uv % g.kw, u = uv / g.kw;
    const int j = r % g.Wo, ni = r / g.Wo, i = ni % g.Ho, n = ni / g.Ho;
    const int h = i * g.sh - g.pt + u, w = j * g.sw - g.pl + v;
    return (h >= 0 && h < g.H && w >= 0 && w < g.W) ? x[((n * g.H + h) * g.W + w) * g.C + c] : 0.0f;
  }
};
// As B(r, k) of the filter gradient the loader is the same function of (row, column).
struct Im2colB : Im2col {
  static constexpr bool k_major = false;  // contiguous along the column index k
};

// W^T(k, o) = w[o, c, u, v] with k = (u, v, c): the filters as the B operand of the forward product.
struct FiltersT {
  const float* w;
  Geometry g;
  static constexpr bool k_major = true;
  __device__ float operator()(int k, int o) const {
    const int c = k % g.C, uv = k / g.C;
    return w[(o * g.C + c) * g.kh * g.kw + uv];  // uv = u kw + v
  }
};

// dY_col(q, k') = dy[n, i, j, o] where input pixel q = (n, h, w) sits under tap (u, v) of output
// (i, j), i.e. h = i sh - pt + u; 0 where no output pixel puts that tap on q. k' = (u, v, o).
struct GatherDy {
  const float* dy;
  Geometry g;
  static constexpr bool m_major = false;
  __device__ float operator()(int q, int k) const {
    const int o = k % g.O, uv = k / g.O, v = uv % g.kw, u = uv / g.kw;
    const int w = q % g.W, nh = q / g.W, h = nh % g.H, n = nh / g.H;
    const int ii = h + g.pt - u, jj = w + g.pl - v;  // i sh, j sw
    if (ii < 0 || jj < 0 || ii % g.sh || jj % g.sw) return 0.0f;
    const int i = ii / g.sh, j = jj / g.sw;
    return (i < g.Ho && j < g.Wo) ? dy[((n * g.Ho + i) * g.Wo + j) * g.O + o] : 0.0f;
  }
};

// W'(k', c) = w[o, c, u, v] with k' = (u, v, o)
struct Filters {
  const float* w;
  Geometry g;
  static constexpr bool k_major = false;
  __device__ float operator()(int k, int c) const {
    const int o = k % g.O, uv = k / g.O;
    return w[(o * g.C + c) * g.kh * g.kw + uv];
  }
};

// dy^T(o, r) = dy[r, o]: contiguous along o
struct DyT {
  const float* dy;
  int O;
  static constexpr bool m_major = true;
  __device__ float operator()(int o, int r) const { return dy[r * O + o]; }
};

struct BiasRelu {  // y[r, o] = acc + b[o], then max(y, 0) on request
  float* y;
  const float* b;
  int O;
  bool relu;
  __device__ void operator()(int r, int o, float acc, int) const {
    const float z = acc + b[o];
    y[r * O + o] = relu && z < 0.0f ? 0.0f : z;
  }
};

struct Write {  // out[r, c] = acc
  float* out;
  int cols;
  __device__ void operator()(int r, int c, float acc, int) const { out[r * cols + c] = acc; }
};

struct Partial {  // part[slice, o, k] = acc over one slice of the output pixels
  float* part;
  int O, K;
  __device__ void operator()(int o, int k, float acc, int slice) const { part[(slice * O + o) * K + k] = acc; }
};

// dw[o, c, u, v] = sum over slices of part[slice, o, (u, v, c)], in slice order (deterministic)
__global__ void sum_partials_kernel(float* dw, const float* part, int slices, Geometry g) {
  const int K = g.kh * g.kw * g.C;
  HDL_GRID_STRIDE(e, std::int64_t(g.O) * K) {
    const int o = int(e / K), k = int(e % K), c = k % g.C, uv = k / g.C;
    float s = 0.0f;
    for (int z = 0; z < slices; ++z) s += part[(std::int64_t(z) * g.O + o) * K + k];
    dw[(o * g.C + c) * g.kh * g.kw + uv] = s;
  }
}

// partial[chunk, c] = sum of x[r, c] over the rows of one chunk; then out[c] = sum over chunks.
constexpr int kRowsPerChunk = 512;
__global__ void column_sums_partial_kernel(float* partial, const float* x, int rows, int cols) {
  __shared__ float s[8][33];
  const int c = blockIdx.x * 32 + threadIdx.x, r0 = blockIdx.y * kRowsPerChunk;
  const int r1 = min(rows, r0 + kRowsPerChunk);
  float acc = 0.0f;
  if (c < cols)
    for (int r = r0 + threadIdx.y; r < r1; r += 8) acc += x[std::int64_t(r) * cols + c];
  s[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && c < cols) {
    for (int y = 1; y < 8; ++y) acc += s[y][threadIdx.x];
    partial[std::int64_t(blockIdx.y) * cols + c] = acc;
  }
}

__global__ void column_sums_final_kernel(float* out, const float* partial, int chunks, int cols) {
  HDL_GRID_STRIDE(c, cols) {
    float acc = 0.0f;
    for (int z = 0; z < chunks; ++z) acc += partial[std::int64_t(z) * cols + c];
    out[c] = acc;
  }
}

void column_sums(float* out, const float* x, int rows, int cols, cudaStream_t stream) {
  const int chunks = (rows + kRowsPerChunk - 1) / kRowsPerChunk;
  Scratch partial(sizeof(float) * std::size_t(chunks) * cols);
  column_sums_partial_kernel<<<dim3((cols + 31) / 32, chunks), dim3(32, 8), 0, stream>>>(partial.as<float>(), x,
                                                                                          rows, cols);
  HDL_CUDA_LAUNCHED();
  column_sums_final_kernel<<<blocks_for(cols), kThreads, 0, stream>>>(out, partial.as<float>(), chunks, cols);
  HDL_CUDA_LAUNCHED();
}

}  // namespace

void conv2d_forward(float* y, const float* x, const float* w, const float* b, const ConvShape& s, bool relu,
                    cudaStream_t stream) {
  const Geometry g(s);
  const int R = g.N * g.Ho * g.Wo, K = g.kh * g.kw * g.C;
  gemm::run(stream, R, g.O, K, Im2col{x, g}, FiltersT{w, g}, BiasRelu{y, b, g.O, relu});
}

void conv2d_backward(float* dx, float* dw, float* db, const float* dy, const float* x, const float* w,
                     const ConvShape& s, cudaStream_t stream) {
  const Geometry g(s);
  const int R = g.N * g.Ho * g.Wo, K = g.kh * g.kw * g.C;
  column_sums(db, dy, R, g.O, stream);
  // filter gradient: few output tiles and a long reduction, so K of this product (R) is split
  const gemm::Split split = gemm::split_for(g.O, K, R);
  Scratch part(sizeof(float) * std::size_t(split.count) * g.O * K);
  gemm::run(stream, g.O, K, R, DyT{dy, g.O}, Im2colB{x, g}, Partial{part.as<float>(), g.O, K}, split);
  sum_partials_kernel<<<blocks_for(std::int64_t(g.O) * K), kThreads, 0, stream>>>(dw, part.as<float>(), split.count,
                                                                                  g);
  HDL_CUDA_LAUNCHED();
  if (dx) gemm::run(stream, g.N * g.H * g.W, g.C, g.kh * g.kw * g.O, GatherDy{dy, g}, Filters{w, g}, Write{dx, g.C});
}

}  // namespace hdl::cuda
