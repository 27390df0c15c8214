"""Every CUDA kernel against the Numba oracle and the CPU kernel, on the random awkward shapes of
test_conv.py and test_cnn_kernels.py, parametrised over devices:
  "cpu"       hdl.ops (NHWC), the reference the others are held to;
  "emulated"  the CUDA kernels' own source run on the CPU (tests/cuda_emu: the same __host__ __device__
              bodies, and the GEMM tile thread by thread), wherever nvcc is installed;
  "fake-cuda" hdl.cuda.ops with hdl._cuda replaced by tests/cuda_emu/fake_cuda.py (host memory, the
              emulated kernels): the Python layer and its calls into the bindings, wherever nvcc is;
  "cuda"      hdl.cuda.ops on the GPU; skips, saying why, where no GPU can be used.
Plus the first steps of the CIFAR network on both devices, and DeviceArray interchange (DLPack,
__cuda_array_interface__)."""
import numpy as np
import pytest
from conftest import CODES
from cuda_emu import emu

import hdl.cuda
from hdl import ops, reference
from hdl.convnet import cifar_net
from hdl.reference import cnn

GPU = hdl.cuda.is_available()
needs_gpu = pytest.mark.skipif(not GPU, reason=f"no GPU: {hdl.cuda.why_unavailable()}")
needs_nvcc = pytest.mark.skipif(emu.NVCC is None, reason="no nvcc to build the host emulation of the CUDA kernels")
DEVICES = ["cpu", pytest.param("emulated", marks=needs_nvcc), pytest.param("fake-cuda", marks=needs_nvcc),
           pytest.param("cuda", marks=needs_gpu)]


@pytest.fixture(autouse=True)
def _fake_gpu(request, monkeypatch):
    """For device "fake-cuda": hdl.cuda runs on the stand-in module for the test's duration."""
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and callspec.params.get("device") == "fake-cuda":
        from cuda_emu import fake_cuda
        monkeypatch.setattr(hdl.cuda, "_cuda", fake_cuda)
f32 = np.float32


def nhwc(a):
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1))


def nchw(a):
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2))


class Cpu:
    """hdl.ops in NHWC: numpy in, numpy out."""

    def __getattr__(self, name):
        f = getattr(ops, name)
        layout = name in ("conv2d", "conv2d_backward") or "pool" in name
        return (lambda *a, **k: f(*a, layout="NHWC", **k)) if layout else f


class Cuda:
    """hdl.cuda.ops behind the same signatures: uploads, runs, downloads (tuples element by element)."""

    def __getattr__(self, name):
        f = getattr(hdl.cuda.ops, name)

        def call(*args, **kwargs):
            up = lambda a: hdl.cuda.DeviceArray.from_numpy(a) if isinstance(a, np.ndarray) else a  # noqa: E731
            out = f(*map(up, args), **{k: up(v) for k, v in kwargs.items()})
            down = lambda r: r.numpy() if isinstance(r, hdl.cuda.DeviceArray) else r  # noqa: E731
            return tuple(down(r) for r in out) if isinstance(out, tuple) else down(out)
        return call


def backend(device):
    return {"cpu": Cpu, "emulated": emu.Emulated, "fake-cuda": Cuda, "cuda": Cuda}[device]()


# The CPU runs stride-1 3x3 and 5x5 convolutions by Winograd (F(6x6, 3x3), F(4x4, 5x5)), whose float32 errors
# reach a few 1e-5 of the output's scale; the GPU's products are direct. Agreement with the CPU is held to that.
CPU_CONV = dict(rtol=1e-4, atol=5e-5)


def close(got, want, rtol=1e-4, atol=1e-4):
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol * max(1.0, float(np.abs(want).max(initial=0))))


# -- the activations of the kernel list ------------------------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", ops.ACTIVATION_KERNELS)
def test_activations_match_the_cpu(device, kind):
    rng = np.random.default_rng(7)
    x = (4 * rng.standard_normal((3, 5, 7, 2))).astype(f32)
    x.flat[:4] = [0.0, -100.0, 100.0, 1e-7]
    dev, cpu = backend(device), Cpu()
    y = getattr(dev, kind)(x)
    close(y, getattr(cpu, kind)(x), rtol=2e-6, atol=1e-6)  # expf on the GPU, the CPU's own exp here
    close(y, getattr(cnn, kind)(x), rtol=2e-6, atol=1e-6)
    dy = rng.standard_normal(x.shape).astype(f32)
    close(getattr(dev, f"{kind}_backward")(dy, y), getattr(cnn, f"{kind}_backward")(dy, y), rtol=1e-6, atol=1e-6)


