"""Argument types and the options every training command shares (--data, --epochs, ..., --device,
--quiet), with the checks that need no data: each bad value is named in argparse's message."""
from __future__ import annotations

import argparse
import sys


class CommandError(Exception):
    """A problem with the command's arguments found after parsing (exit status 2)."""


def positive_int(text):
    try:
        value = float(text) if "e" in text.lower() and text.lower().replace("e", "", 1).isdigit() else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid positive integer {text!r}") from None
    if value != int(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return int(value)


def positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be positive and finite, got {text}")
    return value


def training(p, *, epochs, batch_size, lr_help, out, lr=None):
    """The options of a training command."""
    p.add_argument("--data", default=None, help="folder (or archive) of the data set (default: $HDL_DATA, the "
                   "cache ~/.cache/hdl, else download)")
    p.add_argument("--epochs", type=positive_int, default=epochs, help=f"epochs in all, counting those a resumed "
                   f"run has done (default {epochs})")
    p.add_argument("--batch-size", type=positive_int, default=batch_size, help=f"default {batch_size}")
    p.add_argument("--lr", type=positive_float, default=lr, help=lr_help)
    p.add_argument("--seed", type=int, default=0, help="seed of the weights, the order of the batches (default 0)")
    p.add_argument("--limit", type=positive_int, default=None,
                   help="use only this many training images (and a fifth as many test images)")
    p.add_argument("--out", default=out, help=f"folder for figures, log, checkpoint, summary and model "
                   f"(default ./{out})")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.add_argument("--threads", type=positive_int, default=None, help="CPU threads (default: all cores)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where to train (default cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress bar (shown by default on a terminal)")
    p.add_argument("--no-verify", action="store_true",
                   help="read data files that are not the official ones (own or test data)")
    p.add_argument("--no-plot", action="store_true", help="skip the figures")
    p.add_argument("--json", action="store_true", help="print a machine-readable summary")
    p.set_defaults(checkpointed=True, parallel=True)  # data-parallel under mpirun (hdl.cli)


def require_device(device: str) -> str:
    """device, after checking that hdl can run there (a CommandError saying why not)."""
    if device == "cuda":
        from hdl import cuda
        why = cuda.why_unavailable()
        if why is not None:
            raise CommandError(f"--device cuda: hdl cannot use a GPU here: {why}")
    return device


def progress(args) -> bool:
    return sys.stderr.isatty() and not getattr(args, "quiet", False)


def training_kwargs(args) -> dict:
    """The keyword arguments every training function takes, from the shared options."""
    return {"data": args.data, "out": args.out, "epochs": args.epochs, "batch_size": args.batch_size,
            "lr": args.lr, "seed": args.seed, "threads": args.threads, "resume": args.resume,
            "progress": progress(args), "plot": not args.no_plot, "limit": args.limit,
            "device": require_device(args.device), "verify": not args.no_verify, "comm": getattr(args, "comm", None)}


def print_json(summary, drop=("confusion_matrix",)):
    import json
    print(json.dumps({k: v for k, v in summary.items() if k not in drop}, indent=2))


def print_written(summary):
    for path in list(summary.get("figures", {}).values()) + [summary[k] for k in ("log", "model") if k in summary]:
        print(f"  wrote {path}")
