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


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    from hdl.commands.options import CommandError
    from hdl.data._common import DataError
    from hdl.train import TrainingDiverged

    try:
        summary = args.run(args)
    except (CommandError, DataError, TrainingDiverged, ValueError, TypeError, ImportError, FloatingPointError,
            NotImplementedError, OSError) as err:
        if os.environ.get("HDL_DEBUG"):  # the whole traceback, for a bug rather than a bad argument
            traceback.print_exc()
        print(f"hdl {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # the compiled loops answer Ctrl-C within about 0.1 s
        kept = " (the last epoch's checkpoint is kept; --resume continues from it)" if getattr(
            args, "checkpointed", False) else ""
        print(f"hdl {args.command}: interrupted{kept}", file=sys.stderr)
        return 130
    args.show(args, summary)
    return 1 if summary.get("misclassified", 0) else 0


if __name__ == "__main__":
    sys.exit(main())
