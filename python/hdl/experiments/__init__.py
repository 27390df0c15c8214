"""The paper's experiments, callable from Python and from the `hdl` command."""
from hdl.experiments.ten_points import run_lsq, run_netbp


def run_cifar10(*args, **kwargs):
    from hdl.experiments.cifar import run_cifar10 as run
    return run(*args, **kwargs)


def run_cifar100(*args, **kwargs):
    from hdl.experiments.cifar import run_cifar100 as run
    return run(*args, **kwargs)


def run_mnist(*args, **kwargs):
    from hdl.experiments.mnist import run_mnist as run
    return run(*args, **kwargs)


def run_autoencoder(*args, **kwargs):
    from hdl.experiments.autoencoder import run_autoencoder as run
    return run(*args, **kwargs)


def run_adversarial(*args, **kwargs):
    from hdl.experiments.adversarial import run_adversarial as run
    return run(*args, **kwargs)


def run_random_labels(*args, **kwargs):
    from hdl.experiments.random_labels import run_random_labels as run
    return run(*args, **kwargs)


def run_gan(*args, **kwargs):
    from hdl.experiments.gan import run_gan as run
    return run(*args, **kwargs)


def run_corrector(*args, **kwargs):
    from hdl.experiments.corrector import run_corrector as run
    return run(*args, **kwargs)


__all__ = ["run_adversarial", "run_autoencoder", "run_cifar10", "run_cifar100", "run_corrector", "run_gan", "run_lsq",
           "run_mnist", "run_netbp", "run_random_labels"]
