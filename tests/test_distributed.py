"""hdl.distributed on two ranks on this machine (mpirun on loopback), held to one process: the gradients
of a step, the weights and the history of a training run, a checkpoint moved between 2 and 1 ranks,
ranks that disagree, a rank that fails, is killed or stalls (the job ends, never hangs). Each mpirun
launch costs about a second, so one launch (tests/mpi_worker.py checks) makes most of the checks."""
import importlib.util
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import hdl
import mpi_cases as cases
from hdl import distributed, train
from hdl.reducer import GradientReducer

HERE = os.path.dirname(__file__)
CIFAR = os.environ.get("HDL_CIFAR10", os.path.join(HERE, "..", "..", "shared", "data", "cifar-10-batches-bin"))
# the folder holding the hdl these tests import (the installed one in CI, python/ in a checkout)
HDL_ROOT = os.path.dirname(os.path.dirname(hdl.__file__))
MPIRUN = shutil.which("mpirun") or shutil.which("mpiexec")


def _mpi4py():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


pytestmark = pytest.mark.skipif(not (_mpi4py() and MPIRUN), reason="needs mpi4py and mpirun (pip install '.[mpi]')")


def mpirun(scenario, out, timeout=120, **env):
    root = ["--allow-run-as-root"] if os.geteuid() == 0 else []
    cmd = [MPIRUN, *root, "--oversubscribe", "-n", "2", sys.executable, os.path.join(HERE, "mpi_worker.py"),
           scenario, str(out)]
    env = {**os.environ, "HDL_MPI_TIMEOUT": "60", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([HDL_ROOT, os.environ.get("PYTHONPATH", "")]),
           **env}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """The checks scenario, run once: rank 0's results.npz and messages.json."""
    out = tmp_path_factory.mktemp("mpi")
    one = cases.small_net()  # a one-rank checkpoint after 2 epochs, resumed by the two ranks
    train.fit(one, cases.blobs(300), cases.blobs(100, 1), **{**cases.FIT, "epochs": 2},
              checkpoint=out / "one_rank.npz")
    env = {"HDL_CIFAR": CIFAR} if os.path.isdir(CIFAR) else {}
    r = mpirun("checks", out, **env)
    assert r.returncode == 0, r.stdout + r.stderr
    with open(out / "messages.json") as f:
        return out, dict(np.load(out / "results.npz")), json.load(f)


def one_rank_fit(**kw):
    net = cases.small_net()
    return net, train.fit(net, cases.blobs(300), cases.blobs(100, 1), **{**cases.FIT, **kw})


@pytest.mark.parametrize("batch", [8, 7, 1])
def test_two_rank_gradients_are_one_rank_gradients_on_the_whole_batch(two_ranks, batch):
    _, arrays, _ = two_ranks
    net = cases.small_net()
    x, y = cases.blobs(batch, seed=batch)
    loss, _ = net.loss_and_gradients(x, y)
    for i, g in enumerate(net.parameter_gradients()):
        np.testing.assert_allclose(arrays[f"grad{batch}_{i}"], g, rtol=1e-5, atol=1e-7 * np.abs(g).max())
    assert arrays[f"stats{batch}"][0] / batch == pytest.approx(loss, rel=1e-6)


@pytest.mark.parametrize("bucket_mb", [0.0, 1e-4])
def test_weights_stay_equal_on_the_ranks_and_training_matches_one_rank(two_ranks, bucket_mb):
    _, arrays, messages = two_ranks
    assert arrays[f"spread{bucket_mb}"] == 0  # the same update of the same sums: identical to the bit
    net, history = one_rank_fit()
    for i, p in enumerate(net.parameters()):
        np.testing.assert_allclose(arrays[f"weights{bucket_mb}_{i}"], p, rtol=1e-4, atol=1e-5)
    theirs = messages[f"history{bucket_mb}"]
    np.testing.assert_allclose(theirs["train"]["objective"], history.train["objective"], rtol=1e-4)
    np.testing.assert_allclose(theirs["val"]["objective"], history.val["objective"], rtol=1e-4)
    assert theirs["val"]["top1"] == pytest.approx(history.val["top1"], abs=0.011)  # one image of 100 at most
    assert history.val["top1"][-1] < 0.2  # it learned


def test_only_rank_0_writes_the_log(two_ranks):
    out, _, _ = two_ranks
    with open(out / "log.csv") as f:
        lines = f.read().splitlines()
    assert len(lines) == 1 + 2 * cases.FIT["epochs"]  # one header, one row per epoch of the two runs


def test_checkpoints_move_between_two_ranks_and_one(two_ranks, tmp_path):
    out, arrays, messages = two_ranks
    whole, history = one_rank_fit()
    # written by two ranks after epoch 2, continued here on one
    shutil.copy(out / "two_ranks.npz", tmp_path / "c.npz")
    net, resumed = one_rank_fit(checkpoint=tmp_path / "c.npz", resume=True)
    np.testing.assert_allclose(resumed.train["objective"], history.train["objective"], rtol=1e-4)
    for p, q in zip(net.parameters(), whole.parameters()):
        np.testing.assert_allclose(p, q, rtol=1e-4, atol=1e-5)
    # written by one rank after epoch 2, continued by two
    np.testing.assert_allclose(messages["resumed_history"]["train"]["objective"], history.train["objective"],
                               rtol=1e-4)
    for i, q in enumerate(whole.parameters()):
        np.testing.assert_allclose(arrays[f"resumed_{i}"], q, rtol=1e-4, atol=1e-5)


