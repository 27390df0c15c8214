"""The `hdl` commands mnist, fashion-mnist, cifar100, evaluate and predict, on small synthetic data sets
written here in the official formats (IDX, CIFAR-100 binary)."""
import contextlib
import csv
import functools
import gzip
import io
import json

import numpy as np
import pytest

import hdl
from hdl import cli
from hdl.commands import options
from idx_files import idx_bytes

TRAIN, TEST = 300, 100


def synthetic_digits(n, seed):
    """Images of 28x28 whose class (0..9) is the position of a bright bar on a noisy background."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n).astype(np.uint8)
    x = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
    for i, k in enumerate(y):
        r, c = divmod(int(k), 5)
        x[i, 3 + 12 * r:11 + 12 * r, 1 + 5 * c:5 + 5 * c] = 250
    return x, y


def write_idx_folder(folder):
    """The four files, images gzipped and labels not (the loader takes either)."""
    folder.mkdir(parents=True)
    for part, n, seed in (("train", TRAIN, 0), ("t10k", TEST, 1)):
        x, y = synthetic_digits(n, seed)
        (folder / f"{part}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(x)))
        (folder / f"{part}-labels-idx1-ubyte").write_bytes(idx_bytes(y))
    return folder


def hdl_main(*args):
    """(exit status, stdout, stderr) of `hdl ARGS` run in this process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = cli.main([str(a) for a in args])
        except SystemExit as stop:  # argparse
            rc = stop.code
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    return write_idx_folder(tmp_path_factory.mktemp("data") / "digits")


@pytest.fixture(scope="module")
def trained(digits, tmp_path_factory):
    """`hdl mnist --epochs 2 --limit 200` on the synthetic digits: (summary, output folder)."""
    out = tmp_path_factory.mktemp("mnist")
    rc, stdout, stderr = hdl_main("mnist", "--data", digits, "--no-verify", "--epochs", 2, "--limit", 200,
                                  "--out", out, "--json", "--quiet")
    assert rc == 0, stderr
    return json.loads(stdout), out


def preprocess(images, model):
    stats = model.meta["preprocessing"]
    return ((images[..., None] / 255 - stats["mean"]) / stats["std"]).astype(np.float32)


def test_mnist_writes_model_log_checkpoint_and_figures(trained, digits):
    summary, out = trained
    assert summary["dataset"] == "mnist" and summary["epochs_run"] == [1, 2]
    assert summary["training_images"] == 200 and summary["test_images"] == 40
    assert summary["test_accuracy"] >= 0.8  # the bars are easy to find
    for name in ("curves", "confusion", "misclassified"):  # misclassified: perhaps "no test image misclassified"
        assert summary["figures"][name] == str(out / f"{name}.png") and (out / f"{name}.png").stat().st_size > 3000
    with open(out / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2"] and float(rows[1]["val_top1"]) == pytest.approx(
        1 - summary["test_accuracy"])
    assert (out / "checkpoint.npz").exists() and json.loads((out / "summary.json").read_text())["epochs"] == 2
    model = hdl.Model.load(out / "model.npz")
    meta = model.meta
    assert meta["dataset"] == {"name": "mnist", "classes": list("0123456789"), "input_shape": [28, 28, 1],
                               "label": "fine"}
    x, _ = synthetic_digits(TRAIN, 0)
    assert meta["preprocessing"]["kind"] == "standardize"
    assert meta["preprocessing"]["mean"] == pytest.approx(x[:200].mean() / 255)
    assert [type(layer).__name__ for layer in model.layers] == [
        "Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d", "FullyConnected", "ReLU", "FullyConnected"]


def test_evaluate_matches_the_model_on_the_test_set(trained, digits):
    summary, out = trained
    rc, stdout, stderr = hdl_main("evaluate", out / "model.npz", "--data", digits, "--no-verify", "--json")
    assert rc == 0, stderr
    report = json.loads(stdout)
    x, y = synthetic_digits(TEST, 1)
    model = hdl.Model.load(out / "model.npz")
    predicted = model.predict(preprocess(x, model))
    assert report["test_images"] == TEST and report["test_accuracy"] == pytest.approx(np.mean(predicted == y))
    M = np.array(report["confusion_matrix"])
    assert M.shape == (10, 10) and M.sum() == TEST and np.trace(M) == report["correct"]
    assert M[predicted[0], y[0]] >= 1 and 0 <= report["test_top5_error"] <= 1 - report["test_accuracy"]
    rc, stdout, _ = hdl_main("evaluate", out / "model.npz", "--data", digits, "--no-verify", "--limit", 30)
    assert rc == 0 and "(mnist, 10 classes)" in stdout and " of 30)" in stdout and "top-5 error" in stdout
    assert "rows: predicted class, columns: true class" in stdout
    table = stdout.splitlines()[-10:]
    assert sum(int(v) for line in table for v in line.split()[1:]) == 30


