"""Acceptance cases 1 and 3-9 from /work/shared/acceptance.md, in source mode.

Case 2 (the logistic neuron's binary cross-entropy) lives in tests/test_bce.py;
cases 10 and 11 are for tape mode. The tutorials printed 4 decimals of float32
results, so their numbers are compared at rtol=1e-4 (or within half of the last
printed decimal, for small values such as -0.1324); everything we can compute
exactly with numpy is compared more tightly.
"""
import math

import numpy as np
import pytest

import srcgrad
from srcgrad.testing import check_grads

TUTORIAL = dict(rel=1e-4, abs=5e-5)


def assert_like(g, x):
    """`g` has the type, shape and dtype of its argument `x` (a float for a float)."""
    if isinstance(x, np.ndarray):
        assert isinstance(g, np.ndarray), f"gradient is a {type(g).__name__}, expected ndarray"
        assert g.shape == x.shape
        assert g.dtype == x.dtype
    elif isinstance(x, np.generic):
        assert type(g) is type(x), f"gradient is a {type(g).__name__}, expected {type(x).__name__}"
    else:
        assert type(g) is float, f"gradient is a {type(g).__name__}, expected float"


# ---------------------------------------------------------------------------
# 1. Scalar derivatives


def square(x):
    y = x ** 2
    return y


def sin_square_math(x):
    z = math.sin(x ** 2)
    return z


def sin_square_numpy(x):
    z = np.sin(x ** 2)
    return z


@pytest.mark.parametrize("x, expected", [(5.0, 10.0), (3.0, 6.0), (2.0, 4.0)])
def test_case1_square(x, expected):
    g = srcgrad.grad(square)(x)
    assert g == pytest.approx(expected, **TUTORIAL)
    assert_like(g, x)


@pytest.mark.parametrize("fn", [sin_square_math, sin_square_numpy])
@pytest.mark.parametrize("x, value, expected", [(5.0, -0.1324, 9.9120), (3.0, 0.4121, -5.4668)])
def test_case1_sin_square(fn, x, value, expected):
    z, g = srcgrad.value_and_grad(fn)(x)
    assert z == pytest.approx(value, **TUTORIAL)
    assert g == pytest.approx(expected, **TUTORIAL)
    assert g == pytest.approx(2 * x * math.cos(x ** 2), rel=1e-12)
    assert_like(g, x)


@pytest.mark.parametrize("fn", [square, sin_square_numpy])
@pytest.mark.parametrize("x", [5, 5.0, np.float32(5.0), np.array(5.0), np.array(5.0, dtype=np.float32),
                               np.array([5.0], dtype=np.float32)])
def test_case1_argument_kinds(fn, x):
    g = srcgrad.grad(fn)(x)
    xf = np.asarray(x, dtype=float)
    expected = 2 * xf if fn is square else 2 * xf * np.cos(xf ** 2)
    rtol = 1e-6 if np.asarray(x).dtype == np.float32 else 1e-12
    np.testing.assert_allclose(g, expected, rtol=rtol)
    assert_like(g, float(x) if isinstance(x, int) else x)


@pytest.mark.parametrize("x", [
    np.float32(5.0),
    np.float64(5.0),
])
def test_case1_numpy_scalar_gradient_keeps_its_type(x):
    g = srcgrad.grad(square)(x)
    assert g == pytest.approx(10.0, rel=1e-6)
    assert type(g) is type(x)


@pytest.mark.parametrize("fn", [square, sin_square_math, sin_square_numpy])
@pytest.mark.parametrize("x", [5.0, 3.0, 2.0, -0.7])
def test_case1_finite_differences(fn, x):
    check_grads(fn, x)


# ---------------------------------------------------------------------------
# 3. Vector input


def mean_of_squares(x):
    y = np.mean(x ** 2)
    return y


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_case3_vector_mean(dtype):
    x = np.array([1.0, 2.0, 3.0], dtype=dtype)
    y, g = srcgrad.value_and_grad(mean_of_squares)(x)
    assert y == pytest.approx(4.6667, **TUTORIAL)
    np.testing.assert_allclose(g, [0.6667, 1.3333, 2.0], rtol=1e-4)
    np.testing.assert_allclose(g, 2 * x / 3, rtol=1e-6)
    assert_like(g, x)
    np.testing.assert_array_equal(x, np.array([1.0, 2.0, 3.0], dtype=dtype))  # not modified


