"""Acceptance cases 1-11 from /work/shared/acceptance.md, in tape mode.

Written the way the PyTorch tutorials wrote them: make leaves with
requires_grad=True, compute, call backward(), read .grad. The tutorials
printed 4 decimals of float32 results: their numbers are compared at
rtol=1e-4 (or within half of the last printed decimal); what numpy can
compute exactly is compared tightly. The same user functions also run
through the compiler (srcgrad.grad), and the two engines must agree.
"""
import math
import zlib

import numpy as np
import pytest

import srcgrad
from srcgrad import tape

TUTORIAL = dict(rel=1e-4, abs=5e-5)


def leaf(value, dtype=None):
    return tape.tensor(np.asarray(value, dtype=dtype) if dtype else value, requires_grad=True)


# ---------------------------------------------------------------------------
# 1. Scalar derivatives


@pytest.mark.parametrize("x0, expected", [(5.0, 10.0), (3.0, 6.0), (2.0, 4.0)])
def test_case1_square(x0, expected):
    x = leaf(x0)
    y = x ** 2
    y.backward()
    assert x.grad.item() == pytest.approx(expected, **TUTORIAL)
    assert x.grad.shape == () and x.grad.dtype == np.float64
    assert repr(y) == f"tensor({x0 ** 2:.0f}., grad_fn=<PowBackward>)"


@pytest.mark.parametrize("x0, value, expected", [(5.0, -0.1324, 9.9120), (3.0, 0.4121, -5.4668)])
def test_case1_sin_square(x0, value, expected):
    x = leaf(x0)
    z = np.sin(x ** 2)
    z.backward()
    assert z.item() == pytest.approx(value, **TUTORIAL)
    assert x.grad.item() == pytest.approx(expected, **TUTORIAL)
    assert x.grad.item() == pytest.approx(2 * x0 * math.cos(x0 ** 2), rel=1e-12)
    assert repr(z) == f"tensor({value:.4f}, grad_fn=<SinBackward>)"


def test_case1_float32_leaf_keeps_float32_gradient():
    x = leaf(5.0, np.float32)
    (x ** 2).backward()
    assert x.grad.dtype == np.float32
    assert x.grad.item() == pytest.approx(10.0)


# ---------------------------------------------------------------------------
# 2. Binary cross-entropy of one logistic neuron


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def bce_numpy(w, b, x, y):
    z = w * x + b
    y_pred = 1 / (1 + np.exp(-z))
    p = np.clip(y_pred, 1e-8, 1 - 1e-8)
    loss = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    return loss


def bce_helper(w, b, x, y):
    z = w * x + b
    y_pred = sigmoid(z)
    p = np.clip(y_pred, 1e-8, 1 - 1e-8)
    loss = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    return loss


def bce_methods(w, b, x, y):  # PyTorch spelling: methods on the tensor
    z = w * x + b
    y_pred = 1 / (1 + (-z).exp())
    p = y_pred.clamp(1e-8, 1 - 1e-8)
    return -(y * p.log() + (1 - y) * (1 - p).log())


@pytest.mark.parametrize("loss_fn", [bce_numpy, bce_helper, bce_methods])
def test_case2_bce(loss_fn):
    w, b = leaf(1.0), leaf(0.0)
    loss = loss_fn(w, b, 6.7, 0.0)
    loss.backward()
    assert loss.item() == pytest.approx(6.7012, **TUTORIAL)
    assert w.grad.item() == pytest.approx(6.6918, **TUTORIAL)
    assert b.grad.item() == pytest.approx(0.9988, **TUTORIAL)
    # the tutorial's hand derivation
    y_pred = 1 / (1 + math.exp(-6.7))
    dloss_dy_pred = (y_pred - 0.0) / (y_pred * (1 - y_pred))
    dy_pred_dz = y_pred * (1 - y_pred)
    assert w.grad.item() == pytest.approx(dloss_dy_pred * dy_pred_dz * 6.7, rel=1e-10)
    assert b.grad.item() == pytest.approx(dloss_dy_pred * dy_pred_dz, rel=1e-10)


