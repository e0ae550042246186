"""Acceptance case 5: a non-scalar output needs a seed (vector-Jacobian product).

    python examples/05_vjp_seed.py
"""
import numpy as np

import srcgrad


def chain(x):
    y = x + 2
    z = y * y * 2
    return z


x = np.array([1.1131, -0.1259, 1.2902])

try:
    srcgrad.grad(chain)(x)
except srcgrad.SrcgradError as error:
    print(f"srcgrad.grad(chain)(x) raised {type(error).__name__}:\n  {error}\n")

z, pullback = srcgrad.vjp(chain, x)
v = np.array([0.1, 1.0, 0.001])
g = pullback(v)
print(f"z = {np.array2string(z, precision=4)}")
print(f"pullback(v) with v = {v}: {np.array2string(g, precision=4)}")
print(f"v * 4 * (x + 2)              = {np.array2string(v * 4 * (x + 2), precision=4)}")

print("\nThe generated vector-Jacobian product:\n")
print(srcgrad.source(pullback))