def test_case3_finite_differences(rng):
    check_grads(mean_of_squares, rng.normal(size=7))
    check_grads(mean_of_squares, rng.normal(size=(2, 3)))


# ---------------------------------------------------------------------------
# 4. Chain through an intermediate vector


def chain_mean(x):
    y = x + 2
    z = y * y * 2
    out = np.mean(z)
    return out


@pytest.mark.parametrize("x, expected", [
    ([1.1131, -0.1259, 1.2902], [4.1508, 2.4988, 4.3869]),
    ([-1.2882, -0.1838], [1.4235, 3.6324]),
])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_case4_tutorial_numbers(x, expected, dtype):
    x = np.array(x, dtype=dtype)
    g = srcgrad.grad(chain_mean)(x)
    np.testing.assert_allclose(g, expected, rtol=1e-4)
    assert_like(g, x)


@pytest.mark.parametrize("n", [1, 2, 3, 10])
def test_case4_formula(rng, n):
    x = rng.normal(size=n)
    out, g = srcgrad.value_and_grad(chain_mean)(x)
    assert out == pytest.approx(np.mean(2 * (x + 2) ** 2), rel=1e-12)
    np.testing.assert_allclose(g, 4 * (x + 2) / n, rtol=1e-12)
    assert_like(g, x)
    check_grads(chain_mean, x)


# ---------------------------------------------------------------------------
# 5. Non-scalar output needs a seed vector


def chain_vector(x):
    y = x + 2
    z = y * y * 2
    return z


@pytest.mark.parametrize("make", [srcgrad.grad, srcgrad.value_and_grad])
def test_case5_plain_gradient_of_vector_output_is_a_clear_error(make):
    x = np.array([1.1131, -0.1259, 1.2902])
    with pytest.raises(srcgrad.SrcgradError) as info:
        make(chain_vector)(x)
    message = str(info.value)
    assert "scalar" in message
    assert "vjp" in message and "seed" in message
    assert "(3,)" in message  # names the output's shape


def test_case5_vjp_with_seed():
    x = np.array([1.1131, -0.1259, 1.2902])
    v = np.array([0.1, 1.0, 0.001])
    z, pullback = srcgrad.vjp(chain_vector, x)
    np.testing.assert_allclose(z, 2 * (x + 2) ** 2, rtol=1e-12)
    g = pullback(v)
    np.testing.assert_allclose(g, v * 4 * (x + 2), rtol=1e-12)
    assert_like(g, x)
    # the pullback can be called again with another seed
    np.testing.assert_allclose(pullback(np.ones(3)), 4 * (x + 2), rtol=1e-12)
    np.testing.assert_allclose(pullback(v), v * 4 * (x + 2), rtol=1e-12)


def test_case5_vjp_float32(rng):
    x = rng.normal(size=3).astype(np.float32)
    v = np.array([0.1, 1.0, 0.001], dtype=np.float32)
    z, pullback = srcgrad.vjp(chain_vector, x)
    assert z.dtype == np.float32
    g = pullback(v)
    np.testing.assert_allclose(g, v * 4 * (x + 2), rtol=1e-5)
    assert_like(g, x)


def test_case5_finite_differences(rng):
    x = rng.normal(size=3)
    check_grads(chain_vector, x, seed=np.array([0.1, 1.0, 0.001]))


@pytest.mark.parametrize("seed", [np.ones(2), np.ones((3, 1))])
def test_case5_seed_of_wrong_shape_is_a_clear_error(seed):
    x = np.array([1.1131, -0.1259, 1.2902])
    _, pullback = srcgrad.vjp(chain_vector, x)
    with pytest.raises(srcgrad.SrcgradError, match="seed"):
        pullback(seed)


# ---------------------------------------------------------------------------
# 6. A small graph with four leaves


def four_leaves(a, b, c, d):
    e = a + b
    f = c * d
    g = e * f
    return g


def four_leaves_sum(a, b, c, d):
    e = a + b
    f = c * d
    g = e * f
    return np.sum(g)


