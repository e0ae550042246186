"""Rules at the edges: where a rule's formula is 0 / 0 or 0 * inf although the function
is differentiable, functions wrongly declared non-differentiable, user rules the
compiler must call rather than inline, and shapes that crashed a rule (issue 9).

Each case runs in both engines (source mode through srcgrad.grad, tape mode through
tensors) and is checked against the true gradient.
"""
import math
import warnings

import numpy as np
import pytest

import srcgrad
from srcgrad import tape
from srcgrad.rules import registry
from srcgrad.rules.registry import nondifferentiable_names
from srcgrad.testing import numerical_grad


def both_engines(f, *args, wrt=0):
    """(source-mode gradient, tape-mode gradient) of scalar `f` w.r.t. the arguments `wrt`."""
    wrt_tuple = wrt if isinstance(wrt, tuple) else (wrt,)
    source = srcgrad.grad(f, wrt=wrt_tuple)(*args)
    tensors = [tape.tensor(a, requires_grad=True) if i in wrt_tuple else a for i, a in enumerate(args)]
    out = f(*tensors)
    out.backward()
    taped = tuple(tensors[i].grad.data if tensors[i].grad is not None else None for i in wrt_tuple)
    return source, taped


def assert_both(f, args, wrt, expected):
    source, taped = both_engines(f, *args, wrt=wrt)
    for s, t, e in zip(source, taped, expected):
        np.testing.assert_allclose(s, e, rtol=1e-7, atol=1e-12)
        np.testing.assert_allclose(t, e, rtol=1e-7, atol=1e-12)
        assert np.shape(s) == np.shape(e) and np.shape(t) == np.shape(e)


# ---- 1. rules at the edge of their domain


def std_all(x):
    return np.std(x)


def std_axis0(x):
    return np.sum(np.std(x, axis=0))


def std_keepdims(x):
    return np.sum(np.std(x, axis=1, keepdims=True) * 2.0)


def var_axis0(x):
    return np.sum(np.var(x, axis=0))


def std_method(x):
    return x.std()


@pytest.mark.parametrize("f, x", [(std_all, np.array([2.0])), (std_all, np.array([[3.0]])),
                                  (std_axis0, np.array([[2.0, -1.0, 4.0]])),
                                  (std_keepdims, np.array([[2.0], [5.0]])),
                                  (var_axis0, np.array([[2.0, -1.0]])), (std_method, np.array([7.0]))])
def test_std_and_var_over_one_element_are_constant(f, x):
    """Over one element np.std is the constant 0: its gradient is 0, not g / 0 * 0 = NaN."""
    assert_both(f, (x,), 0, [np.zeros_like(x)])


def test_std_of_a_python_float_is_constant():
    assert srcgrad.grad(std_all)(3.0) == 0.0


def std_ddof1(x):
    return np.std(x, ddof=1)


def test_std_with_ddof_over_one_element_stays_nan():
    """std(x, ddof=1) of one element is NaN (0 / 0 degrees of freedom): so is its gradient."""
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        assert np.isnan(srcgrad.grad(std_ddof1)(np.array([2.0]))).all()


def test_std_of_several_elements_is_unchanged():
    x = np.array([1.0, 2.0, 4.0])
    expected = (x - x.mean()) / (x.size * x.std())
    assert_both(std_all, (x,), 0, [expected])


def power_of_zero(y):
    return np.sum(np.power(0.0, y))


def zero_pow(y):
    return 0.0 ** y


def math_pow_of_zero(y):
    return math.pow(0.0, y)


def zero_array_pow(a, y):
    return np.sum(a ** y)


@pytest.mark.parametrize("f, y", [(power_of_zero, 2.0), (power_of_zero, np.array([0.5, 3.0])),
                                  (zero_pow, 2.0), (zero_pow, 0.25)])
def test_zero_to_a_positive_power_is_flat_in_the_exponent(f, y):
    """0 ** y is the constant 0 for y > 0: d/dy is 0, not 0 * log(0) = NaN."""
    assert_both(f, (y,), 0, [np.zeros_like(y)])


def test_math_pow_of_zero_base():
    """math.pow(0.0, y): d/dy is 0 (math.log(0) raised a ValueError)."""
    assert srcgrad.grad(math_pow_of_zero)(2.0) == 0.0
    y = tape.tensor(2.0, requires_grad=True)
    tape.apply(math.pow, 0.0, y).backward()
    assert y.grad.item() == 0.0


