"""The small runtime that generated gradients and derivative rules call.

Everything here is plain numpy. Generated code imports these names; rules use
them to state adjoints that are not a product of partial derivatives.
"""
from operator import index as operator_index

import numpy as np

from .errors import NonScalarOutputError

__all__ = ["unbroadcast", "unreduce", "unindex", "scalar_seed", "zeros_like", "inverse_axes",
           "extremum_mask", "reduced_size", "step", "accumulate_at", "dot_da", "dot_db", "trace_adjoint", "writable",
           "add_lists", "array_adjoint", "sum_adjoint", "sum_to_shape", "matmul_da", "matmul_db", "inside", "prod_others", "split_like",
           "unstack", "reverse_cumsum", "at_min", "at_max", "times_power", "xlogy", "linspace_fractions",
           "rule_part", "partial_part"]


def unbroadcast(grad, like):
    """Sum `grad` back to the shape of `like` (undo numpy broadcasting)."""
    return sum_to_shape(grad, np.shape(like))


def sum_to_shape(grad, shape):
    """Sum `grad` back to `shape`: the adjoint of broadcasting a value of that shape."""
    if np.shape(grad) == shape:
        return grad
    grad = np.asarray(grad)
    if grad.ndim < len(shape):                 # a size-1 output seeded with a scalar
        return np.broadcast_to(grad, shape)
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    if grad.shape != shape:
        grad = np.broadcast_to(grad, shape)
    return grad


def _expand(grad, ndim, axis, keepdims):
    """Give a reduced `grad` back the axes a reduction removed."""
    if keepdims or axis is None and np.ndim(grad) == ndim:
        return grad
    if axis is None:
        return np.reshape(grad, (1,) * ndim)
    axes = (axis,) if np.ndim(axis) == 0 else tuple(axis)
    return np.expand_dims(grad, tuple(a % ndim for a in axes))


def unreduce(grad, x, axis=None, keepdims=False):
    """Spread the adjoint of a reduction (sum over `axis`) back over `x`'s shape."""
    grad = _expand(grad, np.ndim(x), axis, keepdims)
    return np.broadcast_to(grad, np.shape(x))


def extremum_mask(x, y, axis=None, keepdims=False):
    """Where `x` attains the max/min `y` over `axis`, ties sharing equally."""
    hit = x == _expand(y, np.ndim(x), axis, keepdims)
    return hit / np.sum(hit, axis=axis, keepdims=True)


def step(x):
    """Heaviside step: 1 where x > 0, 0 where x < 0, 1/2 at 0 (where max/min tie)."""
    if isinstance(x, float) or np.ndim(x) == 0:
        return 1.0 if x > 0 else 0.0 if x < 0 else 0.5
    out = np.greater(x, 0).astype(np.result_type(x, float))   # much faster than np.heaviside
    out[x == 0] = 0.5
    return out


def unindex(grad, x, index):
    """Adjoint of `x[index]`: `grad` scattered into zeros shaped like `x`.

    Repeated integer indices add up (``np.add.at``), as the chain rule says.
    """
    if isinstance(x, (list, tuple)):
        if not isinstance(index, (int, np.integer)):
            from .errors import SrcgradError
            raise SrcgradError("srcgrad differentiates reading one element of a list "
                               "(xs[i]), not a slice of it; use np.stack(xs)[...] instead")
        out = zeros_like(x)
        out[index] = out[index] + grad
        return out
    out = np.zeros(np.shape(x), dtype=np.result_type(x, grad, float))
    np.add.at(out, index, grad)
    return out


def accumulate_at(out, index, grad):
    """`out[index] += grad` in place, repeated integer indices adding up."""
    basic = (int, np.integer, slice, type(None), type(Ellipsis))
    if isinstance(index, basic) or (isinstance(index, tuple) and all(isinstance(i, basic) for i in index)):
        out[index] += grad
    else:
        np.add.at(out, index, grad)


def writable(d):
    """A copy of the adjoint `d` that generated code may write into."""
    if isinstance(d, (list, tuple)):
        return list(d)
    return np.array(d, dtype=np.result_type(d, float))


def add_lists(a, b):
    """The sum of two adjoints of a list, element by element."""
    return [x + y for x, y in zip(a, b)]


def array_adjoint(g, obj):
    """Adjoint of `np.array(obj)`: `g`, or one piece of it per element of a list."""
    return list(g) if isinstance(obj, (list, tuple)) else g


