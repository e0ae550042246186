"""Tape mode's engine: tensors, recording, backward, errors, printing.

The acceptance cases are in test_tape_acceptance.py; every registry rule is
walked through the tape in test_tape_rules.py.
"""
import math
import sys
import time

import numpy as np
import pytest

import srcgrad
from srcgrad import SrcgradError, tape
from srcgrad.rules import registry

engine = sys.modules["srcgrad.tape.tensor"]  # `tape.tensor` is the constructor


def leaf(value):
    return tape.tensor(value, requires_grad=True)


# ---- making tensors


@pytest.mark.parametrize("data, dtype, shape", [
    (5.0, np.float64, ()), (5, np.float64, ()), ([1, 2, 3], np.float64, (3,)),
    (np.array([1.0, 2.0], dtype=np.float32), np.float32, (2,)), (np.float32(2.0), np.float32, ()),
    (np.arange(6).reshape(2, 3), np.float64, (2, 3)), ([True, False], np.bool_, (2,)),
])
def test_tensor_dtypes(data, dtype, shape):
    t = tape.tensor(data)
    assert isinstance(t.data, np.ndarray) and t.dtype == dtype and t.shape == shape
    assert t.ndim == len(shape) and t.size == int(np.prod(shape))
    assert t.grad is None and t.grad_fn is None and t.is_leaf and not t.requires_grad


def test_tensor_copies_its_data():
    a = np.array([1.0, 2.0])
    t = tape.tensor(a)
    a[0] = 9.0
    assert t.data[0] == 1.0


def test_only_floating_tensors_require_grad():
    with pytest.raises(SrcgradError, match="floating"):
        tape.tensor([True, False], requires_grad=True)


