"""The benchmark zoo (bench/zoo.py, and bench/zoo_more.py's nets beyond its list): the hdl and PyTorch twins
compute functions of the same shape, and every zoo net trains and infers at batch 1, 7 and 256 (issue 10, point
3; the other nets at 1 and 7)."""
import pathlib
import sys
import tracemalloc

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "bench"))
import zoo  # noqa: E402
import zoo_more  # noqa: E402

NAMES = [net.name for net in zoo.ZOO]
MORE = [net.name for net in zoo_more.MORE]
zoo_more.add()


@pytest.mark.parametrize("name", NAMES + MORE)
def test_twins_have_the_same_output_shape_and_parameter_count(name):
    torch = pytest.importorskip("torch")
    net = zoo.NETS[name]
    h, t = zoo.twins(net, 3, torch)
    assert h.num_params() == t.num_params()
    assert h.infer().shape == tuple(t.infer().shape) == (3, net.classes)


@pytest.mark.parametrize("name, batch", [(name, b) for name in NAMES for b in (1, 7, 256)] +
                         [(name, b) for name in MORE for b in (1, 7)])
def test_every_net_trains_and_infers_at_any_batch(name, batch):
    net = zoo.NETS[name]
    h, _ = zoo.twins(net, batch)
    before = [p.copy() for p in (h.model.parameters() if hasattr(h.model, "parameters") else h.model.W)]
    h.step()
    after = h.model.parameters() if hasattr(h.model, "parameters") else h.model.W
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))
    scores = h.infer()
    assert scores.shape == (batch, net.classes) and np.all(np.isfinite(scores))


@pytest.mark.parametrize("name", [name for name in NAMES if not zoo.NETS[name].sizes])
def test_inference_at_batch_1_after_training_at_64_allocates_only_its_result(name):
    """The layers' buffers are grow-only blocks: batch 1 computes on the front of the training-sized
    ones (no new arrays but the scores it returns) and gives row 0 of the batch-64 scores (to Winograd's
    rounding)."""
    h, _ = zoo.twins(zoo.NETS[name], 64)
    h.step()
    full = h.model.forward(h.x)
    one = h.x[:1].copy()
    tracemalloc.start()
    scores = h.model.forward(one)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4096, f"{peak} bytes allocated for a batch-1 forward pass"
    # batch 1 may take the direct kernel where batch 64 took Winograd (too few tiles): their roundings differ
    np.testing.assert_allclose(scores[0], full[0], rtol=1e-4, atol=5e-5 * np.abs(full).max())
