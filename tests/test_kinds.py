"""Kind inference: module and closure constants, default arguments, the elements of lists
and tuples, loop targets and builtins get known kinds, so the generated code carries no
`unbroadcast`, `zeros_like` or shape stacks for numbers — and stays right when a kind
changes (the code is compiled again)."""
import math
import types

import numpy as np
import pytest

import srcgrad
from srcgrad.compiler import pipeline

DT = 0.01
H0 = 0.0
SCALE = np.array([1.0, 2.0, 3.0])


@pytest.fixture
def compiles(monkeypatch):
    """Counts the compilations (disk cache hits included) from here on."""
    count = []
    real = pipeline.compile_gradient

    def counting(*args, **kwargs):
        count.append(args[0].__name__)
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "compile_gradient", counting)
    return count


def spring(k, x0):
    x, v = x0, 0.0
    for _ in range(20):
        v = v + DT * (-k * x)
        x = x + DT * v
    return x * x


def spring_by_hand(k, x0):
    xs, vs = [x0], [0.0]
    for _ in range(20):
        vs.append(vs[-1] + DT * (-k * xs[-1]))
        xs.append(xs[-1] + DT * vs[-1])
    d_x, d_v, d_k = 2 * xs[-1], 0.0, 0.0
    for t in reversed(range(20)):
        d_v = d_v + DT * d_x
        d_k = d_k - DT * d_v * xs[t]
        d_x = d_x - DT * d_v * k
    return d_k, d_x


def test_a_module_constant_is_a_number_to_the_compiler():
    df = srcgrad.grad(spring, wrt=(0, 1))
    np.testing.assert_allclose(df(2.0, 1.0), spring_by_hand(2.0, 1.0), rtol=1e-12)
    text = srcgrad.source(df)
    for clutter in ("unbroadcast", "zeros_like", "scalar_seed", "shape"):
        assert clutter not in text


def test_another_number_reuses_the_code_and_an_array_compiles_again(compiles):
    global DT
    df = srcgrad.grad(spring, wrt=0)
    old = DT
    try:
        first = df(2.0, 1.0)
        DT = 0.02
        np.testing.assert_allclose(df(2.0, 1.0), spring_by_hand(2.0, 1.0)[0], rtol=1e-12)
        assert first != df(2.0, 1.0) and compiles == ["spring"]
        DT = np.array([0.01, 0.02])                  # now the result is an array: refused
        with pytest.raises(srcgrad.SrcgradError):
            df(2.0, 1.0)
        assert len(compiles) == 2
    finally:
        DT = old


def scaled(x):
    return np.sum(SCALE * x ** 2)


def test_an_array_constant_keeps_its_size_one_dimensions(compiles):
    global SCALE
    df = srcgrad.grad(scaled)
    x = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.5]])
    old = SCALE
    try:
        np.testing.assert_allclose(df(x), 2 * SCALE * x)
        SCALE = np.array([[2.0], [3.0]])             # another pattern of size-1 dimensions
        np.testing.assert_allclose(df(x), 2 * SCALE * x)
        SCALE = np.array([4.0, 5.0, 6.0])            # the first pattern again: same kind
        np.testing.assert_allclose(df(x), 2 * SCALE * x)
        SCALE = np.array([3.0])                      # size 1: broadcast, summed back
        np.testing.assert_allclose(df(x[:1]), 2 * SCALE * x[:1])
        assert len(compiles) == 4
    finally:
        SCALE = old


def make_decay(rate):
    def decay(x):
        y = x
        for _ in range(3):
            y = y - rate * y
        return np.sum(y)
    return decay


def test_a_closure_constant_is_a_number_to_the_compiler():
    df = srcgrad.grad(make_decay(0.5))
    assert df(2.0) == pytest.approx(0.125)
    assert "unbroadcast" not in srcgrad.source(df)
    df = srcgrad.grad(make_decay(np.array([0.5, 0.25])))     # an array: the code sums back
    np.testing.assert_allclose(df(2.0), np.sum([0.125, 0.75 ** 3]))


def rnn_from_constant(a, b, xs):
    h = H0
    for t in range(len(xs)):
        h = math.tanh(a * h + b * xs[t])
    return h


def test_the_adjoint_of_a_number_starts_at_zero():
    df = srcgrad.grad(rnn_from_constant, wrt=(0, 1))
    text = srcgrad.source(df, 0.5, 0.3, np.array([0.1, 0.2]))
    assert "d_a = 0.0" in text and "d_b = 0.0" in text
    assert "zeros_like" not in text and "unbroadcast" not in text
    a32 = np.float32(0.5)
    g = df(a32, 0.3, np.array([0.1, 0.2]))
    assert type(g[0]) is np.float32 and type(g[1]) is float


def grows(x, rate):
    y = x
    for _ in range(3):
        y = y - rate * y          # a number the first time, an array after
    return np.sum(y)


def test_a_self_update_whose_shape_grows_sums_back_to_the_old_shape():
    rate = np.array([0.5, 0.25])
    df = srcgrad.grad(grows)
    assert df(2.0, rate) == pytest.approx(np.sum((1 - rate) ** 3))
    d_rate = srcgrad.grad(grows, wrt=1)(2.0, rate)
    np.testing.assert_allclose(d_rate, -3 * 2.0 * (1 - rate) ** 2)


def rnn_range(a, b, xs):
    h = 0.0
    for t in range(len(xs)):
        h = math.tanh(a * h + b * xs[t])
    return h


def rnn_items(a, b, xs):
    h = H0
    for xt in xs:
        h = math.tanh(a * h + b * xt)
    return h


def rnn_zip(a, b, xs, ws):
    h = 0.0
    for xt, wt in zip(xs, ws):
        h = math.tanh(a * h + b * xt * wt)
    return h


