"""Module-level helper functions called by the functions in test_corpus.py.

They live in their own module on purpose: srcgrad inlines them, so it must
resolve their globals (a different numpy alias, a module constant) in this
module, not in the caller's.
"""
import math

import numpy as onp  # a different alias than the caller's `np`

SCALE = 3.0
OFFSET = onp.array([0.5, -0.25, 1.0])


def scaled(z):
    return SCALE * z


def softplus(z):
    return onp.log1p(onp.exp(z))


def affine(z, w, b=0.5):
    """A helper with a default argument."""
    return w * z + b


def shifted(z):
    """Uses a module-level array constant."""
    return z + OFFSET


def sigmoid(z):
    return 1 / (1 + math.exp(-z))


def sigmoid_of_scaled(z):
    """A helper that calls other helpers (nested inlining)."""
    s = scaled(z)
    return sigmoid(s * 0.1)


def multi_statement(z, k=2.0):
    """Several statements, reassignment and an augmented assignment inside a helper."""
    t = z * k
    t = onp.tanh(t)
    u = t * t
    u += z
    return u
