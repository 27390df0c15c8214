"""The kernels of Section 7 and a whole training step of the paper's CIFAR-10 network
(batch 100, float32) in hdl, in PyTorch (NCHW and channels_last, when installed) and in
hdl's Numba oracles (on a tenth of the batch, scaled), side by side in one run."""
import numpy as np
import pytest

from hdl import ops
from hdl.reference import cnn as oracle
from cifar_step import LAYERS, MACS_PER_IMAGE, POOL_PAD, HdlStep, init_params, torch_model, torch_step

BATCH = 100
SIZES = (32, 16, 8, 4, 1)  # input height and width of each convolution
rng = np.random.default_rng(0)

try:
    import torch
    torch.set_num_threads(2)
except ImportError:
    torch = None

IMPLS = ["hdl", "numba oracle (x10)", "pytorch NCHW", "pytorch channels_last"]


def need(impl):
    if impl.startswith("pytorch") and torch is None:
        pytest.skip("PyTorch is not installed")
    if impl.startswith("numba"):
        pytest.importorskip("numba")


def as_torch(a, channels_last):
    t = torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))
    return t.contiguous(memory_format=torch.channels_last) if channels_last else t


def conv_data(layer, batch=BATCH):
    o, c, k, pad = LAYERS[layer]
    hw = SIZES[layer]
    x = rng.standard_normal((batch, hw, hw, c)).astype(np.float32)
    w = (0.05 * rng.standard_normal((o, c, k, k))).astype(np.float32)
    b = np.zeros(o, np.float32)
    out = hw + 2 * pad - k + 1
    dy = rng.standard_normal((batch, out, out, o)).astype(np.float32)
    return x, w, b, dy, pad, 2.0 * batch * out * out * o * c * k * k


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("layer", range(5))
def test_conv_forward(benchmark, record, layer, impl):
    need(impl)
    x, w, b, dy, pad, flop = conv_data(layer)
    if impl == "hdl":
        y = np.empty(dy.shape, np.float32)
        benchmark(ops.conv2d, x, w, b, 1, pad, layout="NHWC", out=y)
    elif impl.startswith("numba"):
        xs = np.ascontiguousarray(x[:BATCH // 10].transpose(0, 3, 1, 2))
        benchmark.pedantic(oracle.conv2d, args=(xs, w, b, 1, pad), rounds=3, warmup_rounds=1)
    else:
        cl = impl.endswith("channels_last")
        xt, wt, bt = as_torch(x, cl), torch.from_numpy(w), torch.from_numpy(b)
        with torch.no_grad():
            benchmark(torch.nn.functional.conv2d, xt, wt, bt, padding=pad)
    record(f"conv{layer + 1} forward", impl, scale=10 if impl.startswith("numba") else 1, flop=flop)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("layer", range(5))
def test_conv_backward(benchmark, record, layer, impl):
    """dw, db, and dx except for the first layer (whose input needs no gradient)."""
    need(impl)
    x, w, b, dy, pad, flop = conv_data(layer)
    want_dx = layer > 0
    flop *= 2 if want_dx else 1
    if impl == "hdl":
        dx = np.empty_like(x) if want_dx else None
        benchmark(ops.conv2d_backward, dy, x, w, 1, pad, want_dx=want_dx, layout="NHWC", dx_out=dx)
    elif impl.startswith("numba"):
        n = BATCH // 10
        args = (np.ascontiguousarray(dy[:n].transpose(0, 3, 1, 2)), np.ascontiguousarray(x[:n].transpose(0, 3, 1, 2)),
                w, 1, pad)
        benchmark.pedantic(oracle.conv2d_backward, args=args, rounds=3, warmup_rounds=1)
    else:
        cl = impl.endswith("channels_last")
        xt = as_torch(x, cl).requires_grad_(want_dx)
        wt, bt, dyt = torch.from_numpy(w).requires_grad_(), torch.from_numpy(b).requires_grad_(), as_torch(dy, cl)
        y = torch.nn.functional.conv2d(xt, wt, bt, padding=pad)
        benchmark(lambda: torch.autograd.grad(y, [xt, wt, bt] if want_dx else [wt, bt], dyt, retain_graph=True))
    record(f"conv{layer + 1} backward", impl, scale=10 if impl.startswith("numba") else 1, flop=flop)


POOLS = [("max", 32, 32), ("avg", 16, 32), ("avg", 8, 64)]  # (kind, input size, channels) in the network


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("which", range(3))
@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_pool(benchmark, record, which, impl, direction):
    need(impl)
    kind, hw, c = POOLS[which]
    x = rng.standard_normal((BATCH, hw, hw, c)).astype(np.float32)
    dy = rng.standard_normal((BATCH, hw // 2, hw // 2, c)).astype(np.float32)
    fwd, bwd = getattr(ops, f"{kind}_pool2d"), getattr(ops, f"{kind}_pool2d_backward")
    if impl == "hdl":
        if direction == "forward":
            benchmark(fwd, x, 3, 2, POOL_PAD, layout="NHWC", out=np.empty_like(dy))
        else:
            benchmark(bwd, dy, x, 3, 2, POOL_PAD, layout="NHWC", out=np.empty_like(x))
    elif impl.startswith("numba"):
        n = BATCH // 10
        xs, dys = (np.ascontiguousarray(a[:n].transpose(0, 3, 1, 2)) for a in (x, dy))
        f = getattr(oracle, f"{kind}_pool2d" + ("" if direction == "forward" else "_backward"))
        args = (xs, 3, 2, POOL_PAD) if direction == "forward" else (dys, xs, 3, 2, POOL_PAD)
        benchmark.pedantic(f, args=args, rounds=3, warmup_rounds=1)
    else:
        cl = impl.endswith("channels_last")
        pool = torch.nn.MaxPool2d(3, 2, ceil_mode=True) if kind == "max" else torch.nn.AvgPool2d(3, 2, ceil_mode=True)
        xt = as_torch(x, cl).requires_grad_(direction == "backward")
        if direction == "forward":
            with torch.no_grad():
                benchmark(pool, xt)
        else:
            y = pool(xt)
            benchmark(lambda: torch.autograd.grad(y, xt, as_torch(dy, cl), retain_graph=True))
    record(f"{kind} pool {hw}x{hw}x{c} {direction}", impl, scale=10 if impl.startswith("numba") else 1)


def test_step_hdl(benchmark, record):
    x = rng.standard_normal((BATCH, 32, 32, 3)).astype(np.float32)
    labels = rng.integers(0, 10, BATCH)
    step = HdlStep(init_params())
    benchmark.pedantic(step.step, args=(x, labels), rounds=20, warmup_rounds=3)
    record("training step, batch 100", "hdl", flop=BATCH * (6 * MACS_PER_IMAGE - 2 * 75 * 32 * 1024))


def test_step_hdl_convnet(benchmark, record):
    """The step that hdl.train.fit takes: hdl.convnet.cifar_net's forward, loss, backward and update."""
    from hdl.convnet import cifar_net
    x = rng.standard_normal((BATCH, 32, 32, 3)).astype(np.float32)
    labels = rng.integers(0, 10, BATCH)
    net = cifar_net()

    def step():
        net.loss_and_gradients(x, labels)
        net.step(0.05, 0.9, 1e-4)
    benchmark.pedantic(step, rounds=20, warmup_rounds=3)
    record("training step, batch 100", "hdl ConvNet (cifar_net)", flop=BATCH * (6 * MACS_PER_IMAGE - 2 * 75 * 32 * 1024))


def test_inference_hdl(benchmark, record):
    x = rng.standard_normal((BATCH, 32, 32, 3)).astype(np.float32)
    step = HdlStep(init_params())
    benchmark.pedantic(step.forward, args=(x,), rounds=20, warmup_rounds=3)
    record("inference, batch 100", "hdl", flop=2 * BATCH * MACS_PER_IMAGE)


@pytest.mark.parametrize("channels_last", [False, True], ids=["NCHW", "channels_last"])
def test_step_torch(benchmark, record, channels_last):
    need("pytorch")
    model = torch_model(torch, channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    x = torch.randn(BATCH, 3, 32, 32)
    x = x.contiguous(memory_format=torch.channels_last) if channels_last else x
    y = torch.randint(0, 10, (BATCH,))
    benchmark.pedantic(torch_step, args=(torch, model, opt, x, y), rounds=20, warmup_rounds=3)
    record("training step, batch 100", f"pytorch {'channels_last' if channels_last else 'NCHW'}",
           flop=BATCH * (6 * MACS_PER_IMAGE - 2 * 75 * 32 * 1024))


@pytest.mark.parametrize("channels_last", [False, True], ids=["NCHW", "channels_last"])
def test_inference_torch(benchmark, record, channels_last):
    need("pytorch")
    model = torch_model(torch, channels_last).eval()
    x = torch.randn(BATCH, 3, 32, 32)
    x = x.contiguous(memory_format=torch.channels_last) if channels_last else x
    with torch.no_grad():
        benchmark.pedantic(model, args=(x,), rounds=20, warmup_rounds=3)
    record("inference, batch 100", f"pytorch {'channels_last' if channels_last else 'NCHW'}",
           flop=2 * BATCH * MACS_PER_IMAGE)


def test_step_numba_oracle(benchmark, record):
    """The same step by the oracles, batch 10, scaled to 100."""
    pytest.importorskip("numba")
    n = BATCH // 10
    params = [p.astype(np.float32) for p in init_params()]
    x = rng.standard_normal((n, 3, 32, 32)).astype(np.float32)
    labels = rng.integers(0, 10, n)

    def step():
        w1, b1, w2, b2, w3, b3, w4, b4, w5, b5 = params
        y1 = oracle.conv2d(x, w1, b1, 1, 2)
        p1 = oracle.max_pool2d(y1, 3, 2, POOL_PAD)
        r1 = oracle.relu(p1)
        y2 = oracle.conv2d(r1, w2, b2, 1, 2)
        r2 = oracle.relu(y2)
        p2 = oracle.avg_pool2d(r2, 3, 2, POOL_PAD)
        y3 = oracle.conv2d(p2, w3, b3, 1, 2)
        r3 = oracle.relu(y3)
        p3 = oracle.avg_pool2d(r3, 3, 2, POOL_PAD)
        y4 = oracle.conv2d(p3, w4, b4)
        r4 = oracle.relu(y4)
        y5 = oracle.conv2d(r4, w5, b5)
        _, g = oracle.softmax_log_loss(y5, labels)
        g, g5w, g5b = oracle.conv2d_backward(g, r4, w5)
        g, g4w, g4b = oracle.conv2d_backward(oracle.relu_backward(g, y4), p3, w4)
        g = oracle.relu_backward(oracle.avg_pool2d_backward(g, r3, 3, 2, POOL_PAD), y3)
        g, g3w, g3b = oracle.conv2d_backward(g, p2, w3, 1, 2)
        g = oracle.relu_backward(oracle.avg_pool2d_backward(g, r2, 3, 2, POOL_PAD), y2)
        g, g2w, g2b = oracle.conv2d_backward(g, r1, w2, 1, 2)
        g = oracle.max_pool2d_backward(oracle.relu_backward(g, p1), y1, 3, 2, POOL_PAD)
        _, g1w, g1b = oracle.conv2d_backward(g, x, w1, 1, 2, want_dx=False)
        grads = [g1w, g1b, g2w, g2b, g3w, g3b, g4w, g4b, g5w, g5b]
        oracle.sgd_momentum_(params, grads, [np.zeros_like(p) for p in params], lr=0.05)

    benchmark.pedantic(step, rounds=2, warmup_rounds=1)
    record("training step, batch 100", "numba oracle (x10)", scale=10,
           flop=BATCH * (6 * MACS_PER_IMAGE - 2 * 75 * 32 * 1024))
