"""Reliability (issue 15, points 3-6): files that survive faults, resume and determinism, steady under load.

docs/RELIABILITY.md says what each test proves and gives the figures these tests print (run with -s to see
the lines starting "reliability:").
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import hdl
from hdl.callbacks import Callback, Checkpoint
from hdl.layers import Conv2d, Dense, Dropout, Flatten, MaxPool2d, ReLU
from hdl.model import Model, ModelFileError
from hdl.network import Network
from hdl.optim import stochastic_gradient
from hdl.run import TrainingDiverged
from hdl.train import fit

PYTHON_DIR = str(Path(hdl.__file__).resolve().parent.parent)
CIFAR = Path(os.environ.get("HDL_CIFAR10", Path(__file__).resolve().parents[2] / "shared/data/cifar-10-batches-bin"))


def report(line: str) -> None:
    print(f"reliability: {line}")


@pytest.fixture
def one_thread():
    """hdl's kernels on one thread (hdl.set_num_threads is per calling thread: OpenMP's nthreads-var)."""
    before = hdl.get_num_threads()
    hdl.set_num_threads(1)
    yield
    hdl.set_num_threads(before)


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = PYTHON_DIR + os.pathsep + env.get("PYTHONPATH", "")
    return env


def same_state(a: Model, b: Model, velocities: bool = True) -> bool:
    pairs = list(zip(a.parameters(), b.parameters()))
    if velocities:
        pairs += list(zip(a.velocities, b.velocities))
    return all(x.dtype == y.dtype and np.array_equal(x, y) for x, y in pairs)


# -- 1. killed during a save --------------------------------------------------------------------------------------
# The two models the child saves in turn, built the same way here and there (about 0.7 MB with velocities).
MODELS = textwrap.dedent("""
    import numpy as np
    import hdl
    from hdl.layers import Dense

    def saved_model(seed):
        m = hdl.Model([Dense(64, 256, "relu", rng=seed, dtype=np.float32),
                       Dense(256, 256, "relu", rng=seed + 1, dtype=np.float32),
                       Dense(256, 10, "linear", rng=seed + 2, dtype=np.float32)])
        rng = np.random.default_rng(seed)
        for v in m.velocities:
            v[...] = rng.standard_normal(v.shape)
        return m
""")

SAVER = MODELS + textwrap.dedent("""
    import sys
    path = sys.argv[1]
    models = [saved_model(1), saved_model(2)]
    i = 0
    while True:
        models[i % 2].save(path, with_velocities=True, extra={"save": i})
        if i == 0:
            print("ready", flush=True)
        i += 1
""")


def kill_after(cmd: list[str], delay: float) -> None:
    """Starts cmd, waits for its 'ready' line, then SIGKILLs it after `delay` seconds."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env(), text=True)
    try:
        line = p.stdout.readline()
        assert line.strip() == "ready", f"the child did not start: {line!r} {p.stderr.read() if p.poll() else ''}"
        time.sleep(delay)
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()


def test_model_save_survives_sigkill(tmp_path):
    """A process saving two models in turn to one path, SIGKILLed at random moments: the path always holds one
    of the two, whole (parameters and velocities bit for bit), never a mixture or a partial file."""
    namespace: dict = {}
    exec(MODELS, namespace)
    expected = [namespace["saved_model"](1), namespace["saved_model"](2)]
    script = tmp_path / "saver.py"
    script.write_text(SAVER)
    path = tmp_path / "model.npz"
    rng = np.random.default_rng(15)
    kills, seen, tmp_left, saves = 16, set(), 0, []
    for _ in range(kills):
        kill_after([sys.executable, str(script), str(path)], rng.uniform(0.0, 0.25))
        loaded = Model.load(path, with_velocities=True)  # never ModelFileError: os.replace is atomic
        which = [k for k, m in enumerate(expected) if same_state(loaded, m)]
        assert len(which) == 1, "the file is whole but holds neither model"
        assert loaded.meta["save"] % 2 == which[0], "the metadata and the arrays come from different saves"
        seen.add(which[0])
        saves.append(loaded.meta["save"])
        tmp_left += (tmp_path / "model.npz.tmp").exists()
        assert sorted(os.listdir(tmp_path)) in (["model.npz", "saver.py"], ["model.npz", "model.npz.tmp", "saver.py"])
    assert seen == {0, 1}, "the kills always found the same model: the saves do not alternate"
    report(f"Model.save: {kills} SIGKILLs, {kills} files loaded whole ({tmp_left} kills left a partial .tmp beside "
           f"it), up to {max(saves) + 1} saves per child")


