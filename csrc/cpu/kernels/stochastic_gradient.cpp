// The stochastic gradient method of Section 4 for a fully connected network,
// a whole run per call (the pseudocode at the end of Section 5, generalised to
// mini-batches). python/hdl/reference/training.py is the readable twin.
// Buffers are Buffer<T> (gemm_blocked.hpp): std::vector's own member functions would be linked
// from one instruction set's objects for all, AVX-512 ones included.
#include <algorithm>
#include <cmath>
#include <memory>
#include <new>
#include <vector>

#include "dense_impl.hpp"
#include "dense_rows.hpp"
#include "hdl/rng.hpp"
#include "kernels.inc"

namespace hdl {
namespace HDL_ISA {
namespace {

template <class T>
double penalty(const std::vector<DenseLayerRef<T>>& layers, double lambda, int64 N) {
  if (lambda == 0.0) return 0.0;
  double sum = 0.0;
  for (const auto& layer : layers)
    for (int64 i = 0; i < layer.n_out * layer.n_in; ++i) sum += double(layer.W[i]) * double(layer.W[i]);
  return lambda / double(N) * sum;  // (8.2)
}

// a[l] for l = 2..L over m columns, a[1] = x  (3.1), (3.2)
template <int64 M, class T>
void forward(const std::vector<DenseLayerRef<T>>& layers, const T* x, std::vector<Buffer<T>>& a, int64 m) {
  for (size_t l = 0; l < layers.size(); ++l) {
    const auto& L = layers[l];
    dense_forward_impl<T, M>(a[l].data(), L.W, L.b, l == 0 ? x : a[l - 1].data(), L.n_out, L.n_in, m, L.act,
                             L.slope);
  }
}

// Back propagation of g = dC/da[L] (Lemma 5.1), each layer updated as soon as its
// delta and the g of the layer below are known.
template <int64 M, class T>
void backward_update(const std::vector<DenseLayerRef<T>>& layers, const T* x, const std::vector<Buffer<T>>& a,
                     Buffer<T>& g, Buffer<T>& g_next, Buffer<T>& delta, int64 m, T eta, T decay) {
  for (size_t l = layers.size(); l-- > 0;) {
    const auto& L = layers[l];
    dense_backward_update_impl<T, M>(delta.data(), l > 0 ? g_next.data() : nullptr, g.data(), a[l].data(), L.W, L.b,
                                     l > 0 ? a[l - 1].data() : x, L.n_out, L.n_in, m, L.act, L.slope, T(1), eta,
                                     decay);
    std::swap(g, g_next);
  }
}

// The same two passes with the points of the batch as rows (dense_rows.hpp): x (m, n_in), a[l] (m, n_l).
template <class T>
void forward_rows(const std::vector<DenseLayerRef<T>>& layers, const T* x, std::vector<Buffer<T>>& a, int64 m) {
  for (size_t l = 0; l < layers.size(); ++l) {
    const auto& L = layers[l];
    dense_forward_rows<T>(a[l].data(), L.W, L.b, l == 0 ? x : a[l - 1].data(), L.n_out, L.n_in, m, L.act, L.slope);
  }
}

template <class T>
void backward_update_rows(const std::vector<DenseLayerRef<T>>& layers, const T* x, const std::vector<Buffer<T>>& a,
                          Buffer<T>& g, Buffer<T>& g_next, Buffer<T>& delta, Buffer<T>& bsum, int64 m, T eta,
                          T decay) {
  for (size_t l = layers.size(); l-- > 0;) {
    const auto& L = layers[l];
    dense_backward_update_rows<T>(delta.data(), l > 0 ? g_next.data() : nullptr, g.data(), a[l].data(), L.W, L.b,
                                  l > 0 ? a[l - 1].data() : x, L.n_out, L.n_in, m, L.act, L.slope, eta, decay,
                                  bsum.data());
    std::swap(g, g_next);
  }
}

// The mini-batch's columns of a data matrix, gathered into an (n, m) matrix. A row-major matrix
// gives one value per cache line to a column, so a run that gathers at least N/4 columns in all
// first makes one point-major copy (unless the matrix is too large to copy); each point is then
// one contiguous read.
template <class T>
class Columns {
 public:
  static constexpr int64 kMaxCopy = int64(1) << 28;  // values
  static constexpr int64 kParallelCopy = int64(1) << 16;  // values gathered at once worth two threads

