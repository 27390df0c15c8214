"""The training loop on small data it makes: learning, schedules, resume, guards."""
import numpy as np
import pytest

from hdl import schedules
from hdl.convnet import AvgPool2d, Conv2d, ConvNet, ReLU
from hdl.metrics import confusion_matrix, top_k_error
from hdl.train import TrainingDiverged, fit


def toy_data(n=240, seed=0):
    """Three classes told apart by which colour channel is brightest."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    x = rng.standard_normal((n, 8, 8, 3)).astype(np.float32) * 0.5
    x[np.arange(n), :, :, labels] += 1.0
    return x, labels


def toy_net(seed=0):
    rng = np.random.default_rng(seed)
    return ConvNet([Conv2d(3, 8, 3, 1, 1, init="he", rng=rng), ReLU(), AvgPool2d(2, 2),
                    Conv2d(8, 3, 4, init="he", rng=rng)])


def test_loss_goes_down_and_the_net_learns():
    x, y = toy_data()
    net = toy_net()
    h = fit(net, (x[:200], y[:200]), (x[200:], y[200:]), epochs=6, batch_size=20, lr=0.05, progress=False)
    assert h.train["objective"][-1] < 0.5 * h.train["objective"][0]
    assert h.val["top1"][-1] < 0.2
    assert len(h.val["top5"]) == 6 and h.val["top5"][-1] == 0.0  # 3 classes: top-5 always hits
    assert h.images_per_second[-1] > 0


def test_resume_gives_the_same_weights_as_one_run(tmp_path):
    x, y = toy_data()
    kw = dict(epochs=4, batch_size=16, lr=[0.05, 0.05, 0.01, 0.01], flips=True, seed=3, progress=False)
    whole = toy_net()
    fit(whole, (x, y), (x[:40], y[:40]), **kw)
    ckpt = str(tmp_path / "ck.npz")
    part = toy_net()
    fit(part, (x, y), (x[:40], y[:40]), **{**kw, "epochs": 2}, checkpoint=ckpt)
    resumed = toy_net(seed=99)  # different start: everything must come from the checkpoint
    h = fit(resumed, (x, y), (x[:40], y[:40]), **kw, checkpoint=ckpt, resume=True)
    assert h.epochs == [1, 2, 3, 4]
    for a, b in zip(whole.parameters(), resumed.parameters()):
        np.testing.assert_array_equal(a, b)


def test_divergence_stops_with_a_clear_message():
    x, y = toy_data()
    net = toy_net()
    x = x * 1e4
    with pytest.raises(TrainingDiverged, match=r"epoch 1, batch \d+ of"):
        fit(net, (x, y), epochs=2, batch_size=20, lr=1e3, momentum=0.0, progress=False)


def test_early_stopping_restores_the_best_weights():
    x, y = toy_data()
    net = toy_net()
    seen = []
    h = fit(net, (x[:200], y[:200]), (x[200:], y[200:]), epochs=30, batch_size=20, lr=0.5, patience=2,
            progress=False, on_epoch=lambda e, hist: seen.append([p.copy() for p in net.parameters()]))
    assert len(h.epochs) < 30 or h.best_epoch == 30
    for a, b in zip(net.parameters(), seen[h.best_epoch - 1]):
        np.testing.assert_array_equal(a, b)


def test_sampling_with_replacement_and_bad_settings():
    x, y = toy_data(60)
    fit(toy_net(), (x, y), epochs=1, batch_size=7, sampling="replacement", progress=False)
    with pytest.raises(ValueError, match="sampling"):
        fit(toy_net(), (x, y), epochs=1, sampling="random", progress=False)
    with pytest.raises(ValueError, match="labels"):
        fit(toy_net(), (x, y[:-1]), epochs=1, progress=False)
    with pytest.raises(TypeError, match="float64"):
        fit(toy_net(), (x.astype(np.float64), y), epochs=1, progress=False)
    with pytest.raises(ValueError, match="momentum"):
        fit(toy_net(), (x, y), epochs=1, momentum=1.5, progress=False)
    with pytest.raises(ValueError, match="positive"):
        fit(toy_net(), (x, y), epochs=0, progress=False)


def test_schedules():
    paper = schedules.PerEpoch.paper()
    assert [paper(e) for e in (1, 30, 31, 40, 41, 45, 50)] == [0.05, 0.05, 0.005, 0.005, 0.0005, 0.0005, 0.0005]
    step = schedules.Step(0.1, [10, 20])
    assert [step(e) for e in (1, 10, 11, 21)] == pytest.approx([0.1, 0.1, 0.01, 0.001])
    decay = schedules.Decay(0.1, tau=5, power=1.0)
    assert decay(1) == 0.1 and decay(6) == pytest.approx(0.05)
    with pytest.raises(ValueError):
        schedules.Decay(0.1, power=0.4)  # sum eta^2 would diverge
    with pytest.raises(ValueError):
        schedules.PerEpoch([0.1, -1])


def test_metrics():
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5]], np.float32)
    labels = np.array([1, 1, 0])
    assert top_k_error(scores, labels, 1) == pytest.approx(2 / 3)
    assert top_k_error(scores, labels, 2) == pytest.approx(1 / 3)
    M = confusion_matrix(scores.argmax(1), labels, 3)
    assert M[1, 1] == 1 and M[0, 1] == 1 and M[2, 0] == 1 and M.sum() == 3


def hdl_history():
    from hdl.history import History
    return History()


def test_callbacks_log_checkpoint_every_n_and_stop_early(tmp_path):
    import csv
    import json

    from hdl.callbacks import Checkpoint, CSVLogger, EarlyStopping, JSONLinesLogger
    from hdl.model import Model

    x, y = toy_data()
    net = toy_net()
    h = fit(net, (x, y), epochs=3, batch_size=20, lr=0.05, progress=False,
            callbacks=[CSVLogger(tmp_path / "log.csv"), JSONLinesLogger(tmp_path / "log.jsonl"),
                       Checkpoint(tmp_path / "every2.npz", every=2)])
    with open(tmp_path / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == h.epochs and float(rows[0]["train_objective"]) == h.train["objective"][0]
    lines = [json.loads(line) for line in open(tmp_path / "log.jsonl")]
    assert [r["epoch"] for r in lines] == h.epochs and lines[0]["val_top1"] == ""
    saved = Model.load(tmp_path / "every2.npz")
    assert saved.meta["history"]["epochs"] == h.epochs  # every 2 epochs, and after the last
    with pytest.raises(TypeError, match="Callback"):
        fit(net, (x, y), epochs=1, progress=False, callbacks=[print])
    # early stopping on the training objective: worse after epoch 2, so epoch 3 stops and epoch 2's weights return
    stop, h2 = EarlyStopping(patience=1, monitor="train/objective"), hdl_history()
    for epoch, objective in enumerate([1.0, 0.5, 0.6], start=1):
        net.parameters()[0][...] = epoch
        h2.epochs.append(epoch)
        h2.train["objective"].append(objective)
        stopped = stop.on_epoch_end(epoch, net, h2)
    assert stopped and stop.best_epoch == 2
    stop.on_train_end(net, h2)
    assert np.all(net.parameters()[0] == 2)


def test_fit_trains_a_dense_model_on_rows_and_history_is_one_class():
    import hdl
    from hdl.layers import Dense, ReLU
    from hdl.model import Model

    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 5)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    model = Model([Dense(5, 16, "linear", rng=1, dtype=np.float32), ReLU(), Dense(16, 2, "linear", rng=2,
                                                                                    dtype=np.float32)])
    h = fit(model, (x, y), (x[:60], y[:60]), epochs=8, batch_size=20, lr=0.1, progress=False)
    assert h.val["top1"][-1] < 0.1 and isinstance(h, hdl.History)
    net = hdl.Network([2, 3, 2], seed=0)
    X, Y = hdl.data.ten_points()
    assert type(hdl.stochastic_gradient(net, X, Y, eta=0.1, iterations=10)) is type(h)