CHECKPOINTER = textwrap.dedent("""
    import sys
    import numpy as np
    import hdl
    from hdl.layers import Dense
    from hdl.train import fit

    def task():
        rng = np.random.default_rng(0)
        x = rng.standard_normal((100, 8)).astype(np.float32)
        return x, (x[:, 0] > 0).astype(np.int64) + 2 * (x[:, 1] > 0)

    def model(seed):
        return hdl.Model([Dense(8, 32, "relu", rng=seed, dtype=np.float32),
                          Dense(32, 4, "linear", rng=seed + 1, dtype=np.float32)])

    def train(net, epochs, **kw):
        hdl.set_num_threads(1)
        return fit(net, task(), epochs=epochs, batch_size=25, lr=0.01, seed=5, progress=False, **kw)

    if __name__ == "__main__":
        said = []
        def ready(epoch, history):
            if not said:
                said.append(print("ready", flush=True))
        train(model(int(sys.argv[3])), int(sys.argv[2]), checkpoint=sys.argv[1], resume=True, on_epoch=ready)
        print("done", flush=True)
""")


def test_checkpoint_survives_sigkill_and_resumes_exactly(tmp_path, one_thread):
    """fit(checkpoint=, resume=True) SIGKILLed at random moments and started again each time: every checkpoint
    the kills leave loads, holds epochs 1..k in its history and the exact parameters and velocities of an
    uninterrupted run after epoch k; the last run, resumed, ends where the uninterrupted run ends."""
    script = tmp_path / "checkpointer.py"
    script.write_text(CHECKPOINTER)
    sys.path.insert(0, str(tmp_path))
    try:
        import checkpointer as ck
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("checkpointer", None)
    path = tmp_path / "run.npz"
    rng = np.random.default_rng(16)
    kills, reached, tmp_left = 12, [], 0
    for i in range(kills):  # each child resumes where the last one was killed (a fresh model, other weights)
        kill_after([sys.executable, str(script), str(path), "100000", str(100 + i)], rng.uniform(0.0, 0.2))
        tmp_left += (tmp_path / "run.npz.tmp").exists()
        assert set(os.listdir(tmp_path)) - {"run.npz.tmp", "__pycache__"} == {"run.npz", "checkpointer.py"}
        loaded = Model.load(path, with_velocities=True)
        epochs = loaded.meta["history"]["epochs"]
        assert epochs == list(range(1, len(epochs) + 1)), "the history has gaps or repeats"
        reached.append((epochs[-1], loaded))
    assert reached[-1][0] > reached[0][0], "the kills came before any progress"
    last = reached[-1][0] + 3
    done = subprocess.run([sys.executable, str(script), str(path), str(last), "999"], capture_output=True,
                          text=True, env=child_env(), timeout=60)
    assert done.stdout.split() == ["ready", "done"], done.stderr
    final = Model.load(path, with_velocities=True)
    assert final.meta["history"]["epochs"] == list(range(1, last + 1))

    snapshots: dict[int, list[np.ndarray]] = {}
    wanted = {k for k, _ in reached}
    reference = ck.model(100)  # the uninterrupted run, from the first child's start (later children's own weights
    # are replaced by the checkpoint)

    def snap(epoch, history):
        if epoch in wanted:
            snapshots[epoch] = [a.copy() for a in reference.parameters() + reference.velocities]

    ck.train(reference, last, on_epoch=snap)
    for k, loaded in reached:
        assert all(np.array_equal(a, b) for a, b in zip(loaded.parameters() + loaded.velocities, snapshots[k])), \
            f"the checkpoint of epoch {k} is not the uninterrupted run's state after epoch {k}"
    assert same_state(final, reference), "killed and resumed runs end elsewhere than the uninterrupted run"
    report(f"Checkpoint: {kills} SIGKILLs during fit (a save after every epoch; {tmp_left} mid-save), {kills} "
           f"checkpoints loaded, each "
           f"equal to the uninterrupted run at its epoch ({', '.join(str(k) for k, _ in reached)}); resumed to "
           f"epoch {last}: bit-identical")