  Columns(DataRef<T> data, int64 columns_in_run) : data_(data) {
    const int64 n = data.n, N = data.N;
    if (data.point_major || n == 1 || columns_in_run * 4 < N || n * N > kMaxCopy) return;
    copy_.reset(static_cast<T*>(::operator new[](n * N * sizeof(T), std::align_val_t(64))));  // uninitialised
    // Transposed in B x B tiles (transpose_rect: register blocks inside), each thread walking bands of B
    // features along the points: B read streams that the prefetchers follow. The copy is read again only
    // by the gathers of later mini-batches, so its stores bypass the caches (784 x 2048 float64 from memory:
    // 2.4 ms with tiles of points across the threads and cached stores, 1.6 ms in bands, 0.8 ms streamed).
    constexpr int64 B = 32;
    const int64 bands = (n + B - 1) / B, tiles = (N + B - 1) / B;
    const int threads = n * N >= kParallelCopy && !omp_in_parallel() ? omp_get_max_threads() : 1;
#pragma omp parallel num_threads(threads)
    {
#pragma omp for schedule(static) collapse(2)
      for (int64 b = 0; b < bands; ++b)
        for (int64 t = 0; t < tiles; ++t) {
          const int64 r0 = b * B, i0 = t * B;
          transpose_rect<T, true>(copy_.get() + i0 * n + r0, n, data.p + r0 * N + i0, N, std::min(B, n - r0),
                                  std::min(B, N - i0));
        }
      stream_fence();
    }
    data_ = {copy_.get(), n, N, true};
  }

  // dst(:, i) = data(:, cols[i]) for i < m; dst is (n, m).
  void gather(const int64* cols, int64 m, T* HDL_RESTRICT dst) const {
    const int64 n = data_.n, N = data_.N;
    const T* HDL_RESTRICT src = data_.p;
    if (!data_.point_major) {
      for (int64 r = 0; r < n; ++r)
        for (int64 i = 0; i < m; ++i) dst[r * m + i] = src[r * N + cols[i]];
      return;
    }
    constexpr int64 P = 16;  // points at a time: P read streams, P contiguous values written per row
    for (int64 i0 = 0; i0 < m; i0 += P) {
      const int64 i1 = std::min(m, i0 + P);
      for (int64 r = 0; r < n; ++r)
        for (int64 i = i0; i < i1; ++i) dst[r * m + i] = src[cols[i] * n + r];
    }
  }

  // dst(i, :) = data(:, cols[i]) for i < m; dst is (m, n), a point per row.
  void gather_rows(const int64* cols, int64 m, T* HDL_RESTRICT dst) const {
    const int64 n = data_.n, N = data_.N;
    const T* HDL_RESTRICT src = data_.p;
    if (data_.point_major) {  // a row copy per point, across the threads for a large batch (memory-bound)
      parallel_for(m, m * n >= kParallelCopy && !omp_in_parallel(),
                   [=](int64 i) { std::copy(src + cols[i] * n, src + cols[i] * n + n, dst + i * n); });
      return;
    }
    for (int64 r = 0; r < n; ++r)
      for (int64 i = 0; i < m; ++i) dst[i * n + r] = src[r * N + cols[i]];
  }

  // Columns c0 .. c0 + count as a matrix view (gemm_mat's operand).
  Mat<const T> view(int64 c0) const {
    return data_.point_major ? Mat<const T>{data_.p + c0 * data_.n, 1, data_.n} : Mat<const T>{data_.p + c0, data_.N, 1};
  }

  const DataRef<T>& data() const { return data_; }

 private:
  DataRef<T> data_;
  struct AlignedDelete {
    void operator()(T* p) const { ::operator delete[](p, std::align_val_t(64)); }
  };
  std::unique_ptr<T[], AlignedDelete> copy_;
};

// The whole training set in the blocked layout of dense_forward_block, for Cost
// (3.3) over all N points and for reusing those activations in the next step.
template <class T>
class FullPass {
 public:
  static constexpr int64 B = kBlock<T>;