def test_accessors():
    x = leaf([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert x.T.shape == (3, 2) and repr(x.T.grad_fn) == "<TransposeBackward>"
    assert x[1, 2].item() == 6.0 and float(x.detach()[0, 0]) == 1.0 and int(x[1, 0]) == 4
    assert len(x) == 2 and [row.shape for row in x] == [(3,), (3,)]
    assert x.tolist() == [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    assert f"{x.sum():.2f}" == "21.00"
    with pytest.raises(SrcgradError, match="detach"):
        x.numpy()
    with pytest.raises(SrcgradError, match="detach"):
        np.asarray(x)
    with pytest.raises(SrcgradError, match=r"np.dot\(W, t\)"):
        np.ones((2, 2)).dot(x)
    assert x.detach().numpy() is x.data
    np.testing.assert_array_equal(np.asarray(x.detach()), x.data)
    x.data = np.zeros((2, 3))
    assert x.sum().item() == 0.0


def test_requires_grad_property_and_non_leaf():
    x = tape.tensor([1.0, 2.0])
    x.requires_grad = True
    assert x.requires_grad_(True) is x
    y = x * 2
    assert y.requires_grad and not y.is_leaf
    with pytest.raises(SrcgradError, match="leaf"):
        y.requires_grad_(False)


# ---- recording and backward


def test_broadcasting_sums_back_to_each_shape():
    a = leaf(np.ones((2, 3)))
    b = leaf([1.0, 2.0, 3.0])
    c = leaf(2.0)
    (a * b * c).sum().backward()
    np.testing.assert_array_equal(a.grad.data, np.tile([2.0, 4.0, 6.0], (2, 1)))
    np.testing.assert_array_equal(b.grad.data, [4.0, 4.0, 4.0])
    assert c.grad.shape == () and c.grad.item() == 12.0


def test_a_tensor_used_twice_adds_its_gradients():
    x = leaf(3.0)
    y = x * x + x  # diamond: x reaches y three times
    y.backward()
    assert x.grad.item() == 7.0


def test_reflected_operators_and_numpy_on_the_left():
    x = leaf([1.0, 2.0])
    y = (2 - x) + (1 / x) + 3 ** x + np.float64(2.0) * x + np.array([1.0, 1.0]) * x + 5 % (x + 3)
    y.sum().backward()
    x0 = np.array([1.0, 2.0])
    expected = -1 - 1 / x0 ** 2 + 3 ** x0 * math.log(3) + 2 + 1 - np.floor_divide(5, x0 + 3)
    np.testing.assert_allclose(x.grad.data, expected, rtol=1e-12)


def test_matmul_both_ways():
    w = leaf(np.arange(6.0).reshape(3, 2))
    x = np.array([1.0, 2.0, 3.0])
    (x @ w).sum().backward()
    np.testing.assert_array_equal(w.grad.data, np.tile(x[:, None], (1, 2)))


def test_methods_map_through_the_registry():
    x0 = np.arange(1.0, 7.0).reshape(2, 3)
    x = leaf(x0)
    y = (x.sum(axis=0).mean() + x.reshape(3, 2).transpose().max() + x.T.min() + x.clip(2, 5).sum()
         + x.exp().sum() + x.flatten().dot(np.ones(6)) + x.var() + x.cumsum(axis=1).sum()
         + x.transpose(1, 0).std() + x.prod() + x.squeeze().ravel().copy().sum())
    y.backward()

    def f(x):
        return (x.sum(axis=0).mean() + x.reshape(3, 2).transpose().max() + x.T.min()
                + x.clip(2, 5).sum() + np.exp(x).sum() + x.flatten().dot(np.ones(6)) + x.var()
                + x.cumsum(axis=1).sum() + x.transpose(1, 0).std() + x.prod()
                + x.squeeze().ravel().copy().sum())
    np.testing.assert_allclose(x.grad.data, srcgrad.grad(f)(x0), rtol=1e-10)


def test_unknown_attribute():
    with pytest.raises(AttributeError, match="no attribute 'frobnicate'"):
        tape.tensor(1.0).frobnicate()


def test_indexing_with_repeats_and_masks():
    x = leaf([1.0, -2.0, 3.0])
    y = x[[0, 0, 2]].sum() + x[x > 0].sum() + x[np.array([False, True, False])].sum()
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [3.0, 1.0, 2.0])


def test_comparisons_give_boolean_tensors_without_history():
    x = leaf([1.0, -2.0])
    for mask in (x > 0, x >= 0, x < 0, x <= 0, x == 1.0, x != 1.0, np.greater(x, 0)):
        assert mask.dtype == np.bool_ and mask.grad_fn is None and not mask.requires_grad
    assert (x > 0).tolist() == [True, False]
    assert np.sign(x).grad_fn is None and np.argmax(x) == 0 and np.shape(x) == (2,)


def test_numpy_functions_on_tensors():
    a, b = leaf([1.0, -2.0]), leaf([3.0, 4.0])
    y = (np.concatenate([a, b]).sum() + np.stack((a, b), axis=1)[0, 1] + np.where(a > 0, a, b).sum()
         + np.maximum(a, 0).sum() + np.clip(b, 0, 3.5).sum() + np.reshape(a, (2, 1)).sum()
         + np.expand_dims(b, 0).sum() + np.broadcast_to(a, (3, 2)).sum() + np.tanh(a).sum())
    y.backward()
    # per term: concatenate, stack, where, maximum, reshape, broadcast_to, tanh
    np.testing.assert_allclose(a.grad.data, [1 + 0 + 1 + 1 + 1 + 3 + 1 - np.tanh(1.0) ** 2,
                                             1 + 0 + 0 + 0 + 1 + 3 + 1 - np.tanh(2.0) ** 2], rtol=1e-12)
    # per term: concatenate, stack, where, clip, expand_dims
    np.testing.assert_allclose(b.grad.data, [1 + 1 + 0 + 1 + 1, 1 + 0 + 1 + 0 + 1], rtol=1e-12)


def test_keyword_arguments_reach_the_rule():
    x = leaf(np.arange(6.0).reshape(2, 3))
    y = np.clip(x, a_min=1, a_max=4).sum() + np.sum(x, axis=1, keepdims=True).sum() + np.var(x, axis=0, ddof=1).sum()
    y.backward()
    expected = srcgrad.grad(lambda_free_keywords)(np.arange(6.0).reshape(2, 3))
    np.testing.assert_allclose(x.grad.data, expected, rtol=1e-12)


def lambda_free_keywords(x):
    return np.clip(x, a_min=1, a_max=4).sum() + np.sum(x, axis=1, keepdims=True).sum() + np.var(x, axis=0, ddof=1).sum()


def test_a_long_chain_needs_no_recursion():
    x = leaf(1.0)
    y = x
    for _ in range(5000):
        y = y * 1.0001
    y.backward()
    assert x.grad.item() == pytest.approx(1.0001 ** 5000)


def test_backward_of_a_leaf():
    x = leaf(3.0)
    x.backward()
    assert x.grad.item() == 1.0


def test_the_graph_is_freed_after_backward():
    x = leaf(2.0)
    y = x ** 3
    y.backward()
    with pytest.raises(SrcgradError, match="second time.*retain_graph=True"):
        y.backward()


def test_retain_graph():
    x = leaf(2.0)
    y = x ** 3
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.item() == 24.0


def test_gradient_is_not_aliased_to_the_seed():
    x = leaf([1.0, 2.0])
    seed = np.array([1.0, 1.0])
    (x + 0).backward(seed)
    x.grad.zero_()
    np.testing.assert_array_equal(seed, [1.0, 1.0])


def test_grad_can_be_reset_to_none():
    x = leaf(2.0)
    (x * 3).backward()
    x.grad = None
    (x * 3).backward()
    assert x.grad.item() == 3.0


def test_retain_grad_needs_requires_grad():
    with pytest.raises(SrcgradError, match="retain_grad"):
        tape.tensor(1.0).retain_grad()


# ---- no_grad and in-place updates


def test_no_grad_records_nothing():
    x = leaf([1.0, 2.0])
    with tape.no_grad():
        y = np.sum(x * 2)
        z = x[0]
    assert y.grad_fn is None and not y.requires_grad and z.grad_fn is None
    assert (x * 2).requires_grad  # recording resumes after the block


def test_optimizer_step_under_no_grad_updates_in_place():
    w = leaf([1.0, 2.0])
    data = w.data
    (w * w).sum().backward()
    with srcgrad.no_grad():
        w -= 0.1 * w.grad
        w *= 2
        w /= 2
        w += 0
        w **= 1
    assert w.data is data and w.is_leaf and w.requires_grad
    np.testing.assert_allclose(w.data, [0.8, 1.6])


def test_in_place_change_of_a_leaf_outside_no_grad_is_refused():
    w = leaf([1.0, 2.0])
    with pytest.raises(SrcgradError, match="no_grad"):
        w -= 1
    with pytest.raises(SrcgradError, match="np.where"):
        w[0] = 5.0
    with pytest.raises(SrcgradError):
        w.zero_()


def test_in_place_on_a_result_is_recorded_like_pytorch():
    x = leaf([1.0, 2.0])
    h = x * 2
    alias = h
    h += x  # recorded; h keeps its identity and its data buffer
    h *= h
    assert h is alias and h.grad_fn is not None
    h.sum().backward()
    np.testing.assert_allclose(x.grad.data, 2 * (3 * np.array([1.0, 2.0])) * 3)


def test_in_place_matches_numpy_aliasing():
    def f(x):
        y = x * 2.0
        z = y  # the same array: y *= 3 changes z too, in numpy
        y *= 3.0
        return np.sum(z * x)
    x0 = np.array([0.5, -1.0, 2.0])
    x = leaf(x0)
    f(x).backward()
    np.testing.assert_allclose(x.grad.data, 12 * x0, rtol=1e-12)
    assert f(x0) == pytest.approx(np.sum(6 * x0 * x0))


def test_in_place_after_the_node_that_made_it():
    x = leaf([1.0, 2.0])
    y = np.exp(x)  # exp's rule uses its output y
    y *= 3
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, 3 * np.exp([1.0, 2.0]), rtol=1e-12)


def test_a_constant_updated_by_a_tensor_gets_history():
    c = tape.tensor([1.0, 1.0])
    x = leaf([2.0, 3.0])
    c += x
    assert c.requires_grad and not c.is_leaf
    c.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [1.0, 1.0])


