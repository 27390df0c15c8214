// The CUDA kernels' bodies run on the CPU (tests only): every csrc/cuda/*.cu in one translation
// unit, its ops instantiated with the Host executor (csrc/cuda/host_exec.cuh), exported with C
// names for ctypes (tests/cuda_emu/emu.py). Nothing here touches a GPU.
#include "../../csrc/cuda/memory.cu"
#include "../../csrc/cuda/host_exec.cuh"
#include "../../csrc/cuda/conv.cu"
#include "../../csrc/cuda/dense.cu"
#include "../../csrc/cuda/loss.cu"
#include "../../csrc/cuda/pointwise.cu"
#include "../../csrc/cuda/pool.cu"
#include "../../csrc/cuda/sgd.cu"

using namespace hdl;
using hdl::cuda::Host;
using I = std::int64_t;

namespace {
ConvShape conv_shape(const I* v) { return ConvShape::from_fields(v); }
PoolShape pool_shape(const I* v) { return PoolShape::from_fields(v); }
}  // namespace

extern "C" {

void emu_set_tf32(int on) { cuda::set_tf32(on != 0); }

void emu_set_gemm_tiles(int square) {
  cuda::set_gemm_tiles(square ? cuda::GemmTiles::square : cuda::GemmTiles::automatic);
}

void emu_conv2d_forward(float* y, const float* x, const float* w, const float* b, const I* shape, int relu) {
  cuda::conv2d_forward_on(Host{}, y, x, w, b, conv_shape(shape), relu != 0);
}
void emu_conv2d_backward(float* dx, float* dw, float* db, const float* dy, const float* x, const float* w,
                         const I* shape) {
  cuda::conv2d_backward_on(Host{}, dx, dw, db, dy, x, w, conv_shape(shape));
}
void emu_max_pool2d_forward(float* y, std::int32_t* argmax, const float* x, const I* shape, int relu) {
  cuda::max_pool2d_forward_on(Host{}, y, argmax, x, pool_shape(shape), relu != 0);
}
void emu_max_pool2d_backward_argmax(float* dx, const float* dy, const std::int32_t* argmax, const I* shape) {
  cuda::max_pool2d_backward_argmax_on(Host{}, dx, dy, argmax, pool_shape(shape));
}
void emu_max_pool2d_backward(float* dx, const float* dy, const float* x, const I* shape) {
  cuda::max_pool2d_backward_on(Host{}, dx, dy, x, pool_shape(shape));
}
void emu_avg_pool2d_forward(float* y, const float* x, const I* shape) {
  cuda::avg_pool2d_forward_on(Host{}, y, x, pool_shape(shape));
}
#define HDL_EMU_ACTIVATION(K, name, Struct)                                                   \
  void emu_##name##_forward(float* y, const float* x, I n) {                                  \
    cuda::activation_forward_on<activations::Struct>(Host{}, y, x, n);                        \
  }                                                                                           \
  void emu_##name##_backward(float* dx, const float* dy, const float* y, I n) {               \
    cuda::activation_backward_on<activations::Struct>(Host{}, dx, dy, y, n);                  \
  }
HDL_ACTIVATIONS(HDL_EMU_ACTIVATION, _)
#undef HDL_EMU_ACTIVATION

void emu_avg_pool2d_backward(float* dx, const float* dy, const I* shape) {
  cuda::avg_pool2d_backward_on(Host{}, dx, dy, pool_shape(shape));
}
void emu_relu_forward(float* y, const float* x, I n, float slope) { cuda::relu_forward_on(Host{}, y, x, n, slope); }
void emu_relu_backward(float* dx, const float* dy, const float* x, I n, float slope) {
  cuda::relu_backward_on(Host{}, dx, dy, x, n, slope);
}
void emu_dropout_forward(float* y, float* mask, const float* x, I n, double rate, std::uint64_t seed) {
  cuda::dropout_forward_on(Host{}, y, mask, x, n, rate, seed);
}
void emu_dropout_backward(float* dx, const float* dy, const float* mask, I n) {
  cuda::dropout_backward_on(Host{}, dx, dy, mask, n);
}
void emu_softmax_log_loss(float* dv, double* loss, const float* v, const I* labels, I N, I K) {
  cuda::softmax_log_loss_on(Host{}, dv, loss, v, labels, N, K);
}
void emu_top_k(I* idx, const float* v, I N, I K, I k) { cuda::top_k_on(Host{}, idx, v, N, K, k); }
void emu_dense_forward(float* a_out, const float* W, const float* b, const float* a_in, I n_out, I n_in, I m, int act,
                       float slope) {
  cuda::dense_forward_on(Host{}, a_out, W, b, a_in, n_out, n_in, m, Activation(act), slope);
}
void emu_dense_backward(float* delta, float* dW, float* db, float* g_in, const float* g, const float* a_out,
                        const float* W, const float* a_in, I n_out, I n_in, I m, int act, float slope, float scale) {
  cuda::dense_backward_on(Host{}, delta, dW, db, g_in, g, a_out, W, a_in, n_out, n_in, m, Activation(act), slope,
                          scale);
}
void emu_sgd_momentum(int count, float** w, float** g, float** v, const I* n, const double* lr_mults,
                      const double* decay_mults, double eta, double mu, double lambda, int form) {
  std::vector<ParamSlot<float>> slots;
  for (int i = 0; i < count; ++i) slots.push_back({w[i], g[i], v[i], n[i], lr_mults[i], decay_mults[i]});
  cuda::sgd_momentum_on(Host{}, slots, eta, mu, lambda, MomentumForm(form));
}

}  // extern "C"
