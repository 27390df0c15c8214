"""Run by tests/test_distributed.py under `mpirun -n 2 python tests/mpi_worker.py SCENARIO OUT`: each
scenario runs hdl.distributed on the ranks and rank 0 writes what it found into OUT (results.npz,
messages.json) for the test to check against one process."""
import json
import os
import signal
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import mpi_cases as cases  # noqa: E402

from hdl import distributed, train  # noqa: E402
from hdl.callbacks import Callback, CSVLogger  # noqa: E402
from hdl.reducer import GradientReducer  # noqa: E402

scenario, out = sys.argv[1], sys.argv[2]
world = distributed.World()
rank = world.rank
arrays, messages = {}, {}


def gradients(batch):
    """The reduced gradients of one step on a global batch of `batch` samples."""
    x, y = cases.blobs(batch, seed=batch)
    net = cases.small_net()
    world.broadcast_model(net)
    mine = world.shard(np.arange(batch))
    stats = train._reduced_gradients(net, GradientReducer(world, net), x[mine], y[mine], batch, 0)
    return [np.array(g) for g in net.parameter_gradients()], stats


def fit(**kw):
    net = cases.small_net()
    history = train.fit(net, cases.blobs(300), cases.blobs(100, 1), comm=world, **{**cases.FIT, **kw})
    return net, history


def spread(net):
    """The largest difference between a parameter on this rank and on rank 0."""
    worst = 0.0
    for p in net.parameters():
        theirs = p.copy()
        world.bcast_(theirs)
        worst = max(worst, float(np.abs(theirs - p).max()))
    return world.sum([worst])[0]


class FailOnRank1(Callback):
    def on_epoch_end(self, epoch, model, history):
        if rank == 1 and epoch == 2:
            if scenario == "fail":
                raise RuntimeError("rank 1 fails on purpose")
            if scenario == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            if scenario == "stall":
                time.sleep(120)
        return False


if scenario == "checks":
    for batch in (8, 7, 1):  # equal shards, unequal ones, and a rank with no sample
        grads, stats = gradients(batch)
        for i, g in enumerate(grads):
            arrays[f"grad{batch}_{i}"] = g
        arrays[f"stats{batch}"] = stats
    for bucket_mb in (0.0, 1e-4):  # one Allreduce; buckets started during the backward pass
        world.bucket_bytes = int(1e6 * bucket_mb)
        net, history = fit(callbacks=[CSVLogger(os.path.join(out, "log.csv"))])
        arrays[f"spread{bucket_mb}"] = spread(net)
        for i, p in enumerate(net.parameters()):
            arrays[f"weights{bucket_mb}_{i}"] = p
        messages[f"history{bucket_mb}"] = history.to_dict()
    world.bucket_bytes = 0
    fit(epochs=2, checkpoint=os.path.join(out, "two_ranks.npz"))  # resumed on one rank by the test
    net, history = fit(checkpoint=os.path.join(out, "one_rank.npz"), resume=True)  # written by the test on one rank
    messages["resumed_history"] = history.to_dict()
    for i, p in enumerate(net.parameters()):
        arrays[f"resumed_{i}"] = p
    x, y = cases.blobs(300, seed=rank)  # ranks with different data
    try:
        train.fit(cases.small_net(), (x, y), epochs=1, comm=world, progress=False)
    except distributed.RanksDisagree as err:
        messages["data"] = str(err)
    try:  # a bad argument on rank 1 only
        train.fit(cases.small_net(), cases.blobs(30), epochs=1, batch_size=10 - 10 * rank, comm=world,
                  progress=False)
    except distributed.RanksDisagree as err:
        messages["argument"] = str(err)
    data = os.environ.get("HDL_CIFAR")
    if data:  # the paper's network on a slice of CIFAR-10, one epoch
        from hdl.experiments.cifar import run_cifar10
        s = run_cifar10(data=data, out=os.path.join(out, "cifar"), epochs=2, batch_size=100, limit=400,
                        progress=False, plot=False, threads=1, comm=world)
        messages["cifar"] = s["final"]
elif scenario in ("fail", "kill", "stall"):
    fit(epochs=50, callbacks=[FailOnRank1()])

if rank == 0:
    np.savez(os.path.join(out, "results.npz"), **arrays)
    with open(os.path.join(out, "messages.json"), "w") as f:
        json.dump(messages, f)
