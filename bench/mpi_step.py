"""One measurement of data-parallel training steps, run under mpirun by bench/scaling.py (or alone):

    mpirun -n 2 python bench/mpi_step.py cifar --batch 50 --steps 10 [--bucket-mb 1]

Each rank runs `steps` steps of fit's data-parallel step (its shard of --batch samples per rank, the gradient
sum over the ranks, the fused update) with one thread, after two warm-up steps. Rank 0 prints one JSON line:
images/s over all ranks, seconds per step, seconds per step waited for the gradient Allreduce, and the time
of a bare Allreduce of the gradient buffer (its bytes / that time: the bandwidth the model of
docs/DISTRIBUTED.md uses).
"""
import argparse
import json
import time

import numpy as np

import hdl
from hdl import distributed, train
from hdl.convnet import cifar_net
from hdl.layers import Dense
from hdl.model import Model
from hdl.reducer import GradientReducer


def model(name):
    if name == "cifar":  # the paper's network (Section 7.4), 32x32x3 images
        return cifar_net(), (32, 32, 3)
    # a large MLP: 3072 -> 2048 -> 2048 -> 10, 10.5 M parameters (42 MB of float32 gradients)
    return Model([Dense(3072, 2048, "relu", rng=0, dtype=np.float32), Dense(2048, 2048, "relu", rng=1,
                  dtype=np.float32), Dense(2048, 10, "linear", rng=2, dtype=np.float32)]), (3072,)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model", choices=["cifar", "mlp"])
    p.add_argument("--batch", type=int, default=50, help="samples per rank and step")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--bucket-mb", type=float, default=0.0)
    a = p.parse_args()
    hdl.set_num_threads(1)
    world = distributed.World(bucket_mb=a.bucket_mb)
    net, shape = model(a.model)
    rng = np.random.default_rng(world.rank)
    x = rng.standard_normal((a.batch, *shape)).astype(np.float32)
    y = rng.integers(0, 10, a.batch)
    world.broadcast_model(net)
    reducer = GradientReducer(world, net)
    n = a.batch * world.size

    def step():
        train._reduced_gradients(net, reducer, x, y, n, 0)
        net.step(0.001, 0.9, 1e-4)

    for _ in range(2):
        step()
    world.sum([0])  # start together
    world.allreduce_seconds = 0.0
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    seconds = (time.perf_counter() - t0) / a.steps
    waited = world.allreduce_seconds / a.steps
    bare = []
    for _ in range(5):  # the gradient buffer's Allreduce alone
        world.sum([0])
        t0 = time.perf_counter()
        world.wait(world.iallreduce_(reducer.flat), "bare Allreduce")
        bare.append(time.perf_counter() - t0)
    worst = world.sum([seconds, waited])  # the slowest rank sets the pace: report the mean of the ranks
    if world.rank == 0:
        print(json.dumps({"model": a.model, "ranks": world.size, "batch_per_rank": a.batch, "bucket_mb": a.bucket_mb,
                          "images_per_second": n / (worst[0] / world.size), "step_seconds": worst[0] / world.size,
                          "allreduce_wait_seconds": worst[1] / world.size, "allreduce_bare_seconds": min(bare),
                          "gradient_bytes": int(reducer.flat.nbytes)}))


if __name__ == "__main__":
    main()
