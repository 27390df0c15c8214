"""Data-parallel steps on 1 and 2 ranks (mpirun on this machine, one thread each), for the paper's CIFAR
network and a large MLP: each benchmark times one launch of bench/mpi_step.py (startup included) and records
the step's own figures (images/s, the Allreduce wait per step) in extra_info. bench/scaling.py prints the
table with alternating rounds; docs/DISTRIBUTED.md has the figures.

Run: python -m pytest bench/bench_distributed.py
"""
import shutil

import pytest

pytest.importorskip("mpi4py", reason="needs mpi4py (pip install '.[mpi]')")
if shutil.which("mpirun") is None:
    pytest.skip("needs mpirun (pip install '.[mpi]')", allow_module_level=True)

from scaling import launch  # noqa: E402


@pytest.mark.parametrize("model, batch", [("cifar", 50), ("mlp", 64)])
@pytest.mark.parametrize("ranks", [1, 2])
def test_data_parallel_step(benchmark, model, batch, ranks):
    benchmark.group = f"data-parallel {model}, batch {batch} per rank"
    r = benchmark.pedantic(launch, args=(ranks, model, 10, batch, 0.0), rounds=1, iterations=1)
    benchmark.extra_info.update(r)
    assert r["ranks"] == ranks and r["images_per_second"] > 0
