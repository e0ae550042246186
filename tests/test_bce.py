"""Acceptance case 2: the logistic neuron's binary cross-entropy, three ways."""
import math

import numpy as np
import pytest

import srcgrad
from srcgrad.testing import check_grads


def sigmoid(z):
    return 1 / (1 + math.exp(-z))


def bce_math(w, b, x, y):
    z = w * x + b
    y_pred = 1 / (1 + math.exp(-z))
    p = min(max(y_pred, 1e-8), 1 - 1e-8)
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def bce_numpy(w, b, x, y):
    z = w * x + b
    y_pred = 1 / (1 + np.exp(-z))
    p = np.clip(y_pred, 1e-8, 1 - 1e-8)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def bce_helper(w, b, x, y):
    z = w * x + b
    y_pred = sigmoid(z)
    p = min(max(y_pred, 1e-8), 1 - 1e-8)
    loss = -(y * math.log(p) + (1 - y) * math.log(1 - p))
    return loss


@pytest.mark.parametrize("loss", [bce_math, bce_numpy, bce_helper])
def test_tutorial_numbers(loss):
    value, (dw, db) = srcgrad.value_and_grad(loss, wrt=("w", "b"))(1.0, 0.0, 6.7, 0.0)
    assert value == pytest.approx(6.7012, rel=1e-4)
    assert dw == pytest.approx(6.6918, rel=1e-4)
    assert db == pytest.approx(0.9988, rel=1e-4)
    assert type(dw) is float and type(db) is float


@pytest.mark.parametrize("loss", [bce_math, bce_numpy, bce_helper])
def test_matches_hand_derivation(loss):
    w, b, x, y = 0.3, -0.2, 1.7, 1.0
    y_pred = 1 / (1 + math.exp(-(w * x + b)))
    dloss_dy_pred = (y_pred - y) / (y_pred * (1 - y_pred))
    dy_pred_dz = y_pred * (1 - y_pred)
    dw, db = srcgrad.grad(loss, wrt=("w", "b"))(w, b, x, y)
    assert dw == pytest.approx(dloss_dy_pred * dy_pred_dz * x, rel=1e-12)
    assert db == pytest.approx(dloss_dy_pred * dy_pred_dz, rel=1e-12)


@pytest.mark.parametrize("loss", [bce_math, bce_numpy, bce_helper])
@pytest.mark.parametrize("point", [(1.0, 0.0, 6.7, 0.0), (-0.5, 0.3, 2.0, 1.0), (0.1, 0.1, -3.0, 0.0)])
def test_against_finite_differences(loss, point):
    check_grads(loss, *point, wrt=(0, 1, 2))