def four_leaves_item(a, b, c, d):
    e = a + b
    f = c * d
    g = e * f
    return g[0]


LEAVES = dict(a=2.0, b=-4.0, c=-2.0, d=2.0)
LEAF_GRADS = (-4.0, -4.0, -4.0, 4.0)


@pytest.mark.parametrize("fn", [four_leaves, four_leaves_sum, four_leaves_item])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_case6_four_leaves(fn, dtype):
    args = [np.array([v], dtype=dtype) for v in LEAVES.values()]
    value, grads = srcgrad.value_and_grad(fn, wrt=("a", "b", "c", "d"))(*args)
    assert np.ravel(value)[0] == pytest.approx(8.0)
    assert isinstance(grads, tuple) and len(grads) == 4
    for g, x, expected in zip(grads, args, LEAF_GRADS):
        assert g.shape == (1,)
        assert_like(g, x)
        np.testing.assert_allclose(g, [expected], rtol=1e-12)


def test_case6_by_index_and_one_at_a_time():
    args = [np.array([v]) for v in LEAVES.values()]
    assert all(np.array_equal(g, [e]) for g, e in
               zip(srcgrad.grad(four_leaves, wrt=(0, 1, 2, 3))(*args), LEAF_GRADS))
    for name, expected in zip(LEAVES, LEAF_GRADS):
        g = srcgrad.grad(four_leaves, wrt=name)(*args)
        assert isinstance(g, np.ndarray) and g.shape == (1,)
        np.testing.assert_allclose(g, [expected], rtol=1e-12)


def test_case6_vjp_with_one_element_seed():
    args = [np.array([v]) for v in LEAVES.values()]
    g_value, pullback = srcgrad.vjp(four_leaves, *args, wrt=("a", "b", "c", "d"))
    np.testing.assert_allclose(g_value, [8.0])
    grads = pullback(np.ones(1))
    for g, expected in zip(grads, LEAF_GRADS):
        np.testing.assert_allclose(g, [expected], rtol=1e-12)
        assert g.shape == (1,)


def test_case6_finite_differences(rng):
    args = [rng.normal(size=1) for _ in range(4)]
    check_grads(four_leaves_sum, *args, wrt=(0, 1, 2, 3))


# ---------------------------------------------------------------------------
# 7. Logistic layer with a matrix product


def binary_cross_entropy_with_logits(z, y):
    return np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))


def logistic_layer(w, b, x, y):
    z = x @ w + b
    loss = binary_cross_entropy_with_logits(z, y)
    return loss


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def reference_bce(z, y):
    p = sigmoid(z)
    return np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p)))


def assert_layer_gradients(w, b, x, y, rtol):
    loss, (dw, db) = srcgrad.value_and_grad(logistic_layer, wrt=("w", "b"))(w, b, x, y)
    z = x.astype(float) @ w.astype(float) + b.astype(float)
    expected = sigmoid(z) / 3
    assert loss == pytest.approx(reference_bce(z, y.astype(float)), rel=rtol)
    np.testing.assert_allclose(db, expected, rtol=rtol)
    for row in dw:
        np.testing.assert_allclose(row, expected, rtol=rtol)
    assert_like(dw, w)
    assert_like(db, b)
    return loss, dw, db


def test_case7_every_row_of_dw_equals_db(rng):
    w = rng.normal(size=(5, 3))
    b = rng.normal(size=3)
    assert_layer_gradients(w, b, np.ones(5), np.zeros(3), rtol=1e-12)


def test_case7_float32(rng):
    w = rng.normal(size=(5, 3)).astype(np.float32)
    b = rng.normal(size=3).astype(np.float32)
    assert_layer_gradients(w, b, np.ones(5, dtype=np.float32), np.zeros(3, dtype=np.float32), rtol=1e-5)


def test_case7_tutorial_numbers(rng):
    # choose b so that sigmoid(z) / 3 is what the tutorial printed for its random w, b
    printed = np.array([0.0785, 0.0115, 0.0034])
    w = rng.normal(size=(5, 3))
    x = np.ones(5)
    target_z = np.log(3 * printed / (1 - 3 * printed))
    b = target_z - x @ w
    _, dw, db = assert_layer_gradients(w, b, x, np.zeros(3), rtol=1e-9)
    np.testing.assert_allclose(db, printed, rtol=1e-4)
    np.testing.assert_allclose(dw, np.tile(printed, (5, 1)), rtol=1e-4)


