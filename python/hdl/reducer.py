"""The gradient sum of data-parallel training (hdl.distributed): every parameter's gradient, weighted by
its rank's share of the global batch, is copied into one flat contiguous buffer and summed over the ranks
with MPI Allreduce, in place; the layers' grads then point into the summed buffer, and the model's fused
SGD update reads them there.

The buffer holds the parameters last layer first, the order in which the backward pass finishes them. With
buckets (World(bucket_mb=...)), a bucket's Iallreduce starts as soon as the backward pass has left its
lowest layer, so that it runs while the layers below compute; without, one Allreduce follows the backward
pass. On the GPU the buffer is device memory: MPI reads it directly when it is CUDA-aware, else it is
staged through a host copy.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from hdl import backend

if TYPE_CHECKING:
    from hdl.distributed import World
    from hdl.model import Model


class GradientReducer:
    """Sums model's gradients over world's ranks; one step is begin(weight), after_backward(i) for every
    layer (Model.loss_and_gradients' hook), finish()."""

    def __init__(self, world: World, model: Model):
        self.world, self.model = world, model
        self.device = model.device
        self.slots: dict[int, list[tuple[str, int, int]]] = {}  # layer -> (name, offset, size) of its parameters
        self.bucket_ends: dict[int, int] = {}  # layer -> end offset of the bucket that closes after its backward
        offset, bucket_start = 0, 0
        dtype = model.dtype
        for i in reversed(range(len(model.layers))):
            params = model.layers[i].params()
            if not params:
                continue
            self.slots[i] = []
            for name, p in params.items():
                self.slots[i].append((name, offset, p.size))
                offset += p.size
            if world.bucket_bytes > 0 and (offset - bucket_start) * dtype.itemsize >= world.bucket_bytes:
                self.bucket_ends[i], bucket_start = offset, offset
        self.size = offset
        self.flat: Any = backend.empty(offset, dtype, self.device)  # numpy, or a DeviceArray
        self.staged = self.device != "cpu" and not world.cuda_aware
        self.host: Any = np.empty(offset, dtype) if self.staged else None
        self._scratch: tuple[Any, Any] | None = None
        self.begin(1.0)

    def begin(self, weight: float) -> None:
        """A new step whose gradients count `weight` (this rank's samples / the global batch's)."""
        self.weight, self.started = weight, 0
        self.requests: list[Any] = []

    def after_backward(self, i: int) -> None:
        """Layer i's gradients into the buffer (weighted), and its bucket started if it is now complete."""
        layer = self.model.layers[i]
        for name, offset, size in self.slots.get(i, ()):
            g: Any = layer.grads[name]
            if self.device == "cpu":
                np.multiply(g.reshape(-1), self.weight, out=self.flat[offset:offset + size])
            else:
                self.flat[offset:offset + size].copy_(g.reshape(size))
        if i in self.bucket_ends:
            self._start(self.bucket_ends[i])

    def _start(self, end: int) -> None:
        """Starts the sum of flat[started:end]."""
        if end <= self.started:
            return
        lo, self.started = self.started, end
        if self.device == "cpu":
            self.requests.append(self.world.iallreduce_(self.flat[lo:end]))
            return
        if self.staged:  # device -> host (this waits for the GPU), weighted on the host
            host = self.host[lo:end]
            np.multiply(self.flat[lo:end].numpy(), self.weight, out=host)
            self.requests.append(self.world.iallreduce_(host))
            return
        from hdl import cuda
        self._scale_(lo, end)
        cuda.synchronize()  # MPI reads the memory the kernels wrote
        self.requests.append(self.world.iallreduce_(self.flat[lo:end]))

    def _scale_(self, lo: int, end: int) -> None:
        """flat[lo:end] *= weight on the GPU by the fused update (pytorch form, momentum 0, gradient 0):
        v = 0 + lam w; w = w - eta v = (1 - eta lam) w with eta = 1, lam = 1 - weight."""
        if self.weight == 1.0:
            return
        if self._scratch is None:
            self._scratch = (backend.to_device(np.zeros(self.size, self.model.dtype), self.device),
                             backend.empty(self.size, self.model.dtype, self.device))
        zero, v = self._scratch
        backend.ops_for(self.device).sgd_momentum_([self.flat[lo:end]], [zero[lo:end]], [v[lo:end]], lr=1.0,
                                                  momentum=0.0, weight_decay=1.0 - self.weight, form="pytorch")

    def skip(self) -> None:
        """This rank has no samples in this global batch: it adds zeros."""
        if self.device == "cpu":
            self.flat[...] = 0
        else:
            self.flat.zero_()

    def finish(self) -> None:
        """Waits for every sum and points every layer's grads at its summed slice."""
        self._start(self.size)
        t0 = time.perf_counter()
        self.world.wait(self.requests, "the gradient Allreduce")
        self.world.allreduce_seconds += time.perf_counter() - t0
        if self.staged:
            self.flat.copy_(self.host)
        for i, slots in self.slots.items():
            layer = self.model.layers[i]
            for name, offset, size in slots:
                layer.grads[name] = self.flat[offset:offset + size].reshape(layer.params()[name].shape)