def test_ranks_that_disagree_raise_on_every_rank_naming_what(two_ranks):
    _, _, messages = two_ranks
    assert "ranks [1] differ from rank 0 in training data" in messages["data"]
    assert "rank 1 of 2 failed: ValueError: epochs and batch_size" in messages["argument"]


@pytest.mark.skipif(not os.path.isdir(CIFAR), reason=f"no CIFAR-10 binary files in {CIFAR}")
def test_cifar_net_on_two_ranks_has_the_loss_curve_of_one_rank(two_ranks, tmp_path):
    """hdl cifar10's run (the paper's network and rates, flips) on 400 images for 2 epochs of 4 global batches of
    100: two ranks of 50 each against one rank of 100, epoch by epoch (the CSV logs)."""
    import csv

    from hdl.experiments.cifar import run_cifar10
    out, _, _ = two_ranks
    run_cifar10(data=CIFAR, out=str(tmp_path), epochs=2, batch_size=100, limit=400, progress=False, plot=False,
                threads=1)
    curves = []
    for folder in (out / "cifar", tmp_path):
        with open(folder / "log_plain.csv") as f:
            curves.append([{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)])
    assert len(curves[0]) == len(curves[1]) == 2
    for two, one in zip(*curves):
        assert two["train_objective"] == pytest.approx(one["train_objective"], rel=1e-5)  # measured: 3e-8, 5e-7
        assert two["val_objective"] == pytest.approx(one["val_objective"], rel=1e-3)  # measured: 1.2e-5, 1.4e-4
        for key in ("train_top1", "val_top1"):
            assert two[key] == pytest.approx(one[key], abs=0.011)  # within one image in 100


@pytest.mark.parametrize("scenario, says", [("fail", "rank 1 fails on purpose"), ("kill", "signal 9"),
                                            ("stall", "not done after 3 s")])
def test_a_rank_that_fails_ends_the_job(tmp_path, scenario, says):
    """A rank raises, is killed (SIGKILL) or stalls at epoch 2 of 50: the job ends with an error (the
    subprocess timeout is the hang detector), the stall by the other rank's collective timeout."""
    r = mpirun(scenario, tmp_path, timeout=90, HDL_MPI_TIMEOUT="3")
    assert r.returncode != 0
    assert says in r.stderr + r.stdout
    assert not (tmp_path / "results.npz").exists()


def test_one_rank_world_and_the_environment():
    world = distributed.World()  # a process not started by mpirun is a world of one
    assert (world.rank, world.size) == (0, 1)
    net = cases.small_net()
    x, y = cases.blobs(6)
    reducer = GradientReducer(world, net)
    stats = train._reduced_gradients(net, reducer, x, y, 6, 0)
    ref = cases.small_net()
    loss, _ = ref.loss_and_gradients(x, y)
    assert stats[0] / 6 == pytest.approx(loss, rel=1e-6)
    for g, h in zip(net.parameter_gradients(), ref.parameter_gradients()):
        np.testing.assert_allclose(g, h, rtol=1e-6)
    assert distributed.threads_per_rank() >= 1


def test_environment_detection_without_mpi4py(monkeypatch):
    for name in distributed.SIZE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert not distributed.under_mpi()
    monkeypatch.setenv("PMI_SIZE", "4")
    assert distributed.launched_size() == 4 and distributed.under_mpi()
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # as if it were not installed
    with pytest.raises(distributed.DistributedError, match=r"needs mpi4py.*pip install 'hdl-higham\[mpi\]'"):
        distributed.World()


def test_import_hdl_does_not_import_mpi4py():
    code = "import sys, hdl, hdl.train, hdl.cli, hdl.distributed; print('mpi4py' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONPATH": HDL_ROOT})
    assert r.stdout.strip() == "False"


def test_commands_that_do_not_train_data_parallel_refuse_mpirun(monkeypatch, capsys):
    from hdl import cli
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    assert cli.main(["netbp", "--no-plot"]) == 2
    assert "does not train data-parallel" in capsys.readouterr().err


@pytest.mark.parametrize("cuda_aware", [False, True])
def test_device_gradients_are_summed_staged_or_in_place(monkeypatch, cuda_aware):
    """The GPU paths of hdl.reducer on the CUDA emulation of tests/cuda_emu (device memory is host memory there,
    so MPI reads it whichever way it is told): staged through a host copy, or read in place as a CUDA-aware MPI
    does, with the shard's weight applied on the device (here 1/2: one rank holding half a global batch)."""
    from cuda_emu import emu
    if emu.NVCC is None:
        pytest.skip("no nvcc to build the host emulation of the CUDA kernels")
    import hdl.cuda
    from cuda_emu import fake_cuda
    if cuda_aware and importlib.util.find_spec("hdl._cuda") is None:
        pytest.skip("mpi4py reads device memory through DLPack (__dlpack__), which hdl._cuda exports; this build has "
                    "no hdl._cuda (HDL_CUDA=OFF)")
    monkeypatch.setattr(hdl.cuda, "_cuda", fake_cuda)
    world = distributed.World(cuda_aware=cuda_aware)
    net, ref = cases.small_net().to("cuda"), cases.small_net()
    x, y = cases.blobs(6)
    reducer = GradientReducer(world, net)
    assert reducer.staged is not cuda_aware
    stats = train._reduced_gradients(net, reducer, x, y, 12, 0)
    loss, _ = ref.loss_and_gradients(x, y)
    assert stats[0] / 6 == pytest.approx(loss, rel=1e-5)
    for g, h in zip(net.parameter_gradients(), ref.parameter_gradients()):
        np.testing.assert_allclose(g.numpy(), 0.5 * h, rtol=1e-4, atol=1e-6)
