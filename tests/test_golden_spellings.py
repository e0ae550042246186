"""Golden tests of the generated source for the spellings off the benchmark's path: an
RNN over a list with a module constant, a `while` with `break`, an early `return` in a
`for`, a tuple state, and an MLP whose parameters are a dict.

Each file records what srcgrad writes today; a change may only make one simpler. After a
deliberate change to the compiler, regenerate with
`SRCGRAD_UPDATE_GOLDEN=1 python -m pytest tests/test_golden_spellings.py` and read the
diff of tests/golden/ in review.
"""
import math
import os
from pathlib import Path

import numpy as np
import pytest

import srcgrad
from srcgrad.testing import check_grads

GOLDEN = Path(__file__).parent / "golden"
H0 = 0.0
TOL = 1e-3


def rnn_over_a_list(a, b, xs):
    h = H0
    for xt in xs:
        h = math.tanh(a * h + b * xt)
    return h


def newton_sqrt(c):
    x = c
    while True:
        step = (x * x - c) / (2.0 * x)
        x = x - step
        if abs(step) < TOL:
            break
    return x


def first_crossing(x, level):
    total = 0.0
    for t in range(len(x)):
        total = total + x[t] * x[t]
        if total > level:
            return total * t
    return total


def oscillator(k, state):
    x, v = state
    for _ in range(5):
        x, v = x + 0.1 * v, v - 0.1 * k * x
    return x * x + v * v


def mlp(params, X, y):
    h = np.tanh(X @ params["W1"] + params["b1"])
    out = h @ params["W2"] + params["b2"]
    return np.mean((out - y) ** 2)


_rng = np.random.default_rng(0)
PARAMS = {"W1": _rng.normal(size=(3, 4)), "b1": _rng.normal(size=4),
          "W2": _rng.normal(size=(4, 1)), "b2": _rng.normal(size=1)}
X, Y = _rng.normal(size=(5, 3)), _rng.normal(size=(5, 1))

CASES = {
    "spelling_rnn_list_constant": (rnn_over_a_list, ("a", "b"), (0.5, -0.3, [0.1, 0.7, -0.4])),
    "spelling_while_break": (newton_sqrt, 0, (2.0,)),
    "spelling_return_in_for": (first_crossing, 0, (np.array([0.3, 0.9, 0.4, 1.2]), 1.0)),
    "spelling_tuple_state": (oscillator, 0, (2.0, (1.0, 0.0))),
    "spelling_mlp_dict": (mlp, "params", (PARAMS, X, Y)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_generated_source_matches_golden(name):
    f, wrt, args = CASES[name]
    text = srcgrad.source(srcgrad.grad(f, wrt=wrt), *args)
    path = GOLDEN / f"{name}.py.txt"
    if os.environ.get("SRCGRAD_UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.exists(), f"no golden file {path}: run with SRCGRAD_UPDATE_GOLDEN=1"
    assert text == path.read_text()


@pytest.mark.parametrize("name", sorted(set(CASES) - {"spelling_mlp_dict"}))
def test_the_golden_gradients_are_right(name):
    f, wrt, args = CASES[name]
    check_grads(f, *args, wrt=wrt)


def test_the_mlp_gradient_is_right():
    grads = srcgrad.grad(mlp, wrt="params")(PARAMS, X, Y)
    eps = 1e-6
    for key, value in PARAMS.items():
        numeric = np.zeros_like(value)
        for i in np.ndindex(value.shape):
            plus = {k: v.copy() for k, v in PARAMS.items()}
            minus = {k: v.copy() for k, v in PARAMS.items()}
            plus[key][i] += eps
            minus[key][i] -= eps
            numeric[i] = (mlp(plus, X, Y) - mlp(minus, X, Y)) / (2 * eps)
        np.testing.assert_allclose(grads[key], numeric, rtol=1e-5, atol=1e-8)
