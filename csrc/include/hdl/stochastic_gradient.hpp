// The types of whole training runs of a fully connected network by the stochastic gradient
// method of Section 4 (the kernel sgd_train of hdl/kernel_list.hpp).
#pragma once
#include <cstdint>
#include <vector>

#include "hdl/common.hpp"
#include "hdl/rng.hpp"

namespace hdl {

// One layer l = 2..L of a network (3.2): W[l] is (n_out, n_in), b[l] is (n_out). Updated in place.
template <class T>
struct DenseLayerRef {
  T* W;
  T* b;
  int64 n_in;
  int64 n_out;
  Activation act;
  T slope;  // leaky ReLU slope
};

// A data matrix (n, N) whose columns are the N points, as the caller holds it: row-major (the paper's
// X, one row per neuron of the input layer) or point-major (each point's n values contiguous: an
// F-ordered (n, N) array, such as data.T for an (N, n) array `data`).
template <class T>
struct DataRef {
  const T* p;
  int64 n;
  int64 N;
  bool point_major = false;
  T operator()(int64 r, int64 i) const { return point_major ? p[i * n + r] : p[r * N + i]; }
};

// What the run does. Every form of the paper is a choice of batch_size, replacement and shuffle:
//   (4.6) batch_size 1, replacement      (4.7) batch_size 1, no replacement (epochs)
//   (4.8) batch_size m, either way       (4.3) batch_size N, no replacement, no shuffle (steepest descent)
struct SGDConfig {
  int64 iterations = 0;     // number of parameter updates
  int64 batch_size = 1;     // m of (4.8)
  bool replacement = true;  // sample with replacement, or cycle through shuffled epochs
  bool shuffle = true;      // without replacement: reshuffle every epoch
  double eta = 0.0;         // learning rate
  double lambda = 0.0;      // L2 penalty of (8.2): Cost += lambda/N sum_l ||W[l]||_F^2
  int64 record_every = 0;   // record Cost (3.3)/(8.2) every k updates; 0: never
};

// Where a run's random choice of mini-batches stands, all that a run stopped after any update needs to go on
// exactly as if it had not stopped (with its parameters; stochastic_gradient's checkpoints hold it). A run reads
// it at its start and writes it back before every epoch_end call and when it returns.
// A fresh run: rng = Rng(seed).state(), order = 0..N-1, position = N, updates = 0.
struct SGDState {
  RngState rng;          // the generator's words
  int64* order;          // without replacement: the N points in this epoch's order (4.7), reshuffled in place
  int64 position;        // how many of them this epoch has used (N: the next update starts an epoch)
  int64 updates;         // updates applied since the run began: epochs and record_every count from there
};

// How a run talks to its caller while it lasts. The calls come from the thread that runs the loop,
// between updates (no other thread of the run is working); each returns true to stop the run there.
// Plain function pointers, not std::function: their code lives in the caller's (baseline) objects.
struct SGDHooks {
  void* context = nullptr;
  // after every epoch_length updates (0: never; counted from the run's start, so the epoch is updates /
  // epoch_length), with the mean cost (3.3) of that epoch's mini-batches
  bool (*epoch_end)(void* context, int64 epoch, double mean_batch_cost) = nullptr;
  int64 epoch_length = 0;
  // every poll_every updates (0: never), for progress bars and interrupts
  bool (*poll)(void* context, int64 iterations_done) = nullptr;
  int64 poll_every = 0;
  // written by the run
  int64 iterations_done = 0;  // updates applied by this call
  int64 diverged_at = -1;     // the update of this call whose mini-batch cost was not finite (not applied)
};

}  // namespace hdl
