"""The `hdl` command: the paper's experiments, more data sets, and evaluating and applying the models
they train. Each subcommand is a module of hdl.commands; this module parses, runs, reports and maps
errors to exit statuses: 0 done, 1 netbp/lsq left a point misclassified, 2 an error (a message names
the problem; HDL_DEBUG=1 prints its traceback too), 130 interrupted."""
from __future__ import annotations

import argparse
import os
import sys
import traceback

from hdl.commands.options import positive_float as _positive_float  # noqa: F401  (the names of earlier versions)
from hdl.commands.options import positive_int as _positive_int  # noqa: F401


def _parser():
    from hdl import __version__
    from hdl.commands import MODULES

    p = argparse.ArgumentParser(prog="hdl", description="Experiments of Higham & Higham, 'Deep Learning: An "
                                "Introduction for Applied Mathematicians' (SIAM Review, 2019).")
    p.add_argument("--version", action="version", version=f"hdl {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in MODULES:
        module.add(sub)
    return p


def _under_mpi(args) -> str:
    """Under mpirun (several ranks): args.comm for data-parallel training and the threads per rank; the text
    naming this rank in messages ('' when not under mpirun)."""
    from hdl import distributed
    from hdl.commands.options import CommandError

    if not distributed.under_mpi():
        return ""
    if not getattr(args, "parallel", False):
        raise CommandError("started under mpirun, but this command does not train data-parallel (the training "
                           "commands cifar10, cifar100, mnist and fashion-mnist do): start it without mpirun")
    args.comm = distributed.World()
    if args.threads is None:
        args.threads = distributed.threads_per_rank()
    return f" (rank {args.comm.rank} of {args.comm.size})"


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    from hdl.commands.options import CommandError
    from hdl.data._common import DataError
    from hdl.distributed import DistributedError
    from hdl.train import TrainingDiverged

    where = ""
    try:
        where = _under_mpi(args)
        summary = args.run(args)
    except (CommandError, DataError, TrainingDiverged, DistributedError, ValueError, TypeError, ImportError,
            FloatingPointError, NotImplementedError, OSError) as err:
        if os.environ.get("HDL_DEBUG"):  # the whole traceback, for a bug rather than a bad argument
            traceback.print_exc()
        print(f"hdl {args.command}{where}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # the compiled loops answer Ctrl-C within about 0.1 s
        kept = " (the last epoch's checkpoint is kept; --resume continues from it)" if getattr(
            args, "checkpointed", False) else ""
        print(f"hdl {args.command}: interrupted{kept}", file=sys.stderr)
        return 130
    if getattr(args, "comm", None) is None or args.comm.rank == 0:
        args.show(args, summary)
    return 1 if summary.get("misclassified", 0) else 0


if __name__ == "__main__":
    sys.exit(main())
