"""The GPU measurements of bench/gpu_check.sh, in one run, written to $OUT/gpu_results.json after
every section (a timeout keeps what was measured):

1. the whole training step at batch 100 (forward, softmax log-loss, backward, momentum update),
   hdl beside PyTorch (NCHW, channels_last; float32, TF32);
2. full epochs of 50,000 synthetic CIFAR-shaped images, batches uploaded from pinned host memory
   (and, for comparison, with the data already on the GPU), and the 45-epoch projection; within
   --budget, keeping 45 s for the rest;
3. each kernel of the CIFAR-10 network at batch 100: hdl (float32 and TF32) beside PyTorch/cuDNN
   (NCHW and channels_last, float32 and TF32), CUDA-event medians;
4. a short run on real CIFAR-10 images (the batch carried in gpu_data/) on the GPU and on the CPU
   from the same initialisation: the losses must agree early and fall.

    python bench/gpu_bench.py [--quick | --smoke]

--smoke runs every section at toy sizes (batch 2, 20 images): tests/test_cuda_emulated_net.py runs
it on the host emulation of the kernels, so that the script is known to run before a GPU is lent.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cifar_step  # noqa: E402  (the PyTorch twin of the network)

import hdl.cuda  # noqa: E402
from hdl.convnet import cifar_net  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = Path(os.environ.get("OUT", ROOT / "out"))
RESULTS = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "sections": {}}
T0 = time.perf_counter()
SIZE = {"batch": 100, "images": 50_000, "real_images": None}  # --smoke shrinks them
BUDGET = {"seconds": 1e9, "reserve": 0.0}  # --budget: the epochs stop early, keeping `reserve` for what follows


def time_left():
    return BUDGET["seconds"] - BUDGET["reserve"] - (time.perf_counter() - T0)


def save():
    OUT.mkdir(parents=True, exist_ok=True)
    RESULTS["elapsed_s"] = round(time.perf_counter() - T0, 1)
    (OUT / "gpu_results.json").write_text(json.dumps(RESULTS, indent=1, default=float))


def section(name):
    def wrap(f):
        def run(*a, **k):
            t = time.perf_counter()
            print(f"== {name}", flush=True)
            try:
                RESULTS["sections"][name] = f(*a, **k)
            except Exception as e:  # keep going: a later section may still work
                RESULTS["sections"][name] = {"error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()}
                print(traceback.format_exc(), flush=True)
            RESULTS["sections"].setdefault(name, {})
            if isinstance(RESULTS["sections"][name], dict):
                RESULTS["sections"][name]["section_s"] = round(time.perf_counter() - t, 1)
            save()
            print(json.dumps(RESULTS["sections"][name], default=float)[:1500], flush=True)
        return run
    return wrap


def time_hdl(fn, reps=50, warmup=5):
    """Median milliseconds of fn() on hdl's stream, by CUDA events around each call."""
    _cuda = hdl.cuda._cuda
    warmup = min(warmup, reps)
    for _ in range(warmup):
        fn()
    hdl.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = _cuda.Event(), _cuda.Event()
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_ms(b))
    return float(np.median(times))


def time_torch(torch, fn, reps=50, warmup=5):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return float(np.median(times))


def import_torch():
    try:
        import torch
        return torch if torch.cuda.is_available() else None
    except ImportError:
        return None


@section("environment")
def environment():
    torch = import_torch()
    env = {"hdl_device": hdl.cuda.device_name(), "python": platform.python_version(),
           "cuda_runtime": hdl.cuda._cuda.runtime_version()}
    if torch is not None:
        env.update(torch=torch.__version__, cudnn=torch.backends.cudnn.version(),
                   torch_device=torch.cuda.get_device_name())
    return env


# hdl's variants: (tag, TF32, tile shapes); "fp32_square" times the 64x64-only tiles beside the default
HDL_CONFIGS = [("fp32", False, "auto"), ("fp32_square", False, "square"), ("tf32", True, "auto")]


def convs(n):
    return [("conv1", (n, 32, 32, 3), (32, 3, 5, 5), 2), ("conv2", (n, 16, 16, 32), (32, 32, 5, 5), 2),
            ("conv3", (n, 8, 8, 32), (64, 32, 5, 5), 2), ("conv4", (n, 4, 4, 64), (64, 64, 4, 4), 0),
            ("conv5", (n, 1, 1, 64), (10, 64, 1, 1), 0)]


