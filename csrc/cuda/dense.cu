// Fully connected layers on the GPU (Sections 2-5), batch in columns, forward and backward side
// by side; the products are gemm.cuh's tiles with the bias and activation in the epilogue.
#include "exec.cuh"
#include "hdl/cuda/kernels.hpp"

namespace hdl::cuda {
namespace {

// sigma(z) (2.1), (7.3), Section 8
HDL_HD inline float sigma(float z, Activation act, float slope) {
  switch (act) {
    case Activation::sigmoid: return 1.0f / (1.0f + expf(-z));
    case Activation::relu: return z > 0.0f ? z : 0.0f;
    case Activation::leaky_relu: return z > 0.0f ? z : slope * z;
    case Activation::step: return z > 0.0f ? 1.0f : 0.0f;
    case Activation::tanh: return 2.0f / (1.0f + expf(-2.0f * z)) - 1.0f;  // hdl/activations.hpp's Tanh
    default: return z;
  }
}

// sigma'(z) g, with sigma'(z) written through a = sigma(z) (2.2)
HDL_HD inline float sigma_prime_times(float g, float a, Activation act, float slope) {
  switch (act) {
    case Activation::sigmoid: return g * a * (1.0f - a);
    case Activation::relu: return a > 0.0f ? g : 0.0f;
    case Activation::leaky_relu: return a > 0.0f ? g : slope * g;
    case Activation::step: return 0.0f;
    case Activation::tanh: return g * (1.0f - a * a);
    default: return g;
  }
}

// A row-major matrix p with `cols` columns, read as stored (Plain: X(r, c) = p[r, c], contiguous
// in the second index) or transposed (Transposed: X(r, c) = p[c, r], contiguous in the first);
// in float4s where p and its rows are 16-byte aligned (gemm.cuh).
struct Plain {
  const float* p;
  int cols;
  static constexpr bool m_major = false, k_major = false, vec4 = true;
  HDL_HD float operator()(int r, int c) const { return p[r * cols + c]; }
  bool vec4_ok() const { return gemm::aligned16(p) && cols % 4 == 0; }
  HDL_HD float4 load4(int r, int c) const { return gemm::load_float4(p + r * cols + c); }
};
struct Transposed {
  const float* p;
  int cols;
  static constexpr bool m_major = true, k_major = true, vec4 = true;
  HDL_HD float operator()(int r, int c) const { return p[c * cols + r]; }
  bool vec4_ok() const { return gemm::aligned16(p) && cols % 4 == 0; }
  HDL_HD float4 load4(int r, int c) const { return gemm::load_float4(p + c * cols + r); }
};

struct BiasActivation {  // a_out[j, p] = sigma(acc + b[j])  (5.2), (5.3)
  float* a_out;
  const float* b;
  int m;
  Activation act;
  float slope;
  HDL_HD void operator()(int j, int p, float acc, int) const { a_out[j * m + p] = sigma(acc + b[j], act, slope); }
};

struct Scaled {  // out[r, c] = scale acc
  float* out;
  int cols;
  float scale;
  HDL_HD void operator()(int r, int c, float acc, int) const { out[r * cols + c] = scale * acc; }
};

struct Delta {  // delta = sigma'(z) o g  (5.5), (5.6)
  float* delta;
  const float *g, *a_out;
  Activation act;
  float slope;
  HDL_HD void operator()(std::int64_t i) const { delta[i] = sigma_prime_times(g[i], a_out[i], act, slope); }
};

// Row sums of x (rows x cols), in two passes in a fixed order (deterministic): partial[r, chunk] over
// kColsPerChunk columns, one thread each, then out[r] = scale sum over the chunks.
constexpr int kColsPerChunk = 64;
struct RowSumsPartial {
  float* partial;
  const float* x;
  int cols, chunks;
  HDL_HD void operator()(std::int64_t e) const {
    const std::int64_t r = e / chunks;
    const int chunk = int(e % chunks), c1 = cols < (chunk + 1) * kColsPerChunk ? cols : (chunk + 1) * kColsPerChunk;
    float s = 0.0f;
    for (int c = chunk * kColsPerChunk; c < c1; ++c) s += x[r * cols + c];
    partial[e] = s;
  }
};
struct RowSumsFinal {  // db[j] = scale sum_p delta[j, p]  (5.7)
  float* out;
  const float* partial;
  int chunks;
  float scale;
  HDL_HD void operator()(std::int64_t r) const {
    float s = 0.0f;
    for (int z = 0; z < chunks; ++z) s += partial[r * chunks + z];
    out[r] = scale * s;
  }
};

struct SlicePartial {  // part[slice, r, c] = acc over one slice of the batch
  float* part;
  int rows, cols;
  HDL_HD void operator()(int r, int c, float acc, int slice) const {
    part[(std::int64_t(slice) * rows + r) * cols + c] = acc;
  }
};
struct SumSlices {  // out[e] = scale sum over slices of part[slice, e], in slice order
  float* out;
  const float* part;
  int slices;
  std::int64_t size;
  float scale;
  HDL_HD void operator()(std::int64_t e) const {
    float s = 0.0f;
    for (int z = 0; z < slices; ++z) s += part[z * size + e];
    out[e] = scale * s;
  }
};

}  // namespace

template <class Exec>
void dense_forward_on(const Exec& exec, float* a_out, const float* W, const float* b, const float* a_in, int64 n_out,
                      int64 n_in, int64 m, Activation act, float slope) {
  // z (n_out, m) = W (n_out, n_in) a_in (n_in, m)
  exec.gemm(int(n_out), int(m), int(n_in), Plain{W, int(n_in)}, Plain{a_in, int(m)},
            BiasActivation{a_out, b, int(m), act, slope});
}

template <class Exec>
void dense_backward_on(const Exec& exec, float* delta, float* dW, float* db, float* g_in, const float* g,
                       const float* a_out, const float* W, const float* a_in, int64 n_out, int64 n_in, int64 m,
                       Activation act, float slope, float scale) {
  exec.each(n_out * m, Delta{delta, g, a_out, act, slope});
  const int chunks = int((m + kColsPerChunk - 1) / kColsPerChunk);
  auto partial = exec.scratch(sizeof(float) * std::size_t(n_out) * chunks);
  exec.each(n_out * chunks, RowSumsPartial{partial.template as<float>(), delta, int(m), chunks});
  exec.each(n_out, RowSumsFinal{db, partial.template as<float>(), chunks, scale});
  // dW (n_out, n_in) = scale delta (n_out, m) a_in^T (m, n_in)   (5.8); a large batch is a long
  // reduction over few output tiles: split it (split-K), the slices summed in order
  const gemm::Split split = gemm::split_for(int(n_out), int(n_in), int(m));
  if (split.count > 1) {
    auto part = exec.scratch(sizeof(float) * std::size_t(split.count) * n_out * n_in);
    exec.gemm(int(n_out), int(n_in), int(m), Plain{delta, int(m)}, Transposed{a_in, int(m)},
              SlicePartial{part.template as<float>(), int(n_out), int(n_in)}, split);
    exec.each(n_out * n_in, SumSlices{dW, part.template as<float>(), split.count, n_out * n_in, scale});
  } else {
    exec.gemm(int(n_out), int(n_in), int(m), Plain{delta, int(m)}, Transposed{a_in, int(m)},
              Scaled{dW, int(n_in), scale});
  }
  // g_in (n_in, m) = W^T (n_in, n_out) delta (n_out, m)   (5.6)
  if (g_in)
    exec.gemm(int(n_in), int(m), int(n_out), Transposed{W, int(n_in)}, Plain{delta, int(m)},
              Scaled{g_in, int(m), 1.0f});
}

void dense_forward(float* a_out, const float* W, const float* b, const float* a_in, int64 n_out, int64 n_in, int64 m,
                   Activation act, float slope, cudaStream_t stream) {
  dense_forward_on(Device{stream}, a_out, W, b, a_in, n_out, n_in, m, act, slope);
}

void dense_backward(float* delta, float* dW, float* db, float* g_in, const float* g, const float* a_out,
                    const float* W, const float* a_in, int64 n_out, int64 n_in, int64 m, Activation act, float slope,
                    float scale, cudaStream_t stream) {
  dense_backward_on(Device{stream}, delta, dW, db, g_in, g, a_out, W, a_in, n_out, n_in, m, act, slope, scale);
}

}  // namespace hdl::cuda
