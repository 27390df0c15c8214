"""Saving and loading models: a trained model saved (an .npz of the arrays and a JSON description, no pickle)
and loaded into a fresh object that predicts the same; a run stopped after a Checkpoint and resumed, which ends
with the same parameters as a run that never stopped; and a damaged file refused by Model.load.

The task, made up so that the script needs no data: four clusters of points in 8 dimensions.

    python examples/save_load.py [--out save_load]
"""
import argparse
import zipfile
from pathlib import Path

import numpy as np

import hdl
from hdl.callbacks import Checkpoint
from hdl.layers import Dense
from hdl.train import fit


def clusters(n, seed=0, dim=8, classes=4):
    """n points (float32 rows) around `classes` random centres, and the class of each."""
    rng = np.random.default_rng(seed)
    centres = 2.0 * rng.standard_normal((classes, dim))
    labels = rng.integers(0, classes, n)
    return (centres[labels] + rng.standard_normal((n, dim))).astype(np.float32), labels


def small_model(seed):
    return hdl.Model([Dense(8, 32, "relu", rng=seed, dtype=np.float32),
                      Dense(32, 4, "linear", rng=seed + 1, dtype=np.float32)])


def train_for(model, data, epochs, **kw):
    return fit(model, data, epochs=epochs, batch_size=20, lr=0.05, seed=7, progress=False, **kw)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="save_load", help="folder for the files written")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    x, labels = clusters(800)
    train, x_test = (x[:600], labels[:600]), x[600:]

    # 1. save, load into a fresh object, predict the same
    model = small_model(seed=0)
    train_for(model, train, epochs=3)
    model.save(out / "model.npz", extra={"classes": ["north", "east", "south", "west"]})
    with np.load(out / "model.npz", allow_pickle=False) as f:  # plain arrays and a JSON string
        print(f"model.npz holds {f.files}")
    loaded = hdl.Model.load(out / "model.npz")  # built from the JSON description, the arrays copied in
    same = np.array_equal(loaded.predict_proba(x_test), model.predict_proba(x_test))
    print(f"loaded: {'identical' if same else 'DIFFERENT'} predictions on {len(x_test)} points; "
          f"meta classes {loaded.meta['classes']}")

    # 2. a run of 4 epochs stopped after 2, then resumed from its checkpoint in a fresh object
    straight = small_model(seed=1)
    train_for(straight, train, epochs=4)
    stopped = small_model(seed=1)
    train_for(stopped, train, epochs=2, callbacks=[Checkpoint(out / "run.npz")])  # saved after every epoch
    resumed = small_model(seed=99)  # its own weights are replaced by the checkpoint's (and the velocities)
    ran = []  # the epochs this call runs
    history = train_for(resumed, train, epochs=4, checkpoint=str(out / "run.npz"), resume=True,
                        on_epoch=lambda epoch, history: ran.append(epoch))
    same = all(np.array_equal(a, b) for a, b in zip(resumed.parameters(), straight.parameters()))
    print(f"resumed at epoch {ran[0]}: {'identical' if same else 'DIFFERENT'} parameters to a run that never "
          f"stopped (history of epochs {history.epochs})")

    # 3. damaged files: cut short, and one byte changed
    data = (out / "model.npz").read_bytes()
    middle = len(data) // 2
    damaged = {"truncated.npz": data[:middle], "flipped.npz": data[:middle] + bytes([data[middle] ^ 0xFF])
               + data[middle + 1:]}
    for name, content in damaged.items():
        (out / name).write_bytes(content)
        try:
            hdl.Model.load(out / name)
        except (ValueError, OSError, zipfile.BadZipFile) as e:
            print(f"{name}: refused ({type(e).__name__}: {e})")
        else:
            raise SystemExit(f"{name} was loaded although it is damaged")
    return same


if __name__ == "__main__":
    main()
