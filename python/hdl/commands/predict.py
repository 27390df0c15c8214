"""hdl predict MODEL IMAGE...: the most probable classes of images (PNG, JPEG, .npy) under a model
file, with the preprocessing the model was trained with. Images must have the model's size: hdl
never resizes; it converts grey to RGB, and RGB with equal channels to grey, and says so."""
from __future__ import annotations

import sys

from hdl.commands import options


def add(sub):
    p = sub.add_parser("predict", help="class probabilities of image files under a model file",
                       description="Prints the TOP most probable classes of each image (PNG, JPEG, or .npy of "
                       "pixel values 0..255) under a model written by hdl cifar10, cifar100, mnist or fashion-mnist.")
    p.add_argument("model", help="the model file (model*.npz in the training command's --out folder)")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files: .png, .jpg, .jpeg or .npy")
    p.add_argument("--top", type=options.positive_int, default=5, help="how many classes to show (default 5)")
    p.add_argument("--data", default=None, help="only for a model file of an earlier hdl cifar10, which did not "
                   "save its preprocessing: the CIFAR-10 folder to recompute it from")
    p.add_argument("--json", action="store_true", help="print a machine-readable list")
    p.set_defaults(run=run, show=show)


def _load_images(clf, paths):
    """[(path, index in the file, image uint8 (H, W, C), note)] for every image in the files."""
    from hdl.data.images import fit_channels, read_images

    h, w, c = clf.input_shape
    out = []
    for path in paths:
        stack = read_images(path, (h, w))
        if stack.shape[1:3] != (h, w):
            raise ValueError(f"{path}: {stack.shape[2]}x{stack.shape[1]} pixels (width x height), but the model takes "
                             f"{w}x{h} images; hdl does not resize: crop or scale the image yourself")
        stack, note = fit_channels(stack, c, path)
        out += [(str(path), i if len(stack) > 1 else None, image, note) for i, image in enumerate(stack)]
    return out


def run(args):
    import numpy as np

    from hdl.data.preprocess import apply_stats
    from hdl.experiments import datasets, modelfile

    clf = modelfile.load(args.model)
    if clf.needs_statistics:
        print("hdl predict: the model file has no preprocessing statistics (an earlier hdl cifar10); recomputing "
              "them from the CIFAR-10 training set", file=sys.stderr)
        clf.preprocessing = clf.statistics(datasets.load(clf.dataset, args.data, clf.label))
    items = _load_images(clf, args.images)
    for path, index, _, note in items:
        if note and not index:
            print(f"hdl predict: {path}: {note}", file=sys.stderr)
    batch = np.stack([image for _, _, image, _ in items])
    proba = clf.model.predict_proba(apply_stats(batch, clf.preprocessing))
    top = min(args.top, len(clf.classes))
    results = []
    for (path, index, _, _), p in zip(items, proba):
        order = np.argsort(-p, kind="stable")[:top]
        results.append({"image": path, "index": index, "top": [
            {"class": clf.classes[k], "label": int(k), "probability": float(p[k])} for k in order]})
    return {"model": clf.path, "dataset": clf.dataset, "predictions": results}


def show(args, s):
    if args.json:
        return options.print_json(s, drop=())
    for r in s["predictions"]:
        name = r["image"] if r["index"] is None else f"{r['image']}[{r['index']}]"
        best = ", ".join(f"{t['class']} {100 * t['probability']:.1f}%" for t in r["top"])
        print(f"{name}: {best}")
