"""Recursion: a call of a function from inside its own derivation runs that
function's generated VJP (`RecursiveCall`) in the forward sweep and its pullback
in the adjoint sweep, so any depth known at run time works."""
import math

import numpy as np
import pytest

import srcgrad
from srcgrad import tape
from srcgrad.testing import check_grads


def power(x, n):
    if n == 0:
        return 1.0
    return x * power(x, n - 1)


def f_power(x):
    return power(x, 5)


def tree_sum(x, depth):
    """A binary recursion: 2**depth leaves, each a sin of a scaled x."""
    if depth == 0:
        return np.sin(x)
    return tree_sum(0.9 * x, depth - 1) + tree_sum(x * x * 0.5, depth - 1)


def halves(x):
    """Recursion on array halves: the argument's shape changes with the depth."""
    if x.shape[0] == 1:
        return np.tanh(x[0])
    mid = x.shape[0] // 2
    return halves(x[:mid]) * 0.5 + halves(x[mid:]) ** 2


def horner(coeffs, x, i):
    """Two differentiated arguments at every level."""
    if i == coeffs.shape[0] - 1:
        return coeffs[i]
    return coeffs[i] + x * horner(coeffs, x, i + 1)


def is_even_sum(x, n):
    return x if n == 0 else is_odd_sum(np.cos(x), n - 1)


def is_odd_sum(x, n):
    return x * 2.0 if n == 0 else is_even_sum(x + 0.5, n - 1)


def rnn_recursive(h, a, xs, t):
    """An RNN written as recursion over the time step, inside a loop of restarts."""
    if t == len(xs):
        return h
    return rnn_recursive(math.tanh(a * h + xs[t]), a, xs, t + 1)


def restarts(a):
    total = 0.0
    for k in range(3):
        total = total + rnn_recursive(0.1 * k, a, [0.3, -0.2, 0.5], 0)
    return total


def test_linear_recursion_matches_the_closed_form():
    x = 1.3
    assert srcgrad.grad(f_power)(x) == pytest.approx(5 * x ** 4, rel=1e-12)
    check_grads(f_power, x)
    source = srcgrad.source(srcgrad.grad(f_power))
    assert "RecursiveCall(power, 'x', x, 5 - 1)" in source
    assert ".pullback(" in source


@pytest.mark.parametrize("depth", [0, 1, 4])
def test_tree_recursion(depth):
    def f(x):
        return np.sum(tree_sum(x, depth))
    check_grads(f, np.array([0.3, -0.7, 1.1]))


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_recursion_on_array_halves_of_every_length(n):
    x = np.linspace(-0.8, 0.9, n)
    check_grads(halves, x)


def test_two_differentiated_arguments_at_every_level():
    c = np.array([0.5, -1.2, 0.7, 0.3])
    x = 0.8
    f = lambda c, x: horner(c, x, 0)
    dc, dx = srcgrad.grad(f, wrt=(0, 1))(c, x)
    np.testing.assert_allclose(dc, x ** np.arange(4), rtol=1e-12)
    assert dx == pytest.approx(sum(k * c[k] * x ** (k - 1) for k in range(1, 4)), rel=1e-12)
    check_grads(f, c, x, wrt=(0, 1))


@pytest.mark.parametrize("n", [0, 1, 4, 7])
def test_mutual_recursion(n):
    check_grads(lambda x: is_even_sum(x, n), 0.4)


def test_recursion_inside_a_loop_saves_each_pullback():
    check_grads(restarts, 0.7)
    source = srcgrad.source(srcgrad.grad(restarts))
    # each iteration's call keeps its own pullback, popped back in the adjoint sweep
    assert "rnn_recursive_call_stack.append(rnn_recursive_call)" in source
    assert "rnn_recursive_call = rnn_recursive_call_stack.pop()" in source


def test_recursion_agrees_with_tape_mode():
    x = np.array([0.3, -0.7, 1.1])
    expected = srcgrad.grad(halves)(x)
    t = tape.tensor(x, requires_grad=True)
    halves(t).backward()
    np.testing.assert_allclose(t.grad.numpy() if hasattr(t.grad, "numpy") else t.grad.data,
                               expected, rtol=1e-12)


def test_recursive_call_with_a_differentiated_list_is_refused():
    def g(xs, n):
        return xs[0] if n == 0 else g([xs[0] * 2.0], n - 1)

    def f(x):
        return g([x], 3)
    with pytest.raises(srcgrad.SrcgradError, match="recursive call to `g`") as info:
        srcgrad.grad(f)(0.5)
    assert "test_recursion.py" in str(info.value)


def forever(x):
    return forever(x * 0.5)


def test_a_recursion_that_never_ends_raises_recursion_error_like_the_function():
    with pytest.raises(RecursionError):
        forever(0.5)
    with pytest.raises(RecursionError):
        srcgrad.grad(forever)(0.5)


def test_a_deep_recursion():
    # each level of the gradient takes a few Python frames: 100 levels fit the default limit
    assert srcgrad.grad(f_power)(1.01) == pytest.approx(5 * 1.01 ** 4)
    assert srcgrad.grad(lambda x: power(x, 100))(1.01) == pytest.approx(100 * 1.01 ** 99, rel=1e-12)
