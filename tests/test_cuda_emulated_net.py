"""The Python side of the CUDA backend end to end where there is no GPU: hdl._cuda is replaced by
tests/cuda_emu/fake_cuda.py (host memory for device memory, the host emulation of the CUDA kernels
for the kernels), and the one Model moved by to("cuda"), DeviceArray, the pinned uploads and
hdl.train.fit run on it, held to the same model on the CPU step by step."""
import numpy as np
import pytest
from cuda_emu import emu

import hdl.cuda
from hdl.convnet import cifar_net

pytestmark = pytest.mark.skipif(emu.NVCC is None, reason="no nvcc to build the host emulation of the CUDA kernels")


@pytest.fixture
def fake_gpu(monkeypatch):
    from cuda_emu import fake_cuda
    monkeypatch.setattr(hdl.cuda, "_cuda", fake_cuda)
    return fake_cuda


def test_device_arrays(fake_gpu):
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    d = hdl.cuda.DeviceArray.from_numpy(a)
    np.testing.assert_array_equal(d.numpy(), a)
    np.testing.assert_array_equal(d[1].numpy(), a[1])
    np.testing.assert_array_equal(d[-1:].numpy(), a[-1:])
    np.testing.assert_array_equal(d.reshape(6, -1).numpy(), a.reshape(6, 4))
    c = d.copy()
    c[...] = 0
    assert not c.numpy().any() and d.numpy().any()
    c.copy_(d)
    np.testing.assert_array_equal(c.numpy(), a)
    assert float(hdl.cuda.DeviceArray.from_numpy(np.array([2.5]))) == 2.5
    with pytest.raises(ValueError, match="reshape"):
        d.reshape(5, 5)
    with pytest.raises(IndexError):
        d[0, 1]
    up = hdl.cuda.Uploader()
    for i in range(3):  # round-robin over the pinned buffers
        np.testing.assert_array_equal(up(a + i).numpy(), a + i)


def test_ops_raise_clear_errors(fake_gpu):
    ops, up = hdl.cuda.ops, hdl.cuda.DeviceArray.from_numpy
    x = up(np.ones((1, 5, 5, 3), np.float32))
    with pytest.raises(ValueError, match="input channels"):
        ops.conv2d(x, up(np.ones((2, 4, 3, 3), np.float32)), up(np.ones(2, np.float32)))
    with pytest.raises(ValueError, match=r"b must have shape \(2,\)"):
        ops.conv2d(x, up(np.ones((2, 3, 3, 3), np.float32)), up(np.ones(3, np.float32)))
    with pytest.raises(TypeError, match="float32"):
        ops.relu(up(np.ones(3)))
    with pytest.raises(ValueError, match="smaller than the window"):
        ops.max_pool2d(x, 2, 2, 2)
    with pytest.raises(ValueError, match="outside"):
        ops.softmax_log_loss(up(np.ones((2, 3), np.float32)), np.array([0, 3]))
    with pytest.raises(ValueError, match=r"out must have shape"):
        ops.relu(x, out=up(np.ones((1, 5, 5, 4), np.float32)))
    with pytest.raises(ValueError, match="grads"):
        ops.sgd_momentum_([x], [], [x], lr=0.1)
    with pytest.raises(ValueError, match="NHWC"):
        ops.conv2d(x, up(np.ones((2, 3, 3, 3), np.float32)), up(np.ones(2, np.float32)), layout="NCHW")


@pytest.mark.parametrize("dropout", [False, True])
def test_cuda_net_follows_the_cpu_net(fake_gpu, dropout):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 32, 32, 3)).astype(np.float32)
    labels = rng.integers(0, 10, 4)
    cpu, gpu = cifar_net(dropout=dropout, seed=3), cifar_net(dropout=dropout, seed=3, device="cuda")
    assert type(gpu) is type(cpu) and gpu.device == "cuda" and cpu.device == "cpu"
    assert all(isinstance(p, hdl.cuda.DeviceArray) for p in gpu.parameters() + gpu.velocities)
    for step in range(3):
        lc, sc = cpu.loss_and_gradients(x, labels, dropout_seed=step)
        lg, sg = gpu.loss_and_gradients(x, labels, dropout_seed=step)
        assert lg == pytest.approx(lc, rel=1e-5), step
        np.testing.assert_allclose(sg, sc, rtol=1e-4, atol=1e-5)
        for g_cpu, g_gpu in zip(cpu.parameter_gradients(), gpu.parameter_gradients()):
            np.testing.assert_allclose(g_gpu.numpy(), g_cpu, rtol=1e-3, atol=1e-5 * np.abs(g_cpu).max())
        cpu.step(0.05, 0.9, 5e-4)
        gpu.step(0.05, 0.9, 5e-4)
    loss, scores = gpu.loss_and_gradients(hdl.cuda.DeviceArray.from_numpy(x), labels, sync=False)
    assert loss.shape == () and scores.shape == (4, 10)
    np.testing.assert_allclose(gpu.scores(x, batch_size=3), cpu.scores(x, batch_size=3), rtol=1e-3, atol=1e-5)
    on_device = gpu.forward(hdl.cuda.DeviceArray.from_numpy(x))
    assert isinstance(on_device, hdl.cuda.DeviceArray)
    np.testing.assert_allclose(on_device.numpy(), cpu.forward(x), rtol=1e-3, atol=1e-5)
    host = gpu.to("cpu")
    assert host is gpu and host.device == "cpu"
    for a, b in zip(host.parameters() + host.velocities, cpu.parameters() + cpu.velocities):
        assert isinstance(a, np.ndarray)
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-6)


