"""Acceptance case 9: stopping gradients with no_grad and stop_gradient.

x = 2.0; y = x**2 as a constant; z = x * y gives dz/dx = 4.0 (not 12.0).

    python examples/09_stop_gradient.py
"""
import srcgrad


def with_no_grad(x):
    with srcgrad.no_grad():
        y = x ** 2
    z = x * y
    return z


def with_stop_gradient(x):
    y = srcgrad.stop_gradient(x ** 2)
    z = x * y
    return z


def without(x):
    y = x ** 2
    z = x * y
    return z


for fn in (with_no_grad, with_stop_gradient, without):
    z, dz = srcgrad.value_and_grad(fn)(2.0)
    print(f"{fn.__name__:18}: z = {z:.4f}, dz/dx = {dz:.4f}")

print("\nThe generated gradient of with_no_grad (y is a constant, so there is no d_y):\n")
print(srcgrad.source(srcgrad.value_and_grad(with_no_grad)))