def pools(n):
    return [("maxpool1", "max", (n, 32, 32, 32)), ("avgpool2", "avg", (n, 16, 16, 32)),
            ("avgpool3", "avg", (n, 8, 8, 64))]


@section("kernels")
def kernels(reps):
    ops, up = hdl.cuda.ops, hdl.cuda.DeviceArray.from_numpy
    rng = np.random.default_rng(0)
    torch = import_torch()
    res = {"batch": SIZE["batch"]}
    B = SIZE["batch"]
    for tag, tf32, tiles in HDL_CONFIGS:
        hdl.cuda.set_tf32(tf32)
        hdl.cuda.set_gemm_tiles(tiles)
        for name, xs, ws, pad in convs(B):
            x, w, b = (up(rng.standard_normal(s).astype(np.float32)) for s in (xs, ws, ws[0]))
            y = ops.conv2d(x, w, b, 1, pad)
            dy = up(rng.standard_normal(y.shape).astype(np.float32))
            res[f"hdl_{tag}/{name}_fwd_ms"] = time_hdl(lambda: ops.conv2d(x, w, b, 1, pad, relu=True, out=y), reps)
            res[f"hdl_{tag}/{name}_bwd_ms"] = time_hdl(lambda: ops.conv2d_backward(dy, x, w, 1, pad), reps)
    hdl.cuda.set_tf32(False)
    hdl.cuda.set_gemm_tiles("auto")
    for name, kind, xs in pools(B):
        x = up(rng.standard_normal(xs).astype(np.float32))
        f, g = getattr(ops, f"{kind}_pool2d"), getattr(ops, f"{kind}_pool2d_backward")
        y = f(x, 3, 2, (0, 1, 0, 1))
        dy = up(rng.standard_normal(y.shape).astype(np.float32))
        res[f"hdl/{name}_fwd_ms"] = time_hdl(lambda: f(x, 3, 2, (0, 1, 0, 1), out=y), reps)
        res[f"hdl/{name}_bwd_ms"] = time_hdl(lambda: g(dy, x, 3, 2, (0, 1, 0, 1)), reps)
        if kind == "max":  # as the network runs it: ReLU fused, argmax kept, backward from the argmax
            _, am = ops.max_pool2d(x, 3, 2, (0, 1, 0, 1), relu=True, return_argmax=True)
            res[f"hdl/{name}_relu_argmax_fwd_ms"] = time_hdl(
                lambda: ops.max_pool2d(x, 3, 2, (0, 1, 0, 1), out=y, relu=True, return_argmax=True, argmax_out=am),
                reps)
            res[f"hdl/{name}_argmax_bwd_ms"] = time_hdl(lambda: g(dy, x, 3, 2, (0, 1, 0, 1), argmax=am), reps)
    x = up(rng.standard_normal((B, 32, 32, 32)).astype(np.float32))
    res["hdl/relu_fwd_ms(Bx32x32x32)"] = time_hdl(lambda: ops.relu(x, out=x), reps)
    res["hdl/dropout_fwd_ms(Bx32x32x32)"] = time_hdl(lambda: ops.dropout(x, 0.15, 1), reps)
    v, lab = up(rng.standard_normal((B, 10)).astype(np.float32)), up(rng.integers(0, 10, B))
    res["hdl/softmax_log_loss_ms"] = time_hdl(lambda: ops.softmax_log_loss(v, lab), reps)
    res["hdl/top_k5_ms"] = time_hdl(lambda: ops.top_k(v, 5), reps)
    net = cifar_net(device="cuda")
    net.loss_and_gradients(np.zeros((B, 32, 32, 3), np.float32), np.zeros(B, np.int64))  # the gradient arrays
    grads = net.parameter_gradients()
    for g in grads:
        g.zero_()
    res["hdl/sgd_momentum_all_params_ms"] = time_hdl(lambda: net.step(0.01, 0.9, 5e-4), reps)
    if torch is not None:
        F = torch.nn.functional
        for tf32 in (False, True):
            torch.backends.cudnn.allow_tf32 = tf32
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.backends.cudnn.benchmark = True
            for cl in (False, True):
                tag = ("tf32" if tf32 else "fp32") + ("_channels_last" if cl else "_nchw")
                for name, xs, ws, pad in convs(B):
                    n, h, w_, c = xs
                    x = torch.randn(n, c, h, w_, device="cuda", requires_grad=True)
                    w = torch.randn(*ws, device="cuda", requires_grad=True)
                    b = torch.randn(ws[0], device="cuda", requires_grad=True)
                    if cl:
                        x = x.detach().to(memory_format=torch.channels_last).requires_grad_()
                        w = w.detach().to(memory_format=torch.channels_last).requires_grad_()
                    y = F.relu(F.conv2d(x, w, b, padding=pad))
                    dy = torch.randn_like(y)
                    res[f"torch_{tag}/{name}_fwd_ms"] = time_torch(
                        torch, lambda: F.relu(F.conv2d(x, w, b, padding=pad)), reps)

                    def bwd():
                        yy = F.conv2d(x, w, b, padding=pad)
                        torch.autograd.grad(yy, (x, w, b), dy)
                    res[f"torch_{tag}/{name}_fwd+bwd_ms"] = time_torch(torch, bwd, reps)
    return res