# -- 2. hand-edited model files ----------------------------------------------------------------------------------
class Payload:
    """Unpickling it calls open(path, 'w'): a marker file appears if anything unpickles it."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture
def saved(tmp_path):
    m = Model([Conv2d(1, 2, 3, pad=1, rng=0), ReLU(), MaxPool2d(2), Flatten(), Dense(2 * 2 * 2, 3, "linear", rng=1,
                                                                                       dtype=np.float32)])
    path = tmp_path / "ok.npz"
    m.save(path, with_velocities=True, arrays={"stats": np.arange(3.0)})
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    return arrays, json.loads(str(arrays["meta"]))


def edited(tmp_path, arrays, name, **changes):
    path = tmp_path / name
    np.savez(path, **{**arrays, **changes})
    return path


def meta_with(meta, edit):
    meta = json.loads(json.dumps(meta))
    edit(meta)
    return np.array(json.dumps(meta))


def _set_layer(meta, i, key, value):
    meta["network"]["layers"][i][key] = value


HAND_EDITS = {
    "bad_json": lambda meta: {"meta": np.array('{"network": {"format": "hdl-convnet", ')},
    "meta_not_text": lambda meta: {"meta": np.zeros((2, 2))},
    "network_not_object": lambda meta: {"meta": np.array(json.dumps({"network": 5}))},
    "network_a_list": lambda meta: {"meta": np.array(json.dumps({"network": [meta["network"]]}))},
    "unknown_layer": lambda meta: {"meta": meta_with(meta, lambda m: _set_layer(m, 0, "type", "os.system"))},
    "unknown_argument": lambda meta: {"meta": meta_with(meta, lambda m: _set_layer(m, 4, "exec", "print(1)"))},
    "bad_activation": lambda meta: {"meta": meta_with(meta, lambda m: _set_layer(m, 4, "activation",
                                                                                 "__import__('os')"))},
    "bad_dtype": lambda meta: {"meta": meta_with(meta, lambda m: m["network"].update(dtype="object"))},
    "wrong_shape": lambda meta: {"param0": np.zeros((2, 1, 3, 2), np.float32)},
    "wrong_velocity_shape": lambda meta: {"velocity3": np.zeros(4, np.float32)},
    "shape_and_description_disagree": lambda meta: {"meta": meta_with(meta, lambda m: _set_layer(m, 4, "n_out", 5))},
    "text_parameters": lambda meta: {"param0": np.full((2, 1, 3, 3), "x")},
    "huge_layer": lambda meta: {"meta": meta_with(meta, lambda m: _set_layer(m, 4, "n_out", 10**12))},
}


@pytest.mark.parametrize("case", sorted(HAND_EDITS))
def test_hand_edited_file_is_refused_naming_it(tmp_path, saved, case):
    arrays, meta = saved
    path = edited(tmp_path, arrays, f"{case}.npz", **HAND_EDITS[case](meta))
    with pytest.raises(ModelFileError, match=re.escape(str(path))):
        Model.load(path, with_velocities=True)


OLD_NETWORK_EDITS = {  # the earlier Network.save format: 'config' and layer{i}.W, layer{i}.b
    "config_not_object": {"config": np.array("[5]")},
    "config_bad_json": {"config": np.array("{'format': ")},
    "config_huge_layer": {"config": np.array(json.dumps({"format": "hdl-network", "dtype": "float64", "layers": [
        {"type": "Dense", "n_in": 2, "n_out": 10**12, "activation": "sigmoid"}]}))},
    "wrong_shape": {"layer0.W": np.zeros((3, 3))},
    "missing_array": {"layer0.b": None},
}


@pytest.mark.parametrize("case", sorted(OLD_NETWORK_EDITS))
def test_hand_edited_earlier_network_file_is_refused_naming_it(tmp_path, case):
    net = Network([2, 3, 2], seed=0)
    arrays = {"config": np.array(json.dumps(net.config()))}
    for i, layer in enumerate(net.layers):
        arrays.update({f"layer{i}.{k}": v for k, v in layer.params().items()})
    assert same_state(Network.load(edited(tmp_path, arrays, "good.npz")), net, velocities=False)
    changed = {**arrays, **OLD_NETWORK_EDITS[case]}
    path = edited(tmp_path, {k: v for k, v in changed.items() if v is not None}, f"{case}.npz")
    with pytest.raises(ModelFileError, match=re.escape(str(path))):
        Network.load(path)


@pytest.mark.parametrize("where", ["meta", "param0", "velocity1", "array_stats"])
def test_pickled_object_in_a_file_is_never_unpickled(tmp_path, saved, where):
    arrays, _ = saved
    payload = np.empty(1, dtype=object)
    # the payload is live: numpy with allow_pickle=True runs it
    payload[0] = Payload(tmp_path / "control_marker")
    control = edited(tmp_path, arrays, "control.npz", **{where: payload})
    with np.load(control, allow_pickle=True) as f:
        f[where]
    assert (tmp_path / "control_marker").exists()

    marker = tmp_path / "marker"
    payload[0] = Payload(marker)
    path = edited(tmp_path, arrays, f"pickled_{where}.npz", **{where: payload})
    with pytest.raises(ModelFileError, match=re.escape(str(path)) + ".*(pickle|unpickles)"):
        Model.load(path, with_velocities=True)
    assert not marker.exists(), "loading the file ran the pickled object's code"
    with pytest.raises(ModelFileError, match=re.escape(str(path))):  # not a Network's file, or the pickle refused
        Network.load(path)
    assert not marker.exists(), "loading the file ran the pickled object's code"


# -- 3. resume and determinism -------------------------------------------------------------------------------------
def images(n=60, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 8, 8, 1)).astype(np.float32)
    return x, (x[:, :4].mean(axis=(1, 2, 3)) > 0).astype(np.int64) + 2 * (x[:, :, :4].mean(axis=(1, 2, 3)) > 0)


def conv_model(seed):
    rng = np.random.default_rng(seed)
    return Model([Conv2d(1, 4, 3, pad=1, init="he", rng=rng), ReLU(), MaxPool2d(2), Flatten(), Dropout(0.2),
                  Dense(4 * 4 * 4, 4, "linear", rng=rng, dtype=np.float32)])


def fit_conv(net, epochs, **kw):
    return fit(net, images(), images(20, 1), epochs=epochs, batch_size=16, lr=[0.05, 0.05, 0.02, 0.01],
               flips=True, seed=11, progress=False, **kw)


class LambdaCallback(Callback):
    def __init__(self, f):
        self.f = f

    def on_epoch_end(self, epoch, model, history):
        return self.f(epoch, history)


class StopAfter(Callback):
    def __init__(self, k):
        self.k = k

    def on_epoch_end(self, epoch, model, history):
        return epoch >= self.k


@pytest.mark.parametrize("how", ["callback", "KeyboardInterrupt"])
@pytest.mark.parametrize("k", [1, 2])
def test_fit_interrupted_and_resumed_equals_uninterrupted(tmp_path, one_thread, k, how):
    straight = conv_model(0)
    h_straight = fit_conv(straight, 4)
    path = tmp_path / "run.npz"
    stopped = conv_model(0)
    if how == "callback":
        fit_conv(stopped, 4, checkpoint=path, callbacks=[StopAfter(k)])
    else:
        def interrupt(epoch, history):
            if epoch == k:
                raise KeyboardInterrupt
        with pytest.raises(KeyboardInterrupt):
            fit_conv(stopped, 4, checkpoint=path, on_epoch=interrupt)
    assert Model.load(path).meta["history"]["epochs"] == list(range(1, k + 1))
    resumed = conv_model(99)  # other weights: the checkpoint replaces them
    ran = []
    h = fit_conv(resumed, 4, checkpoint=path, resume=True, on_epoch=lambda e, _: ran.append(e))
    assert ran == list(range(k + 1, 5))
    assert same_state(resumed, straight)
    assert h.epochs == h_straight.epochs and h.train == h_straight.train and h.val == h_straight.val


SG_FORMS = [  # (batch_size, replacement, record_every): single points (4.6), (4.7) and mini-batches (4.8), with
    (1, True, None), (1, False, 3), (3, True, 2), (3, False, None), (4, False, 1)]  # costs off the epoch's grid


def sg_run(net, epochs, batch_size, replacement, record_every, **kw):
    X, Y = hdl.data.ten_points()
    return stochastic_gradient(net, X, Y, eta=0.05, epochs=epochs, batch_size=batch_size, replacement=replacement,
                               record_every=record_every, **kw)


@pytest.mark.parametrize("how", ["callback", "KeyboardInterrupt", "Checkpoint"])
@pytest.mark.parametrize("form", SG_FORMS)
def test_stochastic_gradient_interrupted_and_resumed_equals_uninterrupted(tmp_path, one_thread, form, how):
    """Stopped after epoch k (a callback returning True, KeyboardInterrupt from on_epoch, or a Checkpoint callback
    every 2 epochs and KeyboardInterrupt from the callback after it) and resumed from the checkpoint: the same
    parameters, History records, recorded costs and final cost as one uninterrupted run, bit for bit."""
    straight = Network([2, 2, 3, 2], seed=1)
    h_straight = sg_run(straight, 7, *form, seed=3)
    for k in (1, 2, 4, 6):
        path = tmp_path / f"sg{k}.npz"
        stopped = Network([2, 2, 3, 2], seed=1)
        if how == "callback":
            sg_run(stopped, 7, *form, seed=3, checkpoint=path, callbacks=[StopAfter(k)])
        else:
            def interrupt(epoch, *_):
                if epoch == k:
                    raise KeyboardInterrupt
            cbs = [Checkpoint(path, every=2), LambdaCallback(interrupt)] if how == "Checkpoint" else []
            with pytest.raises(KeyboardInterrupt):
                sg_run(stopped, 7, *form, seed=3, callbacks=cbs,
                       **({} if how == "Checkpoint" else {"checkpoint": path, "on_epoch": interrupt}))
        saved = k if how != "Checkpoint" else k - k % 2
        if saved == 0:
            assert not path.exists()
        else:
            assert Network.load(path).meta["history"]["epochs"] == list(range(1, saved + 1))
        resumed = Network([2, 2, 3, 2], seed=7 if saved else 1)  # other weights: the checkpoint replaces them
        ran = []
        h = sg_run(resumed, 7, *form, seed=3 if saved == 0 else None, checkpoint=path, resume=True,
                   on_epoch=lambda e, _: ran.append(e))
        assert ran == list(range(saved + 1, 8))
        assert same_state(resumed, straight, velocities=False), f"stopped after epoch {k}"
        assert h.epochs == h_straight.epochs and h.train == h_straight.train and h.lr == h_straight.lr
        assert np.array_equal(h.iterations, h_straight.iterations) and np.array_equal(h.cost, h_straight.cost)
        assert h.final_cost == h_straight.final_cost and h.seed == 3
    report(f"stochastic_gradient batch {form[0]}, {'with' if form[1] else 'without'} replacement, stopped by {how} "
           "after epochs 1, 2, 4, 6 of 7 and resumed: bit-identical to the uninterrupted run")


def test_stochastic_gradient_resume_refuses_another_run(tmp_path):
    path = tmp_path / "sg.npz"
    sg_run(Network([2, 2, 3, 2], seed=1), 2, 3, False, None, seed=3, checkpoint=path)
    with pytest.raises(ValueError, match="not of a stochastic_gradient run of this form"):
        sg_run(Network([2, 2, 3, 2], seed=1), 4, 3, True, None, checkpoint=path, resume=True)
    with pytest.raises(ValueError, match="seed=4 but checkpoint"):
        sg_run(Network([2, 2, 3, 2], seed=1), 4, 3, False, None, seed=4, checkpoint=path, resume=True)
    with pytest.raises(ValueError, match="another network"):
        sg_run(Network([2, 3, 2], seed=1), 4, 3, False, None, checkpoint=path, resume=True)
    fit_path = tmp_path / "fit.npz"
    fit(hdl.Model([Dense(2, 2, "linear", rng=0)]), (np.ones((4, 2)), np.zeros(4, np.int64)), epochs=1,
        checkpoint=fit_path, progress=False)
    with pytest.raises(ValueError, match="fit.npz: not an hdl network"):  # a Model's checkpoint, fit's
        sg_run(Network([2, 2], seed=1), 2, 3, False, None, checkpoint=fit_path, resume=True)


def test_stochastic_gradient_checkpoint_holds_the_stopped_state(tmp_path):
    """What stochastic_gradient's checkpoint does give today: the parameters of the epoch it stopped at."""
    X, Y = hdl.data.ten_points()
    net = Network([2, 2, 3, 2], seed=1)
    path = tmp_path / "sg.npz"
    stochastic_gradient(net, X, Y, eta=0.05, epochs=50, batch_size=3, seed=3, checkpoint=path,
                        callbacks=[StopAfter(20)])
    loaded = Network.load(path)
    assert loaded.meta["history"]["epochs"] == list(range(1, 21))
    assert same_state(loaded, net, velocities=False)