def test_predict_png_and_npy(trained, tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _, out = trained
    x, y = synthetic_digits(TEST, 1)
    plt.imsave(tmp_path / "digit.png", x[1], cmap="gray", vmin=0, vmax=255)  # RGBA with equal RGB channels
    np.save(tmp_path / "digit.npy", x[0])
    np.save(tmp_path / "stack.npy", x[2:5])
    rc, stdout, stderr = hdl_main("predict", out / "model.npz", tmp_path / "digit.npy", tmp_path / "digit.png",
                                  tmp_path / "stack.npy", "--top", 3, "--json")
    assert rc == 0, stderr
    assert "digit.png: dropped the opaque alpha channel; RGB with equal channels to grey" in stderr
    results = json.loads(stdout)["predictions"]
    assert [(r["image"].rsplit("/", 1)[1], r["index"]) for r in results] == [
        ("digit.npy", None), ("digit.png", None), ("stack.npy", 0), ("stack.npy", 1), ("stack.npy", 2)]
    from hdl.data.images import read_images
    png = read_images(tmp_path / "digit.png")  # RGBA, the grey levels through the colour map: within 1 of x[1]
    assert png.shape == (1, 28, 28, 4) and np.abs(png[0, ..., 0].astype(int) - x[1]).max() <= 1
    shown = np.stack([x[0], png[0, ..., 0], x[2], x[3], x[4]])
    model = hdl.Model.load(out / "model.npz")
    proba = model.predict_proba(preprocess(shown, model))
    for r, p in zip(results, proba):
        assert len(r["top"]) == 3
        assert [t["label"] for t in r["top"]] == list(np.argsort(-p)[:3])
        assert r["top"][0]["probability"] == pytest.approx(p.max(), rel=1e-5)
        assert r["top"][0]["class"] == str(r["top"][0]["label"])
    rc, stdout, _ = hdl_main("predict", out / "model.npz", tmp_path / "digit.npy")
    assert rc == 0 and stdout.startswith(f"{tmp_path / 'digit.npy'}: {np.argmax(proba[0])} ")
    assert stdout.count("%") == 5  # --top 5 by default


def test_predict_refuses_what_it_would_have_to_guess(trained, tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _, out = trained
    model = out / "model.npz"
    rng = np.random.default_rng(0)
    plt.imsave(tmp_path / "colour.png", rng.integers(0, 255, (28, 28, 3)).astype(np.uint8))
    np.save(tmp_path / "big.npy", np.zeros((32, 32), np.uint8))
    np.save(tmp_path / "bright.npy", np.full((28, 28), 300.0))
    (tmp_path / "notes.txt").write_text("hello")
    cases = [
        ((tmp_path / "colour.png",), "a colour image, but the model takes grey images"),
        ((tmp_path / "big.npy",), "32x32 pixels (width x height), but the model takes 28x28 images; hdl does not "
                                  "resize"),
        ((tmp_path / "bright.npy",), "pixel values must lie in 0..255"),
        ((tmp_path / "notes.txt",), "not an image hdl reads (PNG, JPEG or .npy)"),
        ((tmp_path / "missing.png",), "missing.png: no such image file"),
    ]
    for images, message in cases:
        rc, _, stderr = hdl_main("predict", model, *images)
        assert rc == 2 and message in stderr, stderr


def test_wrong_kinds_of_model_file(trained, tmp_path):
    _, out = trained
    rc, _, stderr = hdl_main("evaluate", out / "checkpoint.npz")
    assert rc == 2 and "is a training checkpoint" in stderr and "model*.npz" in stderr
    (tmp_path / "x.npz").write_text("not a zip")
    rc, _, stderr = hdl_main("predict", tmp_path / "x.npz", tmp_path / "x.npz")
    assert rc == 2 and "x.npz: not a model file written by Model.save" in stderr
    net = hdl.Model.load(out / "model.npz")
    net.save(tmp_path / "bare.npz")
    rc, _, stderr = hdl_main("evaluate", tmp_path / "bare.npz")
    assert rc == 2 and "without a record of its data set" in stderr
    rc, _, stderr = hdl_main("evaluate", tmp_path / "none.npz")
    assert rc == 2 and "none.npz: no such model file" in stderr


def test_evaluate_names_a_data_set_that_does_not_fit(trained, tmp_path):
    _, out = trained
    folder = tmp_path / "small"
    folder.mkdir()
    for part in ("train", "t10k"):
        (folder / f"{part}-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((5, 14, 14), np.uint8)))
        (folder / f"{part}-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(5, np.uint8)))
    rc, _, stderr = hdl_main("evaluate", out / "model.npz", "--data", folder, "--no-verify")
    assert rc == 2 and "takes 28x28x1 images in 10 classes (mnist), but the data found are 14x14x1" in stderr


def test_resume_continues_the_epoch_count_exactly(digits, tmp_path):
    args = ("fashion-mnist", "--data", digits, "--no-verify", "--limit", 100, "--no-plot", "--json", "--quiet",
            "--batch-size", 50)
    rc, _, stderr = hdl_main(*args, "--epochs", 1, "--out", tmp_path / "a")
    assert rc == 0, stderr
    rc, stdout, stderr = hdl_main(*args, "--epochs", 2, "--out", tmp_path / "a", "--resume")
    assert rc == 0, stderr
    resumed = json.loads(stdout)
    assert resumed["epochs_run"] == [1, 2] and resumed["dataset"] == "fashion-mnist"
    with open(tmp_path / "a" / "log.csv") as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1", "2"]
    rc, stdout, _ = hdl_main(*args, "--epochs", 2, "--out", tmp_path / "b")
    straight = json.loads(stdout)
    assert straight["test_accuracy"] == resumed["test_accuracy"]
    a, b = (hdl.Model.load(tmp_path / d / "model.npz") for d in "ab")
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p, q)
    assert a.meta["dataset"]["classes"][9] == "Ankle boot"


@pytest.mark.skipif(hdl.cuda.is_available(), reason="this machine has a GPU: the error cannot happen")
@pytest.mark.parametrize("command", ["mnist", "fashion-mnist", "cifar10", "cifar100", "evaluate"])
def test_device_cuda_without_a_gpu(command, tmp_path):
    args = ["evaluate", tmp_path / "m.npz"] if command == "evaluate" else [command, "--out", tmp_path]
    rc, _, stderr = hdl_main(*args, "--device", "cuda")
    assert rc == 2 and "--device cuda: hdl cannot use a GPU here" in stderr
    assert hdl.cuda.why_unavailable() in stderr
    assert not list(tmp_path.iterdir())  # stopped before reading data or writing anything


@pytest.mark.parametrize("args,message", [
    (["mnist", "--epochs", "0"], "argument --epochs: must be a positive integer, got 0"),
    (["mnist", "--epochs", "ten"], "argument --epochs: invalid positive integer 'ten'"),
    (["fashion-mnist", "--lr", "-0.1"], "argument --lr: must be positive and finite, got -0.1"),
    (["mnist", "--batch-size", "2.5"], "argument --batch-size: invalid positive integer '2.5'"),
    (["cifar10", "--device", "tpu"], "argument --device: invalid choice: 'tpu'"),
    (["cifar100", "--labels", "medium"], "argument --labels: invalid choice: 'medium'"),
    (["predict", "model.npz"], "the following arguments are required: IMAGE"),
    (["predict", "model.npz", "a.png", "--top", "0"], "argument --top: must be a positive integer"),
    (["evaluate", "model.npz", "--limit", "-3"], "argument --limit: must be a positive integer, got -3"),
])
def test_bad_arguments_exit_2_naming_the_problem(args, message):
    rc, _, stderr = hdl_main(*args)
    assert rc == 2 and message in stderr, stderr


def test_missing_data_is_named(tmp_path):
    rc, _, stderr = hdl_main("mnist", "--data", tmp_path / "nowhere", "--out", tmp_path / "o")
    assert rc == 2 and "nowhere: no MNIST IDX files there" in stderr
    rc, _, stderr = hdl_main("cifar100", "--data", tmp_path / "nowhere", "--out", tmp_path / "o")
    assert rc == 2 and "nowhere: no CIFAR-100 binary data there" in stderr


def test_official_files_are_checked_unless_no_verify(digits, tmp_path):
    rc, _, stderr = hdl_main("mnist", "--data", digits, "--out", tmp_path, "--epochs", 1)
    assert rc == 2 and f"{TRAIN} train images of 28x28, not the official 60000" in stderr and "--no-verify" in stderr


def test_quiet_turns_the_progress_bar_off(monkeypatch):
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    parser = cli._parser()
    assert options.progress(parser.parse_args(["mnist"])) is True
    assert options.progress(parser.parse_args(["mnist", "--quiet"])) is False
    assert options.progress(parser.parse_args(["cifar10", "--quiet"])) is False


def write_cifar100(folder, n_train=200, n_test=50, names=True):
    """train.bin and test.bin: the fine label is 5 * coarse + (brightness class), so both are learnable."""
    folder.mkdir(parents=True)
    for name, n, seed in (("train.bin", n_train, 0), ("test.bin", n_test, 1)):
        rng = np.random.default_rng(seed)
        coarse = rng.integers(0, 20, n)
        fine = (5 * coarse + rng.integers(0, 5, n)) % 100
        pixels = rng.integers(0, 256, (n, 3072)).astype(np.uint8)
        records = np.concatenate([coarse[:, None], fine[:, None], pixels], axis=1).astype(np.uint8)
        (folder / name).write_bytes(records.tobytes())
    if names:
        (folder / "fine_label_names.txt").write_text("\n".join(f"fine{i}" for i in range(100)) + "\n")
        (folder / "coarse_label_names.txt").write_text("\n".join(f"coarse{i}" for i in range(20)) + "\n")
    return folder


def test_cifar100_command_evaluate_and_predict(tmp_path, monkeypatch):
    """The whole CIFAR-100 pipeline on 200 synthetic images; the ZCA whitening (an eigen-decomposition of
    order 3072, tens of seconds on 2 cores) is left out here and tested in test_data_loaders."""
    from hdl.data.preprocess import matconvnet_cifar
    from hdl.experiments import cifar

    monkeypatch.setattr(cifar, "matconvnet_cifar", functools.partial(matconvnet_cifar, whiten=False))
    data = write_cifar100(tmp_path / "cifar-100-binary")
    out = tmp_path / "run"
    rc, stdout, stderr = hdl_main("cifar100", "--data", tmp_path, "--no-verify", "--epochs", 1, "--lr", 0.01,
                                  "--batch-size", 50, "--out", out, "--quiet", "--no-flips", "--json")
    assert rc == 0, stderr
    summary = json.loads(stdout)
    assert summary["dataset"] == "cifar100" and summary["label"] == "fine" and summary["epochs_run"] == [1]
    assert len(summary["per_class_accuracy"]) == 100 and "fine99" in summary["per_class_accuracy"]
    assert 0 <= summary["test_top5_error"] <= 1 - summary["test_accuracy"]  # top-1 and top-5 both reported
    assert (out / "figure_7_4_confusion.png").stat().st_size > 5000
    model = hdl.Model.load(out / "model_plain.npz")
    assert model.meta["dataset"]["label"] == "fine" and model.meta["preprocessing"]["whiten"] is False
    rc, stdout, _ = hdl_main("evaluate", out / "model_plain.npz", "--data", data, "--no-verify")
    assert rc == 0 and "(cifar100, fine labels, 100 classes)" in stdout and " of 50)" in stdout
    assert "the 100 x 100 confusion matrix: with --json" in stdout
    image = np.frombuffer((data / "test.bin").read_bytes()[2:3074], np.uint8).reshape(3, 32, 32).transpose(1, 2, 0)
    np.save(tmp_path / "img.npy", image)
    np.save(tmp_path / "grey.npy", image[..., 0])
    rc, stdout, stderr = hdl_main("predict", out / "model_plain.npz", tmp_path / "img.npy", tmp_path / "grey.npy",
                                  "--top", 2, "--json")
    assert rc == 0, stderr
    assert "grey.npy: grey to RGB (the grey value in each channel)" in stderr
    first = json.loads(stdout)["predictions"][0]["top"]
    expected = model.predict_proba(summary_preprocess(out / "model_plain.npz", image[None]))[0]
    assert first[0]["class"] == f"fine{np.argmax(expected)}"
    assert first[0]["probability"] == pytest.approx(expected.max(), rel=1e-4)


def summary_preprocess(model_path, images):
    from hdl.data.preprocess import apply_stats
    from hdl.experiments import modelfile
    return apply_stats(images, modelfile.load(model_path).preprocessing)


def test_an_earlier_cifar10_model_file_still_loads(tmp_path):
    from hdl.convnet import cifar_net
    from hdl.experiments import modelfile

    cifar_net().save(tmp_path / "old.npz", extra={"summary": {"experiment": "cifar10", "test_accuracy": 0.8}})
    clf = modelfile.load(tmp_path / "old.npz")
    assert clf.dataset == "cifar10" and clf.input_shape == (32, 32, 3) and clf.classes[0] == "airplane"
    assert clf.needs_statistics  # hdl evaluate and predict recompute them from the training set


def sigint_default():
    """In the child before Python starts: SIGINT to its default, so that Python installs KeyboardInterrupt even
    when pytest runs as a background job (which inherits SIGINT ignored, and so would its children)."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_keeps_the_checkpoint_and_exits_130(digits, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-m", "hdl", "mnist", "--data", str(digits), "--no-verify", "--epochs",
                             "100000", "--out", str(tmp_path), "--no-plot"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=sigint_default)
    deadline = time.time() + 60
    while not (tmp_path / "checkpoint.npz").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "hdl mnist: interrupted (the last epoch's checkpoint is kept; --resume continues from it)" in err
    assert hdl.Model.load(tmp_path / "checkpoint.npz").meta["history"]["epochs"][0] == 1
    assert not (tmp_path / "model.npz").exists()