# -- convolution ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES[1:])
@pytest.mark.parametrize("xs,ws,stride,pad", [((2, 9, 7, 5), (70, 5, 3, 4), (2, 3), (1, 2, 0, 3)),
                                              ((3, 6, 6, 33), (31, 33, 3, 3), 1, 1),
                                              ((1, 5, 5, 2), (3, 2, 2, 2), 1, 0)])
def test_square_tiles_only(device, xs, ws, stride, pad):
    """The products with the 64x64 tile for every shape (set_gemm_tiles('square')) agree with the CPU."""
    rng = np.random.default_rng(5)
    x, w, b = (rng.standard_normal(s).astype(f32) for s in (xs, ws, ws[0]))
    dev, cpu = backend(device), Cpu()
    square = (lambda on: emu.load().emu_set_gemm_tiles(int(on))) if device == "emulated" else \
        (lambda on: hdl.cuda.set_gemm_tiles("square" if on else "auto"))
    square(True)
    try:
        y = dev.conv2d(x, w, b, stride, pad)
        dy = rng.standard_normal(y.shape).astype(f32)
        grads = dev.conv2d_backward(dy, x, w, stride, pad)
    finally:
        square(False)
    close(y, cpu.conv2d(x, w, b, stride, pad), **CPU_CONV)
    for a, c in zip(grads, cpu.conv2d_backward(dy, x, w, stride, pad)):
        close(a, c, **CPU_CONV)


CIFAR_LAYERS = [((5, 32, 32, 3), (32, 3, 5, 5), 2), ((5, 16, 16, 32), (32, 32, 5, 5), 2),
                ((5, 8, 8, 32), (64, 32, 5, 5), 2), ((5, 4, 4, 64), (64, 64, 4, 4), 0), ((5, 1, 1, 64), (10, 64, 1, 1), 0)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("xs,ws,pad", CIFAR_LAYERS)
def test_conv_cifar_layers(device, xs, ws, pad):
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(s).astype(f32) for s in (xs, ws, ws[0]))
    dev, cpu = backend(device), Cpu()
    y = dev.conv2d(x, w, b, 1, pad, relu=True)
    close(y, cpu.conv2d(x, w, b, 1, pad, relu=True), **CPU_CONV)
    dy = rng.standard_normal(y.shape).astype(f32)
    for a, c in zip(dev.conv2d_backward(dy, x, w, 1, pad), cpu.conv2d_backward(dy, x, w, 1, pad)):
        close(a, c, **CPU_CONV)


def tf32_switch(device):
    if device == "emulated":
        return lambda on: emu.load().emu_set_tf32(int(on))
    return hdl.cuda.set_tf32


@pytest.mark.parametrize("device", DEVICES[1:])
@pytest.mark.parametrize("xs,ws,pad", CIFAR_LAYERS[:3])
def test_tf32_error_is_bounded(device, xs, ws, pad):
    """TensorFloat-32 keeps 10 mantissa bits of the inputs: relative errors near 1e-3 of the largest output
    (against about 1e-6 in float32). The bound here is what bench/GPU.md states; "emulated" and
    "fake-cuda" round the operands as the tensor cores do (csrc/cuda/host_exec.cuh)."""
    rng = np.random.default_rng(1)
    x, w, b = (rng.standard_normal(s).astype(f32) for s in (xs, ws, ws[0]))
    want = Cpu().conv2d(x, w, b, 1, pad)
    dev, switch = backend(device), tf32_switch(device)
    switch(True)
    try:
        y = dev.conv2d(x, w, b, 1, pad)
        dy = rng.standard_normal(y.shape).astype(f32)
        grads = dev.conv2d_backward(dy, x, w, 1, pad)
    finally:
        switch(False)
    err = np.abs(y - want).max() / np.abs(want).max()
    assert 1e-5 < err < 5e-3  # TF32 did round (float32 alone is near 1e-7 here), and within the bound
    for a, c in zip(grads, Cpu().conv2d_backward(dy, x, w, 1, pad)):
        assert np.abs(a - c).max() < 5e-3 * np.abs(c).max()


# -- dense --------------------------------------------------------------------------------------------------