def test_two_runs_with_one_seed_are_bit_identical(one_thread):
    a, b, c = conv_model(0), conv_model(0), conv_model(0)
    ha, hb = fit_conv(a, 3), fit_conv(b, 3)
    assert same_state(a, b) and ha.train == hb.train and ha.val == hb.val
    fit(c, images(), epochs=3, batch_size=16, lr=0.05, flips=True, seed=12, progress=False)
    assert not same_state(a, c), "the seed changes nothing"

    X, Y = hdl.data.ten_points()
    nets = [Network([2, 2, 3, 2], seed=1) for _ in range(3)]
    hs = [stochastic_gradient(n, X, Y, eta=0.05, iterations=20000, batch_size=2, seed=s)
          for n, s in zip(nets, (4, 4, 5))]
    assert same_state(nets[0], nets[1], velocities=False) and np.array_equal(hs[0].cost, hs[1].cost)
    assert not same_state(nets[0], nets[2], velocities=False)


@pytest.mark.skipif(not (CIFAR / "data_batch_1.bin").exists(),
                    reason=f"CIFAR-10 is not at {CIFAR} (set HDL_CIFAR10 to its cifar-10-batches-bin folder)")
def test_cifar_trainer_is_deterministic(tmp_path, one_thread, monkeypatch):
    """hdl cifar10 on the first 500 images for one epoch, twice with one seed: the same weights, bit for bit.
    Without the ZCA whitening: its 3072 x 3072 eigendecomposition (numpy's LAPACK, not hdl) takes 20-45 s on two
    busy cores, far longer than the rest of the run."""
    import functools

    from hdl import experiments
    from hdl.data.preprocess import matconvnet_cifar
    from hdl.experiments import cifar

    monkeypatch.setattr(cifar, "matconvnet_cifar", functools.partial(matconvnet_cifar, whiten=False))
    runs, seconds = [], []
    for i in range(2):
        t = time.perf_counter()
        s = experiments.run_cifar10(data=str(CIFAR), limit=500, epochs=1, plot=False, progress=False,
                                    out=str(tmp_path / f"run{i}"), threads=1, verify=False)
        seconds.append(time.perf_counter() - t)
        runs.append((Model.load(s["model"]), s))
    (m0, s0), (m1, s1) = runs
    assert same_state(m0, m1, velocities=False)
    assert s0["final"] == s1["final"] and s0["test_accuracy"] == s1["test_accuracy"]
    report(f"CIFAR-10 500 images x 1 epoch, twice: bit-identical ({seconds[0]:.1f} s, {seconds[1]:.1f} s)")