def test_power_with_zero_in_the_base_array():
    a, y = np.array([0.0, 2.0]), 3.0
    assert_both(zero_array_pow, (a, y), (0, 1),
                [3 * a ** 2, np.sum(a ** y * np.log(np.where(a > 0, a, 1.0)))])


def np_power_zero(x):
    return np.sum(np.power(x, 0.0))


def pow_zero_float(x):
    return np.sum(x ** 0.0)


def pow_zero_int(x):
    return np.sum(x ** 0)


def math_pow_zero(x):
    return math.pow(x, 0.0)


def pow_one(x):
    return np.sum(x ** 1.0)


def pow_two(x):
    return np.sum(x ** 2)


@pytest.mark.parametrize("f, slope", [(np_power_zero, 0.0), (pow_zero_float, 0.0), (pow_zero_int, 0.0),
                                      (pow_one, 1.0), (pow_two, 0.0)])
@pytest.mark.parametrize("x", [0.0, np.zeros(3), np.array([0.0, 1.5])])
def test_powers_at_zero(f, slope, x):
    """x ** 0.0 at x = 0 is the constant 1 (gradient 0, not ZeroDivisionError or 0 * inf);
    x ** 1.0 has slope 1 and x ** 2 slope 0 there."""
    exponent = {pow_one: 1.0, pow_two: 2.0}.get(f, 0.0)
    expected = np.where(np.equal(x, 0), slope, exponent * np.asarray(x) ** max(exponent - 1, 0))
    assert_both(f, (x,), 0, [expected.reshape(np.shape(x))])


def test_math_pow_with_zero_exponent_at_zero():
    assert srcgrad.grad(math_pow_zero)(0.0) == 0.0


def test_literal_exponents_still_read_as_calculus():
    """The edge handling does not show in the common case: x ** 2 still reads 2 * x."""
    text = srcgrad.source(srcgrad.grad(pow_two), np.ones(3))
    assert "d_x = d_sum_x_sq * 2 * x" in text and "times_power" not in text


def hypot_from_zero(a, b):
    return np.sum(np.hypot(a, b))


def test_hypot_with_one_zero_argument():
    """hypot(0, b) = |b| is smooth in both arguments for b != 0."""
    a, b = np.zeros(2), np.array([1.5, -2.0])
    assert_both(hypot_from_zero, (a, b), (0, 1), [np.zeros(2), np.sign(b)])


# ---- 2. declared non-differentiable, but differentiable


def linspace_sum(a, b):
    return np.sum(np.linspace(a, b, 5) * np.arange(5.0))


def linspace_arrays(a, b):
    return np.sum(np.linspace(a, b, 4, endpoint=False, axis=1) ** 2)


def test_linspace_is_differentiated_in_start_and_stop():
    t = np.arange(5) / 4
    assert_both(linspace_sum, (1.0, 3.0), (0, 1), [np.sum((1 - t) * np.arange(5.0)),
                                                    np.sum(t * np.arange(5.0))])


