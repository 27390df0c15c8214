"""hdl mnist and hdl fashion-mnist: a LeNet-style network on the IDX data sets."""
from __future__ import annotations

from hdl.commands import options


def add(sub):
    for name, title in (("mnist", "MNIST (handwritten digits)"), ("fashion-mnist", "Fashion-MNIST (clothes)")):
        what = f"a LeNet-style network on {title}"
        m = sub.add_parser(name, help=what, description=what + ": conv 5x5, ReLU, max pool, conv 5x5, ReLU, max "
                           "pool, fully connected, ReLU, fully connected; the four official IDX files from --data, "
                           "$HDL_DATA or ~/.cache/hdl (each also in a subfolder named after the data set), else "
                           "downloaded with their published MD5s")
        options.training(m, epochs=10, batch_size=100, lr=0.01, lr_help="learning rate (default 0.01)", out=name)
        m.set_defaults(run=run, show=show)


def run(args):
    from hdl import experiments
    return experiments.run_mnist(dataset=args.command, **options.training_kwargs(args))


def show(args, s):
    if args.json:
        return options.print_json(s)
    print(f"{args.command}: test accuracy {100 * s['test_accuracy']:.1f}% on {s['test_images']:,} images, top-5 "
          f"error {100 * s['test_top5_error']:.1f}%, {s['seconds_total']:.0f} s in all, "
          f"{s['images_per_second']:.0f} images/s while training")
    options.print_written(s)