@pytest.mark.parametrize("loss_fn", [bce_numpy, bce_helper])
def test_case2_same_function_in_both_modes(loss_fn):
    dw, db = srcgrad.grad(loss_fn, wrt=("w", "b"))(1.0, 0.0, 6.7, 0.0)
    w, b = leaf(1.0), leaf(0.0)
    loss_fn(w, b, 6.7, 0.0).backward()
    assert w.grad.item() == pytest.approx(dw, rel=1e-10)
    assert b.grad.item() == pytest.approx(db, rel=1e-10)


# ---------------------------------------------------------------------------
# 3. Vector input


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_case3_vector_mean(dtype):
    x = leaf([1.0, 2.0, 3.0], dtype)
    y = np.mean(x ** 2)
    y.backward()
    assert y.item() == pytest.approx(4.6667, **TUTORIAL)
    np.testing.assert_allclose(x.grad.data, [0.6667, 1.3333, 2.0], rtol=1e-4)
    assert x.grad.dtype == dtype
    assert repr(x) == "tensor([1., 2., 3.], requires_grad=True)"
    assert repr(x.grad) == "tensor([0.6667, 1.3333, 2.0000])"
    assert repr(y) == "tensor(4.6667, grad_fn=<MeanBackward>)"


def test_case3_method_spelling():
    x = leaf([1.0, 2.0, 3.0])
    (x ** 2).mean().backward()
    np.testing.assert_allclose(x.grad.data, 2 * np.array([1.0, 2.0, 3.0]) / 3, rtol=1e-12)


# ---------------------------------------------------------------------------
# 4. Chain through an intermediate vector


def chain_mean(x):
    y = x + 2
    z = y * y * 2
    out = np.mean(z)
    return out


@pytest.mark.parametrize("x0, expected", [
    ([1.1131, -0.1259, 1.2902], [4.1508, 2.4988, 4.3869]),
    ([-1.2882, -0.1838], [1.4235, 3.6324]),
])
def test_case4_chain(x0, expected):
    x = leaf(x0)
    out = chain_mean(x)
    out.backward()
    np.testing.assert_allclose(x.grad.data, expected, rtol=1e-4)
    np.testing.assert_allclose(x.grad.data, 4 * (np.array(x0) + 2) / len(x0), rtol=1e-12)
    np.testing.assert_allclose(x.grad.data, srcgrad.grad(chain_mean)(np.array(x0)), rtol=1e-12)


# ---------------------------------------------------------------------------
# 5. Non-scalar output needs a seed vector


def chain_vector(x):
    y = x + 2
    z = y * y * 2
    return z


def test_case5_backward_of_a_vector_needs_a_seed():
    x = leaf([1.1131, -0.1259, 1.2902])
    z = chain_vector(x)
    with pytest.raises(srcgrad.SrcgradError) as info:
        z.backward()
    message = str(info.value)
    assert "grad can be implicitly created only for scalar outputs" in message
    assert "(3,)" in message and "gradient=" in message
    assert x.grad is None


def test_case5_vector_jacobian_product():
    x0 = np.array([1.1131, -0.1259, 1.2902])
    v = np.array([0.1, 1.0, 0.001])
    x = leaf(x0)
    z = chain_vector(x)
    z.backward(gradient=v)
    np.testing.assert_allclose(x.grad.data, v * 4 * (x0 + 2), rtol=1e-12)
    np.testing.assert_allclose(x.grad.data, [1.2452, 7.4964, 0.0132], rtol=1e-4, atol=5e-5)
    _, pullback = srcgrad.vjp(chain_vector, x0)
    np.testing.assert_allclose(x.grad.data, pullback(v), rtol=1e-12)


def test_case5_seed_of_the_wrong_shape():
    z = chain_vector(leaf([1.0, 2.0, 3.0]))
    with pytest.raises(srcgrad.SrcgradError, match="shape"):
        z.backward(gradient=np.ones(2))