def test_any_model_moves_both_ways_and_keeps_its_answers(fake_gpu, tmp_path):
    """A user's model (Dense, Conv2d, pooling, dropout) goes to the GPU and back: the same scores, the same
    training step, summary and save on the device, a clear error for layers without CUDA kernels."""
    from hdl.layers import AvgPool2d, Conv2d, Dense, Dropout, Flatten, LeakyReLU, MaxPool2d, Sigmoid, Tanh
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 8, 8, 2)).astype(np.float32)
    labels = rng.integers(0, 5, 3)

    def build():
        return hdl.Model([Conv2d(2, 4, 3, stride=2, pad=(1, 0, 1, 0), init="he", rng=0), LeakyReLU(0.1),
                          MaxPool2d(2, 1), AvgPool2d(1), Tanh(), Flatten(),
                          Dense(4 * 3 * 3, 6, "relu", rng=1, dtype=np.float32), Dropout(0.3),
                          Dense(6, 6, "sigmoid", rng=3, dtype=np.float32), Sigmoid(),
                          Dense(6, 5, "linear", rng=2, dtype=np.float32)])
    cpu, gpu = build(), build().to("cuda")
    np.testing.assert_allclose(gpu.forward(x), cpu.forward(x), rtol=1e-4, atol=1e-5)
    for step in range(2):
        lc, _ = cpu.loss_and_gradients(x, labels, dropout_seed=step)
        lg, _ = gpu.loss_and_gradients(x, labels, dropout_seed=step)
        assert lg == pytest.approx(lc, rel=1e-5)
        cpu.step(0.1, 0.9, 1e-3)
        gpu.step(0.1, 0.9, 1e-3)
    assert gpu.summary((8, 8, 2)) == cpu.summary((8, 8, 2))
    gpu.save(tmp_path / "m.npz", with_velocities=True)
    loaded = hdl.Model.load(tmp_path / "m.npz", with_velocities=True)
    for a, b in zip(loaded.parameters() + loaded.velocities, cpu.parameters() + cpu.velocities):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(gpu.to("cpu").forward(x), cpu.forward(x), rtol=1e-4, atol=1e-5)
    with pytest.raises(NotImplementedError, match="step"):
        hdl.Model([Flatten(), Dense(128, 5, "step", dtype=np.float32)]).to("cuda")
    with pytest.raises(TypeError, match="float32"):
        hdl.Model([Dense(4, 2, "linear")]).to("cuda")
    with pytest.raises(NotImplementedError, match="CPU"):
        hdl.Network([2, 3, 2], dtype=np.float32).to("cuda")

    class Halve(hdl.Layer):  # a user's layer in numpy: the CPU only, unless it says more
        def forward(self, x):
            return x * 0.5

        def backward(self, dy, x, y):
            return dy * 0.5
    with pytest.raises(NotImplementedError, match="Halve"):
        hdl.Model([Flatten(), Halve(), Dense(128, 5, "linear", dtype=np.float32)]).to("cuda")
    with pytest.raises(ValueError, match="device must be one of"):
        cpu.to("tpu")


def test_fit_trains_a_cuda_net(fake_gpu, tmp_path):
    from hdl.train import fit
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 32, 32, 3)).astype(np.float32)
    y = rng.integers(0, 10, 12)
    net = cifar_net(device="cuda")
    hist = fit(net, (x, y), (x[:6], y[:6]), epochs=2, batch_size=6, lr=0.05, checkpoint=str(tmp_path / "c.npz"),
               patience=1, progress=False)
    assert hist.epochs == [1, 2] and np.isfinite(hist.train["objective"]).all()
    assert (tmp_path / "c.npz").exists()


def test_gpu_bench_script_runs(fake_gpu, tmp_path):
    """bench/gpu_bench.py --smoke on the emulation: every section of the prepared GPU run completes."""
    import importlib.util
    import json
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "bench" / "gpu_bench.py"
    spec = importlib.util.spec_from_file_location("gpu_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    bench.OUT = tmp_path
    bench.main(["--smoke"])
    sections = json.loads((tmp_path / "gpu_results.json").read_text())["sections"]
    assert set(sections) == {"environment", "kernels", "step_batch100", "epochs_50000", "real_data_learning"}
    for name, result in sections.items():
        assert "error" not in result, (name, result.get("trace"))