def test_a_value_changed_in_place_after_use_is_detected():
    w = leaf([1.0, 2.0])
    y = (w * w).sum()
    with srcgrad.no_grad():
        w -= 1
    with pytest.raises(SrcgradError, match="modified in place"):
        y.backward()
    x = leaf([1.0, 2.0])
    h = x * 2
    z = h * x  # saved h's values
    h *= 3
    with pytest.raises(SrcgradError, match="MulBackward needs was modified in place"):
        z.sum().backward()
    d = leaf([1.0, 2.0])
    y = (np.exp(d)).sum()
    with srcgrad.no_grad():
        d.detach()[0] = 0.0  # the detached tensor shares data and version with d
    with pytest.raises(SrcgradError, match="modified in place"):
        y.backward()


def test_writes_into_constants_are_allowed():
    c = tape.tensor([1.0, 2.0])
    c[0] = 5.0
    c += 1
    assert c.tolist() == [6.0, 3.0]


# ---- errors


def test_function_without_rule():
    x = leaf([3.0, 4.0])
    with pytest.raises(SrcgradError) as info:
        np.linalg.norm(x)
    message = str(info.value)
    assert "no derivative rule for np.linalg.norm" in message
    assert "srcgrad.rules.partial" in message and "srcgrad.rules.vjp" in message
    with srcgrad.no_grad():
        assert np.linalg.norm(x).item() == 5.0
    assert np.linalg.norm(x.detach()).item() == 5.0
    with pytest.raises(SrcgradError, match="np.add.reduce"):
        np.add.reduce(x)


