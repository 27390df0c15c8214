"""hdl netbp and hdl lsq: the ten points of Sections 2 and 6."""
from __future__ import annotations

import argparse

from hdl.commands.options import positive_float, positive_int, print_json, print_written, progress


def add(sub):
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--extra-point", action="store_true", help="add the category-B point (0.3, 0.7)")
    common.add_argument("--seed", type=int, default=1, help="seed of the initial weights and sampling (default 1)")
    common.add_argument("--out", default="figures", help="folder for the PNG figures (default ./figures)")
    common.add_argument("--no-plot", action="store_true", help="skip the figures")
    common.add_argument("--json", action="store_true", help="print a machine-readable summary")
    n = sub.add_parser("netbp", parents=[common], help="Section 6: stochastic gradient on the ten points "
                       "(Figures 6.1-6.3)")
    n.add_argument("--iters", type=positive_int, default=10**6, help="stochastic gradient steps (default 1e6)")
    n.add_argument("--eta", type=positive_float, default=0.05, help="learning rate (default 0.05)")
    n.add_argument("--quiet", action="store_true", help="no progress bar (shown by default on a terminal)")
    n.set_defaults(run=run_netbp, show=show)
    s = sub.add_parser("lsq", parents=[common], help="Section 2: nonlinear least squares on the ten points "
                       "(Figures 2.4-2.5)")
    s.add_argument("--method", choices=["trf", "dogbox", "lm"], default="trf", help="scipy least_squares method")
    s.set_defaults(run=run_lsq, show=show)


def run_netbp(args):
    from hdl import experiments
    return experiments.run_netbp(iterations=args.iters, eta=args.eta, seed=args.seed, extra_point=args.extra_point,
                                 out=args.out, plot=not args.no_plot, progress=progress(args))


def run_lsq(args):
    from hdl import experiments
    return experiments.run_lsq(seed=args.seed, extra_point=args.extra_point, method=args.method, out=args.out,
                               plot=not args.no_plot)


def show(args, s):
    if args.json:
        return print_json(s)
    print(f"{args.command}: {s['points']} points, cost {s['initial_cost']:.4g} -> {s['final_cost']:.4g} "
          f"(sum of ||y - F(x)||^2), {s['misclassified']} misclassified, {s['seconds']:.3f} s")
    print_written(s)
