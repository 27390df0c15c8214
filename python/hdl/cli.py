"""The `hdl` command: the paper's experiments."""
from __future__ import annotations

import argparse
import json
import sys


def _positive_int(text):
    value = int(float(text)) if text.replace("e", "").replace("E", "").isdigit() else int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _positive_float(text):
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be positive and finite, got {text}")
    return value


def _parser():
    p = argparse.ArgumentParser(prog="hdl", description="Experiments of Higham & Higham, 'Deep Learning: An "
                                "Introduction for Applied Mathematicians' (SIAM Review, 2019).")
    from hdl import __version__
    p.add_argument("--version", action="version", version=f"hdl {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--extra-point", action="store_true", help="add the category-B point (0.3, 0.7)")
    common.add_argument("--seed", type=int, default=1, help="seed of the initial weights and sampling (default 1)")
    common.add_argument("--out", default="figures", help="folder for the PNG figures (default ./figures)")
    common.add_argument("--no-plot", action="store_true", help="skip the figures")
    common.add_argument("--json", action="store_true", help="print a machine-readable summary")
    n = sub.add_parser("netbp", parents=[common], help="Section 6: stochastic gradient on the ten points "
                       "(Figures 6.1-6.3)")
    n.add_argument("--iters", type=_positive_int, default=10**6, help="stochastic gradient steps (default 1e6)")
    n.add_argument("--eta", type=_positive_float, default=0.05, help="learning rate (default 0.05)")
    s = sub.add_parser("lsq", parents=[common], help="Section 2: nonlinear least squares on the ten points "
                       "(Figures 2.4-2.5)")
    s.add_argument("--method", choices=["trf", "dogbox", "lm"], default="trf", help="scipy least_squares method")
    c = sub.add_parser("cifar10", help="Section 7.4: MatConvNet's CIFAR-10 network (Figures 7.2-7.6)")
    c.add_argument("--data", default=None, help="folder of the binary CIFAR-10 files or cifar-10-binary.tar.gz "
                   "(default: $HDL_DATA, the cache, else download)")
    c.add_argument("--dropout", action="store_true", help="dropout 0.15, 0.15, 0.15, 0.35 after blocks 1-4")
    c.add_argument("--epochs", type=_positive_int, default=45)
    c.add_argument("--batch-size", type=_positive_int, default=100)
    c.add_argument("--lr", type=_positive_float, default=None,
                   help="a constant rate (default: the paper's 0.05 / 0.005 / 0.0005 over 30 / 10 / 5 epochs)")
    c.add_argument("--threads", type=_positive_int, default=None)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--no-flips", action="store_true",
                   help="no random horizontal flips of the training images (MatConvNet's example flips)")
    c.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    c.add_argument("--limit", type=_positive_int, default=None, help="use only this many training images")
    c.add_argument("--out", default="cifar10", help="folder for figures, summary and model (default ./cifar10)")
    c.add_argument("--no-plot", action="store_true")
    c.add_argument("--json", action="store_true")
    a = sub.add_parser("autoencoder", help="Section 8: an autoencoder, originals beside reconstructions")
    a.add_argument("--data", default=None, help="Fashion-MNIST IDX folder (default: Debian's) or CIFAR-10 folder")
    a.add_argument("--code", type=_positive_int, default=32)
    a.add_argument("--epochs", type=_positive_int, default=10)
    a.add_argument("--limit", type=_positive_int, default=None)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--out", default="autoencoder")
    a.add_argument("--json", action="store_true")
    return p


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    from hdl import experiments
    from hdl.data.cifar10 import DataError
    from hdl.train import TrainingDiverged

    if args.command == "autoencoder":
        run = lambda: experiments.run_autoencoder(data=args.data, out=args.out, code=args.code,  # noqa: E731
                                                  epochs=args.epochs, seed=args.seed, limit=args.limit)
        headline = lambda s: (f"autoencoder: {s['pixels']} pixels -> {s['code']} -> {s['pixels']}, "  # noqa: E731
                              f"test cost {s['test_cost']:.4g}, {s['seconds']:.1f} s")
    elif args.command == "cifar10":
        run = lambda: experiments.run_cifar10(  # noqa: E731
            data=args.data, out=args.out, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
            dropout=args.dropout, seed=args.seed, threads=args.threads, flips=not args.no_flips, resume=args.resume,
            progress=sys.stderr.isatty(), plot=not args.no_plot, limit=args.limit)
        headline = lambda s: (f"cifar10 ({'dropout' if args.dropout else 'no dropout'}): test accuracy "  # noqa
                              f"{100 * s['test_accuracy']:.1f}%, {s['seconds_total']:.0f} s in all, "
                              f"{s['images_per_second']:.0f} images/s while training")
    elif args.command == "netbp":
        run = lambda: experiments.run_netbp(iterations=args.iters, eta=args.eta, seed=args.seed,  # noqa: E731
                                            extra_point=args.extra_point, out=args.out, plot=not args.no_plot)
    else:
        run = lambda: experiments.run_lsq(seed=args.seed, extra_point=args.extra_point, method=args.method,  # noqa
                                          out=args.out, plot=not args.no_plot)
    if args.command in ("netbp", "lsq"):
        headline = lambda s: (f"{args.command}: {s['points']} points, cost {s['initial_cost']:.4g} -> "  # noqa
                              f"{s['final_cost']:.4g} (sum of ||y - F(x)||^2), {s['misclassified']} misclassified, "
                              f"{s['seconds']:.3f} s")
    try:
        summary = run()
    except (DataError, TrainingDiverged, ValueError, TypeError, ImportError, FloatingPointError, OSError) as err:
        print(f"hdl {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # the compiled loops answer Ctrl-C within about 0.1 s
        saved = " (the last epoch's checkpoint is kept; --resume continues from it)" if args.command == "cifar10" else ""
        print(f"hdl {args.command}: interrupted{saved}", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps({k: v for k, v in summary.items() if k != "confusion_matrix"}, indent=2))
    else:
        print(headline(summary))
        for path in list(summary["figures"].values()) + ([summary["model"]] if "model" in summary else []):
            print(f"  wrote {path}")
    return 1 if summary.get("misclassified", 0) else 0

if __name__ == "__main__":
    sys.exit(main())