# ---------------------------------------------------------------------------
# 6. A small graph with four leaves


def four_leaves(a, b, c, d):
    e = a + b
    f = c * d
    g = e * f
    return g


def test_case6_four_leaves():
    a, b, c, d = (leaf([v]) for v in (2.0, -4.0, -2.0, 2.0))
    g = four_leaves(a, b, c, d)
    g.backward()  # one element: no seed needed, as in PyTorch
    assert repr(g) == "tensor([8.], grad_fn=<MulBackward>)"
    for t, expected in zip((a, b, c, d), (-4.0, -4.0, -4.0, 4.0)):
        assert t.grad.shape == (1,)
        np.testing.assert_array_equal(t.grad.data, [expected])
    args = [np.array([v]) for v in (2.0, -4.0, -2.0, 2.0)]
    compiled = srcgrad.grad(four_leaves, wrt=(0, 1, 2, 3))(*args)
    for t, c in zip((a, b, c, d), compiled):
        np.testing.assert_array_equal(t.grad.data, c)


def test_case6_intermediates_with_retain_grad():
    a, b, c, d = (leaf([v]) for v in (2.0, -4.0, -2.0, 2.0))
    e = a + b
    f = c * d
    e.retain_grad()
    f.retain_grad()
    g = e * f
    g.backward()
    np.testing.assert_array_equal(e.grad.data, [-4.0])  # dg/de = f
    np.testing.assert_array_equal(f.grad.data, [-2.0])  # dg/df = e


# ---------------------------------------------------------------------------
# 7. Logistic layer with a matrix product


def binary_cross_entropy_with_logits(z, y):
    return np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))


def logistic_layer(w, b, x, y):
    z = x @ w + b
    loss = binary_cross_entropy_with_logits(z, y)
    return loss


def test_case7_logistic_layer():
    printed = np.array([0.0785, 0.0115, 0.0034])
    w0 = np.random.default_rng(7).normal(size=(5, 3))
    x, y = np.ones(5), np.zeros(3)
    b0 = np.log(3 * printed / (1 - 3 * printed)) - x @ w0  # so that sigmoid(z) / 3 is what was printed
    w, b = leaf(w0), leaf(b0)
    loss = logistic_layer(w, b, x, y)
    loss.backward()
    np.testing.assert_allclose(b.grad.data, printed, rtol=1e-4)
    for row in w.grad.data:
        np.testing.assert_allclose(row, b.grad.data, rtol=1e-12)
    dw, db = srcgrad.grad(logistic_layer, wrt=("w", "b"))(w0, b0, x, y)
    np.testing.assert_allclose(w.grad.data, dw, rtol=1e-12)
    np.testing.assert_allclose(b.grad.data, db, rtol=1e-12)


# ---------------------------------------------------------------------------
# 8. Linear regression step


def test_case8_linear_regression():
    x, y = tape.tensor(1.0), tape.tensor(2.0)
    w = leaf(1.0)
    loss = (w * x - y) ** 2
    loss.backward()
    assert loss.item() == pytest.approx(1.0)
    assert w.grad.item() == pytest.approx(-2.0)
    w.grad.zero_()
    losses = []
    for _ in range(200):
        loss = (w * x - y) ** 2
        losses.append(loss.item())
        if loss.item() < 1e-6:
            break
        loss.backward()
        with srcgrad.no_grad():
            w -= 0.1 * w.grad
        w.grad.zero_()
    assert losses[-1] < 1e-6 and len(losses) < 200
    assert all(later < earlier for earlier, later in zip(losses, losses[1:]))
    assert w.is_leaf and w.requires_grad  # the update kept w a leaf
    assert w.item() == pytest.approx(2.0, abs=1e-3)


# ---------------------------------------------------------------------------
# 9. Stopping gradients