def test_linspace_with_arrays_endpoint_and_axis():
    a, b = np.array([[1.0], [2.0]]), np.array([0.5, -1.0, 3.0])
    source, taped = both_engines(linspace_arrays, a, b, wrt=(0, 1))
    for i, (s, t) in enumerate(zip(source, taped)):
        numeric = numerical_grad(linspace_arrays, [a, b], i)
        np.testing.assert_allclose(s, numeric, rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(t, s, rtol=1e-12)


def linspace_int(a):
    return np.sum(np.linspace(a, 8.0, 5, dtype=int) * 1.0)


def linspace_retstep(a):
    samples, step = np.linspace(a, 2.0, 5, retstep=True)
    return np.sum(samples)


@pytest.mark.parametrize("f, message", [(linspace_int, "dtype=int"),
                                        (linspace_retstep, "retstep")])
def test_linspace_calls_it_cannot_differentiate_are_refused(f, message):
    with pytest.raises(srcgrad.SrcgradError, match=message):
        srcgrad.grad(f)(1.0)


def arange_from(x):
    return np.sum(np.arange(x, 5.0))


def test_arange_with_a_differentiated_start_is_refused():
    """np.arange's values depend on start (and step), but so does its length: refused."""
    where = r"test_rule_edges\.py:\d+:\d+: no derivative rule for `np\.arange`"
    with pytest.raises(srcgrad.SrcgradError, match=where):
        srcgrad.grad(arange_from)(1.0)
    with pytest.raises(srcgrad.SrcgradError):
        arange_from(tape.tensor(1.0, requires_grad=True))


def arange_constant(x):
    return np.sum(np.arange(len(x)) * x)


def test_arange_of_constants_is_still_a_constant():
    assert_both(arange_constant, (np.ones(3),), 0, [np.arange(3.0)])


def heaviside(x1, x2):
    return np.sum(np.heaviside(x1, x2))


def test_heaviside_takes_its_value_at_zero_from_x2():
    x1, x2 = np.array([-1.0, 0.0, 2.0, 0.0]), np.array([0.5, 0.5, 0.5, 0.25])
    assert_both(heaviside, (x1, x2), 1, [np.array([0.0, 1.0, 0.0, 1.0])])
    np.testing.assert_array_equal(srcgrad.grad(heaviside)(x1, x2), np.zeros(4))  # flat in x1


def r_concat(x):
    return np.sum(np.r_[x, 1.0, x] ** 2)


def c_concat(x):
    return np.sum(np.c_[x, x] ** 2)


@pytest.mark.parametrize("f", [r_concat, c_concat])
def test_r_and_c_of_differentiated_values_are_refused_in_source_mode(f):
    with pytest.raises(srcgrad.SrcgradError, match="np.concatenate"):
        srcgrad.grad(f)(np.ones(2))


@pytest.mark.parametrize("f", [r_concat, c_concat])
def test_r_and_c_of_tensors_are_refused_in_tape_mode(f):
    with pytest.raises(srcgrad.SrcgradError, match="requires grad"):
        f(tape.tensor(np.ones(2), requires_grad=True))


# Every function declared non-differentiable, and why no gradient flows through it. A
# function whose float output depends on a float input does not belong here: it gets a
# rule (np.linspace, np.heaviside) or none, so that differentiating it is refused (np.arange).
NO_GRADIENT = {
    "integer or boolean result": [
        "math.isnan", "math.isinf", "math.isfinite", "np.argmax", "np.argmin", "np.argsort",
        "np.argwhere", "np.nonzero", "np.flatnonzero", "np.shape", "np.ndim", "np.size",
        "np.isnan", "np.isinf", "np.isfinite", "np.isclose", "np.allclose", "np.array_equal",
        "np.equal", "np.not_equal", "np.less", "np.less_equal", "np.greater", "np.greater_equal",
        "np.logical_and", "np.logical_or", "np.logical_not", "np.logical_xor", "np.any", "np.all",
        "np.count_nonzero", "operator.lt", "operator.le", "operator.gt", "operator.ge",
        "operator.eq", "operator.ne", "operator.not_", "operator.truth", "len", "int", "bool",
        "range", "isinstance"],
    "piecewise constant (flat between jumps)": [
        "math.floor", "math.ceil", "math.trunc", "np.sign", "np.floor", "np.ceil", "np.round",
        "np.rint", "np.trunc", "np.fix", "np.floor_divide", "operator.floordiv", "round"],
    "values independent of the inputs' values (shapes, dtypes, sizes)": [
        "np.zeros_like", "np.ones_like", "np.empty_like", "np.zeros", "np.ones", "np.empty",
        "np.eye", "np.identity", "np.result_type", "type"],
    "no value": ["print"],
}


def test_every_nondifferentiable_declaration_is_audited():
    audited = [name for names in NO_GRADIENT.values() for name in names]
    assert len(audited) == len(set(audited))
    declared = nondifferentiable_names()
    assert set(declared) == set(audited), (
        f"declared but not audited: {sorted(set(declared) - set(audited))}; "
        f"audited but no longer declared: {sorted(set(audited) - set(declared))}")


@pytest.mark.parametrize("name", ["np.linspace", "np.heaviside", "np.arange"])
def test_functions_of_floats_are_not_declared_nondifferentiable(name):
    assert name not in nondifferentiable_names()


# ---- 3. user rules with statements the compiler cannot inline


@pytest.fixture
def user_rules():
    """Register this module's user rules for one test, and take them out of the registry
    after it (the registry-walking tests and docs/rules.md's table see the built-in ones)."""
    added = [registry.vjp(scaled)(_scaled_vjp), registry.vjp(first_only)(_first_only_vjp)]
    added += [registry.partial(square_times, _square_times_partials),
              registry.partial(constant_partials, _constant_partials)]
    yield
    for primal in (scaled, first_only, square_times, constant_partials):
        registry._RULES.pop(id(primal))
    assert added


def scaled(a, b):
    return a * b


def _scaled_vjp(g, y, a, b):
    if np.ndim(g) > 3:                      # a statement: the rule is called, not inlined
        raise ValueError("too many dimensions")
    da, db = g * b, g * a
    return da, srcgrad.runtime.unbroadcast(db, b)


def scaled_loss(a, b):
    return np.sum(scaled(a, b) ** 2)


def scaled_scalar(a, b):
    return scaled(a, b) * 3.0


def first_only(a, b):
    return a * b


def _first_only_vjp(g, y, a, b):
    for _ in range(1):
        da = g * b
    return da, None                         # b is declared to take no gradient


def first_only_loss(a, b):
    return np.sum(first_only(a, b))


def square_times(a, b):
    return a * a * b


def _square_times_partials(a, b):
    if np.ndim(a) > 3:
        raise ValueError("too many dimensions")
    two_a = 2 * a
    return two_a * b, a * a


def square_times_loss(a, b):
    return np.sum(square_times(a, b))


def constant_partials(a, b):
    return a + 2 * b


def _constant_partials(a, b):
    for _ in range(1):
        pass
    return 1.0, 2.0                           # numbers, for array arguments


def constant_partials_loss(a, b):
    return np.sum(constant_partials(a, b))


def test_multi_statement_vjp_for_two_inputs(user_rules):
    """Each input gets its own element of the rule's tuple (not the whole tuple)."""
    a, b = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), np.array([0.5, -1.0, 2.0])
    assert_both(scaled_loss, (a, b), (0, 1), [2 * a * b * b, np.sum(2 * a * a * b, axis=0)])