# -- 4. steady under load --------------------------------------------------------------------------------------------
RSS_SCRIPT = textwrap.dedent("""
    import json, os, sys
    import numpy as np
    import hdl
    from hdl.layers import Dense
    from hdl.train import fit

    def rss_mb():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    hdl.set_num_threads(1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 8)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    out = {"fit": []}
    model = hdl.Model([Dense(8, 32, "relu", rng=0, dtype=np.float32), Dense(32, 2, "linear", rng=1, dtype=np.float32)])
    fit(model, (x, y), (x, y), epochs=200, batch_size=8, lr=0.01, progress=False,
        on_epoch=lambda e, h: out["fit"].append(rss_mb()))
    X, Y = hdl.data.ten_points()
    net = hdl.Network([2, 2, 3, 2], seed=1)
    sg = lambda **kw: hdl.stochastic_gradient(net, X, Y, eta=0.05, batch_size=1, record_every=0, seed=1, **kw)
    sg(iterations=10**5)  # warm-up
    out["sg"] = [rss_mb()]
    sg(iterations=10**6)  # one long call
    out["sg"].append(rss_mb())
    for _ in range(10):  # and ten more calls of 10**5
        sg(iterations=10**5)
        out["sg"].append(rss_mb())
    out["sg_epochs"] = []  # 20,000 epochs of 10 updates, a callback after each: History grows by one record each
    sg(epochs=20_000, on_epoch=lambda e, h: out["sg_epochs"].append(rss_mb()) if e % 1000 == 0 else None)
    print(json.dumps(out))
""")


