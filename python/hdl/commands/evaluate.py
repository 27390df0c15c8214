"""hdl evaluate MODEL: a trained model's accuracy, top-5 error and confusion matrix on the test set of
the data set it was trained on (named in the model file)."""
from __future__ import annotations

from hdl.commands import options


def add(sub):
    e = sub.add_parser("evaluate", help="test accuracy, top-5 error and confusion matrix of a model file",
                       description="Evaluates a model written by hdl cifar10, cifar100, mnist or fashion-mnist on "
                       "the test set of the data set it was trained on, with the preprocessing it was trained with.")
    e.add_argument("model", help="the model file (model*.npz in the training command's --out folder)")
    e.add_argument("--data", default=None, help="folder of the data set (default: where the training command "
                   "looks: $HDL_DATA, ~/.cache/hdl, ...)")
    e.add_argument("--limit", type=options.positive_int, default=None, help="use only the first LIMIT test images")
    e.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where to run the model (default cpu)")
    e.add_argument("--no-verify", action="store_true", help="read data files that are not the official ones")
    e.add_argument("--json", action="store_true", help="print a machine-readable summary")
    e.set_defaults(run=run, show=show)


def check_model(clf, images):
    """A ValueError when the data set found does not fit the model (another data set's files)."""
    if images.input_shape != clf.input_shape or len(images.classes) != len(clf.classes):
        raise ValueError(f"{clf.path} takes {'x'.join(map(str, clf.input_shape))} images in {len(clf.classes)} "
                         f"classes ({clf.dataset}), but the data found are {'x'.join(map(str, images.input_shape))} "
                         f"images in {len(images.classes)} classes")


def run(args):
    from hdl.data.preprocess import apply_stats
    from hdl.experiments import datasets, modelfile

    options.require_device(args.device)
    clf = modelfile.load(args.model)
    images = datasets.load(clf.dataset, args.data, clf.label, verify=not args.no_verify)
    check_model(clf, images)
    stats = clf.statistics(images)
    xt, yt = images.xt[:args.limit], images.yt[:args.limit]
    datasets.move(clf.model, args.device)
    report = datasets.test_report(clf.model, apply_stats(xt, stats), yt, clf.classes)
    report.pop("predicted")
    label = {"label": clf.label} if clf.dataset == "cifar100" else {}
    return {"model": clf.path, "dataset": clf.dataset, **label, "classes": list(clf.classes),
            "test_images": len(xt), "correct": int(round(report["test_accuracy"] * len(xt))),
            "statistics_recomputed": clf.needs_statistics, **report}


def confusion_text(M, classes) -> str:
    """The matrix as a table: rows the predicted class, columns the true class."""
    names = [str(c)[:9] for c in classes]
    width = max(max(len(n) for n in names), len(str(max(max(r) for r in M))), 3) + 1
    lines = [" " * width + "".join(n.rjust(width) for n in names)]
    lines += [name.rjust(width) + "".join(str(v).rjust(width) for v in row) for name, row in zip(names, M)]
    return "\n".join(lines)


def show(args, s):
    if args.json:
        return options.print_json(s, drop=())
    label = f", {s['label']} labels" if s["dataset"] == "cifar100" else ""
    print(f"{s['model']} ({s['dataset']}{label}, {len(s['classes'])} classes): test accuracy "
          f"{100 * s['test_accuracy']:.2f}% ({s['correct']:,} of {s['test_images']:,}), top-5 error "
          f"{100 * s['test_top5_error']:.2f}%")
    if s["statistics_recomputed"]:
        print("  (a model file of an earlier hdl cifar10: its preprocessing was recomputed from the training set)")
    if len(s["classes"]) > 20:
        print(f"  the {len(s['classes'])} x {len(s['classes'])} confusion matrix: with --json")
        return
    print("confusion matrix (rows: predicted class, columns: true class):")
    print(confusion_text(s["confusion_matrix"], s["classes"]))
