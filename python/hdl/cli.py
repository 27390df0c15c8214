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
    return p


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    from hdl import experiments

    try:
        if args.command == "netbp":
            summary = experiments.run_netbp(iterations=args.iters, eta=args.eta, seed=args.seed,
                                            extra_point=args.extra_point, out=args.out, plot=not args.no_plot)
        else:
            summary = experiments.run_lsq(seed=args.seed, extra_point=args.extra_point, method=args.method,
                                          out=args.out, plot=not args.no_plot)
    except (ValueError, TypeError, ImportError, FloatingPointError) as err:
        print(f"hdl {args.command}: error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{args.command}: {summary['points']} points, cost {summary['initial_cost']:.4g} -> "
              f"{summary['final_cost']:.4g} (sum of ||y - F(x)||^2), {summary['misclassified']} misclassified, "
              f"{summary['seconds']:.3f} s")
        for path in summary["figures"].values():
            print(f"  wrote {path}")
    return 0 if summary["misclassified"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
