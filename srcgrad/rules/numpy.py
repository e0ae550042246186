"""numpy: elementwise functions, reductions, linear algebra, shapes and indexing.

Elementwise rules state partial derivatives; the engines sum each adjoint back
to its argument's shape. The others state the vector-Jacobian product.
"""
import operator

import numpy as np

from ..runtime import (array_adjoint, at_max, at_min, dot_da, dot_db, extremum_mask, inside,
                       inverse_axes, linspace_fractions, matmul_da, matmul_db, prod_others,
                       reduced_size, reverse_cumsum, split_like, step, times_power, trace_adjoint,
                       unbroadcast, unindex, unreduce, unstack, xlogy, zeros_like)
from .math import POWER_AT_ZERO
from .registry import method, nondifferentiable, partial, vjp

# ---- elementwise, one argument: d/dx of f(x)
partial(np.exp,        lambda x, y: y)
partial(np.exp2,       lambda x, y: y * np.log(2))
partial(np.expm1,      lambda x, y: y + 1)
partial(np.log,        lambda x: 1 / x, domain=("positive",))
partial(np.log2,       lambda x: 1 / (x * np.log(2)), domain=("positive",))
partial(np.log10,      lambda x: 1 / (x * np.log(10)), domain=("positive",))
partial(np.log1p,      lambda x: 1 / (1 + x), domain=("positive",), boundary=((0.0,),))
partial(np.sqrt,       lambda x, y: 0.5 / y, domain=("positive",))
partial(np.cbrt,       lambda x, y: 1 / (3 * y * y), domain=("nonzero",))
partial(np.square,     lambda x: 2 * x)
partial(np.reciprocal, lambda x, y: -y * y, domain=("nonzero",))
partial(np.sin,        lambda x: np.cos(x))
partial(np.cos,        lambda x: -np.sin(x))
partial(np.tan,        lambda x, y: 1 + y * y, domain=("unit",), boundary=((-1.0,), (1.0,)))
partial(np.arcsin,     lambda x: 1 / np.sqrt(1 - x * x), domain=("unit",))
partial(np.arccos,     lambda x: -1 / np.sqrt(1 - x * x), domain=("unit",))
partial(np.arctan,     lambda x: 1 / (1 + x * x))
partial(np.sinh,       lambda x: np.cosh(x))
partial(np.cosh,       lambda x: np.sinh(x))
partial(np.tanh,       lambda x, y: 1 - y * y)
partial(np.arcsinh,    lambda x: 1 / np.sqrt(x * x + 1))
partial(np.arccosh,    lambda x: 1 / np.sqrt(x * x - 1), domain=("above1",))
partial(np.arctanh,    lambda x: 1 / (1 - x * x), domain=("unit",))
partial(np.abs,        lambda x: np.sign(x), domain=("nonzero",))
partial(np.negative,   lambda x: -1)
partial(np.positive,   lambda x: 1)
partial(np.deg2rad,    lambda x: np.pi / 180)
partial(np.rad2deg,    lambda x: 180 / np.pi)
partial(np.asarray,    lambda a: 1)
partial(np.float64,    lambda x: 1)

# ---- elementwise, several arguments: one partial per argument
partial(np.add,        lambda a, b: (1, 1))
partial(np.subtract,   lambda a, b: (1, -1))
partial(np.multiply,   lambda a, b: (b, a))
partial(np.divide,     lambda a, b, y: (1 / b, -y / b), domain=("real", "nonzero"))
partial(np.power,      lambda a, b, y: (times_power(b, a, b - 1), xlogy(y, a)),
        domain=("positive", "real"), boundary=POWER_AT_ZERO)