def rnn_enumerate(a, b, xs):
    h = 0.0
    for t, xt in enumerate(xs):
        h = math.tanh(a * h + b * xt + 0.0 * t)
    return h


def rnn_reversed_twice(a, b, xs):
    h = 0.0
    for xt in reversed(list(reversed(xs))):
        h = math.tanh(a * h + b * xt)
    return h


def rnn_default(a, b, xs, h0=0.0, scale=1.0):
    h = h0
    for t in range(len(xs)):
        h = math.tanh(a * h + b * scale * xs[t])
    return h


def rnn_tuple_state(a, b, xs, state):
    h, c = state
    for xt in xs:
        h, c = math.tanh(a * h + b * xt + c), 0.5 * c
    return h


XS = [0.3, -0.2, 0.5, 0.1, -0.4]


@pytest.mark.parametrize("f, args", [
    (rnn_items, (XS,)), (rnn_items, (tuple(XS),)), (rnn_items, (np.array(XS),)),
    (rnn_zip, (XS, [1.0] * len(XS))), (rnn_enumerate, (XS,)), (rnn_reversed_twice, (XS,)),
    (rnn_default, (XS,)), (rnn_tuple_state, (XS, (0.0, 0.0))),
    (rnn_items, ([np.float32(x) for x in XS],)),
], ids=lambda v: getattr(v, "__name__", None))
def test_every_spelling_of_a_loop_over_numbers_is_scalar_code(f, args):
    df = srcgrad.grad(f, wrt=(0, 1))
    expected = srcgrad.grad(rnn_range, wrt=(0, 1))(0.7, 0.4, np.array(XS))
    np.testing.assert_allclose(df(0.7, 0.4, *args), expected, rtol=1e-6)
    text = srcgrad.source(df)
    for clutter in ("unbroadcast", "zeros_like", "scalar_seed", "shape"):
        assert clutter not in text, text
    if f is not rnn_tuple_state:      # (its `h, c = ...` still saves a temporary: issue 10)
        assert "= None" not in text and text.count("_stack = []") == 1   # h's old values


def mean_row_norm(w, rows):
    total = 0.0
    for row in rows:
        total = total + np.sum((row * w) ** 2)
    return total / len(rows)


@pytest.mark.parametrize("kind", [list, tuple, np.array])
def test_rows_of_arrays_have_the_rows_shape(kind):
    rng = np.random.default_rng(0)
    rows = [rng.normal(size=3) for _ in range(9)]     # a tuple of 9: a sequence, not a record
    w = rng.normal(size=3)
    df = srcgrad.grad(mean_row_norm)
    expected = sum(2 * row ** 2 * w for row in rows) / len(rows)
    np.testing.assert_allclose(df(w, kind(rows)), expected)
    assert "unbroadcast" not in srcgrad.source(df)


def mean_row_norm_again(w, rows):
    total = 0.0
    for row in rows:
        total = total + np.sum((row * w) ** 2)
    return total / len(rows)


def test_a_list_whose_elements_change_kind_compiles_again(compiles):
    df = srcgrad.grad(mean_row_norm_again)
    w = np.array([0.5, -1.0])
    assert df(w, [1.0, 2.0]) == pytest.approx(2 * w * 5.0 / 2)  # numbers broadcast over w
    rows = [np.array([1.0, 2.0]), np.array([3.0, -1.0])]
    np.testing.assert_allclose(df(w, rows), (2 * rows[0] ** 2 * w + 2 * rows[1] ** 2 * w) / 2)
    mixed = [1.0, np.array([3.0, -1.0])]
    np.testing.assert_allclose(df(w, mixed), (2 * w + 2 * mixed[1] ** 2 * w) / 2)
    assert len(compiles) == 3


def sum_of_squares(x):
    return sum(x ** 2)


def test_builtin_sum_over_an_array_is_a_number():
    x = np.linspace(-1.0, 1.0, 7)
    df = srcgrad.grad(sum_of_squares)
    np.testing.assert_allclose(df(x), 2 * x)
    text = srcgrad.source(df)
    assert "scalar_seed" not in text and "sum(x_sq)" not in text   # no forward sum for a seed


def rnn_default_again(a, b, xs, h0=0.0, scale=1.0):
    h = h0
    for t in range(len(xs)):
        h = math.tanh(a * h + b * scale * xs[t])
    return h


def test_default_arguments_are_known_and_passing_them_compiles_separately(compiles):
    df = srcgrad.grad(rnn_default_again, wrt=(0, 1))
    first = df(0.7, 0.4, XS)
    assert "unbroadcast" not in srcgrad.source(df)
    np.testing.assert_allclose(df(0.7, 0.4, XS, 0.0, 1.0), first)
    assert len(compiles) == 2


CFG = types.ModuleType("spring_config")
CFG.DT = 0.01


def spring_from_config(k, x0):
    x, v = x0, 0.0
    for _ in range(20):
        v = v + CFG.DT * (-k * x)
        x = x + CFG.DT * v
    return x * x * np.pi / np.pi


def test_a_constant_of_a_module_is_a_number_and_is_guarded(compiles):
    df = srcgrad.grad(spring_from_config, wrt=(0, 1))
    np.testing.assert_allclose(df(2.0, 1.0), spring_by_hand(2.0, 1.0), rtol=1e-12)
    assert "unbroadcast" not in srcgrad.source(df) and "shape" not in srcgrad.source(df)
    CFG.DT = np.array([0.01, 0.02])              # an array now: the code is compiled again
    try:
        with pytest.raises(srcgrad.SrcgradError):  # (and the result is no number: refused)
            df(2.0, 1.0)
        assert len(compiles) == 2
    finally:
        CFG.DT = 0.01