def test_multi_statement_vjp_on_python_floats(user_rules):
    source = srcgrad.grad(scaled_scalar, wrt=(0, 1))(2.0, 5.0)
    assert source == (15.0, 6.0) and all(type(d) is float for d in source)


def test_multi_statement_vjp_is_called_in_the_generated_code(user_rules):
    text = srcgrad.source(srcgrad.grad(scaled_loss, wrt=(0, 1)), np.ones((2, 3)), np.ones(3))
    assert "rule_part(scaled_vjp(" in text and ", 0, a, 2)" in text and ", 1, b, 2)" in text


def test_multi_statement_vjp_with_none_for_one_input(user_rules):
    a, b = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    source = srcgrad.grad(first_only_loss, wrt=(0, 1))(a, b)
    np.testing.assert_array_equal(source[0], b)
    np.testing.assert_array_equal(source[1], np.zeros(2))
    ta, tb = tape.tensor(a, requires_grad=True), tape.tensor(b, requires_grad=True)
    np.sum(tape.apply(first_only, ta, tb)).backward()
    np.testing.assert_array_equal(ta.grad.data, b)
    assert tb.grad is None


def test_multi_statement_partial_rule_for_two_inputs(user_rules):
    a, b = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), np.array([0.5, -1.0, 2.0])
    expected = [2 * a * b, np.sum(a * a, axis=0)]
    for got, e in zip(srcgrad.grad(square_times_loss, wrt=(0, 1))(a, b), expected):
        np.testing.assert_allclose(got, e, rtol=1e-12)
    ta, tb = tape.tensor(a, requires_grad=True), tape.tensor(b, requires_grad=True)
    np.sum(tape.apply(square_times, ta, tb)).backward()
    np.testing.assert_allclose(ta.grad.data, expected[0], rtol=1e-12)
    np.testing.assert_allclose(tb.grad.data, expected[1], rtol=1e-12)


def test_multi_statement_partial_rule_returning_numbers(user_rules):
    """A partial derivative that is a number still gives each argument its own shape."""
    a, b = np.ones((2, 3)), np.ones(3)
    source = srcgrad.grad(constant_partials_loss, wrt=(0, 1))(a, b)
    np.testing.assert_array_equal(source[0], np.ones((2, 3)))
    np.testing.assert_array_equal(source[1], np.full(3, 4.0))


def test_multi_statement_rules_show_in_the_table_as_called(user_rules):
    from srcgrad.ruletable import rule_text
    assert rule_text(registry.lookup(scaled)) == "(multi-statement rule, called)"


# ---- 4. shapes that crashed a rule


def clip_loss(s, w):
    return np.sum(np.clip(s, -np.abs(w), np.abs(w) + 0.1) * np.arange(1.0, 4.0))