def torch_setup(torch, channels_last, tf32, batch=100):
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = True
    model = cifar_step.torch_model(torch, channels_last).cuda()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4, foreach=True)
    x = torch.randn(batch, 3, 32, 32, device="cuda")
    if channels_last:
        x = x.to(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device="cuda")
    return model, opt, x, y


@section("step_batch100")
def step(reps):
    B = SIZE["batch"]
    res = {"batch": B}
    rng = np.random.default_rng(0)
    x = rng.standard_normal((B, 32, 32, 3)).astype(np.float32)
    labels = rng.integers(0, 10, B)
    for tag, tf32, tiles in HDL_CONFIGS:
        hdl.cuda.set_tf32(tf32)
        hdl.cuda.set_gemm_tiles(tiles)
        net = cifar_net(device="cuda")
        xd, ld = hdl.cuda.DeviceArray.from_numpy(x), hdl.cuda.DeviceArray.from_numpy(labels)

        def hdl_step():
            net.loss_and_gradients(xd, ld, sync=False)
            net.step(0.01, 0.9, 5e-4)
        res[f"hdl_{tag}_ms"] = time_hdl(hdl_step, reps)
        res[f"hdl_{tag}_host_batch_ms"] = time_hdl(lambda: (net.loss_and_gradients(x, labels, sync=False),
                                                            net.step(0.01, 0.9, 5e-4)), reps)
        hdl.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(reps):
            hdl_step()
        res[f"hdl_{tag}_host_issue_ms"] = (time.perf_counter() - t) / reps * 1e3  # Python + launch cost
        hdl.cuda.synchronize()
    hdl.cuda.set_tf32(False)
    hdl.cuda.set_gemm_tiles("auto")
    torch = import_torch()
    if torch is not None:
        for tf32 in (False, True):
            for cl in (False, True):
                model, opt, xt, yt = torch_setup(torch, cl, tf32, B)
                tag = ("tf32" if tf32 else "fp32") + ("_channels_last" if cl else "_nchw")
                res[f"torch_{tag}_ms"] = time_torch(torch, lambda: cifar_step.torch_step(torch, model, opt, xt, yt),
                                                    reps)
        best = min(v for k, v in res.items() if k.startswith("torch_") and "fp32" in k and k.endswith("_ms"))
        res["hdl_fp32_over_best_torch_fp32"] = res["hdl_fp32_ms"] / best
    return res


@section("epochs_50000")
def epochs(n_epochs):
    """Synthetic CIFAR-shaped data (50,000 images): batches of 100 sliced on the host and uploaded from
    pinned memory each step (as a real data pipeline), then with the data resident on the GPU."""
    N, B = SIZE["images"], SIZE["batch"]
    res = {"images": N, "batch": B}
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, 32, 32, 3)).astype(np.float32)
    y = rng.integers(0, 10, N)
    for tf32 in (False, True):
        hdl.cuda.set_tf32(tf32)
        tag = "tf32" if tf32 else "fp32"
        net = cifar_net(device="cuda")
        times = []
        for e in range(n_epochs):
            if times and time_left() < 2 * times[-1]:
                res[f"{tag}_stopped"] = "time budget"
                break
            order = np.random.default_rng(e).permutation(N)
            hdl.cuda.synchronize()
            t = time.perf_counter()
            loss = None
            for i in range(0, N, B):
                idx = np.sort(order[i:i + B])
                loss, _ = net.loss_and_gradients(x[idx], y[idx], dropout_seed=i, sync=False)
                net.step(0.01, 0.9, 5e-4)
            final = float(loss)  # waits for the epoch
            times.append(time.perf_counter() - t)
        res[f"{tag}_host_batches_epoch_s"] = times
        res[f"{tag}_host_batches_45_epochs_s"] = 45 * min(times)
        res[f"{tag}_final_loss"] = final
        if time_left() < 2 * min(times):
            res[f"{tag}_resident_skipped"] = "time budget"
            continue
        xd, yd = hdl.cuda.DeviceArray.from_numpy(x), hdl.cuda.DeviceArray.from_numpy(y)
        hdl.cuda.synchronize()
        t = time.perf_counter()
        for i in range(0, N, B):
            net.loss_and_gradients(xd[i:i + B], yd[i:i + B], sync=False)
            net.step(0.01, 0.9, 5e-4)
        hdl.cuda.synchronize()
        res[f"{tag}_resident_epoch_s"] = time.perf_counter() - t
        res[f"{tag}_resident_45_epochs_s"] = 45 * res[f"{tag}_resident_epoch_s"]
        del xd, yd
    hdl.cuda.set_tf32(False)
    return res


