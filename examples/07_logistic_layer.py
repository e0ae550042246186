"""Acceptance case 7: a logistic layer with a matrix product.

z = x @ w + b; loss = binary_cross_entropy_with_logits(z, y), and every row of
dL/dw equals dL/db = sigmoid(z) / 3.

    python examples/07_logistic_layer.py
"""
import numpy as np

import srcgrad


def binary_cross_entropy_with_logits(z, y):
    return np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))


def logistic_layer(w, b, x, y):
    z = x @ w + b
    loss = binary_cross_entropy_with_logits(z, y)
    return loss


rng = np.random.default_rng(0)
x = np.ones(5)
y = np.zeros(3)
w = rng.normal(size=(5, 3))
b = rng.normal(size=3)

dlayer = srcgrad.value_and_grad(logistic_layer, wrt=("w", "b"))
loss, (dw, db) = dlayer(w, b, x, y)
z = x @ w + b
print(f"loss = {loss:.4f}")
print(f"dL/dw =\n{np.array2string(dw, precision=4)}")
print(f"dL/db          = {np.array2string(db, precision=4)}")
print(f"sigmoid(z) / 3 = {np.array2string(1 / (1 + np.exp(-z)) / 3, precision=4)}")

# The tutorial's random w, b printed dL/db = [0.0785, 0.0115, 0.0034]; pick b to match
printed = np.array([0.0785, 0.0115, 0.0034])
b_tutorial = np.log(3 * printed / (1 - 3 * printed)) - x @ w
_, (dw, db) = dlayer(w, b_tutorial, x, y)
print(f"with the tutorial's z: dL/db = {np.array2string(db, precision=4)}")

print("\nThe generated gradient:\n")
print(srcgrad.source(dlayer))
