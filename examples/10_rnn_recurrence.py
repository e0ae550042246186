"""A scalar recurrence, h = tanh(a * h + b * x[t]): its generated gradient, and what it saves.

Run: python examples/10_rnn_recurrence.py
"""
import math

import numpy as np

import srcgrad


def rnn(a, b, x):
    h = 0.0
    for t in range(len(x)):
        h = math.tanh(a * h + b * x[t])
    return h


def main():
    x = np.array([0.5, -0.3, 0.8, 0.1])
    drnn = srcgrad.grad(rnn, wrt=("a", "b"))
    da, db = drnn(0.7, 0.4, x)
    print(srcgrad.source(drnn))
    print(f"h = {rnn(0.7, 0.4, x):.6f}, dh/da = {da:.6f}, dh/db = {db:.6f}")
    srcgrad.testing.check_grads(rnn, 0.7, 0.4, x, wrt=("a", "b"))
    print("matches central finite differences")


if __name__ == "__main__":
    main()
