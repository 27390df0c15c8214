"""hdl autoencoder: Section 8's autoencoder (a fully connected Network, on the CPU)."""
from __future__ import annotations

from hdl.commands.options import positive_int, print_json, print_written, progress


def add(sub):
    a = sub.add_parser("autoencoder", help="Section 8: an autoencoder, originals beside reconstructions")
    a.add_argument("--data", default=None, help="Fashion-MNIST IDX folder (default: Debian's) or CIFAR-10 folder")
    a.add_argument("--code", type=positive_int, default=32)
    a.add_argument("--epochs", type=positive_int, default=10)
    a.add_argument("--limit", type=positive_int, default=None)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--out", default="autoencoder")
    a.add_argument("--json", action="store_true")
    a.add_argument("--no-plot", action="store_true", help="skip the figure")
    a.add_argument("--quiet", action="store_true", help="no progress bar (shown by default on a terminal)")
    a.set_defaults(run=run, show=show)


def run(args):
    from hdl import experiments
    return experiments.run_autoencoder(data=args.data, out=args.out, code=args.code, epochs=args.epochs,
                                       seed=args.seed, limit=args.limit, plot=not args.no_plot,
                                       progress=progress(args))


def show(args, s):
    if args.json:
        return print_json(s)
    print(f"autoencoder: {s['pixels']} pixels -> {s['code']} -> {s['pixels']}, test cost {s['test_cost']:.4g}, "
          f"{s['seconds']:.1f} s")
    print_written(s)
