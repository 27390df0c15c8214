"""Every CUDA source compiles with the installed nvcc (no GPU needed), so that a broken kernel
never lands. Skips where there is no nvcc."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "csrc" / "cuda").glob("*.cu"))
NVCC = shutil.which("nvcc") or next((p for p in ("/usr/local/cuda/bin/nvcc",) if os.path.exists(p)), None)


@pytest.mark.skipif(NVCC is None, reason="no nvcc on this machine (the CUDA build is optional)")
@pytest.mark.parametrize("source", SOURCES, ids=[s.name for s in SOURCES])
def test_cuda_source_compiles(source, tmp_path):
    arch = os.environ.get("HDL_TEST_CUDA_ARCH", "sm_80")
    cmd = [NVCC, "-c", f"-arch={arch}", "-std=c++17", "-O1", "--expt-relaxed-constexpr", "-Werror=all-warnings",
           "-I", str(ROOT / "csrc" / "include"), str(source), "-o", str(tmp_path / "k.o")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(cmd)}\n{done.stdout}\n{done.stderr}"


def test_there_are_cuda_sources():
    assert {s.name for s in SOURCES} >= {"conv.cu", "dense.cu", "pool.cu", "pointwise.cu", "loss.cu", "sgd.cu",
                                         "memory.cu"}
