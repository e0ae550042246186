"""The small runtime that generated gradients and derivative rules call.

Everything here is plain numpy. Generated code imports these names; rules use
them to state adjoints that are not a product of partial derivatives.
"""
import numpy as np

from .errors import NonScalarOutputError

__all__ = ["unbroadcast", "unreduce", "unindex", "scalar_seed", "zeros_like", "inverse_axes",
           "extremum_mask", "reduced_size", "step", "accumulate_at", "dot_da", "dot_db", "trace_adjoint", "writable",
           "add_lists", "array_adjoint", "sum_adjoint", "sum_to_shape", "matmul_da", "matmul_db", "inside", "prod_others", "split_like",
           "unstack", "reverse_cumsum"]


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
    if isinstance(x, (int, float)):
        return 0.0
    if isinstance(x, (list, tuple)):
        return [zeros_like(e) for e in x]
    return np.zeros(np.shape(x), dtype=np.result_type(x, float))


def inverse_axes(axes):
    """The permutation that undoes `np.transpose(_, axes)`."""
    return tuple(int(i) for i in np.argsort([a % len(axes) for a in axes]))


def reduced_size(x, axis=None):
    """How many elements of `x` a reduction over `axis` combines into each result."""
    if axis is None:
        return np.size(x)
    axes = (axis,) if np.ndim(axis) == 0 else axis
    shape = np.shape(x)
    return int(np.prod([shape[a] for a in axes]))


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
    """Where `lo <= x <= hi` (a missing bound is no bound): np.clip's pass-through."""
    mask = np.ones(np.shape(x), dtype=bool)
    if lo is not None:
        mask &= x >= lo
    if hi is not None:
        mask &= x <= hi
    return mask


def prod_others(x, axis=None):
    """For each element of `x`, the product of the others along `axis` (zeros allowed)."""
    x = np.asarray(x, dtype=np.result_type(x, float))
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


class RecursiveCall:
    """A call of a function from inside its own derivation (recursion): its depth is
    known only at run time, so instead of being inlined the call runs the function's
    own generated VJP. `value` is what the call returns; `pullback(d_value)` gives the
    gradient with respect to the arguments named by `wrt` (a tuple for a tuple)."""
    __slots__ = ("value", "pullback")

    def __init__(self, fn, wrt, /, *args, **kwargs):
        from . import api
        self.value, self.pullback = api._vjp(api._differentiated(fn, wrt, "vjp"), args, kwargs)