@section("real_data_learning")
def real_data(steps):
    """The carried CIFAR-10 batch (mean image subtracted): the same network trained on the GPU and on
    the CPU from the same initialisation, same batches; the losses should agree early and fall."""
    from hdl.data.cifar10 import parse_batch
    path = ROOT / "gpu_data" / "data_batch_1.bin"
    if not path.exists():
        return {"skipped": f"{path} not carried (see bench/GPU.md)"}
    images, labels = parse_batch(path.read_bytes(), path.name)
    images, labels = images[:SIZE["real_images"]], labels[:SIZE["real_images"]]
    x = images.astype(np.float32)
    x -= x.mean(axis=0)
    x /= 64.0
    B = SIZE["batch"]
    cpu, gpu = cifar_net(seed=0), cifar_net(seed=0, device="cuda")
    losses = {"cpu": [], "gpu": []}
    t = {"cpu": 0.0, "gpu": 0.0}
    for s in range(steps):
        i = (s * B) % max(len(x) - B, 1)
        for name, net in (("cpu", cpu), ("gpu", gpu)):
            t0 = time.perf_counter()
            loss, _ = net.loss_and_gradients(x[i:i + B], labels[i:i + B])
            net.step(0.05, 0.9, 5e-4)
            t[name] += time.perf_counter() - t0
            losses[name].append(loss)
    cpu_l, gpu_l = np.array(losses["cpu"]), np.array(losses["gpu"])
    # then more GPU-only epochs over the batch: the training loss keeps falling
    more = []
    for e in range(1 if SIZE["real_images"] else 3):
        tot = 0.0
        for i in range(0, len(x), B):
            loss, _ = gpu.loss_and_gradients(x[i:i + B], labels[i:i + B])
            gpu.step(0.05, 0.9, 5e-4)
            tot += loss
        more.append(tot / (len(x) // B))
    return {"steps": steps, "cpu_losses": cpu_l.tolist(), "gpu_losses": gpu_l.tolist(),
            "max_rel_diff_first_10": float(np.max(np.abs(gpu_l[:10] - cpu_l[:10]) / cpu_l[:10])),
            "loss_first_10_mean": float(gpu_l[:10].mean()), "loss_last_10_mean": float(gpu_l[-10:].mean()),
            "gpu_epoch_mean_losses_after": more, "learns": bool(more[-1] < gpu_l[:10].mean() - 0.1),
            "cpu_s_per_step": t["cpu"] / steps, "gpu_s_per_step_synced": t["gpu"] / steps}


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true", help="fewer repetitions and one epoch")
    p.add_argument("--smoke", action="store_true", help="toy sizes, to check that the script runs")
    p.add_argument("--budget", type=float, default=1e9, help="seconds: later epochs are skipped to stay within")
    a = p.parse_args(argv)
    BUDGET["seconds"] = a.budget
    hdl.cuda.require()
    if a.smoke:
        SIZE.update(batch=2, images=8, real_images=8)
    reps = 1 if a.smoke else 20 if a.quick else 50
    environment()
    step(reps)  # the figures that matter most first, so that a timeout keeps them
    BUDGET["reserve"] = 0.0 if a.smoke else 45.0  # for the kernels and the real-data check after the epochs
    epochs(1 if a.smoke or a.quick else 2)  # stops within the budget
    BUDGET["reserve"] = 0.0
    kernels(reps)
    real_data(2 if a.smoke else 60 if a.quick else 150)
    save()
    print(f"wrote {OUT / 'gpu_results.json'} in {time.perf_counter() - T0:.0f} s")


if __name__ == "__main__":
    main()
