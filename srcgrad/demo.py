"""The demo: the tutorial's logistic neuron with binary cross-entropy."""
import math

import srcgrad


def sigmoid(z):
    return 1 / (1 + math.exp(-z))


def bce_loss(w, b, x, y):
    z = w * x + b
    y_pred = sigmoid(z)
    p = min(max(y_pred, 1e-8), 1 - 1e-8)
    loss = -(y * math.log(p) + (1 - y) * math.log(1 - p))
    return loss


def main():
    loss_and_grad = srcgrad.value_and_grad(bce_loss, wrt=("w", "b"))
    loss, (dw, db) = loss_and_grad(1.0, 0.0, 6.7, 0.0)
    print("srcgrad differentiates bce_loss(w, b, x, y) with respect to w and b.")
    print("The generated gradient:\n")
    print(srcgrad.source(loss_and_grad))
    print("At w = 1.0, b = 0.0, x = 6.7, y = 0.0:")
    print(f"  loss  = {loss:.4f}")
    print(f"  dL/dw = {dw:.4f}")
    print(f"  dL/db = {db:.4f}")
