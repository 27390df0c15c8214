"""Convolutions of the shapes users write (bench/conv_shapes.py lists them: VGG 3x3 layers at 32x32 to 4x4,
stride-2 3x3 and 4x4, a 7x7 stride-2 stem on 3 channels, 1x1 layers, LeNet's and an MNIST net's 5x5 layers),
batch 64, float32: hdl against PyTorch channels_last and NCHW (same threads) in one run, forward, filter
gradient (dw, db) and both gradients. The summary prints medians, ratios, GFLOP/s and % of FMA peak.

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m pytest bench/bench_conv.py
(or python bench/conv_shapes.py for the same table without pytest)."""
import pytest

from conv_shapes import SHAPES, data, hdl_fns, torch_fns

try:
    import torch
    from hdl import _C
    torch.set_num_threads(_C.get_num_threads())
except ImportError:
    torch = None

IMPLS = ["hdl", "pytorch channels_last", "pytorch NCHW"]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("direction", ["fwd", "dw", "dx+dw"])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_conv(benchmark, record, shape, direction, impl):
    if impl.startswith("pytorch") and torch is None:
        pytest.skip("PyTorch is not installed")
    H, C, O, k, s, p = SHAPES[shape]
    x, w, b, dy, flop = data(H, C, O, k, s, p)
    fns = hdl_fns(x, w, b, dy, s, p) if impl == "hdl" else torch_fns(x, w, b, dy, s, p, impl.endswith("last"))
    benchmark(fns[direction])
    record(f"{shape} {direction}", impl, flop=flop * (2 if direction == "dx+dw" else 1))