partial(np.maximum,    lambda a, b: (step(a - b), step(b - a)))     # ties share the gradient
partial(np.minimum,    lambda a, b: (step(b - a), step(a - b)))
partial(np.fmax,       lambda a, b: (step(a - b), step(b - a)))
partial(np.fmin,       lambda a, b: (step(b - a), step(a - b)))
partial(np.logaddexp,  lambda a, b, y: (np.exp(a - y), np.exp(b - y)))
partial(np.logaddexp2, lambda a, b, y: (2 ** (a - y), 2 ** (b - y)))
partial(np.arctan2,    lambda a, b: (b / (a * a + b * b), -a / (a * a + b * b)),
        domain=("positive", "positive"), boundary=((0.0, 1.5), (1.5, 0.0)))
partial(np.hypot,      lambda a, b, y: (a / y, b / y), domain=("positive", "positive"),
        boundary=((0.0, 1.5), (1.5, 0.0)))
partial(np.clip,       lambda a, a_min, a_max: (inside(a, a_min, a_max),
                                                    None if a_min is None else at_min(a, a_min, a_max),
                                                    None if a_max is None else at_max(a, a_min, a_max)),
        domain=("real", "const:-0.5", "const:0.5"))
partial(np.heaviside,  lambda x1, x2: (None, x1 == 0), domain=("signs", "real"),
        notes="x2 is the value at x1 == 0; in x1 the step is flat (floor's convention)")
partial(np.where,      lambda condition, x1, x2: (None, condition, np.logical_not(condition)),
        domain=("mask", "real", "real"))


# ---- reductions
@vjp(np.sum, domain=("array",), cases="reduction")
def _(g, y, a, axis=None, dtype=None, out=None, keepdims=False):
    return unreduce(g, a, axis=axis, keepdims=keepdims)


@vjp(np.mean, domain=("array",), cases="reduction")
def _(g, y, a, axis=None, dtype=None, out=None, keepdims=False):
    return unreduce(g / reduced_size(a, axis), a, axis=axis, keepdims=keepdims)


@vjp(np.max, domain=("array",), cases="reduction")
def _(g, y, a, axis=None, out=None, keepdims=False):
    return unreduce(g, a, axis=axis, keepdims=keepdims) * extremum_mask(a, y, axis, keepdims)


@vjp(np.min, domain=("array",), cases="reduction")
def _(g, y, a, axis=None, out=None, keepdims=False):
    return unreduce(g, a, axis=axis, keepdims=keepdims) * extremum_mask(a, y, axis, keepdims)


@vjp(np.prod, domain=("array",), cases="reduction1")
def _(g, y, a, axis=None, dtype=None, out=None, keepdims=False):
    return unreduce(g, a, axis=axis, keepdims=keepdims) * prod_others(a, axis)


