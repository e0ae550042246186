"""Regressions from a review of the compiler: each function was differentiated wrongly,
crashed, or was refused without reason before the fix (see the commit history)."""
import functools
import math

import numpy as np
import pytest

import srcgrad
from srcgrad.testing import check_grads

def f1(x, flag):
    c = 2.0
    y = x * c
    if flag:
        c = 5.0
    return y * c

def g1(x):
    s = x; c = 1.0
    for i in range(3):
        s = s * c
        if i > 0: c = c * 2.0
    return s

def h1(x):
    s = 0.0; i = 0
    while i < 10:
        if s > 5.0: break
        else: s = s + x * i
        i += 1
    return s

def rnn_init(w, x, init):
    h, c = init
    for t in range(len(x)):
        h = np.tanh(w * h + x[t] + c)
    return h

def u(x):
    a, b = divmod(7.0, 2.0)
    for i in range(3): a = a * x + b
    return a

def g2(a, k):
    for t in [0.5, 0.5]:
        for i in range(k): t = np.tanh(a*t + a)
        a = np.tanh(t*a + a)
    return a

CASES = [(f1, (1.3, True), 0), (g1, (1.3,), 0), (h1, (1.3,), 0),
         (rnn_init, (0.5, np.array([.1,.2,.3]), (0.2, 0.1)), (0, 1)), (u, (1.5,), 0),
         (g2, (0.3, 0), 0), (g2, (0.3, 2), 0)]

scale = 2.0
def helper_s(z):
    scale = 5.0
    return z * scale
def top_s(x):
    return x * scale + helper_s(x)
def top_s2(x):
    y = helper_s(x)
    return y + x * scale

iterations = 3.0
def hg(z): return z * iterations
def top_it(x):
    s = x; n = 0
    while n < 2:
        s = s * 1.5; n += 1
    return hg(s)

def f_stack(x, w):
    h = 0.0; hs = []
    for t in range(len(x)):
        h = np.tanh(w*h + x[t]); hs.append(h)
    h_stack = np.stack(hs)
    return np.sum(h_stack) * h

def f_under(x):
    _ = 2.0
    s = x; n = 0
    while n < 3:
        s = s * _ + x
        n += 1
    return s

CASES += [(top_s, (1.5,), 0), (top_s2, (1.5,), 0), (top_it, (1.5,), 0),
          (f_stack, (np.array([0.1, 0.2]), 0.5), (0, 1)), (f_under, (1.5,), 0)]

def loc_imp(x):
    import numpy as np
    return np.sum(x * 2.0)

def posonly(x, /):
    return x * x

def scaled(fn):
    @functools.wraps(fn)
    def wrapper(x): return 2.0 * fn(x)
    return wrapper

@scaled
def sq(x): return x * x

CASES += [(loc_imp, (np.array([1.0, 2.0]),), 0), (posonly, (1.5,), 0), (sq, (1.5,), 0)]

def zshape(x, w):
    out = np.zeros(x.shape)
    for i in range(3): out[i] = w
    return np.sum(out * x)

def zero_first(a):
    a[0] = 0.0
    return np.sum(a)
def mut_helper(x):
    s = zero_first(x)
    return s + np.sum(x * x)

def rows_t(x, w):
    s = 0.0
    for t in range(len(x) - 1):
        s = s + w * x[t + 1] * (t + 1)
    return s

CASES += [(zshape, (np.ones((3, 2)) * 0.5, 0.3), (0, 1)), (zshape, (np.ones((3, 2)) * 0.5, np.float64(0.3)), (0, 1)),
          (rows_t, (np.array([0.1, 0.2, 0.3]), 0.5), (0, 1))]

class Model:
    def __init__(self): self.w = np.array([0.5, -0.2])
    def loss(self, x):
        return np.sum((self.w * x) ** 2)

m = Model()


@pytest.mark.parametrize("f, args, wrt", CASES, ids=[c[0].__name__ for c in CASES])
def test_review_regression(f, args, wrt):
    check_grads(f, *args, wrt=wrt)


def test_bound_method():
    x = np.array([1.0, 2.0])
    np.testing.assert_allclose(srcgrad.grad(m.loss)(x), 2 * m.w ** 2 * x)
    np.testing.assert_allclose(srcgrad.grad(m.loss, wrt="x")(x), 2 * m.w ** 2 * x)


@pytest.mark.parametrize("f, message", [
    (mut_helper, "caller's array"),
])
def test_refused(f, message):
    with pytest.raises(srcgrad.SrcgradError, match=message):
        srcgrad.grad(f)(np.ones(3))
