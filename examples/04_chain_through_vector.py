"""Acceptance case 4: y = x + 2; z = y * y * 2; out = mean(z).

The gradient is 4 * (x + 2) / n.

    python examples/04_chain_through_vector.py
"""
import numpy as np

import srcgrad


def chain(x):
    y = x + 2
    z = y * y * 2
    out = np.mean(z)
    return out


dchain = srcgrad.grad(chain)
for x in (np.array([1.1131, -0.1259, 1.2902]), np.array([-1.2882, -0.1838])):
    g = dchain(x)
    print(f"x = {x}: d out/dx = {np.array2string(g, precision=4)}, "
          f"4 * (x + 2) / n = {np.array2string(4 * (x + 2) / x.size, precision=4)}")

print("\nThe generated gradient:\n")
print(srcgrad.source(dchain))