# -- pooling, ReLU, dropout, loss, SGD ------------------------------------------------------------------------



@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("slope", [0.0, 0.01])
def test_relu(device, slope):
    x = np.random.default_rng(0).standard_normal((3, 5, 6, 4)).astype(f32)
    dy = np.random.default_rng(1).standard_normal(x.shape).astype(f32)
    dev = backend(device)
    np.testing.assert_array_equal(dev.relu(x, slope), cnn.relu(x, f32(slope)))
    np.testing.assert_array_equal(dev.relu_backward(dy, x, slope), cnn.relu_backward(dy, x, f32(slope)))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("rate", [0.0, 0.15, 0.9])
def test_dropout_masks_equal_the_cpu_ones(device, rate):
    x = np.random.default_rng(0).standard_normal((50, 8, 8, 32)).astype(f32)
    y, mask = backend(device).dropout(x, rate, 7)
    y0, mask0 = ops.dropout(x, rate, 7)
    np.testing.assert_array_equal(mask, mask0)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(mask, cnn.dropout(x, rate, 7)[1])


# n_out x n_in x m: tiles cut short, K = 1, batch 1, and batches long enough for split-K in dW (3 x 5 x 1100:
# 4 slices, 65 x 130 x 700: 2) and for db's row sums in several chunks of 64
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("n_out,n_in,m", [(1, 1, 1), (70, 1, 3), (5, 33, 1), (3, 5, 1100), (65, 130, 700),
                                          (33, 17, 129)])
def test_dense_awkward_shapes_and_split_k(device, n_out, n_in, m):
    rng = np.random.default_rng(n_out * n_in + m)
    W, b, a_in, g = (rng.standard_normal(s).astype(f32) for s in ((n_out, n_in), n_out, (n_in, m), (n_out, m)))
    dev = backend(device)
    for act in ("relu", "sigmoid"):
        close(dev.dense_forward(W, b, a_in, act), reference.dense_forward(W, b, a_in, CODES[act], 0.01), 2e-5, 2e-5)
        a_out = ops.dense_forward(W, b, a_in, act)
        got = dev.dense_backward(g, a_out, W, a_in, act, 0.01, 0.5)
        for x, y in zip(got,
                        reference.dense_backward(g, a_out, W, a_in, CODES[act], 0.01, 0.5)):
            close(x, y, 1e-4, 1e-4 * max(1.0, np.sqrt(m)))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("N,K", [(13, 10), (100, 10), (3, 1), (7, 100), (1, 10), (300, 7)])  # mean in chunks of 64
def test_softmax_log_loss_and_top_k(device, N, K):
    rng = np.random.default_rng(N + K)
    v = (5 * rng.standard_normal((N, K))).astype(f32)
    labels = rng.integers(0, K, N)
    loss, dv = backend(device).softmax_log_loss(v, labels)
    loss0, dv0 = cnn.softmax_log_loss(v, labels)
    assert float(loss) == pytest.approx(loss0, rel=1e-6)
    np.testing.assert_allclose(dv, dv0, rtol=1e-5, atol=1e-7)
    k = min(K, 5)
    np.testing.assert_array_equal(backend(device).top_k(v, k), cnn.top_k(v, k))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("form", ["matconvnet", "pytorch"])
def test_sgd_momentum_matches_oracle(device, form):
    rng = np.random.default_rng(0)
    shapes = [(32, 3, 5, 5), (32,), (10, 64, 1, 1), (70_000,)] + [(i + 1,) for i in range(50)]  # > one launch
    params, grads, vels = ([rng.standard_normal(s).astype(f32) for s in shapes] for _ in range(3))
    want = [[a.copy() for a in group] for group in (params, vels)]
    n = len(shapes)
    kwargs = dict(lr=0.05, momentum=0.9, weight_decay=1e-4, lr_mults=list(rng.uniform(0, 2, n)),
                  decay_mults=list(rng.uniform(0, 1, n)), form=form)
    if device in ("cuda", "fake-cuda"):
        up = hdl.cuda.DeviceArray.from_numpy
        dp, dg, dv = ([up(a) for a in group] for group in (params, grads, vels))
        for _ in range(3):
            hdl.cuda.ops.sgd_momentum_(dp, dg, dv, **kwargs)
        params, vels = [a.numpy() for a in dp], [a.numpy() for a in dv]
    else:
        for _ in range(3):
            backend(device).sgd_momentum_(params, grads, vels, **kwargs)
    for _ in range(3):
        cnn.sgd_momentum_(want[0], grads, want[1], **kwargs)
    for got, ref in zip(params + vels, want[0] + want[1]):
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