def test_unsupported_keywords_are_refused():
    x = leaf([1.0, 2.0])
    with pytest.raises(SrcgradError, match="where"):
        np.sum(x, where=np.array([True, False]))
    with pytest.raises(SrcgradError, match="where"):
        np.exp(x, where=np.array([True, False]))
    with pytest.raises(SrcgradError, match="out="):
        np.exp(x, out=tape.tensor([0.0, 0.0]))
    with pytest.raises(SrcgradError, match="by position"):
        np.clip(x, min=leaf(0.0), max=1.0)  # not the rule's names (a_min, a_max)
    with pytest.raises(SrcgradError, match=r"np.clip\(a, a_min, a_max\).*1 positional"):
        np.clip(x, max=1.0)
    np.clip(x, 0, a_max=leaf(1.0), out=None).sum().backward()  # the rule's names are fine
    with pytest.raises(SrcgradError, match=r"np.trace\(a\).*2 positional"):
        np.trace(leaf(np.eye(2)), 1)  # an offset the rule does not take


def test_clip_with_one_bound():
    x = leaf([-1.0, 2.0])
    np.clip(x, 0, None).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 1.0])


def test_a_failing_rule_names_itself():
    def twice(x):
        return 2 * x
    registry.partial(twice, lambda x: undefined_name)  # noqa: F821
    try:
        y = tape.apply(twice, leaf(1.0))
        assert repr(y.grad_fn) == "<TwiceBackward>"
        with pytest.raises(SrcgradError, match="rule for .*twice failed.*NameError"):
            y.backward()
    finally:
        registry._RULES.pop(id(twice))


# ---- user rules and functions tensors cannot reach


