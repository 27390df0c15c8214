"""The `hdl` command and the experiments of Sections 2 and 6."""
import json
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
