"""Every script in examples/ runs, on small settings, and does what it says, so that none rots.

The Fashion-MNIST examples read Debian's files when they are installed; otherwise tiny synthetic IDX files
(300 training and 100 test images, class k a bright bar at a position of its own under noise) stand in."""
import gzip
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hdl.data.idx import FASHION_MNIST
from idx_files import idx_bytes

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
DATA = "{data}"  # replaced by the folder of IDX files
CASES = {
    "custom_layer.py": ["--epochs", "2", "--images", "600"],
    "ten_points.py": ["--iterations", "100000", "--out", "out"],
    "fashion_mnist_mlp.py": ["--data", DATA, "--limit", "300", "--epochs", "4", "--log", "log.csv"],
    "lenet5.py": ["--data", DATA, "--limit", "300", "--epochs", "4"],
    "autoencoder.py": ["--data", DATA, "--limit", "300", "--epochs", "5", "--batch", "10", "--eta", "0.2",
                       "--figure", "recon.png"],
    "save_load.py": ["--out", "out"],
    "compare_pytorch.py": ["--batch", "16", "--repeats", "3", "--warmup", "1"],
}


def write_idx(path, array):
    """An uint8 array as a gzipped IDX file: magic 0x0000 08 ndim, the dimensions big-endian, the bytes."""
    path.write_bytes(gzip.compress(idx_bytes(array)))


def bars(n, rng):
    """n 28x28 noisy images, class k < 5 a horizontal bar at row 3 + 5k, class k >= 5 a vertical one."""
    labels = rng.integers(0, 10, n)
    x = rng.integers(0, 90, (n, 28, 28))
    for i, k in enumerate(labels):
        at = 3 + 5 * (k % 5)
        if k < 5:
            x[i, at:at + 3, 4:24] += 160
        else:
            x[i, 4:24, at:at + 3] += 160
    return x.astype(np.uint8), labels.astype(np.uint8)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Debian's Fashion-MNIST if installed, else (True for 'synthetic', the folder of four IDX files)."""
    if (FASHION_MNIST / "train-images-idx3-ubyte.gz").exists() or (FASHION_MNIST / "train-images-idx3-ubyte").exists():
        return False, FASHION_MNIST
    folder = tmp_path_factory.mktemp("idx")
    rng = np.random.default_rng(0)
    for name, n in (("train", 300), ("t10k", 100)):
        x, y = bars(n, rng)
        write_idx(folder / f"{name}-images-idx3-ubyte.gz", x)
        write_idx(folder / f"{name}-labels-idx1-ubyte.gz", y)
    return True, folder


def run(name, args, cwd, env=None):
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def percent(text, before):
    """The first percentage after `before` in text: 12.3 in 'before 2 epochs: 12.3%'."""
    return float(re.search(re.escape(before) + r".*?([0-9.]+)%", text).group(1))


def test_every_example_is_tested():
    assert {p.name for p in EXAMPLES.glob("*.py")} == set(CASES)


def test_the_synthetic_idx_files_read_back(data, tmp_path):
    from hdl.data.idx import load_fashion_mnist

    (x, y), (xt, yt) = load_fashion_mnist(data[1])
    assert x.shape[1:] == (28, 28, 1) and x.dtype == np.uint8 and y.shape == (len(x),) and yt.max() <= 9


@pytest.mark.parametrize("name", sorted(CASES))
def test_example_runs(name, data, tmp_path):
    synthetic, folder = data
    out = run(name, [str(folder) if a == DATA else a for a in CASES[name]], tmp_path)
    good = 80 if synthetic else 30  # per cent: the bars are easy; 300 real images give less (chance is 10%)
    if name == "custom_layer.py":
        assert percent(out, "test accuracy after") > 90 and "the same predictions" in out
    elif name == "ten_points.py":
        assert "least squares: cost" in out and (tmp_path / "out" / "epochs.csv").exists()
    elif name == "fashion_mnist_mlp.py":
        assert percent(out, "test accuracy") > good
        rows = (tmp_path / "log.csv").read_text().splitlines()
        assert rows[0].startswith("epoch,lr,") and len(rows) == 1 + 4
    elif name == "lenet5.py":
        assert 100 - percent(out, "top-1 error") > good and percent(out, "top-5 error") < 100 - good
        matrix = out.split("confusion matrix")[1].splitlines()[2:12]
        counts = np.array([[int(v) for v in row.split()[1:]] for row in matrix])
        assert counts.shape == (10, 10) and counts.sum() == (100 if synthetic else 300)  # the test images
        assert 100 * np.trace(counts) / counts.sum() > good  # the diagonal counts the correct ones
    elif name == "autoencoder.py":
        before, after = map(float, re.search(r"reconstruction error ([0-9.]+) -> ([0-9.]+)", out).groups())
        assert after < (0.5 if synthetic else 0.75) * before and (tmp_path / "recon.png").stat().st_size > 1000
    elif name == "save_load.py":
        assert "loaded: identical predictions" in out and "resumed at epoch 3: identical parameters" in out
        assert out.count("refused") == 2
    elif name == "compare_pytorch.py":
        pytest.importorskip("torch")
        assert re.search(r"^hdl +[0-9.]+ +1\.00x$", out, re.M) and re.search(r"^torch +[0-9.]+ +[0-9.]+x$", out, re.M)
        assert "the same outputs" in out


def test_compare_pytorch_without_pytorch(tmp_path):
    """Without PyTorch the comparison times hdl alone and says why."""
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text("raise ImportError('no torch here')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    out = run("compare_pytorch.py", ["--batch", "4", "--repeats", "2", "--warmup", "0"], tmp_path, env)
    assert "PyTorch is not installed" in out and re.search(r"^hdl +[0-9.]+ +1\.00x$", out, re.M)
