"""Functions defined inside the differentiated function (`def` and `name = lambda`)
are inlined where they are called, reading the enclosing function's variables as
they are at the call (Python's late binding)."""
import numpy as np
import pytest

import srcgrad
from srcgrad.testing import check_grads


def with_def_and_lambda(x, a):
    def sq(t, c=2.0):
        return t * t * c + a
    cube = lambda t: t * sq(t)
    s = 0.0
    for i in range(3):
        s = s + cube(x * i) + sq(x, c=0.5)
    return np.sum(s)


def late_binding(x):
    scale = 3.0

    def inner(t):
        def deeper(u):
            return np.sin(u) * scale
        return deeper(t) + t
    scale = 4.0                       # inner sees this value, as in Python
    return np.sum(inner(x * 2.0))


def branches_and_returns(x):
    def clipped(t):
        if t > 1.0:
            return 1.0 + 0.1 * t
        return t * t
    return clipped(x) + clipped(x * 0.5)


def rebinding_the_name(x):
    f = lambda t: t * 3.0
    y = f(x)
    f = 2.0                           # now a number
    return y * f


def old_r_lambda_uses_x(x):         # both were refused before (tests/test_refusals.py)
    g = lambda t: t * x  # noqa: E731
    return g(2.0)


def old_r_nested_def(x):
    def inner(t):
        return t * 2.0
    return inner(x)


@pytest.mark.parametrize("fn, args, wrt, expected", [
    (old_r_lambda_uses_x, (0.5,), 0, 2.0),
    (old_r_nested_def, (0.5,), 0, 2.0),
    (with_def_and_lambda, (np.array([0.3, -0.7]), 0.4), (0, 1), None),
    (late_binding, (np.array([0.3, -0.7]),), 0, 2 * np.cos(2 * np.array([0.3, -0.7])) * 4.0 + 2.0),
    (branches_and_returns, (0.5,), 0, 2 * 0.5 + 0.5 * 0.5),
    (branches_and_returns, (3.0,), 0, 0.1 + 0.1 * 0.5),
    (rebinding_the_name, (0.5,), 0, 6.0),
])
def test_local_functions(fn, args, wrt, expected):
    grads = check_grads(fn, *args, wrt=wrt)
    if expected is not None:
        np.testing.assert_allclose(grads, expected, rtol=1e-12)


def test_the_generated_code_names_the_local_function():
    source = srcgrad.source(srcgrad.grad(late_binding), np.ones(2))
    assert "in deeper: return np.sin(u) * scale" in source


def recursive_local(x):
    def r(t, n):
        return t if n == 0 else r(t * 2.0, n - 1)
    return r(x, 3)


def passed_as_a_value(x):
    def sq(t):
        return t * t
    h = sq
    return h(x)


def decorated(x):
    @staticmethod
    def sq(t):
        return t * t
    return sq(x)


def star_args(x):
    def total(*ts):
        return sum(ts)
    return total(x, x)


@pytest.mark.parametrize("fn, message", [
    (recursive_local, "recursive call to `r`"),
    (passed_as_a_value, "use of `sq`, a function defined inside"),
    (decorated, "decorated function"),
    (star_args, "plain parameters"),
])
def test_refused_at_the_line(fn, message):
    with pytest.raises(srcgrad.SrcgradError, match=message) as info:
        srcgrad.grad(fn)(0.5)
    assert "test_local_functions.py" in str(info.value)
