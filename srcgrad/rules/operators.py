"""Python's arithmetic operators and builtins (they apply to floats and arrays alike)."""
import builtins
import operator

import numpy as np

from ..runtime import matmul_da, matmul_db, step, sum_adjoint, times_power, xlogy
from .math import POWER_AT_ZERO
from .registry import nondifferentiable, partial, vjp

# ---- arithmetic operators: a + b, a - b, a * b, a / b, a ** b, -a, +a, a % b
partial(operator.add, lambda a, b: (1, 1))
partial(operator.sub, lambda a, b: (1, -1))
partial(operator.mul, lambda a, b: (b, a))
partial(operator.truediv, lambda a, b, y: (1 / b, -y / b), domain=("real", "nonzero"))
partial(operator.pow, lambda a, b, y: (times_power(b, a, b - 1), xlogy(y, a)),
        domain=("positive", "real"), boundary=POWER_AT_ZERO)
partial(operator.mod, lambda a, b: (1, -np.floor_divide(a, b)),
        domain=("positive", "positive"), notes="valid away from the jumps at multiples of b")
partial(operator.neg, lambda a: -1)
partial(operator.pos, lambda a: 1)


@vjp(operator.matmul, domain=("matrix", "matrix"))
def _(g, y, a, b):
    return matmul_da(g, a, b), matmul_db(g, a, b)


# ---- builtins
partial(builtins.abs, lambda x: np.sign(x), domain=("nonzero",))
partial(builtins.max, lambda a, b: (step(a - b), step(b - a)))    # ties share the gradient
partial(builtins.min, lambda a, b: (step(b - a), step(a - b)))
partial(builtins.float, lambda x: 1)


@vjp(builtins.sum, cases="builtin_sum")
def _(g, y, iterable, start=0):
    return sum_adjoint(g, iterable), g

nondifferentiable(operator.floordiv, operator.lt, operator.le, operator.gt, operator.ge,
                  operator.eq, operator.ne, operator.not_, operator.truth,
                  builtins.len, builtins.int, builtins.bool, builtins.round, builtins.range,
                  builtins.isinstance, builtins.type, builtins.print)


def identity(a):
    """`b = a`: the value passes through unchanged (the compiler's plain copies)."""
    return a


partial(identity, lambda a: 1, name="b = a")


def make_list(arrays):
    """`[a, b, c]` or `(a, b, c)` of differentiated values (the compiler's own)."""
    return list(arrays)


@vjp(make_list, name="[a, b, ...]", cases="make_list")
def _(g, y, arrays):
    return g
