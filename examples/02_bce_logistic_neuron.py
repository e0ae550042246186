"""Acceptance case 2: binary cross-entropy of one logistic neuron, three ways.

x = 6.7 (feature), y = 0.0 (label), w = 1.0, b = 0.0 give
loss = 6.7012, dL/dw = 6.6918, dL/db = 0.9988.

    python examples/02_bce_logistic_neuron.py
"""
import math

import numpy as np

import srcgrad


def bce_math(w, b, x, y):
    z = w * x + b
    y_pred = 1 / (1 + math.exp(-z))
    p = min(max(y_pred, 1e-8), 1 - 1e-8)
    loss = -(y * math.log(p) + (1 - y) * math.log(1 - p))
    return loss


def bce_numpy(w, b, x, y):
    z = w * x + b
    y_pred = 1 / (1 + np.exp(-z))
    p = np.clip(y_pred, 1e-8, 1 - 1e-8)
    loss = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    return loss


def sigmoid(z):
    return 1 / (1 + math.exp(-z))


def bce_helper(w, b, x, y):
    z = w * x + b
    y_pred = sigmoid(z)
    p = min(max(y_pred, 1e-8), 1 - 1e-8)
    loss = -(y * math.log(p) + (1 - y) * math.log(1 - p))
    return loss


w, b, x, y = 1.0, 0.0, 6.7, 0.0

for loss_fn in (bce_math, bce_numpy, bce_helper):
    loss, (dw, db) = srcgrad.value_and_grad(loss_fn, wrt=("w", "b"))(w, b, x, y)
    print(f"{loss_fn.__name__:10}: loss = {loss:.4f}, dL/dw = {dw:.4f}, dL/db = {db:.4f}")

# The tutorial's hand derivation, for comparison
y_pred = sigmoid(w * x + b)
dloss_dy_pred = (y_pred - y) / (y_pred * (1 - y_pred))
dy_pred_dz = y_pred * (1 - y_pred)
dz_dw, dz_db = x, 1
print(f"{'by hand':10}: dL/dw = {dloss_dy_pred * dy_pred_dz * dz_dw:.4f}, "
      f"dL/db = {dloss_dy_pred * dy_pred_dz * dz_db:.4f}")

print("\nThe generated gradient of bce_helper (the sigmoid helper is inlined):\n")
print(srcgrad.source(srcgrad.value_and_grad(bce_helper, wrt=("w", "b"))))