# -- the CIFAR network: first steps on both devices -----------------------------------------------------------

@needs_gpu
@pytest.mark.parametrize("dropout", [False, True])
def test_cifar_net_first_steps_agree(dropout):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 32, 32, 3)).astype(f32)
    labels = rng.integers(0, 10, 20)
    cpu, gpu = cifar_net(dropout=dropout, seed=3), cifar_net(dropout=dropout, seed=3, device="cuda")
    for step in range(4):
        lc, sc = cpu.loss_and_gradients(x, labels, dropout_seed=step)
        lg, sg = gpu.loss_and_gradients(x, labels, dropout_seed=step)
        assert lg == pytest.approx(lc, rel=1e-4), step
        close(sg, sc, 1e-3, 1e-4)
        cpu.step(0.05, 0.9, 5e-4)
        gpu.step(0.05, 0.9, 5e-4)
    for a, b in zip(gpu.to("cpu").parameters(), cifar_net(dropout=dropout, seed=3).parameters()):
        assert a.shape == b.shape
    # to("cpu") wrote the GPU's values into the host twin: compare with the CPU-trained network
    for a, b in zip(gpu.host.parameters(), cpu.parameters()):
        close(a, b, 1e-3, 1e-4)


@needs_gpu
def test_cuda_steps_are_deterministic():
    """No atomics: two runs from the same start give the same bits (golden curves carry over to the GPU)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((50, 32, 32, 3)).astype(f32)
    labels = rng.integers(0, 10, 50)
    runs = []
    for _ in range(2):
        net = cifar_net(dropout=True, seed=2, device="cuda")
        losses = []
        for step in range(3):
            losses.append(net.loss_and_gradients(x, labels, dropout_seed=step)[0])
            net.step(0.05, 0.9, 5e-4)
        runs.append((losses, [p.numpy() for p in net.parameters()]))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(a, b)


@needs_gpu
def test_cuda_net_trains_with_fit():
    from hdl.train import fit
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 32, 32, 3)).astype(f32)
    y = rng.integers(0, 10, 200)
    net = cifar_net(device="cuda")
    hist = fit(net, (x, y), epochs=2, batch_size=50, lr=0.05, progress=False)
    assert len(hist.epochs) == 2 and np.isfinite(hist.train["objective"]).all()


# -- device arrays and interchange ------------------------------------------------------------------------------

@needs_gpu
def test_device_array_round_trip_and_views():
    a = np.arange(24, dtype=f32).reshape(2, 3, 4)
    d = hdl.cuda.DeviceArray.from_numpy(a)
    np.testing.assert_array_equal(d.numpy(), a)
    np.testing.assert_array_equal(d[1].numpy(), a[1])
    np.testing.assert_array_equal(d[0:1].reshape(3, -1).numpy(), a[0:1].reshape(3, 4))
    c = d.copy()
    c[...] = np.zeros_like(a)
    assert not c.numpy().any() and d.numpy().any()
    assert d.__cuda_array_interface__["shape"] == (2, 3, 4) and d.__cuda_array_interface__["version"] == 3
    stats = hdl.cuda.memory_stats()
    assert stats["in_use_bytes"] > 0


@needs_gpu
def test_dlpack_with_torch():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("PyTorch without CUDA")
    t = torch.arange(12, dtype=torch.float32, device="cuda").reshape(3, 4)
    d = hdl.cuda.from_dlpack(t)
    assert d.ptr == t.data_ptr() and d.shape == (3, 4)
    y = hdl.cuda.ops.relu(d, out=d)  # in place, seen by torch
    back = torch.from_dlpack(y)
    assert back.data_ptr() == t.data_ptr()
    assert torch.equal(back, t)
    t2 = torch.as_tensor(hdl.cuda.DeviceArray.from_numpy(np.ones((2, 2), f32)), device="cuda")  # CAI
    assert t2.sum().item() == 4
    with pytest.raises(ValueError, match="strides"):
        hdl.cuda.from_dlpack(t.t())
    with pytest.raises(ValueError, match="not a CUDA GPU"):
        hdl.cuda.from_dlpack(torch.ones(3))