def test_case7_nonzero_targets_and_finite_differences(rng):
    w = rng.normal(size=(5, 3))
    b = rng.normal(size=3)
    x = rng.normal(size=5)
    y = np.array([1.0, 0.0, 1.0])
    _, (dw, db) = srcgrad.value_and_grad(logistic_layer, wrt=("w", "b"))(w, b, x, y)
    z = x @ w + b
    np.testing.assert_allclose(db, (sigmoid(z) - y) / 3, rtol=1e-10)
    np.testing.assert_allclose(dw, np.outer(x, (sigmoid(z) - y) / 3), rtol=1e-10)
    check_grads(logistic_layer, w, b, x, y, wrt=("w", "b"))


def test_case7_zero_initialised_layer():
    w = np.zeros((5, 3))
    b = np.zeros(3)
    _, dw, db = assert_layer_gradients(w, b, np.ones(5), np.zeros(3), rtol=1e-12)
    np.testing.assert_allclose(db, [1 / 6] * 3)


# ---------------------------------------------------------------------------
# 8. Linear regression step


def squared_error(w, x, y):
    y_hat = w * x
    loss = (y_hat - y) ** 2
    return loss


def test_case8_one_step():
    loss, dw = srcgrad.value_and_grad(squared_error)(1.0, 1.0, 2.0)
    assert loss == pytest.approx(1.0, **TUTORIAL)
    assert dw == pytest.approx(-2.0, **TUTORIAL)
    assert type(dw) is float
    dw_by_name = srcgrad.grad(squared_error, wrt="w")(1.0, 1.0, 2.0)
    assert dw_by_name == dw


def test_case8_gradient_descent_converges():
    step = srcgrad.value_and_grad(squared_error, wrt="w")
    w, x, y, lr = 1.0, 1.0, 2.0, 0.1
    losses = []
    for _ in range(200):
        loss, dw = step(w, x, y)
        losses.append(loss)
        if loss < 1e-6:
            break
        w -= lr * dw
    assert losses[-1] < 1e-6
    assert len(losses) < 200
    assert all(later < earlier for earlier, later in zip(losses, losses[1:]))
    assert w == pytest.approx(2.0, abs=1e-3)


def test_case8_finite_differences(rng):
    for w, x, y in rng.normal(size=(5, 3)):
        check_grads(squared_error, w, x, y, wrt=(0, 1, 2))


# ---------------------------------------------------------------------------
# 9. Stopping gradients


def cube_no_grad(x):
    with srcgrad.no_grad():
        y = x ** 2
    z = x * y
    return z


def cube_stop_gradient(x):
    y = srcgrad.stop_gradient(x ** 2)
    z = x * y
    return z


def cube(x):
    y = x ** 2
    z = x * y
    return z


def cube_no_grad_array(x):
    with srcgrad.no_grad():
        y = x ** 2
        s = np.sum(y)
    z = np.sum(x * y) + s
    return z


@pytest.mark.parametrize("fn, expected", [(cube_no_grad, 4.0), (cube_stop_gradient, 4.0), (cube, 12.0)])
def test_case9_stopping_gradients(fn, expected):
    z, g = srcgrad.value_and_grad(fn)(2.0)
    assert z == pytest.approx(8.0)
    assert g == pytest.approx(expected, rel=1e-12)
    assert_like(g, 2.0)


def test_case9_stop_gradient_is_identity_outside_grad():
    assert srcgrad.stop_gradient(3.0) == 3.0
    assert cube_stop_gradient(2.0) == 8.0
    assert cube_no_grad(2.0) == 8.0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_case9_no_grad_block_with_arrays(dtype):
    x = np.array([1.0, -2.0, 0.5], dtype=dtype)
    z, g = srcgrad.value_and_grad(cube_no_grad_array)(x)
    assert z == pytest.approx(np.sum(x ** 3) + np.sum(x ** 2), rel=1e-6)
    np.testing.assert_allclose(g, x ** 2, rtol=1e-6)  # y and s are constants
    assert_like(g, x)
