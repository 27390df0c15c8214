"""The Section 8 commands (hdl adversarial, corrector, gan, random-labels) end to end on small synthetic data
sets in the official formats: each writes its summary and figures."""
import json

import numpy as np
import pytest

from test_cli import hdl_main, write_idx_folder


@pytest.fixture(scope="module")
def cifar_like(tmp_path_factory):
    """A CIFAR-10 folder of 6 x 40 synthetic records (class = the brightest third of the image) and a
    model file of an untrained cifar_net with its preprocessing (no whitening: quick)."""
    from hdl.convnet import cifar_net
    from hdl.data import cifar10
    from hdl.data.preprocess import matconvnet_cifar
    from hdl.experiments import modelfile

    folder = tmp_path_factory.mktemp("cifar") / "cifar-10-batches-bin"
    folder.mkdir()
    rng = np.random.default_rng(0)
    train = []
    for i, name in enumerate(cifar10.TRAIN_FILES + ["test_batch.bin"]):
        y = rng.integers(0, 10, 40).astype(np.uint8)
        x = rng.integers(0, 256, (40, 3072)).astype(np.uint8)
        (folder / name).write_bytes(np.concatenate([y[:, None], x], axis=1).tobytes())
        train.append(x.reshape(40, 3, 32, 32).transpose(0, 2, 3, 1))
    stats = matconvnet_cifar(np.concatenate(train[:5]), train[5], whiten=False, return_stats=True)[2]
    path = folder.parent / "model.npz"
    modelfile.save(cifar_net(seed=0), path, dataset="cifar10", classes=cifar10.CLASSES, input_shape=(32, 32, 3),
                   stats=stats, summary={})
    return folder, path


def test_corrector_command(cifar_like, tmp_path):
    folder, model = cifar_like
    rc, stdout, stderr = hdl_main("corrector", "--model", model, "--data", folder, "--no-verify", "--errors", 3,
                                  "--reference", 200, "--out", tmp_path, "--json")
    assert rc == 0, stderr
    s = json.loads(stdout)
    assert s["errors_corrected"] == 3 and s["features"] == 64 and s["test_images"] == 40
    assert json.loads((tmp_path / "summary.json").read_text())["fixed"] == s["fixed"]
    assert (tmp_path / "corrector.png").stat().st_size > 5000


def test_adversarial_command(cifar_like, tmp_path):
    folder, model = cifar_like
    rc, stdout, stderr = hdl_main("adversarial", "--model", model, "--data", folder, "--no-verify", "--fgsm-images",
                                  10, "--pixel-images", 2, "--maxiter", 1, "--popsize", 2, "--out", tmp_path)
    assert rc == 0, stderr
    assert "FGSM accuracy on 10 test images" in stdout and "one-pixel attack (targeted)" in stdout
    s = json.loads((tmp_path / "summary.json").read_text())
    assert len(s["fgsm"]["untargeted_accuracy"]) == len(s["epsilons"]) and s["one_pixel"]["untargeted"]["attempts"] == 2
    assert (tmp_path / "fgsm_accuracy.png").exists() and (tmp_path / "one_pixel_gallery.png").exists()


def test_gan_command(tmp_path):
    data = write_idx_folder(tmp_path / "digits")
    rc, stdout, stderr = hdl_main("gan", "--dataset", "mnist", "--data", data, "--limit", 128, "--epochs", 2,
                                  "--out", tmp_path / "gan", "--json")
    assert rc == 0, stderr
    s = json.loads(stdout)
    assert len(s["losses"]["generator"]) == 2 and s["training_images"] == 128
    assert (tmp_path / "gan" / "samples_epoch002.png").exists() and (tmp_path / "gan" / "gan_losses.png").exists()


@pytest.mark.parametrize("args,message", [
    (["random-labels", "--fraction", "1.5"], "argument --fraction: must be in (0, 1], got 1.5"),
    (["gan", "--dataset", "cifar10"], "argument --dataset: invalid choice"),
    (["corrector", "--errors", "0"], "argument --errors: must be a positive integer"),
])
def test_bad_arguments(args, message):
    rc, _, stderr = hdl_main(*args)
    assert rc == 2 and message in stderr, stderr
