// NHWC convolution on the GPU as implicit GEMM (Chetlur et al. 2014, cuDNN's formulation): the
// column matrix of im2col is never stored; gemm.cuh's loaders compute its entries on the fly.
// With r = (n, i, j) an output pixel, q = (n, h, w) an input pixel and k = (u, v, c) a filter tap:
//   forward      y  (R x O) = X_col (R x K) W^T (K x O),   K = kh kw C      + b, ReLU fused
//   data grad    dx (Q x C) = dY_col (Q x K') W' (K' x C), K' = kh kw O     (a gather, no atomics)
//   filter grad  dw (O x K) = dy^T (O x R) X_col (R x K)                    (split-K, summed in order)
//   bias grad    db (O)     = sum over R of dy                              (in chunks, summed in order)
#include "exec.cuh"
#include "hdl/cuda/kernels.hpp"

namespace hdl::cuda {
namespace {

// 32-bit copy of the shape for the kernels.
struct ConvGeometry {
  int N, H, W, C, O, kh, kw, sh, sw, pt, pl, Ho, Wo;
  explicit ConvGeometry(const ConvShape& s)
      : N(int(s.N)), H(int(s.H)), W(int(s.W)), C(int(s.C)), O(int(s.O)), kh(int(s.kh)), kw(int(s.kw)), sh(int(s.sh)),
        sw(int(s.sw)), pt(int(s.pad_top)), pl(int(s.pad_left)), Ho(int(s.out_h())), Wo(int(s.out_w())) {}
};

// X_col(r, k) = x[n, i sh - pt + u, j sw - pl + v, c], 0 in the padding: contiguous along k (over c),
// in float4s where C is a multiple of 4 (four neighbours in k are then one tap of one pixel).
// It is the A operand of the forward product and the B operand of the filter gradient.
// As the A operand, the output pixel's part (its image and window corner) is computed once per tile (Row).
struct Im2col {
  const float* x;
  ConvGeometry g;
  static constexpr bool m_major = false, k_major = false, vec4 = true;
  struct Row {
    int image, h0, w0;  // x offset of image n, and the window's top-left corner (may be in the padding)
  };
  HDL_HD Row row(int r) const {
    const int j = r % g.Wo, ni = r / g.Wo, i = ni % g.Ho, n = ni / g.Ho;
    return {n * g.H * g.W * g.C, i * g.sh - g.pt, j * g.sw - g.pl};
  }
  HDL_HD float at(const Row& p, int k) const {
    const int c = k % g.C, uv = k / g.C, v = uv % g.kw, u = uv / g.kw;
    const int h = p.h0 + u, w = p.w0 + v;
    return (h >= 0 && h < g.H && w >= 0 && w < g.W) ? x[p.image + (h * g.W + w) * g.C + c] : 0.0f;
  }
  HDL_HD float operator()(int r, int k) const { return at(row(r), k); }
  bool vec4_ok() const { return gemm::aligned16(x) && g.C % 4 == 0; }
  HDL_HD float4 at4(const Row& p, int k) const {
    const int c = k % g.C, uv = k / g.C, v = uv % g.kw, u = uv / g.kw;
    const int h = p.h0 + u, w = p.w0 + v;
    return (h >= 0 && h < g.H && w >= 0 && w < g.W) ? gemm::load_float4(x + p.image + (h * g.W + w) * g.C + c)
                                                    : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  }
  HDL_HD float4 load4(int r, int k) const { return at4(row(r), k); }
};

static_assert(std::is_same_v<gemm::RowsOf<Im2col>::Row, Im2col::Row>, "the GEMM computes Im2col's rows once per tile");

// W^T(k, o) = w[o, c, u, v] with k = (u, v, c): the filters as the B operand of the forward product.
struct FiltersT {
  const float* w;
  ConvGeometry g;
  static constexpr bool k_major = true;
  HDL_HD float operator()(int k, int o) const {
    const int c = k % g.C, uv = k / g.C;
    return w[(o * g.C + c) * g.kh * g.kw + uv];  // uv = u kw + v
  }
};

// dY_col(q, k') = dy[n, i, j, o] where input pixel q = (n, h, w) sits under tap (u, v) of output
// (i, j), i.e. h = i sh - pt + u; 0 where no output pixel puts that tap on q. k' = (u, v, o): in
// float4s where O is a multiple of 4.
struct GatherDy {
  const float* dy;
  ConvGeometry g;
  static constexpr bool m_major = false, vec4 = true;
  struct Row {
    int image, hp, wp;  // dy offset of image n; the input pixel's (h + pt, w + pl)
  };
  HDL_HD Row row(int q) const {  // once per tile (gemm.cuh's RowsOf)
    const int w = q % g.W, nh = q / g.W, h = nh % g.H, n = nh / g.H;
    return {n * g.Ho * g.Wo * g.O, h + g.pt, w + g.pl};
  }
  // dy's offset of k's entry, or -1 where no output pixel puts tap (u, v) on q
  HDL_HD int offset(const Row& p, int k) const {
    const int o = k % g.O, uv = k / g.O, v = uv % g.kw, u = uv / g.kw;
    const int ii = p.hp - u, jj = p.wp - v;  // i sh, j sw
    if (ii < 0 || jj < 0 || ii % g.sh || jj % g.sw) return -1;
    const int i = ii / g.sh, j = jj / g.sw;
    return (i < g.Ho && j < g.Wo) ? p.image + (i * g.Wo + j) * g.O + o : -1;
  }
  HDL_HD float at(const Row& p, int k) const {
    const int e = offset(p, k);
    return e < 0 ? 0.0f : dy[e];
  }
  bool vec4_ok() const { return gemm::aligned16(dy) && g.O % 4 == 0; }
  HDL_HD float4 at4(const Row& p, int k) const {
    const int e = offset(p, k);
    return e < 0 ? make_float4(0.0f, 0.0f, 0.0f, 0.0f) : gemm::load_float4(dy + e);
  }
};

// W'(k', c) = w[o, c, u, v] with k' = (u, v, o)
struct Filters {
  const float* w;
  ConvGeometry g;
  static constexpr bool k_major = false;
  HDL_HD float operator()(int k, int c) const {
    const int o = k % g.O, uv = k / g.O;
    return w[(o * g.C + c) * g.kh * g.kw + uv];
  }
};

// dy^T(o, r) = dy[r, o]: contiguous along o
struct DyT {
  const float* dy;
  int O;
  static constexpr bool m_major = true, vec4 = true;
  HDL_HD float operator()(int o, int r) const { return dy[r * O + o]; }
  bool vec4_ok() const { return gemm::aligned16(dy) && O % 4 == 0; }
  HDL_HD float4 load4(int o, int r) const { return gemm::load_float4(dy + r * O + o); }
};

struct BiasRelu {  // y[r, o] = acc + b[o], then max(y, 0) on request
  float* y;
  const float* b;
  int O;
  bool relu;
  HDL_HD void operator()(int r, int o, float acc, int) const {
    const float z = acc + b[o];
    y[r * O + o] = relu && z < 0.0f ? 0.0f : z;
  }
};

struct Write {  // out[r, c] = acc
  float* out;
  int cols;
  HDL_HD void operator()(int r, int c, float acc, int) const { out[r * cols + c] = acc; }
};

struct Partial {  // part[slice, o, k] = acc over one slice of the output pixels
  float* part;
  int O, K;
  HDL_HD void operator()(int o, int k, float acc, int slice) const { part[(slice * O + o) * K + k] = acc; }
};

// dw[o, c, u, v] = sum over slices of part[slice, o, (u, v, c)], in slice order (deterministic)
struct SumPartials {
  float* dw;
  const float* part;
  int slices;
  ConvGeometry g;
  HDL_HD void operator()(std::int64_t e) const {
    const int K = g.kh * g.kw * g.C;
    const int o = int(e / K), k = int(e % K), c = k % g.C, uv = k / g.C;
    float s = 0.0f;
    for (int z = 0; z < slices; ++z) s += part[(std::int64_t(z) * g.O + o) * K + k];
    dw[(o * g.C + c) * g.kh * g.kw + uv] = s;
  }
};

// Column sums of x (rows x cols) in two passes: partial[chunk, c] over kRowsPerChunk rows (one thread
// per (chunk, c): neighbouring threads read neighbouring columns), then out[c] over the chunks.
constexpr int kRowsPerChunk = 256;
struct ColumnSumsPartial {
  float* partial;
  const float* x;
  int rows, cols;
  HDL_HD void operator()(std::int64_t e) const {
    const int chunk = int(e / cols), c = int(e % cols);
    const int r1 = rows < (chunk + 1) * kRowsPerChunk ? rows : (chunk + 1) * kRowsPerChunk;
    float s = 0.0f;
    for (int r = chunk * kRowsPerChunk; r < r1; ++r) s += x[std::int64_t(r) * cols + c];
    partial[e] = s;
  }
};
struct ColumnSumsFinal {
  float* out;
  const float* partial;
  int chunks, cols;
  HDL_HD void operator()(std::int64_t c) const {
    float s = 0.0f;
    for (int z = 0; z < chunks; ++z) s += partial[std::int64_t(z) * cols + c];
    out[c] = s;
  }
};

}  // namespace

template <class Exec>
void conv2d_forward_on(const Exec& exec, float* y, const float* x, const float* w, const float* b, const ConvShape& s,
                       bool relu) {
  const ConvGeometry g(s);
  exec.gemm(g.N * g.Ho * g.Wo, g.O, g.kh * g.kw * g.C, Im2col{x, g}, FiltersT{w, g}, BiasRelu{y, b, g.O, relu});
}

template <class Exec>
void conv2d_backward_on(const Exec& exec, float* dx, float* dw, float* db, const float* dy, const float* x,
                        const float* w, const ConvShape& s) {
  const ConvGeometry g(s);
  const int R = g.N * g.Ho * g.Wo, K = g.kh * g.kw * g.C;
  // db: column sums of dy (R x O)
  const int chunks = (R + kRowsPerChunk - 1) / kRowsPerChunk;
  auto partial = exec.scratch(sizeof(float) * std::size_t(chunks) * g.O);
  exec.each(std::int64_t(chunks) * g.O, ColumnSumsPartial{partial.template as<float>(), dy, R, g.O});
  exec.each(g.O, ColumnSumsFinal{db, partial.template as<float>(), chunks, g.O});
  // dw: few output tiles and a long reduction, so the reduction (over R) is split
  const gemm::Split split = gemm::split_for(g.O, K, R);
  auto part = exec.scratch(sizeof(float) * std::size_t(split.count) * g.O * K);
  exec.gemm(g.O, K, R, DyT{dy, g.O}, Im2col{x, g}, Partial{part.template as<float>(), g.O, K}, split);
  exec.each(std::int64_t(g.O) * K, SumPartials{dw, part.template as<float>(), split.count, g});
  // dx
  if (dx) exec.gemm(g.N * g.H * g.W, g.C, g.kh * g.kw * g.O, GatherDy{dy, g}, Filters{w, g}, Write{dx, g.C});
}

void conv2d_forward(float* y, const float* x, const float* w, const float* b, const ConvShape& s, bool relu,
                    cudaStream_t stream) {
  conv2d_forward_on(Device{stream}, y, x, w, b, s, relu);
}

void conv2d_backward(float* dx, float* dw, float* db, const float* dy, const float* x, const float* w,
                     const ConvShape& s, cudaStream_t stream) {
  conv2d_backward_on(Device{stream}, dx, dw, db, dy, x, w, s);
}

}  // namespace hdl::cuda
