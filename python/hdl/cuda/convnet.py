"""A ConvNet on the GPU: the layers of hdl.convnet run with hdl.cuda.ops, and parameters,
gradients, velocities and activations all stay in device memory. Batches come from the host through
pinned buffers (asynchronous copies); only the loss and the scores travel back, and only when asked.

    net = hdl.convnet.cifar_net(device="cuda")        # or hdl.convnet.cifar_net().to("cuda")
    loss, scores = net.loss_and_gradients(x, labels)  # x (N, 32, 32, 3) float32 numpy, as on the CPU
    net.step(lr=0.05, momentum=0.9, weight_decay=1e-4)
    host_net = net.to("cpu")                          # a hdl.convnet.ConvNet with the trained values

It keeps ConvNet's interface (forward, predict, loss_and_gradients, step, parameters, velocities,
save), so hdl.train.fit trains it unchanged. Same forward/backward order and the same fusions
(Conv2d + ReLU, MaxPool2d + ReLU with the argmax kept) as the CPU network, and the same dropout masks
for the same seeds.
"""
from __future__ import annotations

import numpy as np

from hdl import layers as _host
from hdl.cuda import ops
from hdl.cuda.array import DeviceArray, Uploader


class CudaConvNet:
    def __init__(self, net):  # an hdl.model.Model
        from hdl import cuda
        cuda.require()
        if net.dtype != np.float32:
            raise TypeError(f"the CUDA backend runs float32 networks, this one is {net.dtype}")
        for layer in net.layers:
            if type(layer) not in _SUPPORTED:
                raise NotImplementedError(f"{type(layer).__name__} has no CUDA kernel; CUDA networks use "
                                          f"{', '.join(t.__name__ for t in _SUPPORTED)}")
        self.host = net
        self.layers = net.layers
        self.momentum_form = net.momentum_form
        # per layer: {name: DeviceArray} parameters and gradients
        self._params = [{k: DeviceArray.from_numpy(v) for k, v in layer.params().items()} for layer in net.layers]
        self._grads = [{k: DeviceArray.empty(v.shape) for k, v in p.items()} for p in self._params]
        self.velocities = [DeviceArray.from_numpy(v) for v in net.velocities]
        self._buffers = {}
        self._masks, self._argmax = {}, {}
        self._upload, self._upload_labels = Uploader(), Uploader()

    device = "cuda"
    dtype = np.dtype(np.float32)

    # -- parameters ------------------------------------------------------------------------------
    def parameters(self) -> list[DeviceArray]:
        return [p for layer in self._params for p in layer.values()]

    def gradients(self) -> list[DeviceArray]:
        return [g for layer in self._grads for g in layer.values()]

    parameter_gradients = gradients  # Model's name

    def multipliers(self):
        return self.host.multipliers()

    def to(self, device):
        """'cuda': this network; 'cpu': the host ConvNet, its parameters and velocities copied back."""
        if device == "cuda":
            return self
        if device != "cpu":
            raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
        for p, d in zip(self.host.parameters(), self.parameters()):
            p[...] = d.numpy()
        for v, d in zip(self.host.velocities, self.velocities):
            v[...] = d.numpy()
        return self.host

    def save(self, path, extra=None, with_velocities=False):
        self.to("cpu").save(path, extra, with_velocities)

    def config(self):
        return self.host.config()

    # -- forward, loss, backward -----------------------------------------------------------------
    def _buf(self, key, shape, dtype=np.float32):
        key = (key, tuple(shape), np.dtype(dtype))
        if key not in self._buffers:
            self._buffers[key] = DeviceArray.empty(shape, dtype)
        return self._buffers[key]

    def upload(self, x) -> DeviceArray:
        """A host batch (N, H, W, C) on the device (through a pinned buffer, asynchronously)."""
        if isinstance(x, DeviceArray):
            if x.ndim != 4 or x.dtype != np.float32:
                raise ValueError(f"a batch must be an (N, H, W, C) float32 array, got {x.shape} {x.dtype}")
            return x
        x = self.host.check_batch(x)
        return self._upload(x, self._buf("input", x.shape))

    def _labels(self, labels, n, K):
        """Valid host labels go up through a pinned buffer; anything else is left to ops to check."""
        if isinstance(labels, DeviceArray):
            return labels
        a = np.asarray(labels)
        if a.shape == (n,) and a.dtype.kind in "iu" and n and 0 <= a.min() and a.max() < K:
            return self._upload_labels(np.ascontiguousarray(a, np.int64), self._buf("labels", (n,), np.int64))
        return a

    def _layer_forward(self, i, x, train, relu=False):
        layer, p = self.layers[i], self._params[i]
        if isinstance(layer, _host.Conv2d):  # FullyConnected too
            y = self._buf((i, "y"), layer.out_shape(x.shape))
            return ops.conv2d(x, p["w"], p["b"], layer.stride, layer.pad, relu=relu, out=y)
        if isinstance(layer, _host.MaxPool2d):  # argmax kept for the backward pass, ReLU fused on request
            y = self._buf((i, "y"), layer.out_shape(x.shape))
            if not train:
                self._argmax.pop(i, None)
                return ops.max_pool2d(x, layer.window, layer.stride, layer.pad, out=y, relu=relu)
            self._argmax[i] = self._buf((i, "argmax"), y.shape, np.int32)
            return ops.max_pool2d(x, layer.window, layer.stride, layer.pad, out=y, relu=relu, return_argmax=True,
                                  argmax_out=self._argmax[i])[0]
        if isinstance(layer, _host.AvgPool2d):
            return ops.avg_pool2d(x, layer.window, layer.stride, layer.pad,
                                  out=self._buf((i, "y"), layer.out_shape(x.shape)))
        if isinstance(layer, _host.ReLU):  # LeakyReLU too
            return ops.relu(x, layer.slope, out=self._buf((i, "y"), x.shape))
        if isinstance(layer, _host.Dropout):
            if not train or layer.rate == 0.0:
                self._masks.pop(i, None)
                return x
            y, mask = ops.dropout(x, layer.rate, layer.seed, out=self._buf((i, "y"), x.shape),
                                  mask_out=self._buf((i, "mask"), x.shape))
            self._masks[i] = mask
            return y
        raise NotImplementedError(type(layer).__name__)

    def _layer_backward(self, i, dy, x, y, need_dx):
        layer, p, g = self.layers[i], self._params[i], self._grads[i]
        if isinstance(layer, _host.Conv2d):
            dx, _, _ = ops.conv2d_backward(dy, x, p["w"], layer.stride, layer.pad, want_dx=need_dx,
                                           dx_out=self._buf((i, "dx"), x.shape) if need_dx else None,
                                           dw_out=g["w"], db_out=g["b"])
            return dx
        if isinstance(layer, _host.MaxPool2d):
            return ops.max_pool2d_backward(dy, x, layer.window, layer.stride, layer.pad,
                                           out=self._buf((i, "dx"), x.shape), argmax=self._argmax.get(i))
        if isinstance(layer, _host.AvgPool2d):
            return ops.avg_pool2d_backward(dy, x, layer.window, layer.stride, layer.pad,
                                           out=self._buf((i, "dx"), x.shape))
        if isinstance(layer, _host.ReLU):
            return ops.relu_backward(dy, y, layer.slope, out=dy)  # y > 0 exactly where x > 0; dy is ours
        if isinstance(layer, _host.Dropout):
            mask = self._masks.get(i)
            return dy if mask is None else ops.dropout_backward(dy, mask, out=dy)
        raise NotImplementedError(type(layer).__name__)

    def _forward(self, x, train):
        """Activations [x, y1, y2, ...], a Conv2d or MaxPool2d followed by a ReLU fused, as ConvNet._forward
        (the max pool's argmax then carries the ReLU's cut, and the ReLU has no backward pass of its own)."""
        acts = [self.upload(x)]
        self._relu_in_pool = set()
        i = 0
        while i < len(self.layers):
            layer = self.layers[i]
            nxt = self.layers[i + 1] if i + 1 < len(self.layers) else None
            if isinstance(layer, (_host.Conv2d, _host.MaxPool2d)) and type(nxt) is _host.ReLU:
                y = self._layer_forward(i, acts[-1], train, relu=True)
                acts += [y, y]
                if isinstance(layer, _host.MaxPool2d):
                    self._relu_in_pool.add(i + 1)
                i += 2
            else:
                acts.append(self._layer_forward(i, acts[-1], train))
                i += 1
        return acts

    def forward(self, x, train=False):
        """Scores (N, K): a numpy array for a host batch, a DeviceArray for a device batch."""
        y = self._forward(x, train)[-1]
        y = y.reshape(y.shape[0], -1)
        return y if isinstance(x, DeviceArray) else y.numpy()

    def scores(self, x, batch_size=500) -> np.ndarray:
        """Class scores (N, K) for many host inputs, batch by batch (as Model.scores)."""
        return np.concatenate([self.forward(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])

    def predict(self, x, batch_size=500) -> np.ndarray:
        """The class of largest score for each input (as Model.predict)."""
        return np.argmax(self.scores(x, batch_size), axis=1)

    def loss_and_gradients(self, x, labels, dropout_seed=0, sync=True):
        """(loss, scores) of the batch, the gradients left on the device (gradients()). With sync (the
        default, as ConvNet) loss is a float and scores a numpy array; with sync=False both stay on the
        device (a 0-d DeviceArray and an (N, K) DeviceArray) and nothing waits for the GPU."""
        for i, layer in enumerate(self.layers):
            if isinstance(layer, _host.Dropout):
                layer.seed = (dropout_seed * 1_000_003 + i) & 0x7FFF_FFFF_FFFF_FFFF
        acts = self._forward(x, train=True)
        n = acts[0].shape[0]
        scores = acts[-1].reshape(n, -1)
        lab = self._labels(labels, n, scores.shape[1])
        loss, g = ops.softmax_log_loss(scores, lab, dv_out=self._buf("dscores", scores.shape),
                                       loss_out=self._buf("loss", (), np.float64))
        g = g.reshape(acts[-1].shape)
        for i in reversed(range(len(self.layers))):
            if i not in self._relu_in_pool:  # the pool's argmax carries the ReLU's cut
                g = self._layer_backward(i, g, acts[i], acts[i + 1], need_dx=i > 0)
        if sync:
            return float(loss), scores.numpy()
        return loss, scores

    def step(self, lr, momentum=0.9, weight_decay=0.0):
        """The fused SGD-momentum update of every parameter, one kernel launch (as ConvNet.step)."""
        lr_mults, decay_mults = self.multipliers()
        ops.sgd_momentum_(self.parameters(), self.gradients(), self.velocities, lr=lr, momentum=momentum,
                          weight_decay=weight_decay, lr_mults=lr_mults, decay_mults=decay_mults,
                          form=self.momentum_form)

    def __repr__(self):
        return "CudaConvNet(" + repr(self.host) + ")"


_SUPPORTED = (_host.Conv2d, _host.FullyConnected, _host.MaxPool2d, _host.AvgPool2d, _host.ReLU, _host.LeakyReLU,
              _host.Dropout)