def test_apply_records_a_user_function_with_its_rule():
    def softplus(x):
        return np.log1p(np.exp(x))
    registry.partial(softplus, lambda x: 1 / (1 + np.exp(-x)))
    try:
        x = leaf([0.0, 1.0])
        y = tape.apply(softplus, x)
        assert repr(y.grad_fn) == "<SoftplusBackward>"
        y.sum().backward()
        np.testing.assert_allclose(x.grad.data, 1 / (1 + np.exp(-np.array([0.0, 1.0]))), rtol=1e-12)
        assert repr(softplus(leaf(0.0)).grad_fn) == "<Log1pBackward>"  # its body, recorded op by op
    finally:
        registry._RULES.pop(id(softplus))


def test_apply_reaches_math_functions():
    x = leaf(0.5)
    y = tape.apply(math.sin, x) * tape.apply(math.exp, x)
    y.backward()
    assert x.grad.item() == pytest.approx(math.exp(0.5) * (math.cos(0.5) + math.sin(0.5)), rel=1e-12)
    with pytest.raises(SrcgradError, match="math functions .* would drop its gradient"):
        math.sin(x)  # math.sin itself only sees float(x)
    with pytest.raises(SrcgradError, match="float"):
        float(x)
    assert x.item() == 0.5 and f"{x:.1f}" == "0.5"
    with srcgrad.no_grad():
        assert math.sin(x) == math.sin(0.5) and float(x) == 0.5
    assert math.sin(x.detach()) == math.sin(0.5)


# ---- printing


@pytest.mark.parametrize("value, text", [
    (25.0, "tensor(25.)"), (-0.13235175, "tensor(-0.1324)"), (0.0, "tensor(0.)"),
    ([1.0, 2.0, 3.0], "tensor([1., 2., 3.])"), ([-1.0, 2.0, 3.0], "tensor([-1.,  2.,  3.])"),
    ([0.5, 10.25], "tensor([ 0.5000, 10.2500])"), ([1e-8, 1.0], "tensor([1.0000e-08, 1.0000e+00])"),
    ([1.0, 2e9], "tensor([1.0000e+00, 2.0000e+09])"), ([1.0, float("nan")], "tensor([1., nan])"),
    ([[1.0, 2.0], [3.0, 4.0]], "tensor([[1., 2.],\n        [3., 4.]])"),
    ([True, False], "tensor([ True, False])"), ([], "tensor([])"),
    (np.zeros((2, 1, 2)), "tensor([[[0., 0.]],\n\n        [[0., 0.]]])"),
])
def test_printing_like_pytorch(value, text):
    assert repr(tape.tensor(value)) == text


def test_printing_long_and_large_tensors():
    assert repr(tape.tensor(np.arange(30.0))) == (
        "tensor([ 0.,  1.,  2.,  3.,  4.,  5.,  6.,  7.,  8.,  9., 10., 11., 12., 13.,\n"
        "        14., 15., 16., 17., 18., 19., 20., 21., 22., 23., 24., 25., 26., 27.,\n"
        "        28., 29.])")
    assert repr(tape.tensor(np.ones(2000))) == "tensor([1., 1., 1.,  ..., 1., 1., 1.])"
    big = repr(tape.tensor(np.ones((100, 100)), requires_grad=True))
    assert big.startswith("tensor([[1., 1., 1.,  ..., 1., 1., 1.],") and "...," in big
    assert big.endswith("requires_grad=True)")


def test_printing_integers_and_suffixes():
    assert repr(tape.Tensor(np.array([1, 20]))) == "tensor([ 1, 20])"
    y = leaf([[1.0, 2.0]]) * 2
    assert repr(y) == "tensor([[2., 4.]], grad_fn=<MulBackward>)"


# ---- overhead


def test_forward_and_backward_stay_cheap():
    a, b = leaf(2.0), leaf(3.0)
    start = time.perf_counter()
    for _ in range(2000):
        c = a * b
    per_op = (time.perf_counter() - start) / 2000
    assert per_op < 100e-6, f"{per_op * 1e6:.1f} us per recorded multiply"
    assert c.item() == 6.0
