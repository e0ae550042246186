"""Finite-difference checks of srcgrad's gradients, for tests and for users.

    srcgrad.testing.check_grads(f, x, y, wrt=(0, 1))

compares srcgrad's gradient with central differences and raises AssertionError
(naming the argument, the worst element and both values) when they disagree.
A function with a non-scalar output is checked through its vector-Jacobian
product with a random seed.
"""
import numpy as np

from .api import _wrt_names, value_and_grad, vjp

__all__ = ["check_grads", "numerical_grad"]


def _as_float(x):
    return float(x) if isinstance(x, (int, float)) else np.array(x, dtype=float)


def numerical_grad(f, args, index, seed=None, eps=1e-6):
    """Central finite differences of `sum(seed * f(*args))` w.r.t. `args[index]`
    (for a function returning a tuple, `seed` is a tuple: one seed per output)."""
    args = list(args)
    x = _as_float(args[index])

    def value(xv):
        args[index] = xv if isinstance(x, np.ndarray) else float(xv)
        outs = f(*[np.copy(a) if isinstance(a, np.ndarray) else a for a in args])  # f may write
        seeds = seed
        if not isinstance(outs, tuple):
            outs, seeds = (outs,), (seed,)
        elif seeds is None:
            seeds = (None,) * len(outs)
        return float(sum(np.sum(np.asarray(o, dtype=float) * (1.0 if s is None else s))
                         for o, s in zip(outs, seeds)))

    if not isinstance(x, np.ndarray):
        return (value(x + eps) - value(x - eps)) / (2 * eps)
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[i] = eps * max(1.0, abs(x[i]))
        grad[i] = (value(x + step) - value(x - step)) / (2 * step[i])
    return grad


def check_grads(f, *args, wrt=0, rtol=1e-5, atol=1e-6, eps=1e-6, seed=None):
    """Check srcgrad's gradient of `f` at `args` against central differences.

    Returns srcgrad's gradient(s) (a tuple when `wrt` is a tuple).
    """
    from .api import _python_function
    f = _python_function(f)                  # np.sin: the Python function grad differentiates
    names, single = _wrt_names(f, wrt)
    params = list(f.__code__.co_varnames[:f.__code__.co_argcount])
    before = [np.copy(a) if isinstance(a, np.ndarray) else a for a in args]
    value, pullback = vjp(f, *args, wrt=tuple(names))
    expected_value = f(*[np.copy(a) if isinstance(a, np.ndarray) else a for a in args])
    for got_v, want_v in zip(value if isinstance(value, tuple) else (value,),
                             expected_value if isinstance(expected_value, tuple) else (expected_value,)):
        if not np.allclose(got_v, want_v, rtol=1e-10, atol=1e-12, equal_nan=True):
            raise AssertionError(f"the value srcgrad computed, {got_v!r}, differs from "
                                 f"{f.__name__}'s own, {want_v!r}")
    rng = np.random.default_rng(0)
    if seed is None and isinstance(value, tuple):
        seed = tuple(rng.normal(size=np.shape(v)) for v in value)
    elif seed is None and np.ndim(value) > 0:
        seed = rng.normal(size=np.shape(value))
    got = pullback(1.0 if seed is None else seed)
    for a, b in zip(args, before):
        if isinstance(a, np.ndarray) and not np.array_equal(a, b, equal_nan=True):
            raise AssertionError("srcgrad modified an argument in place")
    if not isinstance(value, tuple) and np.size(value) == 1:
        # the grad form (one function, no pullback) must agree with the vjp form
        plain_value, plain = value_and_grad(f, wrt=tuple(names))(*args)
        if not np.allclose(plain_value, value, rtol=1e-12, atol=0):
            raise AssertionError(f"value_and_grad's value {plain_value!r} differs from the "
                                 f"function's value {value!r}")
        for name, g, h in zip(names, got, plain):
            scale = 1.0 if seed is None else seed
            if not np.allclose(np.asarray(g), np.asarray(h) * scale, rtol=1e-10, atol=1e-12):
                raise AssertionError(f"d/d{name}: grad and vjp disagree: {h} vs {g}")
    for name, g in zip(names, got):
        index = params.index(name)
        expected = numerical_grad(f, args, index, seed, eps)
        if np.shape(g) != np.shape(expected):
            raise AssertionError(f"d/d{name}: shape {np.shape(g)}, expected {np.shape(expected)}")
        if not np.allclose(g, expected, rtol=rtol, atol=atol, equal_nan=False):
            diff = np.abs(np.asarray(g) - expected)
            worst = np.unravel_index(np.argmax(diff), np.shape(diff)) if np.ndim(diff) else ()
            raise AssertionError(
                f"d/d{name} of {f.__name__} disagrees with finite differences at {worst}: "
                f"srcgrad {np.asarray(g)[worst]!r}, numerical {np.asarray(expected)[worst]!r}\n"
                f"srcgrad:\n{g}\nnumerical:\n{expected}")
    return got[0] if single else got