def sum_adjoint(g, iterable):
    """Adjoint of the builtin `sum(iterable)`: `g` for each element."""
    if isinstance(iterable, (list, tuple)):
        return [g] * len(iterable)
    return unreduce(g, iterable, axis=0)


def zeros_like(x):
    """A zero gradient for `x`: 0.0 for a Python number, zeros for an array, a list of
    zero gradients for a list or tuple."""
    if x is None or isinstance(x, (int, float)):   # None: a list not made yet
        return 0.0
    if isinstance(x, (list, tuple)):
        return [zeros_like(e) for e in x]
    return np.zeros(np.shape(x), dtype=np.result_type(x, float))


def inverse_axes(axes):
    """The permutation that undoes `np.transpose(_, axes)`."""
    return tuple(int(i) for i in np.argsort([a % len(axes) for a in axes]))


def reduced_size(x, axis=None):
    """How many elements of `x` a reduction over `axis` combines into each result.

    1 when that is none: then `x` is empty, and so is every adjoint spread over it
    (`unreduce(g / reduced_size(x), x)`), which must not divide by zero."""
    if axis is None:
        return max(np.size(x), 1)
    axes = (axis,) if np.ndim(axis) == 0 else axis
    shape = np.shape(x)
    return max(int(np.prod([shape[a] for a in axes])), 1)


def scalar_seed(y):
    """The seed 1.0 for the gradient of a scalar `y`; an error for any other."""
    if type(y) is float or type(y) is np.float64:
        return 1.0
    if np.size(y) == 1:
        return 1.0 if np.ndim(y) == 0 else np.ones_like(y, dtype=np.result_type(y, float))
    raise NonScalarOutputError(
        f"grad needs a scalar output, but the function returned shape {np.shape(y)}: "
        "grad can be created only for scalar outputs. Use "
        "`value, pullback = srcgrad.vjp(f, *args)` and call `pullback(seed)` with a "
        "seed of the output's shape (e.g. np.ones_like(value)).")


def matmul_da(g, a, b):
    """Adjoint of `a` in `a @ b` (1-D, 2-D and stacked operands)."""
    if np.ndim(b) == 1:
        da = g[..., None] * b if np.ndim(a) > 1 else g * b
    else:
        da = g @ np.swapaxes(b, -1, -2) if np.ndim(a) > 1 else (b @ g[..., None])[..., 0]
    return unbroadcast(da, a)


def matmul_db(g, a, b):
    """Adjoint of `b` in `a @ b` (1-D, 2-D and stacked operands)."""
    if np.ndim(a) == 1:
        db = a[:, None] * g[..., None, :] if np.ndim(b) > 1 else g * a
    else:
        db = np.swapaxes(a, -1, -2) @ (g if np.ndim(b) > 1 else g[..., None])
        db = db if np.ndim(b) > 1 else db[..., 0]
    return unbroadcast(db, b)


def inside(x, lo, hi):
    """Where `lo <= x <= hi` (a missing bound is no bound): np.clip's pass-through.

    Shaped like the clipped result: `x` broadcast against the bounds."""
    if lo is None:
        return np.less_equal(x, hi)
    if hi is None:
        return np.greater_equal(x, lo)
    return np.greater_equal(x, lo) & np.less_equal(x, hi)


def at_min(x, lo, hi):
    """Where `np.clip(x, lo, hi)` is `lo`: x below it, and lo not above hi (np.clip is
    `minimum(maximum(x, lo), hi)`, so crossed bounds give hi)."""
    below = np.less(x, lo)
    return below if hi is None else below & np.less_equal(lo, hi)


def at_max(x, lo, hi):
    """Where `np.clip(x, lo, hi)` is `hi`: `maximum(x, lo)` above it."""
    return np.greater(x if lo is None else np.maximum(x, lo), hi)