  FullPass(const std::vector<DenseLayerRef<T>>& layers, const Columns<T>& X, const Columns<T>& Y, int64 N)
      : layers_(layers), N_(N), blocks_((N + B - 1) / B), a_(layers.size()), cost_(blocks_), X_(X), Y_(Y) {
    n_in_ = layers.front().n_in;
    n_out_ = layers.back().n_out;
    for (const auto& layer : layers) wide_ = wide_ || layer.n_out * layer.n_in * B >= kGemmMinWork;
    if (wide_) return;  // runs on the GEMM core, chunk by chunk, straight from X (cost_wide)
    x_ = to_blocks(X.data());
    y_ = to_blocks(Y.data());
    mask_.assign(blocks_ * B, T(0));
    std::fill(mask_.begin(), mask_.begin() + N, T(1));
    for (size_t l = 0; l < layers.size(); ++l) a_[l].resize(blocks_ * layers[l].n_out * B);
    int64 per_column = 0;
    for (const auto& layer : layers) per_column += layer.n_in * layer.n_out;
    parallel_ = per_column * N > kParallelWork && blocks_ > 1;
  }

  // Runs the network over every block; returns Cost (3.3) plus the penalty (8.2).
  double cost(double lambda) {
    if (wide_) return cost_wide(lambda);
    const size_t L = layers_.size();
    parallel_for(blocks_, parallel_, [&](int64 blk) {
      for (size_t l = 0; l < L; ++l) {
        const auto& layer = layers_[l];
        const T* in = l == 0 ? &x_[blk * n_in_ * B] : &a_[l - 1][blk * layer.n_in * B];
        dense_forward_block(&a_[l][blk * layer.n_out * B], layer.W, layer.b, in, layer.n_out, layer.n_in, layer.act,
                            layer.slope, std::min(B, N_ - blk * B));
      }
      const T* a = &a_[L - 1][blk * n_out_ * B];
      const T* y = &y_[blk * n_out_ * B];
      const T* mask = &mask_[blk * B];
      T sum = T(0);
      for (int64 j = 0; j < n_out_; ++j)
        for (int64 p = 0; p < B; ++p) {
          const T r = a[j * B + p] - y[j * B + p];
          sum += mask[p] * r * r;
        }
      cost_[blk] = sum;
    });
    double sum = 0.0;
    for (double c : cost_) sum += c;  // in block order, whatever the threads did
    return 0.5 * sum / double(N_) + penalty(layers_, lambda, N_);
  }

  // Columns cols of a[l] (l = 0 for layer 2) from the last cost() pass, as an (n_l, m) matrix.
  void gather_activations(size_t l, const int64* cols, int64 m, T* HDL_RESTRICT dst) const {
    const int64 n = layers_[l].n_out;
    const T* src = a_[l].data();
    for (int64 i = 0; i < m; ++i) {
      const int64 blk = cols[i] / B, lane = cols[i] % B;
      for (int64 j = 0; j < n; ++j) dst[j * m + i] = src[(blk * n + j) * B + lane];
    }
  }

  // Whether gather_activations may be called after cost() (not for wide layers).
  bool keeps_activations() const { return !wide_; }

 private:
  // Cost (3.3) of wide layers: each layer one GEMM over kChunk columns of X at a time, read in place.
  double cost_wide(double lambda) {
    constexpr int64 kChunk = 256;
    std::vector<Buffer<T>> a(layers_.size());
    for (size_t l = 0; l < layers_.size(); ++l) a[l].resize(layers_[l].n_out * std::min(kChunk, N_));
    double sum = 0.0;
    for (int64 c0 = 0; c0 < N_; c0 += kChunk) {
      const int64 cn = std::min(kChunk, N_ - c0);
      Mat<const T> in = X_.view(c0);
      for (size_t l = 0; l < layers_.size(); ++l) {
        const auto& L = layers_[l];
        gemm_mat<T>(L.n_out, cn, L.n_in, T(1), {L.W, L.n_in, 1}, in, T(0), {a[l].data(), cn, 1},
                    {L.b, true, L.act, L.slope});
        in = {a[l].data(), cn, 1};
      }
      const DataRef<T>& Y = Y_.data();
      for (int64 j = 0; j < n_out_; ++j)
        for (int64 p = 0; p < cn; ++p) {
          const double r = double(in(j, p)) - double(Y(j, c0 + p));
          sum += r * r;
        }
    }
    return 0.5 * sum / double(N_) + penalty(layers_, lambda, N_);
  }

