"""Golden tests of the generated source: any change to the compiler's output shows up here.

After a deliberate change, regenerate with `SRCGRAD_UPDATE_GOLDEN=1 python -m pytest
tests/test_golden.py` and read the diff of tests/golden/ in review.
"""
import math
import os
from pathlib import Path

import numpy as np
import pytest

import srcgrad
from srcgrad.demo import bce_loss

GOLDEN = Path(__file__).parent / "golden"


def mean_square(x):
    return np.mean(x ** 2)


def scaled_ratio(x, b):
    return np.sum(x / b)


def logistic_layer(x, w, b, y):
    z = x @ w + b
    return np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))


def partly_constant(x):
    with srcgrad.no_grad():
        y = x ** 2
    return x * y + srcgrad.stop_gradient(math.sin(x))


def chain(x):
    y = x + 2
    z = y * y * 2
    return z


rng = np.random.default_rng(0)
CASES = {
    "bce_loss": (srcgrad.grad(bce_loss, wrt=("w", "b")), (1.0, 0.0, 6.7, 0.0)),
    "mean_square": (srcgrad.grad(mean_square), (np.array([1.0, 2.0, 3.0]),)),
    "scaled_ratio": (srcgrad.grad(scaled_ratio, wrt=(0, 1)), (np.ones((4, 3)), np.arange(1.0, 4.0))),
    "logistic_layer": (srcgrad.grad(logistic_layer, wrt=("w", "b")),
                       (np.ones(5), rng.normal(size=(5, 3)), rng.normal(size=3), np.zeros(3))),
    "partly_constant": (srcgrad.grad(partly_constant), (2.0,)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_generated_source_matches_golden(name):
    df, args = CASES[name]
    text = srcgrad.source(df, *args)
    path = GOLDEN / f"{name}.py.txt"
    if os.environ.get("SRCGRAD_UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.exists(), f"no golden file {path}: run with SRCGRAD_UPDATE_GOLDEN=1"
    assert text == path.read_text()


def test_vjp_source_matches_golden():
    x = np.array([1.0, 2.0, 3.0])
    _, pullback = srcgrad.vjp(chain, x)
    text = srcgrad.source(pullback)
    path = GOLDEN / "chain_vjp.py.txt"
    if os.environ.get("SRCGRAD_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


def test_generated_code_has_no_copies_or_numbered_temporaries():
    for name, (df, args) in CASES.items():
        text = srcgrad.source(df, *args)
        for line in text.splitlines():
            stripped = line.strip()
            if "=" in stripped and not stripped.startswith("#"):
                left, _, right = stripped.partition(" = ")
                assert left != right, f"{name}: a plain copy `{stripped}`"
                assert not left.startswith("_"), f"{name}: a hidden temporary `{stripped}`"
