"""Acceptance case 1: derivatives of y = x**2 and z = sin(x**2) at a few points.

    python examples/01_scalar_derivatives.py
"""
import math

import srcgrad


def square(x):
    y = x ** 2
    return y


def sin_square(x):
    z = math.sin(x ** 2)
    return z


dsquare = srcgrad.grad(square)
for x in (5.0, 3.0, 2.0):
    print(f"y = x**2 at x = {x}: dy/dx = {dsquare(x):.4f}")

dsin_square = srcgrad.value_and_grad(sin_square)
for x in (5.0, 3.0):
    z, dz = dsin_square(x)
    print(f"z = sin(x**2) at x = {x}: z = {z:.4f}, dz/dx = {dz:.4f} "
          f"(2x*cos(x**2) = {2 * x * math.cos(x ** 2):.4f})")

print("\nThe generated gradient of sin_square:\n")
print(srcgrad.source(dsin_square))