def test_memory_stays_flat_over_long_runs(tmp_path):
    """RSS of a child running 200 epochs of fit, then 2 x 10**6 updates of stochastic_gradient (record_every=0):
    growth after warm-up under 5 MB for fit and under 1 MB for stochastic_gradient. With epochs=, RSS grows by
    History's per-epoch record alone (five numbers): under 400 bytes per epoch."""
    script = tmp_path / "rss.py"
    script.write_text(RSS_SCRIPT)
    t = time.perf_counter()
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=child_env(), timeout=120)
    assert out.returncode == 0, out.stderr
    rss = json.loads(out.stdout.splitlines()[-1])
    assert len(rss["fit"]) == 200 and len(rss["sg"]) == 12 and len(rss["sg_epochs"]) == 20
    fit_growth = max(rss["fit"][20:]) - rss["fit"][20]
    sg_growth = max(rss["sg"]) - rss["sg"][0]
    per_epoch = (rss["sg_epochs"][-1] - rss["sg_epochs"][0]) * 2**20 / 19_000
    assert fit_growth < 5 and sg_growth < 1 and per_epoch < 400, rss
    report(f"RSS: fit 200 epochs {rss['fit'][20]:.1f} -> max {max(rss['fit'][20:]):.1f} MB (+{fit_growth:.2f} MB "
           f"after epoch 20); stochastic_gradient 2 x 10^6 updates {rss['sg'][0]:.1f} -> max {max(rss['sg']):.1f} "
           f"MB (+{sg_growth:.2f} MB); with a callback after each of 20,000 epochs {per_epoch:.0f} B/epoch; "
           f"{time.perf_counter() - t:.1f} s")