def prod_others(x, axis=None):
    """For each element of `x`, the product of the others along `axis` (zeros allowed)."""
    x = np.asarray(x, dtype=np.result_type(x, float))
    if x.size == 0:                             # nothing to multiply: an empty adjoint
        return np.zeros(x.shape, dtype=x.dtype)
    if axis is None:
        return prod_others(x.ravel(), 0).reshape(x.shape)
    if np.ndim(axis) != 0:                      # several axes: make them one, at the end
        axes = [a % x.ndim for a in axis]
        rest = [a for a in range(x.ndim) if a not in axes]
        moved = np.transpose(x, rest + axes)
        flat = moved.reshape(moved.shape[:len(rest)] + (-1,))
        others = prod_others(flat, -1).reshape(moved.shape)
        return np.transpose(others, np.argsort(rest + axes))
    moved = np.moveaxis(x, axis, -1)
    ones = np.ones(moved.shape[:-1] + (1,))
    before = np.cumprod(np.concatenate([ones, moved[..., :-1]], axis=-1), axis=-1)
    after = np.cumprod(np.concatenate([ones, moved[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
    return np.moveaxis(before * after, -1, axis)


def split_like(g, arrays, axis=0):
    """Adjoints of the pieces of `np.concatenate(arrays, axis)`."""
    if axis is None:                            # the pieces were flattened first
        ends = np.cumsum([np.size(a) for a in arrays])[:-1]
        return [np.reshape(p, np.shape(a)) for p, a in zip(np.split(g, ends), arrays)]
    ends = np.cumsum([np.shape(a)[axis] for a in arrays])[:-1]
    return np.split(g, ends, axis=axis)


def dot_da(g, a, b):
    """Adjoint of `a` in `np.dot(a, b)` (a scalar times an array, or at most 2-D operands)."""
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        return unbroadcast(g * b, a)
    _check_dot(a, b)
    return matmul_da(g, a, b)


def dot_db(g, a, b):
    """Adjoint of `b` in `np.dot(a, b)`."""
    if np.ndim(a) == 0 or np.ndim(b) == 0:
        return unbroadcast(g * a, b)
    _check_dot(a, b)
    return matmul_db(g, a, b)


def _check_dot(a, b):
    if np.ndim(a) > 2 or np.ndim(b) > 2:
        from .errors import SrcgradError
        raise SrcgradError("np.dot of arrays with more than 2 dimensions has no derivative rule "
                           "in srcgrad; use np.matmul (or @), whose stacking rule it has")


def trace_adjoint(g, a):
    """Adjoint of `np.trace(a)`: `g` on the diagonal of the first two axes."""
    eye = np.eye(np.shape(a)[0], np.shape(a)[1])
    return eye.reshape(eye.shape + (1,) * (np.ndim(a) - 2)) * g


def unstack(g, axis=0):
    """Adjoints of the pieces of `np.stack(arrays, axis)`."""
    return list(np.moveaxis(g, axis, 0))


def reverse_cumsum(g, axis=None, shape=None):
    """Adjoint of `np.cumsum(x, axis)`: sums from the end, reshaped like `x`."""
    if axis is None:
        return np.cumsum(np.ravel(g)[::-1])[::-1].reshape(shape)
    return np.flip(np.cumsum(np.flip(g, axis), axis), axis)


def _python_numbers(*values):
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def times_power(c, a, p):
    """`c * a ** p`, and 0 where `c` is 0: d/da of `a ** b` is `b * a ** (b - 1)`, and where
    b is 0 the power is the constant 1, even at a = 0 (where `a ** (b - 1)` is infinite).
    Python numbers give a Python float (0.0 ** -0.5 is inf here, not ZeroDivisionError)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if _python_numbers(c, a, p):
            return 0.0 if c == 0 else float(c * np.float64(a) ** p)
        if np.asarray(a).dtype.kind in "iub":      # integers to negative powers: in floats
            a = np.asarray(a, dtype=float)
        out = c * np.power(a, p)
        zero = np.equal(c, 0)
        if np.any(zero):
            out = np.where(zero, np.zeros_like(out), out)
    return out


def xlogy(x, y):
    """`x * log(y)`, and 0 where `x` is 0: d/db of `a ** b` is `a ** b * log(a)`, which is 0
    at a = 0 (for b > 0 the power is the constant 0 there), not 0 * -inf.
    Python numbers give a Python float (log(0) is -inf here, not a ValueError)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if _python_numbers(x, y):
            return 0.0 if x == 0 else float(x * np.log(np.float64(y)))
        out = x * np.log(y)
        zero = np.equal(x, 0)
        if np.any(zero):
            out = np.where(zero, np.zeros_like(out), out)
    return out


def linspace_fractions(y, num, endpoint=True, retstep=False, axis=0):
    """How far each sample of `y = np.linspace(start, stop, num, endpoint, axis=axis)` lies
    from start (0) to stop (1): k / (num - 1), or k / num without the endpoint; shaped to
    broadcast against `y` along `axis`."""
    from .errors import SrcgradError
    if retstep:
        raise SrcgradError("srcgrad differentiates np.linspace without retstep=True: compute the "
                           "step as (stop - start) / (num - 1)")
    if not np.issubdtype(np.asarray(y).dtype, np.inexact):
        raise SrcgradError(f"np.linspace with dtype={np.asarray(y).dtype} rounds its samples, so "
                           "srcgrad does not differentiate it: use a float dtype and round after, "
                           "or pass start and stop through srcgrad.stop_gradient")
    num = operator_index(num)
    div = num - 1 if endpoint else num
    fractions = np.arange(num) / div if div > 0 else np.zeros(num)
    shape = [1] * np.ndim(y)
    shape[axis] = num
    return fractions.astype(np.asarray(y).dtype).reshape(shape)


def _share(found, position):
    found = found if isinstance(found, tuple) else (found,)
    return found[position] if position < len(found) else None


def rule_part(found, position, like, count=1):
    """Argument `position`'s adjoint from what a multi-statement vjp rule of `count`
    arguments returned (one value, or a tuple with one per argument; None, or nothing,
    for none: zeros like `like`). A tuple of another length, or an adjoint whose shape
    does not broadcast to the argument's, is the rule's mistake: refused."""
    from .errors import SrcgradError
    if found is not None and count > 1 and (not isinstance(found, tuple) or len(found) != count):
        got = f"a tuple of {len(found)}" if isinstance(found, tuple) else "one value"
        raise SrcgradError(f"a vjp rule of {count} arguments returned {got}: return a tuple "
                           "with one adjoint (or None) per argument")
    part = _share(found, position)
    if part is None:
        return zeros_like(like)
    if np.shape(part) != np.shape(like):
        try:
            return sum_to_shape(part, np.shape(like)) if np.ndim(part) >= np.ndim(like) else \
                np.broadcast_to(part, np.shape(like)) * 1.0
        except ValueError:
            raise SrcgradError(f"a vjp rule returned an adjoint of shape {np.shape(part)} for "
                               f"argument {position}, of shape {np.shape(like)}") from None
    return part


def partial_part(found, position, *args):
    """Argument `position`'s partial derivative from what a multi-statement partial rule
    returned, given the elementwise function's arguments `args`: shaped like its result
    (0 where the rule gives None)."""
    shape = np.broadcast_shapes(*(np.shape(a) for a in args))
    part = _share(found, position)
    if part is None:
        part = 0.0
    return part if np.shape(part) == shape else np.broadcast_to(part, shape)


class _Call:
    """What RecursiveCall returns: the call's `value` and its `pullback`."""
    __slots__ = ("value", "pullback")


def RecursiveCall(fn, wrt, /, *args, **kwargs):
    """A call of a function from inside its own derivation (recursion): its depth is
    known only at run time, so instead of being inlined the call runs the function's
    own generated VJP. `.value` is what the call returns; `.pullback(d_value)` gives the
    gradient with respect to the arguments named by `wrt` (a tuple for a tuple).

    A function, not a class, and calling the compiled VJP itself, not through api._vjp:
    a level of the recursion then takes two Python frames (this one and the VJP's) in the
    forward sweep, as in the adjoint sweep (the VJP's pullback and api._pullback's)."""
    from . import api
    d = api._differentiated(fn, wrt, "vjp")
    compiled, args, packing = api._vjp_entry(d, args, kwargs)
    call = _Call()
    call.value, pullback = compiled.function(*args, **kwargs)
    call.pullback = api._pullback(d, compiled, call.value, pullback, args, kwargs, packing)
    return call


def last_writes(grad, index):
    """`grad[index]` for the adjoint of `x[index] = v`: where an integer-array index names
    one position more than once, numpy keeps the last write, so only that element of `v`
    gets the position's adjoint (the earlier ones are overwritten: zero)."""
    part = grad[index]
    basic = (int, np.integer, slice, type(None), type(Ellipsis))
    parts = index if isinstance(index, tuple) else (index,)
    if all(isinstance(i, basic) or (isinstance(i, np.ndarray) and i.dtype == bool) for i in parts):
        return part                           # no position can be named twice
    positions = np.arange(np.size(grad)).reshape(np.shape(grad))[index].ravel()
    if np.unique(positions).size == positions.size:
        return part
    last = np.zeros(positions.size, dtype=bool)
    _, first_from_end = np.unique(positions[::-1], return_index=True)
    last[positions.size - 1 - first_from_end] = True
    return np.where(last.reshape(np.shape(part)), part, 0.0)
