"""hdl adversarial, hdl random-labels, hdl gan, hdl corrector: the experiments of Section 8's questions
(adversarial perturbations [33], random labels [37], generative adversarial networks [12], on-the-fly
correction [13])."""
from __future__ import annotations

import argparse

from hdl.commands.options import positive_float, positive_int, print_json, print_written, progress


def _common(p, out, model=True):
    if model:
        p.add_argument("--model", default=None, help="a model file written by hdl cifar10 (model_plain.npz); "
                       "default: train a small cifar_net first (5,000 images, 3 epochs)")
    p.add_argument("--data", default=None, help="folder of the data set (default: where hdl cifar10 looks)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=out, help=f"folder for the figures and summary.json (default ./{out})")
    p.add_argument("--no-verify", action="store_true", help="read data files that are not the official ones")
    p.add_argument("--no-plot", action="store_true", help="skip the figures")
    p.add_argument("--json", action="store_true", help="print a machine-readable summary")


def _fraction(text):
    value = positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def add(sub):
    a = sub.add_parser("adversarial", help="Section 8: FGSM and the one-pixel attack [33] on a CIFAR-10 network")
    _common(a, "adversarial")
    a.add_argument("--fgsm-images", type=positive_int, default=1000, help="test images of the FGSM sweep")
    a.add_argument("--pixel-images", type=positive_int, default=100,
                   help="correctly classified test images to attack with one pixel (default 100)")
    a.add_argument("--maxiter", type=positive_int, default=30, help="differential evolution's generations")
    a.add_argument("--popsize", type=positive_int, default=40, help="differential evolution's population factor")
    a.add_argument("--untargeted-only", action="store_true", help="skip the targeted one-pixel attacks")
    a.set_defaults(run=run_adversarial, show=show_adversarial)
    r = sub.add_parser("random-labels", help="Section 8: cifar_net learning randomised CIFAR-10 labels [37]")
    _common(r, "random_labels", model=False)
    r.add_argument("--subset", type=positive_int, default=5000, help="training images (the first SUBSET)")
    r.add_argument("--fraction", type=_fraction, default=1.0, help="fraction of labels randomised (default 1)")
    r.add_argument("--epochs", type=positive_int, default=60)
    r.add_argument("--lr", type=positive_float, default=0.05)
    r.add_argument("--test-limit", type=positive_int, default=None, help="test images used (default all)")
    r.add_argument("--threads", type=positive_int, default=None)
    r.add_argument("--quiet", action="store_true")
    r.set_defaults(run=run_random_labels, show=show_random_labels)
    g = sub.add_parser("gan", help="Section 8: a generative adversarial network [12] on Fashion-MNIST or MNIST")
    _common(g, "gan", model=False)
    g.add_argument("--dataset", choices=["fashion-mnist", "mnist"], default="fashion-mnist")
    g.add_argument("--epochs", type=positive_int, default=20)
    g.add_argument("--lr", type=positive_float, default=0.02)
    g.add_argument("--limit", type=positive_int, default=None, help="use only this many training images")
    g.add_argument("--every", type=positive_int, default=1, help="a grid of samples every EVERY epochs")
    g.set_defaults(run=run_gan, show=show_gan)
    c = sub.add_parser("corrector", help="Section 8: fix a trained network's errors by linear correctors [13]")
    _common(c, "corrector")
    c.add_argument("--errors", type=positive_int, default=20, help="misclassified test images to fix, one "
                   "corrector each (default 20)")
    c.add_argument("--reference", type=positive_int, default=10000, help="training images whose features the "
                   "correctors are built from (default 10000)")
    c.set_defaults(run=run_corrector, show=show_corrector)


def run_adversarial(args):
    from hdl import experiments
    return experiments.run_adversarial(model=args.model, data=args.data, out=args.out, fgsm_images=args.fgsm_images,
                                       pixel_images=args.pixel_images, targeted=not args.untargeted_only,
                                       maxiter=args.maxiter, popsize=args.popsize, seed=args.seed,
                                       plot=not args.no_plot, verify=not args.no_verify)


def show_adversarial(args, s):
    if args.json:
        return print_json(s, drop=("one_pixel_attacks",))
    acc = ", ".join(f"{255 * e:.0f}/255: {100 * a:.1f}%" for e, a in zip(s["epsilons"], s["fgsm"]["untargeted_accuracy"]))
    print(f"FGSM accuracy on {s['fgsm_images']} test images: {acc}")
    for mode, a in s["one_pixel"].items():
        if isinstance(a, dict):
            print(f"one-pixel attack ({mode}): {a['successes']} of {a['attempts']} ({100 * a['success_rate']:.0f}%, "
                  f"95% Wilson interval {100 * a['wilson_95'][0]:.0f}-{100 * a['wilson_95'][1]:.0f}%)")
    print_written(s)


def run_random_labels(args):
    from hdl import experiments
    return experiments.run_random_labels(data=args.data, out=args.out, subset=args.subset, fraction=args.fraction,
                                         epochs=args.epochs, lr=args.lr, seed=args.seed, threads=args.threads,
                                         plot=not args.no_plot, progress=progress(args), verify=not args.no_verify,
                                         test_limit=args.test_limit)


def show_random_labels(args, s):
    if args.json:
        return print_json(s)
    for name, r in s["runs"].items():
        print(f"{name} labels: training error {100 * r['final_train_error']:.1f}%, test error "
              f"{100 * r['final_test_error']:.1f}% ({s['training_images']} training images, {s['epochs']} epochs)")
    print_written(s)


def run_gan(args):
    from hdl import experiments
    return experiments.run_gan(dataset=args.dataset, data=args.data, out=args.out, epochs=args.epochs, lr=args.lr,
                               seed=args.seed, limit=args.limit, plot=not args.no_plot, every=args.every)


def show_gan(args, s):
    if args.json:
        return print_json(s)
    print(f"gan on {s['dataset']}: losses D {s['final_discriminator_loss']:.3f}, G {s['final_generator_loss']:.3f} "
          f"after {s['epochs']} epochs, {s['seconds']:.0f} s")
    print_written(s)


def run_corrector(args):
    from hdl import experiments
    return experiments.run_corrector(model=args.model, data=args.data, out=args.out, errors=args.errors,
                                     reference=args.reference, seed=args.seed, plot=not args.no_plot,
                                     verify=not args.no_verify)


def show_corrector(args, s):
    if args.json:
        return print_json(s, drop=("corrections",))
    print(f"corrector: {s['fixed']} of {s['errors_corrected']} errors fixed; other test predictions changed: mean "
          f"{100 * s['mean_others_changed_fraction']:.2f}%, at most {100 * s['max_others_changed_fraction']:.2f}%")
    print_written(s)
