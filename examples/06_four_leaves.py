"""Acceptance case 6: a small graph with four leaves (1-element arrays).

    python examples/06_four_leaves.py
"""
import numpy as np

import srcgrad


def graph(a, b, c, d):
    e = a + b
    f = c * d
    g = e * f
    return g


a, b, c, d = np.array([2.0]), np.array([-4.0]), np.array([-2.0]), np.array([2.0])
dgraph = srcgrad.value_and_grad(graph, wrt=("a", "b", "c", "d"))
g, (da, db, dc, dd) = dgraph(a, b, c, d)
print(f"g = {g}")
print(f"dg/da = {da}, dg/db = {db}, dg/dc = {dc}, dg/dd = {dd}")

print("\nThe generated gradient:\n")
print(srcgrad.source(dgraph))
