"""Every script in examples/ runs, on small settings, so that none rots."""
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CASES = {
    "custom_layer.py": ["--epochs", "2", "--images", "600"],
    "ten_points.py": ["--iterations", "100000"],
}


def test_every_example_is_tested():
    assert {p.name for p in EXAMPLES.glob("*.py")} == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_example_runs(name, tmp_path):
    args = CASES[name] + (["--out", str(tmp_path / "out")] if name == "ten_points.py" else [])
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    if name == "custom_layer.py":
        accuracy = float(proc.stdout.split("test accuracy after")[1].split(":")[1].split("%")[0])
        assert accuracy > 90 and "the same predictions" in proc.stdout
    else:
        assert "least squares: cost" in proc.stdout and (tmp_path / "out" / "epochs.csv").exists()
