"""Back propagation (Lemma 5.1) against central finite differences and against
independent automatic differentiation (PyTorch, when installed), in float64."""
import numpy as np
import pytest
from conftest import away_from_kinks

import hdl

SMOOTH = ["sigmoid", "linear", "relu", "leaky_relu"]


def random_problem(seed, acts):
    rng = np.random.default_rng(seed)
    sizes = [int(n) for n in rng.integers(1, 6, len(acts) + 1)]
    net = hdl.Network(sizes, activation=acts, seed=seed)
    m = int(rng.integers(1, 8))
    X = away_from_kinks(rng, (sizes[0], m), np.float64)
    Y = rng.random((sizes[-1], m))
    return net, X, Y


def numerical_gradient(net, X, Y, lam, h=1e-6):
    """Central differences (Cost(p + h e_i) - Cost(p - h e_i)) / 2h for every parameter."""
    p = net.get_params()
    grad = np.empty_like(p)
    for i in range(p.size):
        costs = []
        for step in (h, -h):
            q = p.copy()
            q[i] += step
            net.set_params(q)
            costs.append(net.cost(X, Y, lam))
        grad[i] = (costs[0] - costs[1]) / (2 * h)
    net.set_params(p)
    return grad


def flat(dW, db):
    return np.concatenate([np.concatenate([w.ravel(), b]) for w, b in zip(dW, db)])


@pytest.mark.parametrize("seed", range(12))
def test_gradients_match_finite_differences(seed):
    rng = np.random.default_rng(seed)
    depth = int(rng.integers(1, 5))
    acts = [str(a) for a in rng.choice(SMOOTH, depth)]
    net, X, Y = random_problem(seed, acts)
    lam = 0.1 if seed % 2 else 0.0
    got = flat(*net.gradients(X, Y, lam))
    want = numerical_gradient(net, X, Y, lam)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


def test_sum_reduction_is_N_times_mean():
    net, X, Y = random_problem(3, ["sigmoid"] * 3)
    mean = flat(*net.gradients(X, Y))
    total = flat(*net.gradients(X, Y, reduction="sum"))
    np.testing.assert_allclose(total, X.shape[1] * mean, rtol=1e-13)


@pytest.mark.parametrize("seed", range(6))
def test_gradients_match_torch_autograd(seed):
    torch = pytest.importorskip("torch", reason="PyTorch is an optional cross-check")
    acts = ["sigmoid", "relu", "leaky_relu", "linear", "sigmoid"][: 2 + seed % 4]
    net, X, Y = random_problem(100 + seed, acts)
    lam = 0.05
    fns = {"sigmoid": torch.sigmoid, "relu": torch.relu, "linear": lambda z: z,
           "leaky_relu": lambda z: torch.nn.functional.leaky_relu(z, 0.01)}
    Ws = [torch.tensor(W, requires_grad=True) for W in net.W]
    bs = [torch.tensor(b, requires_grad=True) for b in net.b]
    a = torch.tensor(X)
    for W, b, act in zip(Ws, bs, acts):
        a = fns[act](W @ a + b[:, None])
    N = X.shape[1]
    cost = 0.5 * ((torch.tensor(Y) - a) ** 2).sum() / N + lam / N * sum((W ** 2).sum() for W in Ws)
    cost.backward()
    assert net.cost(X, Y, lam) == pytest.approx(cost.item(), rel=1e-13)
    dW, db = net.gradients(X, Y, lam)
    for ours, theirs in zip(list(dW) + list(db), [W.grad for W in Ws] + [b.grad for b in bs]):
        ref = theirs.numpy()
        err = np.linalg.norm(ours - ref) / max(np.linalg.norm(ref), 1e-300)
        assert err < 1e-10