@pytest.mark.parametrize("s_shape, w_shape", [((3,), (2, 3)), ((2, 3), (3,)), ((2, 1), (1, 3))])
def test_clip_with_bounds_that_broadcast_against_the_value(s_shape, w_shape):
    rng = np.random.default_rng(3)
    s, w = rng.normal(size=s_shape), rng.uniform(0.3, 1.0, w_shape) * rng.choice([-1, 1], w_shape)
    source, taped = both_engines(clip_loss, s, w, wrt=(0, 1))
    for i, (g, t) in enumerate(zip(source, taped)):
        np.testing.assert_allclose(g, numerical_grad(clip_loss, [s, w], i), rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(t, g, rtol=1e-12)


def clip_crossed(x, lo, hi):
    return np.sum(np.clip(x, lo, hi) * np.array([1.0, 2.0, 3.0]))


def test_clip_with_crossed_bounds_follows_a_max():
    """np.clip is minimum(maximum(x, lo), hi): where lo > hi every value is hi."""
    x, lo, hi = np.array([-2.0, 0.5, 3.0]), np.array([1.0, 1.0, 1.0]), np.array([0.0, 0.0, 2.0])
    weights = np.array([1.0, 2.0, 3.0])
    assert_both(clip_crossed, (x, lo, hi), (0, 1, 2),
                [np.zeros(3), np.zeros(3), weights])
    for i in range(3):
        np.testing.assert_allclose(srcgrad.grad(clip_crossed, wrt=i)(x, lo, hi),
                                   numerical_grad(clip_crossed, [x, lo, hi], i), atol=1e-8)


def mean_square(x):
    return np.mean(x ** 2)


def prod_all(x):
    return np.prod(x)


def sum_all(x):
    return np.sum(x)


def mean_axis1(x):
    return np.sum(np.mean(x, axis=1))


def prod_axis0(x):
    return np.sum(np.prod(x, axis=0))


def var_all(x):
    return np.var(x)


@pytest.mark.parametrize("f", [mean_square, prod_all, sum_all, var_all, std_all])
@pytest.mark.parametrize("shape", [(0,), (2, 0)])
def test_reductions_of_an_empty_array_have_an_empty_gradient(f, shape):
    x = np.zeros(shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        source, taped = both_engines(f, x)
    assert source[0].shape == shape and taped[0].shape == shape


@pytest.mark.parametrize("f, shape", [(mean_axis1, (3, 0)), (prod_axis0, (0, 3)), (mean_axis1, (0, 2))])
def test_reductions_over_an_empty_axis(f, shape):
    x = np.zeros(shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        source, taped = both_engines(f, x)
    assert source[0].shape == shape and taped[0].shape == shape


def short_rule(a, b):
    return a * b


def _short_rule_vjp(g, y, a, b):
    if np.ndim(g) > 3:
        raise ValueError("too many dimensions")
    return (g * b,)                         # forgot b's adjoint


def unsummed(a, b):
    return a * b


def _unsummed_vjp(g, y, a, b):
    if np.ndim(g) > 3:
        raise ValueError("too many dimensions")
    return g * b, g * a                     # b's adjoint left at the output's shape


def wrong_shape(a, b):
    return a * b


def _wrong_shape_vjp(g, y, a, b):
    if np.ndim(g) > 3:
        raise ValueError("too many dimensions")
    return g * b, np.ones(7)


@pytest.fixture
def mistaken_rules():
    registry.vjp(short_rule)(_short_rule_vjp)
    registry.vjp(unsummed)(_unsummed_vjp)
    registry.vjp(wrong_shape)(_wrong_shape_vjp)
    yield
    for primal in (short_rule, unsummed, wrong_shape):
        registry._RULES.pop(id(primal))


def test_a_rule_returning_too_few_adjoints_is_refused(mistaken_rules):
    with pytest.raises(srcgrad.SrcgradError, match="returned a tuple of 1"):
        srcgrad.grad(lambda a, b: np.sum(short_rule(a, b)), wrt=(0, 1))(np.ones(3), 2.0)


def test_an_adjoint_at_the_outputs_shape_is_summed_to_the_argument(mistaken_rules):
    a = np.array([0.5, -1.0, 2.0])
    got = srcgrad.grad(lambda a, b: np.sum(unsummed(a, b)), wrt=(0, 1))(a, 2.0)
    assert got[0] == pytest.approx(np.full(3, 2.0)) and got[1] == pytest.approx(np.sum(a))


def test_an_adjoint_of_another_shape_is_refused(mistaken_rules):
    with pytest.raises(srcgrad.SrcgradError, match="shape"):
        srcgrad.grad(lambda a, b: np.sum(wrong_shape(a, b)), wrt=(0, 1))(np.ones(3), np.ones(3))