  Buffer<T> to_blocks(const DataRef<T>& M) const {
    const int64 rows = M.n;
    Buffer<T> out(blocks_ * rows * B, T(0));
    for (int64 i = 0; i < N_; ++i)
      for (int64 r = 0; r < rows; ++r) out[((i / B) * rows + r) * B + i % B] = M(r, i);
    return out;
  }

  const std::vector<DenseLayerRef<T>>& layers_;
  int64 N_, blocks_, n_in_ = 0, n_out_ = 0;
  bool parallel_ = false, wide_ = false;
  const Columns<T>&X_, &Y_;
  Buffer<T> x_, y_, mask_;
  std::vector<Buffer<T>> a_;
  Buffer<double> cost_;
};

}  // namespace

template <class T>
double network_cost(const std::vector<DenseLayerRef<T>>& layers, const Columns<T>& X, const Columns<T>& Y,
                    double lambda) {
  return FullPass<T>(layers, X, Y, X.data().N).cost(lambda);
}

template <class T>
double sgd_train(const std::vector<DenseLayerRef<T>>& layers, DataRef<T> X_data, DataRef<T> Y_data,
                 const SGDConfig& cfg, SGDState& state, double* cost_history, SGDHooks& hooks) {
  const int64 N = X_data.N;
  const size_t L = layers.size();
  const int64 n_in = layers.front().n_in, n_out = layers.back().n_out;
  const int64 m_max = cfg.replacement ? cfg.batch_size : std::min(cfg.batch_size, N);
  const int64 columns_in_run = cfg.iterations > N / m_max ? N : cfg.iterations * m_max;
  const Columns<T> X(X_data, columns_in_run), Y(Y_data, columns_in_run);
  int64 widest = n_in;
  for (const auto& layer : layers) widest = std::max(widest, layer.n_out);

  // Activations of the mini-batch, a[l] is (n_l, m) ((m, n_l) in the row form); x and y its inputs and targets.
  std::vector<Buffer<T>> a(L);
  Buffer<T> x(n_in * m_max), y(n_out * m_max), g(widest * m_max), g_next(widest * m_max),
      delta(widest * m_max);
  for (size_t l = 0; l < L; ++l) a[l].resize(layers[l].n_out * m_max);
  Buffer<T> bsum(widest);

  // Recording Cost runs the network over all N points; while those activations are
  // current (no update since), the next mini-batch reads its columns from them. Costs are recorded after the
  // multiples of record_every updates counted from the run's start (u0 updates before this call), so that a
  // run resumed from its state records, and reads activations, where the whole run would have.
  const int64 u0 = state.updates;
  const bool recording = cfg.record_every > 0;
  const int64 first_record = recording ? (u0 + cfg.record_every - 1) / cfg.record_every : 0;
  FullPass<T> full(layers, X, Y, recording ? N : 0);
  bool all_current = false;
  double cost = 0.0, batch_cost = 0.0;
  // Mini-batches of several points whose layers reach the GEMM core run in the row form (dense_rows.hpp),
  // unless the cost passes keep activations that the next batch reads in the column form.
  bool on_gemm = false;
  for (const auto& layer : layers) on_gemm = on_gemm || layer.n_out * layer.n_in * m_max >= kGemmMinWork;
  const bool rows = m_max > 1 && on_gemm && !(recording && full.keeps_activations());
  if (recording && u0 % cfg.record_every == 0) {
    cost_history[0] = cost = full.cost(cfg.lambda);
    all_current = true;
  }

  Rng rng(state.rng);
  int64* const order = state.order;
  Buffer<int64> batch(m_max);
  int64 position = state.position;  // how far the current epoch has got through `order`
  auto save_state = [&](int64 applied) {
    state.rng = rng.state();
    state.position = position;
    state.updates = u0 + applied;
  };
  const T eta = T(cfg.eta), decay = T(2.0 * cfg.lambda / double(N));
  double epoch_cost = 0.0;  // sum of the mini-batch costs of the current epoch
  int64 epoch_steps = 0;
  hooks.iterations_done = 0;
  hooks.diverged_at = -1;

  for (int64 it = 0; it < cfg.iterations; ++it) {
    // 1. Choose the mini-batch: with replacement (4.6), (4.8) or from a shuffled epoch (4.7).
    int64 m = m_max;
    if (cfg.replacement) {
      for (int64 i = 0; i < m; ++i) batch[i] = rng.below(static_cast<std::uint32_t>(N));
    } else {
      if (position >= N) {
        if (cfg.shuffle) rng.shuffle(order, N);
        position = 0;
      }
      m = std::min(m_max, N - position);
      std::copy(order + position, order + position + m, batch.begin());
      position += m;
    }

    // 2. Forward pass (3.1)-(3.2).
    if (rows) {
      X.gather_rows(batch.data(), m, x.data());
      Y.gather_rows(batch.data(), m, y.data());
      forward_rows(layers, x.data(), a, m);
    } else {
      X.gather(batch.data(), m, x.data());
      Y.gather(batch.data(), m, y.data());
      if (all_current && full.keeps_activations()) {
        for (size_t l = 0; l < L; ++l) full.gather_activations(l, batch.data(), m, a[l].data());
      } else if (m == 1) {
        forward<1>(layers, x.data(), a, m);
      } else {
        forward<0>(layers, x.data(), a, m);
      }
    }

    // 3. Backward pass, Lemma 5.1, averaged over the batch: g = dC/da[L] = (a[L] - y)/m,
    // 4. with the update p -> p - eta grad (4.6)-(4.8) and the gradient of the penalty (8.2).
    batch_cost = quadratic_cost_impl(g.data(), a[L - 1].data(), y.data(), n_out * m, 1.0 / double(m));
    if (!std::isfinite(batch_cost)) {  // diverged: stop before this update
      hooks.diverged_at = it;
      save_state(it);
      return batch_cost;
    }
    if (rows) backward_update_rows(layers, x.data(), a, g, g_next, delta, bsum, m, eta, decay);
    else if (m == 1) backward_update<1>(layers, x.data(), a, g, g_next, delta, m, eta, decay);
    else backward_update<0>(layers, x.data(), a, g, g_next, delta, m, eta, decay);
    all_current = false;
    hooks.iterations_done = it + 1;
    epoch_cost += batch_cost;
    ++epoch_steps;

    const int64 u = u0 + it + 1;  // updates since the run began
    if (recording && u % cfg.record_every == 0) {
      cost_history[u / cfg.record_every - first_record] = cost = full.cost(cfg.lambda);
      all_current = true;
    }
    bool stop = false;
    if (hooks.epoch_end != nullptr && hooks.epoch_length > 0 && u % hooks.epoch_length == 0) {
      save_state(it + 1);
      stop = hooks.epoch_end(hooks.context, u / hooks.epoch_length, epoch_cost / double(epoch_steps));
      epoch_cost = 0.0;
      epoch_steps = 0;
    }
    if (hooks.poll != nullptr && hooks.poll_every > 0 && (it + 1) % hooks.poll_every == 0)
      stop = hooks.poll(hooks.context, it + 1) || stop;
    if (stop) break;
  }
  save_state(hooks.iterations_done);
  if (!recording) return batch_cost;  // no pass over all N points that the caller did not ask for
  return all_current ? cost : HDL_ISA::network_cost(layers, X, Y, cfg.lambda);
}

}  // namespace HDL_ISA
}  // namespace hdl

HDL_INSTANTIATE(stochastic_gradient)
