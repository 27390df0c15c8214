"""One training step of the paper's CIFAR-10 network (Section 7, MatConvNet's cifar
example) at batch 100, in hdl, in PyTorch, and in hdl's Numba oracles.

The network, in MatConvNet's order: conv 5x5 3->32 pad 2; max pool 3x3 stride 2
pad (0,1,0,1); ReLU; conv 5x5 32->32 pad 2; ReLU; avg pool 3x3/2 (0,1,0,1); conv
5x5 32->64 pad 2; ReLU; avg pool 3x3/2 (0,1,0,1); conv 4x4 64->64; ReLU; conv 1x1
64->10; softmax log-loss. 12.35 million multiply-adds per image forward.

hdl runs in NHWC with every buffer allocated once, as a network object would; the
ReLU after the max pool is fused into it (the pool's argmax marks where it cut), the
ReLUs after the other convolutions into them.
"""
import numpy as np

from hdl import ops

LAYERS = [(32, 3, 5, 2), (32, 32, 5, 2), (64, 32, 5, 2), (64, 64, 4, 0), (10, 64, 1, 0)]  # (O, C, k, pad)
POOL_PAD = (0, 1, 0, 1)
MACS_PER_IMAGE = sum(o * c * k * k * hw * hw for (o, c, k, _), hw in zip(LAYERS, (32, 16, 8, 1, 1)))


def init_params(seed=0, dtype=np.float32):
    """MatConvNet's cifar initialisation: filters 0.01 N(0,1) (0.05 for the last two), zero biases."""
    rng = np.random.default_rng(seed)
    params = []
    for i, (o, c, k, _) in enumerate(LAYERS):
        scale = 0.01 if i < 3 else 0.05
        params += [(scale * rng.standard_normal((o, c, k, k))).astype(dtype), np.zeros(o, dtype)]
    return params


class HdlStep:
    """Forward, loss, backward and the fused momentum update, on preallocated NHWC buffers."""

    def __init__(self, params, batch=100, dtype=np.float32):
        self.params = params
        self.vel = [np.zeros_like(p) for p in params]
        e = lambda *s: np.empty(s, dtype)  # noqa: E731
        n = batch
        self.a = dict(y1=e(n, 32, 32, 32), p1=e(n, 16, 16, 32), r2=e(n, 16, 16, 32), p2=e(n, 8, 8, 32),
                      r3=e(n, 8, 8, 64), p3=e(n, 4, 4, 64), r4=e(n, 1, 1, 64), y5=e(n, 1, 1, 10))
        self.argmax = np.empty((n, 16, 16, 32), np.int32)
        self.d = dict(p1=e(n, 16, 16, 32), y1=e(n, 32, 32, 32), r2=e(n, 16, 16, 32), p2=e(n, 8, 8, 32),
                      r3=e(n, 8, 8, 64), p3=e(n, 4, 4, 64), r4=e(n, 1, 1, 64))
        self.lr_mults = [1.0, 2.0] * len(LAYERS)

    def forward(self, x):
        """x: (N, 32, 32, 3) -> scores (N, 1, 1, 10)."""
        w1, b1, w2, b2, w3, b3, w4, b4, w5, b5 = self.params
        a, L = self.a, dict(layout="NHWC")
        ops.conv2d(x, w1, b1, 1, 2, out=a["y1"], **L)
        ops.max_pool2d(a["y1"], 3, 2, POOL_PAD, out=a["p1"], relu=True, return_argmax=True, argmax_out=self.argmax,
                       **L)
        ops.conv2d(a["p1"], w2, b2, 1, 2, relu=True, out=a["r2"], **L)
        ops.avg_pool2d(a["r2"], 3, 2, POOL_PAD, out=a["p2"], **L)
        ops.conv2d(a["p2"], w3, b3, 1, 2, relu=True, out=a["r3"], **L)
        ops.avg_pool2d(a["r3"], 3, 2, POOL_PAD, out=a["p3"], **L)
        ops.conv2d(a["p3"], w4, b4, 1, 0, relu=True, out=a["r4"], **L)
        ops.conv2d(a["r4"], w5, b5, 1, 0, out=a["y5"], **L)
        return a["y5"]

    def step(self, x, labels, lr=0.05, momentum=0.9, weight_decay=1e-4):
        w1, b1, w2, b2, w3, b3, w4, b4, w5, b5 = self.params
        a, d, L = self.a, self.d, dict(layout="NHWC")
        y5 = self.forward(x)
        loss, g = ops.softmax_log_loss(y5.reshape(len(labels), 10), labels)
        g, g5w, g5b = ops.conv2d_backward(g.reshape(y5.shape), a["r4"], w5, dx_out=d["r4"], **L)
        ops.relu_backward(g, a["r4"], out=g)
        g, g4w, g4b = ops.conv2d_backward(g, a["p3"], w4, dx_out=d["p3"], **L)
        g = ops.avg_pool2d_backward(g, a["r3"], 3, 2, POOL_PAD, out=d["r3"], **L)
        ops.relu_backward(g, a["r3"], out=g)
        g, g3w, g3b = ops.conv2d_backward(g, a["p2"], w3, 1, 2, dx_out=d["p2"], **L)
        g = ops.avg_pool2d_backward(g, a["r2"], 3, 2, POOL_PAD, out=d["r2"], **L)
        ops.relu_backward(g, a["r2"], out=g)
        g, g2w, g2b = ops.conv2d_backward(g, a["p1"], w2, 1, 2, dx_out=d["p1"], **L)
        g = ops.max_pool2d_backward(g, a["y1"], 3, 2, POOL_PAD, out=d["y1"], argmax=self.argmax, **L)
        _, g1w, g1b = ops.conv2d_backward(g, x, w1, 1, 2, want_dx=False, **L)
        grads = [g1w, g1b, g2w, g2b, g3w, g3b, g4w, g4b, g5w, g5b]
        ops.sgd_momentum_(self.params, grads, self.vel, lr=lr, momentum=momentum, weight_decay=weight_decay,
                          lr_mults=self.lr_mults, form="matconvnet")
        return loss


def torch_model(torch, channels_last):
    """The same network in PyTorch; ceil_mode gives MatConvNet's (0,1,0,1) pooling windows."""
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(3, 32, 5, padding=2), nn.MaxPool2d(3, 2, ceil_mode=True), nn.ReLU(),
        nn.Conv2d(32, 32, 5, padding=2), nn.ReLU(), nn.AvgPool2d(3, 2, ceil_mode=True),
        nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.AvgPool2d(3, 2, ceil_mode=True),
        nn.Conv2d(64, 64, 4), nn.ReLU(), nn.Conv2d(64, 10, 1))
    return model.to(memory_format=torch.channels_last) if channels_last else model


def torch_step(torch, model, opt, x, y):
    opt.zero_grad(set_to_none=True)
    loss = torch.nn.functional.cross_entropy(model(x).flatten(1), y)
    loss.backward()
    opt.step()
    return loss
