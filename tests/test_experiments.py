"""The `hdl` command and the experiments of Sections 2 and 6."""
import json
import csv
import os
import subprocess
import sys

import pytest

from hdl import cli, experiments


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "hdl.cli", *args], capture_output=True, text=True)


def test_netbp_full_run_classifies_every_point_json(tmp_path):
    """The paper's run: 10^6 steps (well under a second here)."""
    proc = run_cli("netbp", "--json", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["misclassified"] == 0 and summary["final_cost"] < 5e-3
    assert summary["initial_cost"] > 1 and summary["iterations"] == 10**6
    for path in summary["figures"].values():
        assert os.path.getsize(path) > 10_000


def test_netbp_extra_point(tmp_path):
    summary = experiments.run_netbp(iterations=300_000, extra_point=True, out=str(tmp_path))
    assert summary["points"] == 11 and summary["misclassified"] == 0
    assert os.path.exists(tmp_path / "figure_6_3_region.png")


@pytest.mark.parametrize("extra", [[], ["--extra-point"]])
def test_lsq_command(tmp_path, extra):
    proc = run_cli("lsq", "--out", str(tmp_path), *extra)
    assert proc.returncode == 0, proc.stderr
    assert "0 misclassified" in proc.stdout
    assert list(tmp_path.glob("figure_2_*_region.png"))


@pytest.mark.parametrize("args,message", [
    (["netbp", "--iters", "0"], "positive integer"),
    (["netbp", "--eta", "-0.05"], "positive and finite"),
    (["netbp", "--iters", "ten"], "invalid"),
])
def test_cli_rejects_bad_settings(args, message):
    proc = run_cli(*args)
    assert proc.returncode == 2 and message in proc.stderr


def test_cli_accepts_scientific_notation(capsys):
    assert cli.main(["netbp", "--iters", "2e5", "--no-plot", "--json"]) in (0, 1)
    assert json.loads(capsys.readouterr().out)["iterations"] == 200_000


SHARED_CIFAR = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "cifar-10-batches-bin")


@pytest.mark.skipif(not os.path.isdir(SHARED_CIFAR), reason="the shared CIFAR-10 copy (../shared/data) is not here")
def test_cifar10_command_on_part_of_the_data(tmp_path):
    """The whole pipeline (load, preprocess, train, evaluate, figures, model) on 2,000 images, 2 epochs."""
    proc = run_cli("cifar10", "--data", SHARED_CIFAR, "--limit", "2000", "--epochs", "2", "--out", str(tmp_path),
                   "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert 0.2 < summary["test_accuracy"] <= 1.0 and summary["epochs"] == 2
    for path in list(summary["figures"].values()) + [summary["model"]]:
        assert os.path.getsize(path) > 1000
    from hdl.convnet import ConvNet

    net = ConvNet.load(summary["model"])
    meta = net.meta
    assert meta["summary"]["test_accuracy"] == summary["test_accuracy"]
    assert meta["dataset"]["name"] == "cifar10" and meta["dataset"]["input_shape"] == [32, 32, 3]
    assert [r.split(",")[0] for r in (tmp_path / "log_plain.csv").read_text().splitlines()] == ["epoch", "1", "2"]
    _evaluate_and_predict(summary, tmp_path)


def _evaluate_and_predict(summary, tmp_path):
    """hdl evaluate on the 400 test images the run used gives the run's accuracy; hdl predict on a PNG of
    a test image gives the class the model gives that image preprocessed as in training."""
    import matplotlib
    import numpy as np

    from hdl.data.cifar10 import CLASSES, parse_batch
    from hdl.data.preprocess import apply_stats
    from hdl.experiments import modelfile
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    proc = run_cli("evaluate", summary["model"], "--data", SHARED_CIFAR, "--limit", "400", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["test_images"] == 400 and abs(report["test_accuracy"] - summary["test_accuracy"]) <= 1 / 400
    assert np.array(report["confusion_matrix"]).sum() == 400
    with open(os.path.join(SHARED_CIFAR, "test_batch.bin"), "rb") as f:
        xt, _ = parse_batch(f.read())
    plt.imsave(tmp_path / "test0.png", xt[0])
    proc = run_cli("predict", summary["model"], str(tmp_path / "test0.png"), "--top", "3", "--json")
    assert proc.returncode == 0, proc.stderr
    top = json.loads(proc.stdout)["predictions"][0]["top"]
    clf = modelfile.load(summary["model"])  # the statistics the run saved, which evaluate's accuracy vouches for
    proba = clf.model.predict_proba(apply_stats(xt[:1], clf.preprocessing))[0]
    assert top[0]["class"] == CLASSES[proba.argmax()] and len(top) == 3
    assert abs(top[0]["probability"] - proba.max()) < 1e-5


def test_cifar10_command_reports_missing_data(tmp_path):
    proc = run_cli("cifar10", "--data", str(tmp_path / "nowhere"), "--epochs", "1")
    assert proc.returncode == 2 and "no CIFAR-10" in proc.stderr


def test_autoencoder_runs_on_small_data(tmp_path):
    if not os.path.isdir(SHARED_CIFAR):
        pytest.skip("needs the shared CIFAR-10 copy (Fashion-MNIST is not installed either)")
    summary = experiments.run_autoencoder(data=SHARED_CIFAR, out=str(tmp_path), epochs=3, limit=600, code=16)
    assert summary["test_cost"] < 0.5 * 1024 * 0.1  # far below the cost of an all-zero reconstruction
    assert os.path.getsize(summary["figures"]["reconstructions"]) > 5000
    with open(summary["log"]) as f:  # a row per epoch, with its mean mini-batch cost
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3] and all(float(r["train_objective"]) > 0 for r in rows)
    again = experiments.run_autoencoder(data=SHARED_CIFAR, out=str(tmp_path), epochs=1, limit=100, code=4,
                                        plot=False)
    with open(again["log"]) as f:  # a second run into the same folder: its rows only
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == [1]


def test_netbp_draws_a_progress_bar_when_asked(capfd):
    experiments.run_netbp(iterations=2_000_000, plot=False, progress=True)
    err = capfd.readouterr().err
    assert "batch/s" in err or "s/batch" in err, err[-500:]  # tqdm's rate: one single-point update a batch
    experiments.run_netbp(iterations=20_000, plot=False)
    assert capfd.readouterr().err == ""


def test_ctrl_c_ends_a_long_netbp_run_with_a_message(tmp_path):
    """SIGINT a second into `hdl netbp --iters 1000000000` (hours of work) ends it within two seconds."""
    import signal
    import time
    proc = subprocess.Popen([sys.executable, "-m", "hdl.cli", "netbp", "--iters", "1000000000", "--no-plot",
                             "--out", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as test_cli's
    time.sleep(5.0)  # the import (well under a second), then seconds into the compiled loop
    assert proc.poll() is None, proc.communicate()
    sent = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert time.perf_counter() - sent < 2.0
    assert proc.returncode == 130 and "hdl netbp: interrupted" in err, err


def test_python_dash_m_hdl_and_version():
    import hdl
    proc = subprocess.run([sys.executable, "-m", "hdl", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == f"hdl {hdl.__version__}"
    proc = subprocess.run([sys.executable, "-m", "hdl", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "netbp" in proc.stdout and "cifar10" in proc.stdout