def test_case9_no_grad_block():
    x = leaf(2.0)
    with srcgrad.no_grad():
        y = x ** 2
    assert not y.requires_grad and y.grad_fn is None
    z = x * y
    z.backward()
    assert x.grad.item() == pytest.approx(4.0)  # not 12: y is a constant
    with pytest.raises(srcgrad.SrcgradError, match="does not require grad"):
        y.backward()


def test_case9_detach_shares_data_not_history():
    x = leaf(2.0)
    d = x.detach()
    assert d.data is x.data and not d.requires_grad and d.grad_fn is None and d.is_leaf
    z = x * d ** 2
    z.backward()
    assert x.grad.item() == pytest.approx(4.0)
    with pytest.raises(srcgrad.SrcgradError, match="does not require grad"):
        (d * 3).backward()
    with srcgrad.no_grad():
        x += 1  # an in-place update of x shows through the detached tensor
    assert d.item() == 3.0


def test_case9_requires_grad_false():
    x = leaf([1.0, 2.0])
    x.requires_grad_(False)
    y = (x * 2).sum()
    assert not y.requires_grad and y.grad_fn is None
    with pytest.raises(srcgrad.SrcgradError) as info:
        y.backward()
    assert "no_grad" in str(info.value) and "requires_grad" in str(info.value)


def test_case9_no_grad_is_shared_with_source_mode():
    assert tape.no_grad is srcgrad.no_grad
    assert srcgrad.api.is_grad_enabled()
    with srcgrad.no_grad():
        assert not srcgrad.api.is_grad_enabled()
    assert srcgrad.api.is_grad_enabled()


# ---------------------------------------------------------------------------
# 10. Gradient accumulation


@pytest.mark.parametrize("factor, steps", [(10, 10), (3, 2)])
def test_case10_gradients_accumulate(factor, steps):
    weights = tape.tensor(np.ones(4), requires_grad=True)
    for step in range(1, steps + 1):
        out = (weights * factor).sum()
        out.backward()
        np.testing.assert_array_equal(weights.grad.data, [factor * step] * 4)


@pytest.mark.parametrize("factor, steps", [(10, 10), (3, 2)])
def test_case10_zero_grad_between_steps(factor, steps):
    weights = tape.tensor(np.ones(4), requires_grad=True)
    for _ in range(steps):
        out = (weights * factor).sum()
        out.backward()
        np.testing.assert_array_equal(weights.grad.data, [factor] * 4)
        weights.grad.zero_()
        np.testing.assert_array_equal(weights.grad.data, [0.0] * 4)


def test_case10_prints_like_the_tutorial():
    weights = tape.tensor(np.ones(4), requires_grad=True)
    printed = []
    for _ in range(3):
        (weights * 10).sum().backward()
        printed.append(repr(weights.grad))
    assert printed == ["tensor([10., 10., 10., 10.])", "tensor([20., 20., 20., 20.])",
                       "tensor([30., 30., 30., 30.])"]


# ---------------------------------------------------------------------------
# 11. What tape mode prints


def test_case11_printing():
    x = tape.tensor(5.0, requires_grad=True)
    y = x ** 2
    assert repr(y) == "tensor(25., grad_fn=<PowBackward>)"
    assert repr(tape.tensor([1.0, 2.0, 3.0], requires_grad=True)) == "tensor([1., 2., 3.], requires_grad=True)"
    assert repr(np.sin(y)) == "tensor(-0.1324, grad_fn=<SinBackward>)"
    assert str(y) == repr(y)
    assert repr(y.grad_fn) == "<PowBackward>" and y.grad_fn.name() == "PowBackward"


