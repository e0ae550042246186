"""Acceptance case 3: y = mean(x**2) with x = [1, 2, 3].

    python examples/03_vector_mean.py
"""
import numpy as np

import srcgrad


def mean_of_squares(x):
    y = np.mean(x ** 2)
    return y


x = np.array([1.0, 2.0, 3.0])
y, dy = srcgrad.value_and_grad(mean_of_squares)(x)
print(f"y = {y:.4f}")
print(f"dy/dx = {np.array2string(dy, precision=4)}")

print("\nThe generated gradient:\n")
print(srcgrad.source(srcgrad.value_and_grad(mean_of_squares)))