@vjp(np.var, domain=("array",), cases="reduction")
def _(g, y, a, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
    centred = a - np.mean(a, axis=axis, keepdims=True)
    return unreduce(g, a, axis=axis, keepdims=keepdims) * 2 * centred / (reduced_size(a, axis) - ddof)


@vjp(np.std, domain=("array",), cases="reduction")
def _(g, y, a, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
    # over one element (ddof < 1) the std is the constant 0: there g / y would be g / 0
    centred = a - np.mean(a, axis=axis, keepdims=True)
    return zeros_like(a) if ddof < 1 and reduced_size(a, axis) == 1 else \
        unreduce(g / y, a, axis=axis, keepdims=keepdims) * centred / (reduced_size(a, axis) - ddof)


@vjp(np.cumsum, domain=("array",), cases="cumsum")
def _(g, y, a, axis=None, dtype=None, out=None):
    return reverse_cumsum(g, axis, np.shape(a))


# ---- sampling: each sample is start + t * (stop - start), for t from 0 to 1
@vjp(np.linspace, cases="linspace")
def _(g, y, start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0):
    t = linspace_fractions(y, num, endpoint, retstep, axis)
    return unbroadcast(np.sum(g * (1 - t), axis=axis), start), unbroadcast(np.sum(g * t, axis=axis), stop)


# ---- linear algebra
@vjp(np.matmul, domain=("matrix", "matrix"))
def _(g, y, a, b):
    return matmul_da(g, a, b), matmul_db(g, a, b)


@vjp(np.dot, domain=("matrix", "matrix"))
def _(g, y, a, b):
    return dot_da(g, a, b), dot_db(g, a, b)


@vjp(np.outer, domain=("vector", "vector"))
def _(g, y, a, b):
    return np.reshape(g @ np.ravel(b), np.shape(a)), np.reshape(np.ravel(a) @ g, np.shape(b))


@vjp(np.trace, domain=("square",))
def _(g, y, a):
    return trace_adjoint(g, a)


# ---- shapes: the adjoint is the inverse reshaping of g
@vjp(np.reshape, cases="reshape")
def _(g, y, a, shape=None, order="C", newshape=None):
    return np.reshape(g, np.shape(a), order=order)


@vjp(np.ravel, cases="array")
def _(g, y, a, order="C"):
    return np.reshape(g, np.shape(a), order=order)


@vjp(np.transpose, cases="transpose")
def _(g, y, a, axes=None):
    return np.transpose(g) if axes is None else np.transpose(g, inverse_axes(axes))


@vjp(np.expand_dims, cases="expand_dims")
def _(g, y, a, axis):
    return np.reshape(g, np.shape(a))


@vjp(np.squeeze, cases="squeeze")
def _(g, y, a, axis=None):
    return np.reshape(g, np.shape(a))


@vjp(np.broadcast_to, cases="broadcast_to")
def _(g, y, array, shape):
    return unbroadcast(g, array)


@vjp(np.swapaxes, cases="swapaxes")
def _(g, y, a, axis1, axis2):
    return np.swapaxes(g, axis1, axis2)


@vjp(np.concatenate, cases="concatenate")
def _(g, y, arrays, axis=0):
    return split_like(g, arrays, axis)


@vjp(np.stack, cases="stack")
def _(g, y, arrays, axis=0):
    return unstack(g, axis)


@vjp(np.array, cases="np_array")
def _(g, y, object, dtype=None):
    return array_adjoint(g, object)


@vjp(np.copy, cases="array")
def _(g, y, a):
    return g


# ---- indexing: x[index]; repeated integer indices add up
@vjp(operator.getitem, name="x[index]", cases="getitem")
def _(g, y, a, index):
    return unindex(g, a, index)


# ---- array methods: x.sum(...) means np.sum(x, ...)
for _name, _primal in [("sum", np.sum), ("mean", np.mean), ("max", np.max), ("min", np.min),
                       ("prod", np.prod), ("var", np.var), ("std", np.std), ("cumsum", np.cumsum),
                       ("dot", np.dot), ("clip", np.clip), ("squeeze", np.squeeze),
                       ("ravel", np.ravel), ("flatten", np.ravel), ("copy", np.copy),
                       ("swapaxes", np.swapaxes)]:
    method(_name, _primal)
method("reshape", np.reshape, pack_varargs=True)
method("transpose", np.transpose, pack_varargs=True)
method("T", np.transpose)

nondifferentiable(
    np.sign, np.floor, np.ceil, np.round, np.rint, np.trunc, np.fix, np.floor_divide,
    np.argmax, np.argmin, np.argsort, np.argwhere, np.nonzero, np.flatnonzero,
    np.shape, np.ndim, np.size, np.zeros_like, np.ones_like, np.empty_like,
    np.zeros, np.ones, np.empty, np.eye, np.identity,
    np.isnan, np.isinf, np.isfinite, np.isclose, np.allclose, np.array_equal,
    np.equal, np.not_equal, np.less, np.less_equal, np.greater, np.greater_equal,
    np.logical_and, np.logical_or, np.logical_not, np.logical_xor, np.any, np.all,
    np.count_nonzero, np.result_type,
)
# np.arange has no rule, so a call with a differentiated start or step is refused: its
# values are start + k * step, but how many there are depends on them too.