@pytest.mark.parametrize("make, name", [
    (lambda x: x * 2, "MulBackward"), (lambda x: x + 2, "AddBackward"), (lambda x: x - 2, "SubBackward"),
    (lambda x: x / 2, "DivBackward"), (lambda x: x ** 2, "PowBackward"), (lambda x: -x, "NegBackward"),
    (lambda x: x.sum(), "SumBackward"), (lambda x: np.mean(x), "MeanBackward"),
    (lambda x: np.sin(x), "SinBackward"), (lambda x: np.exp(x), "ExpBackward"),
    (lambda x: x[0], "IndexBackward"), (lambda x: abs(x), "AbsBackward"),
    (lambda x: x @ x, "MatmulBackward"), (lambda x: x.reshape(3, 1), "ReshapeBackward"),
    (lambda x: np.maximum(x, 0), "MaximumBackward"), (lambda x: np.ones(3) * x, "MulBackward"),
])
def test_case11_grad_fn_names_the_operation(make, name):
    assert repr(make(leaf([1.0, 2.0, 3.0])).grad_fn) == f"<{name}>"


def test_case11_intermediate_grad_is_not_kept_unless_asked():
    x = leaf([1.0, 2.0, 3.0])
    y = x * 2
    z = (y ** 2).sum()
    z.backward()
    assert x.grad is not None and x.is_leaf and not y.is_leaf
    with pytest.warns(UserWarning, match="retain_grad"):
        assert y.grad is None
    x2 = leaf([1.0, 2.0, 3.0])
    y2 = x2 * 2
    y2.retain_grad()
    (y2 ** 2).sum().backward()
    assert repr(y2.grad) == "tensor([ 4.,  8., 12.])"


# ---------------------------------------------------------------------------
# One user function, two engines


def tanh_layer(x, w):
    return np.sum(np.tanh(x @ w) ** 2)


def mean_square_error(w, b, x, y):
    return np.mean((x @ w + b - y) ** 2)


def softmax_cross_entropy(w, x, labels):
    z = x @ w
    z = z - np.max(z, axis=1, keepdims=True)
    log_p = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.mean(np.sum(labels * log_p, axis=1))


def pieces(a, b):
    c = np.concatenate([a, b * 2], axis=0)
    d = np.where(c > 0, c, 0.1 * c)
    return np.sum(np.clip(d, -0.5, 0.5) * np.stack([c, c], axis=1)[:, 0]) + a[1:, ::-1].mean() + np.sum(c.T[0])


def make_args(rng, name):
    if name == "tanh_layer":
        return [rng.normal(size=(4, 3)), rng.normal(size=(3, 2))], (0, 1)
    if name == "mean_square_error":
        return [rng.normal(size=(3, 2)), rng.normal(size=2), rng.normal(size=(5, 3)),
                rng.normal(size=(5, 2))], (0, 1)
    if name == "softmax_cross_entropy":
        return [rng.normal(size=(3, 4)), rng.normal(size=(5, 3)), np.eye(4)[[0, 1, 3, 2, 1]]], (0,)
    return [rng.normal(size=(2, 3)), rng.normal(size=(3, 3))], (0, 1)


@pytest.mark.parametrize("fn", [tanh_layer, mean_square_error, softmax_cross_entropy, pieces,
                                chain_mean, logistic_layer, binary_cross_entropy_with_logits],
                         ids=lambda f: f.__name__)
def test_same_unmodified_function_in_both_modes(fn):
    rng = np.random.default_rng(zlib.crc32(fn.__name__.encode()))
    if fn is chain_mean:
        args, wrt = [rng.normal(size=5)], (0,)
    elif fn is logistic_layer:
        args, wrt = [rng.normal(size=(5, 3)), rng.normal(size=3), rng.normal(size=5), np.zeros(3)], (0, 1)
    elif fn is binary_cross_entropy_with_logits:
        args, wrt = [rng.normal(size=4), (rng.uniform(size=4) > 0.5).astype(float)], (0,)
    else:
        args, wrt = make_args(rng, fn.__name__)
    compiled = srcgrad.grad(fn, wrt=wrt)(*args)
    tensors = [tape.tensor(a, requires_grad=i in wrt) for i, a in enumerate(args)]
    out = fn(*tensors)
    out.backward()
    assert out.item() == pytest.approx(fn(*args), rel=1e-12)
    for i, expected in zip(wrt, compiled):
        np.testing.assert_allclose(tensors[i].grad.data, expected, rtol=1e-10, atol=1e-12)
