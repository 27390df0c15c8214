"""The zoo (bench/zoo.py) under pytest-benchmark: each net's training step (batch 64) and inference
(batch 1 and 64) in hdl and in PyTorch (channels_last, hdl's thread count) in one run; the summary
at the end (conftest.py) gives the medians, PyTorch's time over hdl's (> 1: hdl faster), GFLOP/s and
the share of the float32 FMA peak (a training step counted as 3x the forward multiply-adds).

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE chrt -f 10 python -m pytest bench/bench_zoo.py
"""
import pytest

import zoo
from hdl import _C

try:
    import torch
    torch.set_num_threads(_C.get_num_threads())
except ImportError:
    torch = None

IMPLS = ["hdl", "pytorch"]
NAMES = [net.name for net in zoo.ZOO]


def twin(name, impl, batch):
    if impl == "pytorch" and torch is None:
        pytest.skip("PyTorch is not installed")
    h, t = zoo.twins(zoo.NETS[name], batch, torch if impl == "pytorch" else None)
    return h if impl == "hdl" else t


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", NAMES)
def test_training_step(benchmark, record, name, impl, batch=64):
    model = twin(name, impl, batch)
    benchmark.pedantic(model.step, rounds=10, warmup_rounds=2)
    record(f"{name} training step, batch {batch}", impl, scale=1 / zoo.steps_per_call(model),
           flop=3 * 2.0 * zoo.NETS[name].macs * batch)


@pytest.mark.parametrize("batch", [1, 64])
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", NAMES)
def test_inference(benchmark, record, name, impl, batch):
    model = twin(name, impl, batch)
    benchmark(model.infer)
    record(f"{name} inference, batch {batch}", impl, flop=2.0 * zoo.NETS[name].macs * batch)
