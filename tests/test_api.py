"""The public API contract: wrt forms, decorators, types, caching, errors, tracebacks."""
import inspect
import linecache
import math
import traceback

import numpy as np
import pytest

import srcgrad
from srcgrad.compiler import parse


def poly(x, y, scale=2.0):
    return scale * x ** 3 + x * y


@srcgrad.grad
def d_square(x):
    return x * x


@srcgrad.grad(wrt=("w", "b"))
def d_affine(w, b, x):
    return np.sum(w * x + b)


def test_wrt_forms():
    assert srcgrad.grad(poly)(2.0, 5.0) == pytest.approx(29.0)
    assert srcgrad.grad(poly, wrt=1)(2.0, 5.0) == pytest.approx(2.0)
    assert srcgrad.grad(poly, wrt="y")(2.0, 5.0) == pytest.approx(2.0)
    dx, dy = srcgrad.grad(poly, wrt=("x", 1))(2.0, 5.0)
    assert (dx, dy) == (pytest.approx(29.0), pytest.approx(2.0))
    (dscale,) = srcgrad.grad(poly, wrt=("scale",))(2.0, 5.0, scale=3.0)
    assert dscale == pytest.approx(8.0)
    assert srcgrad.grad(poly, wrt=-1)(2.0, 5.0, 1.0) == pytest.approx(8.0)


def test_keyword_and_default_arguments():
    df = srcgrad.grad(poly)
    assert df(x=2.0, y=5.0) == pytest.approx(29.0)
    assert df(2.0, y=5.0, scale=1.0) == pytest.approx(17.0)


def test_decorator_forms():
    assert d_square(3.0) == 6.0
    dw, db = d_affine(np.ones(3), 0.5, np.arange(3.0))
    np.testing.assert_allclose(dw, np.arange(3.0))
    assert db == pytest.approx(3.0) and type(db) is float
    assert d_square.__wrapped__(3.0) == 9.0


def test_bad_wrt_is_a_clear_error():
    with pytest.raises(srcgrad.SrcgradError, match="not a parameter"):
        srcgrad.grad(poly, wrt="z")
    with pytest.raises(srcgrad.SrcgradError, match="out of range"):
        srcgrad.grad(poly, wrt=5)
    with pytest.raises(srcgrad.SrcgradError, match="float"):
        srcgrad.grad(poly)([1.0], 2.0)


@pytest.mark.parametrize("x", [2.0, 2, np.float32(2.0), np.float64(2.0), np.array(2.0),
                               np.array([1.0, 2.0], dtype=np.float32), np.arange(6.0).reshape(2, 3)])
def test_gradient_has_the_arguments_type_shape_and_dtype(x):
    g = srcgrad.grad(lambda_free_square)(x)
    if type(x) in (float, int):
        assert type(g) is float
    else:
        assert np.shape(g) == np.shape(x)
        expected = x.dtype if np.issubdtype(np.asarray(x).dtype, np.floating) else np.float64
        assert np.asarray(g).dtype == expected
        assert type(g) is type(x) or (isinstance(x, np.integer) or x.dtype.kind == "i")
    np.testing.assert_allclose(g, 2 * np.asarray(x, dtype=float), rtol=1e-6)


def lambda_free_square(x):
    return np.sum(x * x)


def test_value_and_grad():
    value, g = srcgrad.value_and_grad(poly)(2.0, 5.0)
    assert value == pytest.approx(26.0) and g == pytest.approx(29.0)


def test_vjp_gives_vector_jacobian_products():
    def f(x, w):
        return np.tanh(x @ w)
    rng = np.random.default_rng(0)
    x, w, seed = rng.normal(size=(4, 3)), rng.normal(size=(3, 2)), rng.normal(size=(4, 2))
    value, pullback = srcgrad.vjp(f, x, w, wrt=(0, 1))
    np.testing.assert_allclose(value, np.tanh(x @ w))
    dx, dw = pullback(seed)
    d_pre = seed * (1 - value ** 2)
    np.testing.assert_allclose(dx, d_pre @ w.T)
    np.testing.assert_allclose(dw, x.T @ d_pre)


def test_non_scalar_output_needs_a_seed():
    def f(x):
        return x * 2
    with pytest.raises(srcgrad.SrcgradError, match="vjp") as info:
        srcgrad.grad(f)(np.ones(3))
    assert "scalar" in str(info.value)


def test_grad_is_cached_and_not_reparsed(monkeypatch):
    df = srcgrad.grad(poly, wrt=("x", "y"))
    df(1.0, 2.0)
    calls = []
    monkeypatch.setattr(parse, "_parse", lambda *a: calls.append(a))
    assert srcgrad.grad(poly, wrt=("x", "y")) is df
    before = dict(df._compiled)
    df(3.0, 4.0)
    assert calls == [] and df._compiled == before


def cube_sum(x):
    return np.sum(x ** 3)


def test_specialisations_are_cached_per_argument_kind():
    df = srcgrad.grad(cube_sum)
    df(1.0)
    df(np.ones(3))
    df(np.ones(4))  # same kind (a 1-D array): no new compilation
    kinds = list(df._compiled)
    assert len(kinds) == 2


def test_generated_code_is_in_linecache_and_tracebacks_show_it():
    def f(x):
        return np.sum(np.log(x))
    df = srcgrad.grad(f)
    df(np.ones(2))
    fn = df.last.function
    assert inspect.getsource(fn).strip().startswith("def grad_f(x):")
    assert linecache.getline(fn.__code__.co_filename, 2).strip().startswith("def grad_f")

    def g(x):
        return math.log(x)
    dg = srcgrad.grad(g)
    with pytest.raises(ValueError) as info:
        dg(-1.0)
    frames = traceback.extract_tb(info.value.__traceback__)
    generated = [fr for fr in frames if fr.filename.startswith("<srcgrad grad_g")]
    assert generated and "math.log" in generated[0].line


def test_inputs_are_never_modified():
    def f(x, w):
        y = x * 1.0
        y += w
        y *= 2
        return np.sum(y ** 2) + np.sum(x[0] * w)
    x, w = np.arange(6.0).reshape(2, 3), np.ones(3)
    x0, w0 = x.copy(), w.copy()
    dx, dw = srcgrad.grad(f, wrt=(0, 1))(x, w)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(w, w0)
    srcgrad.testing.check_grads(f, x, w, wrt=(0, 1))


def test_returned_gradients_are_writable_arrays():
    g = srcgrad.grad(lambda_free_sum)(np.ones((2, 3)))
    g += 1  # a read-only broadcast view would raise here
    np.testing.assert_array_equal(g, 2 * np.ones((2, 3)))


def lambda_free_sum(x):
    return np.sum(x)


def test_gradient_of_an_unused_argument_is_zero():
    def f(x, y):
        return x * 2.0
    dx, dy = srcgrad.grad(f, wrt=(0, 1))(1.0, np.ones(2))
    assert dx == 2.0
    np.testing.assert_array_equal(dy, np.zeros(2))


def test_closure_variables_are_constants_and_read_live():
    scale = 3.0

    def f(x):
        return scale * x * x

    df = srcgrad.grad(f)
    assert df(1.0) == 6.0
    scale = 5.0  # noqa: F841 - the closure cell changes; the gradient follows it
    assert df(1.0) == 10.0


def test_source_without_a_call_is_generic():
    df = srcgrad.grad(poly, wrt="y")
    text = srcgrad.source(df)
    assert text.startswith("def grad_poly(x, y, scale=2.0):")
    with pytest.raises(srcgrad.SrcgradError):
        srcgrad.source(poly)