def _train_pair(concurrently: bool, threads: int):
    """Two conv models by fit and two networks by stochastic_gradient; in two Python threads at once, or one
    after the other. Each thread sets its own thread count (hdl.set_num_threads is per calling thread)."""
    X, Y = hdl.data.ten_points()
    results: dict[int, object] = {}
    spans: dict[int, tuple[float, float]] = {}
    errors: list[BaseException] = []

    def work(i):
        try:
            hdl.set_num_threads(threads)
            t = time.perf_counter()
            m = conv_model(i)
            fit_conv(m, 3)
            net = Network([2, 2, 3, 2], seed=i)
            stochastic_gradient(net, X, Y, eta=0.05, iterations=300_000, batch_size=2, seed=i)
            results[i] = (m, net)
            spans[i] = (t, time.perf_counter())
        except BaseException as e:  # noqa: BLE001  # re-raised in the main thread
            errors.append(e)

    if concurrently:
        workers = [threading.Thread(target=work, args=(i,)) for i in (1, 2)]
        for th in workers:
            th.start()
        for th in workers:
            th.join()
    else:
        work(1)
        work(2)
    if errors:
        raise errors[0]
    return results, spans


@pytest.mark.parametrize("threads", [1, 2])
def test_two_models_trained_in_two_threads_match_one_after_the_other(threads):
    """The kernels release the GIL, and their scratch buffers are thread_local (each OpenMP team its own): two
    models trained at once in two Python threads end bit for bit where each ends trained alone."""
    alone, _ = _train_pair(concurrently=False, threads=threads)
    together, spans = _train_pair(concurrently=True, threads=threads)
    (s1, e1), (s2, e2) = spans[1], spans[2]
    overlap = min(e1, e2) - max(s1, s2)
    assert overlap > 0, "the two threads did not train at the same time"
    for i in (1, 2):
        assert same_state(alone[i][0], together[i][0]), f"fit of model {i} differs when another trains beside it"
        assert same_state(alone[i][1], together[i][1], velocities=False), \
            f"stochastic_gradient of network {i} differs when another trains beside it"
    report(f"two Python threads x {threads} kernel threads: fit (3 epochs) + stochastic_gradient (3 x 10^5 updates) "
           f"of two models at once = one after the other, bit for bit ({overlap:.2f} s of {e1 - s1:.2f} s overlapped)")


