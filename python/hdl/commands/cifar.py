"""hdl cifar10 and hdl cifar100: Section 7.4's network on CIFAR-10, and on CIFAR-100 (100 fine or 20
coarse classes)."""
from __future__ import annotations

from hdl.commands import options

PAPER_RATES = "a constant rate (default: the paper's 0.05 / 0.005 / 0.0005 over 30 / 10 / 5 epochs)"


def add(sub):
    for name, what in (("cifar10", "Section 7.4: MatConvNet's CIFAR-10 network (Figures 7.2-7.6)"),
                       ("cifar100", "the same network on CIFAR-100 (cifar-100-binary: 100 fine or 20 coarse "
                        "classes)")):
        c = sub.add_parser(name, help=what, description=what)
        options.training(c, epochs=45, batch_size=100, lr_help=PAPER_RATES, out=name)
        c.add_argument("--dropout", action="store_true", help="dropout 0.15, 0.15, 0.15, 0.35 after blocks 1-4")
        c.add_argument("--no-flips", action="store_true",
                       help="no random horizontal flips of the training images (MatConvNet's example flips)")
        if name == "cifar100":
            c.add_argument("--labels", choices=["fine", "coarse"], default="fine",
                           help="the 100 fine classes (default) or the 20 coarse superclasses")
        c.set_defaults(run=run, show=show)


def run(args):
    from hdl import experiments
    kwargs = dict(options.training_kwargs(args), dropout=args.dropout, flips=not args.no_flips)
    if args.command == "cifar100":
        return experiments.run_cifar100(label=args.labels, **kwargs)
    return experiments.run_cifar10(**kwargs)


def show(args, s):
    if args.json:
        return options.print_json(s)
    name = "cifar10" if args.command == "cifar10" else f"cifar100 ({args.labels} labels)"
    print(f"{name} ({'dropout' if args.dropout else 'no dropout'}): test accuracy {100 * s['test_accuracy']:.1f}%, "
          f"top-5 error {100 * s['test_top5_error']:.1f}%, {s['seconds_total']:.0f} s in all, {s['images_per_second']:.0f} images/s while training")
    options.print_written(s)