def test_nan_in_the_data_is_refused_before_training(one_thread):
    """A NaN in an image would turn the first layer's filters into NaN while the fused ReLU after the convolution
    maps NaN to 0 and the loss stays finite (found by this test); fit refuses such data up front, as
    stochastic_gradient does, naming the sample."""
    x, y = images()
    x[37, 2, 2, 0] = np.nan
    net = conv_model(0)
    before = [p.copy() for p in net.parameters()]
    with pytest.raises(ValueError, match=r"training inputs contain NaN or infinity \(first in sample 37\)"):
        fit(net, (x, y), epochs=3, batch_size=16, lr=0.05, seed=11, progress=False)
    x, _ = images()
    x[3, 0, 0, 0] = np.inf
    with pytest.raises(ValueError, match=r"validation inputs contain NaN or infinity \(first in sample 3\)"):
        fit(net, images(), (x, y), epochs=3, batch_size=16, lr=0.05, seed=11, progress=False)
    assert all(np.array_equal(a, b) for a, b in zip(before, net.parameters()))


def test_nan_parameters_stop_fit_before_their_checkpoint(tmp_path, one_thread):
    """A parameter gone NaN: the fused ReLU after it keeps the NaN (tests/test_relu_nan.py), so the objective of
    the next batch shows it and fit stops there, naming epoch and batch, before any checkpoint holds it. The
    end-of-epoch check of the parameters stays for what max pooling still hides (a NaN not first in its window):
    it names the epoch."""
    from hdl.train import _check_parameters
    net = conv_model(0)
    fit_conv(net, 1, checkpoint=tmp_path / "run.npz")
    net.layers[0].w[0, 0, 1, 1] = np.nan  # as a NaN input or an overflowing update would leave it
    with pytest.raises(TrainingDiverged, match=r"the objective became nan at epoch 1, batch 1 of 4"):
        fit_conv(net, 4, checkpoint=tmp_path / "run.npz")  # a new run: its epoch 1
    kept = Model.load(tmp_path / "run.npz")  # the first run's checkpoint, not overwritten by the NaN
    assert kept.meta["history"]["epochs"] == [1]
    assert all(np.isfinite(p).all() for p in kept.parameters())
    with pytest.raises(TrainingDiverged, match=r"parameter 0 became NaN or infinite during epoch 3"):
        _check_parameters(net, 3, 0.05)


def test_huge_learning_rate_stops_fit_naming_epoch_and_batch(one_thread):
    with pytest.raises(TrainingDiverged, match=r"at epoch \d+, batch \d+ of 4 \(learning rate 1e\+30"):
        fit(conv_model(0), images(), epochs=5, batch_size=16, lr=1e30, momentum=0.0, seed=11, progress=False)


def test_nan_or_huge_eta_stops_stochastic_gradient():
    X, Y = hdl.data.ten_points()
    X = X.copy()
    X[0, 4] = np.nan  # refused before the first update
    net = Network([2, 2, 3, 2], seed=1)
    before = net.get_params()
    with pytest.raises(ValueError, match=r"X contains NaN or infinity \(first at row 0, column 4\)"):
        stochastic_gradient(net, X, Y, eta=0.05, epochs=3, batch_size=10, replacement=False)
    assert np.array_equal(net.get_params(), before)
    X, Y = hdl.data.ten_points()
    with pytest.raises(TrainingDiverged, match=r"at epoch \d+, batch \d+ of 4 \(eta=1e\+300"):
        stochastic_gradient(Network([2, 2, 3, 2], seed=1, activation="relu"), X, Y, eta=1e300, epochs=50,
                            batch_size=3, seed=2)
