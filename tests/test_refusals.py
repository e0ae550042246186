"""Constructs srcgrad refuses: each raises SrcgradError at the user's own line.

Every refused construct below carries the marker comment `# refuse-here` on
the line the error must name. The test finds that line with
inspect.getsourcelines and checks err.filename, err.lineno and err.line_text.
Then: functions without source, functions from a notebook-like cell
(linecache), non-scalar outputs, and gradient calls never modifying inputs.
"""
import contextlib
import inspect
import linecache
import math

import numpy as np
import pytest

import srcgrad
from srcgrad.errors import NonScalarOutputError, NoSourceError, UnsupportedError
from srcgrad.testing import check_grads

MARKER = "# refuse-here"


# ============================================================ refused constructs
def r_setattr(x):
    box = r_setattr
    box.value = x  # refuse-here
    return x


def r_aug_reshape_view(x):
    y = x.reshape(-1)
    y += 1.0  # refuse-here
    return np.sum(y)


def r_aug_alias(x):
    y = x
    y *= 2.0  # refuse-here
    return np.sum(y)


def r_aug_slice_view(x):
    y = x[1:]
    y -= 1.0  # refuse-here
    return np.sum(y)


def r_aug_transpose_view(x):
    y = x.T
    y /= 2.0  # refuse-here
    return np.sum(y)


def r_aug_method_view(x):
    y = x.ravel()
    y **= 2  # refuse-here
    return np.sum(y)


def r_with_open(x):
    with open(__file__) as fh:  # refuse-here
        n = len(fh.read())
    return x * n


def r_with_suppress(x):
    with contextlib.suppress(ValueError):  # refuse-here
        y = x * 2.0
    return y


def r_with_no_grad_as(x):
    with srcgrad.no_grad() as ng:  # refuse-here
        y = x * 2.0
    return x * y


def r_no_rule_det(x):
    return np.linalg.det(x)  # refuse-here


def r_no_rule_ufunc(x):
    return np.sum(np.fmod(x, 0.3))  # refuse-here


def r_no_rule_c_function(x):
    return math.gamma(x)  # refuse-here


_exec_ns = {}
exec("def exec_helper(z):\n    return z * 2.0\n", _exec_ns)
exec_helper = _exec_ns["exec_helper"]


def r_call_exec_helper(x):
    return exec_helper(x) + 1.0  # refuse-here


def r_varargs(x, *rest):  # refuse-here
    return x * 2.0


def r_kwargs(x, **kw):  # refuse-here
    return x * 2.0


def r_call_starred(x):
    return np.sum(np.add(*[x, x]))  # refuse-here


def r_call_double_starred(x):
    kw = {"axis": 0}
    return np.sum(np.sum(x, **kw))  # refuse-here


def helper_with_varargs(*zs):
    return zs[0]


def r_call_helper_varargs(x):
    return helper_with_varargs(x, x) * 2.0  # refuse-here


def r_lambda_called_inline(x):
    return (lambda t: t * 2.0)(x)  # refuse-here


def r_listcomp(x):
    ys = [x[i] * 2.0 for i in range(3)]  # refuse-here
    return ys[0]


def r_genexp(x):
    return sum(t * 2.0 for t in x)  # refuse-here


def r_dict_literal(x):
    d = {"a": x}  # refuse-here
    return d["a"]


def r_try(x):
    try:  # refuse-here
        y = x * 2.0
    except ValueError:
        y = x
    return y


def r_fstring(x):
    s = f"{x * 2.0}"  # refuse-here
    return x * len(s)


def r_expr_statement(x):
    y = x * 1.0
    y.sort()  # refuse-here
    return np.sum(y)


def r_attribute(x):
    return np.sum(x.real)  # refuse-here


def r_method_without_rule(x):
    return np.sum(x.cumprod())  # refuse-here


def r_floordiv(x):
    return np.sum(x // 0.3)  # refuse-here


def r_active_index(x):
    return np.sum(x[(x * 0.0).astype(int)])  # refuse-here


def r_unknown_keyword(x):
    return np.sum(x, where=x > 0)  # refuse-here


def local_import(x):
    import math as m
    from numpy import sin
    return m.exp(x) * sin(x)


def r_del(x):
    y = x * 2.0
    del y  # refuse-here
    return x


def r_raise(x):
    raise ValueError("no")  # refuse-here


def r_no_return(x):
    y = x * 2.0  # refuse-here


def passthrough(fn):
    return fn


@passthrough
@passthrough
def r_decorated(x):
    y = x * 2.0
    while y < 3.0:  # refuse-here
        y = y * 2.0
    else:
        y = y + 1.0
    return y


if True:
    def r_indented_def(x):
        """Defined inside a module-level block."""
        return np.sum(
            x,
            where=x > 0)  # refuse-here


def make_closure_with_for_else():
    k = 3

    def inner(x):
        y = x * 1.0
        for _ in range(k):  # refuse-here
            y = y * x
        else:
            y = y + 1.0
        return y

    return inner


closure_with_for_else = make_closure_with_for_else()


# --------------------------------------- control flow and in-place writes still refused
# (if/elif/else, early returns outside loops, ternaries, for/while loops, break,
# continue, helpers with loops and x[i] = v are supported: see test_control_flow.py)
def r_return_in_with(x):
    with srcgrad.no_grad():
        return x * 2.0  # refuse-here


def r_for_else(x):
    y = x * 1.0
    for _ in range(3):  # refuse-here
        y = y * x
    else:
        y = y + 1.0
    return y


def r_while_else(x):
    y = x * 1.0
    while y < 3.0:  # refuse-here
        y = y * 2.0
    else:
        y = y - 1.0
    return y


def r_break_in_with(x):
    y = x * 1.0
    for _ in range(3):
        with srcgrad.no_grad():
            break  # refuse-here
    return y


def r_setitem_argument_in_loop(x):
    for i in range(3):
        x[i] = x[i] * 2.0  # refuse-here
    return np.sum(x)


def r_setitem_alias(x):
    y = x * 1.0
    z = y
    y[0] = 5.0  # refuse-here
    return np.sum(z * y)


def r_setitem_view(x):
    y = x * 1.0
    z = y[1:]
    y[0] = 5.0  # refuse-here
    return np.sum(z * y)


def r_setitem_through_attribute(x):
    y = x * 1.0
    y.real[0] = 2.0  # refuse-here
    return np.sum(y)


async def r_async(x):  # refuse-here
    return x * 2.0


# (function, args, wrt, function holding the marker (default: the function itself))
REFUSALS = [
    (r_setattr, (0.5,), 0, None),
    (r_aug_reshape_view, (np.ones((2, 3)),), 0, None),
    (r_aug_alias, (np.ones(3),), 0, None),
    (r_aug_slice_view, (np.ones(3),), 0, None),
    (r_aug_transpose_view, (np.ones((2, 3)),), 0, None),
    (r_aug_method_view, (np.ones((2, 3)),), 0, None),
    (r_with_open, (0.5,), 0, None),
    (r_with_suppress, (0.5,), 0, None),
    (r_with_no_grad_as, (0.5,), 0, None),
    (r_no_rule_det, (np.eye(2) + 0.1,), 0, None),
    (r_no_rule_ufunc, (np.ones(3),), 0, None),
    (r_no_rule_c_function, (1.5,), 0, None),
    (r_call_exec_helper, (0.5,), 0, None),
    (r_varargs, (0.5,), 0, None),
    (r_kwargs, (0.5,), 0, None),
    (r_call_starred, (np.ones(3),), 0, None),
    (r_call_double_starred, (np.ones((2, 3)),), 0, None),
    (r_call_helper_varargs, (0.5,), 0, None),
    (r_lambda_called_inline, (0.5,), 0, None),
    (r_listcomp, (np.ones(3),), 0, None),
    (r_genexp, (np.ones(3),), 0, None),
    (r_dict_literal, (0.5,), 0, None),
    (r_try, (0.5,), 0, None),
    (r_fstring, (0.5,), 0, None),
    (r_expr_statement, (np.ones(3),), 0, None),
    (r_attribute, (np.ones(3),), 0, None),
    (r_method_without_rule, (np.ones(3),), 0, None),
    (r_floordiv, (np.ones(3),), 0, None),
    (r_active_index, (np.ones(3),), 0, None),
    (r_unknown_keyword, (np.ones(3),), 0, None),
    (r_del, (0.5,), 0, None),
    (r_raise, (0.5,), 0, None),
    (r_no_return, (0.5,), 0, None),
    (r_decorated, (0.5,), 0, None),
    (r_indented_def, (np.ones(3),), 0, None),
    (closure_with_for_else, (0.5,), 0, None),
    (r_for_else, (0.5,), 0, None),
    (r_return_in_with, (0.5,), 0, None),
    (r_while_else, (0.5,), 0, None),
    (r_break_in_with, (0.5,), 0, None),
    (r_setitem_argument_in_loop, (np.ones(3),), 0, None),
    (r_setitem_alias, (np.ones(3),), 0, None),
    (r_setitem_view, (np.ones(3),), 0, None),
    (r_setitem_through_attribute, (np.ones(3),), 0, None),
]

# open bugs: refused, but not at the right line or not with a SrcgradError
KNOWN_BUGS = {}



def _marker_line(fn):
    lines, first = inspect.getsourcelines(fn)
    hits = [first + i for i, line in enumerate(lines) if MARKER in line]
    assert len(hits) == 1, f"{fn.__name__}: expected one marker, found {hits}"
    return hits[0]


def _id(entry):
    return entry[0].__qualname__.replace(".<locals>.", ".")


CASES = [pytest.param(*e, id=_id(e), marks=[pytest.mark.xfail(strict=True, reason="BUG: " + KNOWN_BUGS[e[0]])]
                      if e[0] in KNOWN_BUGS else []) for e in REFUSALS]


@pytest.mark.parametrize("fn, args, wrt, where", CASES)
def test_refused_at_the_offending_line(fn, args, wrt, where):
    where = where or fn
    with pytest.raises(srcgrad.SrcgradError) as info:
        srcgrad.grad(fn, wrt=wrt)(*args)
    err = info.value
    assert err.message and isinstance(err.message, str)
    assert err.filename is not None and err.filename.endswith("test_refusals.py"), err.filename
    assert err.lineno == _marker_line(where), str(err)
    assert err.line_text is not None and MARKER in err.line_text
    # the formatted message reads like a compiler diagnostic: file:line:col: message
    assert str(err).startswith(f"{err.filename}:{err.lineno}:")


@pytest.mark.parametrize("fn, args, wrt, where", CASES)
def test_refused_by_every_entry_point(fn, args, wrt, where):
    """value_and_grad and vjp refuse the same constructs, at the same line."""
    where = where or fn
    for call in (lambda: srcgrad.value_and_grad(fn, wrt=wrt)(*args),
                 lambda: srcgrad.vjp(fn, *args, wrt=wrt)):
        with pytest.raises(srcgrad.SrcgradError) as info:
            call()
        assert info.value.lineno == _marker_line(where)


def test_async_function_refused_at_its_def_line():
    with pytest.raises(UnsupportedError, match="async") as info:
        srcgrad.grad(r_async)
    assert info.value.filename.endswith("test_refusals.py")
    assert info.value.lineno == _marker_line(r_async)


def test_refusal_kinds():
    # constructs the compiler does not support are UnsupportedError, a SrcgradError
    with pytest.raises(UnsupportedError, match=r"`for \.\.\. else`"):
        srcgrad.grad(r_for_else)(0.5)
    with pytest.raises(UnsupportedError, match=r"`while \.\.\. else`"):
        srcgrad.grad(r_while_else)(0.5)
    with pytest.raises(UnsupportedError, match="`return` inside a `with` block"):
        srcgrad.grad(r_return_in_with)(0.5)
    with pytest.raises(UnsupportedError, match="`break`/`continue` inside a `with`"):
        srcgrad.grad(r_break_in_with)(0.5)
    with pytest.raises(UnsupportedError, match="copy it before the loop"):
        srcgrad.grad(r_setitem_argument_in_loop)(np.ones(3))
    with pytest.raises(UnsupportedError, match="share memory"):
        srcgrad.grad(r_setitem_alias)(np.ones(3))
    with pytest.raises(UnsupportedError, match="share memory"):
        srcgrad.grad(r_aug_reshape_view)(np.ones((2, 3)))
    with pytest.raises(UnsupportedError, match="`with` block"):
        srcgrad.grad(r_with_open)(0.5)
    with pytest.raises(UnsupportedError, match="no derivative rule for `np.linalg.det`"):
        srcgrad.grad(r_no_rule_det)(np.eye(2))
    with pytest.raises(UnsupportedError, match=r"\*args"):
        srcgrad.grad(r_varargs)(0.5)
    with pytest.raises(UnsupportedError, match="list comprehension"):
        srcgrad.grad(r_listcomp)(np.ones(3))
    with pytest.raises(UnsupportedError, match="lambda"):
        srcgrad.grad(r_lambda_called_inline)(0.5)
    with pytest.raises(UnsupportedError, match="no source"):
        srcgrad.grad(r_call_exec_helper)(0.5)


# ------------------------------------------ item assignment into a dict or a list
def into_dict(x):
    d = {}
    d["a"] = x
    return d["a"] * 2.0


def into_list_of_floats(x):
    ys = [0.0, 0.0]
    ys[0] = x
    return ys[0] * 2.0


def into_list_of_arrays(x):
    ys = [np.zeros(2), np.zeros(2)]
    ys[0] = x
    return np.sum(ys[0] * 2.0)


@pytest.mark.parametrize("fn, x", [
    (into_dict, 0.5),
    (into_list_of_floats, 0.5),
    (into_list_of_arrays, np.array([0.5, -1.0])),
])
def test_item_assignment_into_a_container_is_refused_or_correct(fn, x):
    try:
        g = srcgrad.grad(fn)(x)
    except srcgrad.SrcgradError as err:
        assert err.filename.endswith("test_refusals.py")
        assert err.line_text is not None and "] = x" in err.line_text
        return
    np.testing.assert_allclose(g, 2.0 * np.ones_like(x))


def helper_returns_tuple(z):
    return z, z * 2.0


def tuple_helper_in_expression(x):
    return helper_returns_tuple(x) * 2.0


def test_tuple_returning_helper_in_an_expression_fails_like_python():
    """`(x, 2x) * 2.0` is a TypeError in Python: srcgrad refuses it or raises the same."""
    with pytest.raises(TypeError):
        tuple_helper_in_expression(0.5)
    with pytest.raises((srcgrad.SrcgradError, TypeError), match="sequence|tuple"):
        srcgrad.grad(tuple_helper_in_expression)(0.5)


def test_refusal_not_triggered_without_differentiated_values():
    """The same constructs on values that carry no gradient are fine."""
    def ok(x, flag):
        c = 2.0 if flag else 3.0
        ys = [i * 2.0 for i in range(3)]
        return x * c + ys[1]

    assert srcgrad.grad(ok)(0.5, True) == pytest.approx(2.0)
    assert srcgrad.grad(ok)(0.5, False) == pytest.approx(3.0)


def test_refused_aug_assign_on_a_fresh_value_is_allowed():
    """The view check refuses only possible aliases: a fresh value may be updated in place."""
    def fresh(x):
        y = x.reshape(-1) * 1.0
        y += 1.0
        return np.sum(y ** 2)

    x = np.array([[0.5, -1.0], [2.0, 0.25]])
    np.testing.assert_allclose(srcgrad.grad(fresh)(x), 2 * (x + 1.0))
    np.testing.assert_array_equal(x, [[0.5, -1.0], [2.0, 0.25]])


# ======================================================== functions without source
def test_exec_without_linecache_has_no_source():
    ns = {}
    exec("def nosrc(x):\n    return x * 2.0\n", ns)
    with pytest.raises(srcgrad.SrcgradError) as info:
        srcgrad.grad(ns["nosrc"])
    err = info.value
    assert isinstance(err, NoSourceError)
    assert "cannot find the source code of nosrc" in str(err)
    assert "exec()" in str(err)


def test_builtin_has_no_source():
    # math.exp has a derivative rule, so grad(math.exp) differentiates it (test_api_errors.py)
    with pytest.raises(NoSourceError, match="len is a builtin function, not Python source"):
        srcgrad.grad(len)


def _register_cell(src, name):
    fname = f"<ipython-input-{name}>"
    linecache.cache[fname] = (len(src), None, src.splitlines(True), fname)
    ns = {"np": np, "math": math, "srcgrad": srcgrad}
    exec(compile(src, fname, "exec"), ns)
    return fname, ns


CELL = '''\
def cell_helper(z, k=2.0):
    return np.tanh(z * k)


def cell_loss(w, x):
    h = cell_helper(x @ w)
    a, b = 1.5, 0.5
    return np.sum(h ** 2) * a + math.exp(b) * np.mean(w)
'''


def test_notebook_cell_source_in_linecache():
    fname, ns = _register_cell(CELL, "7-0123456789ab")
    try:
        rng = np.random.default_rng(0)
        w, x = rng.normal(size=(3, 2)), rng.normal(size=(4, 3))
        check_grads(ns["cell_loss"], w, x, wrt=(0, 1))
        src = srcgrad.source(srcgrad.grad(ns["cell_loss"]), w, x)
        assert "line 6: h = cell_helper(x @ w)" in src
    finally:
        linecache.cache.pop(fname, None)


def test_notebook_cell_refusal_names_the_cell_line():
    # (the same cell without `else` differentiates: test_control_flow.py)
    src = ("def cell_bad(x):\n    y = x * 2.0\n    for i in range(2):\n        y = y * x\n"
           "    else:\n        y = y + 1.0\n    return y\n")
    fname, ns = _register_cell(src, "8-fedcba987654")
    try:
        with pytest.raises(UnsupportedError) as info:
            srcgrad.grad(ns["cell_bad"])(0.5)
        assert info.value.filename == fname
        assert info.value.lineno == 3
        assert "for i in range(2):" in info.value.line_text
    finally:
        linecache.cache.pop(fname, None)


# ============================================================ non-scalar outputs
def vector_out(x):
    return np.sin(x) * 2.0


def matrix_out(x, w):
    return x @ w


def test_grad_of_non_scalar_output_points_to_vjp():
    with pytest.raises(srcgrad.SrcgradError) as info:
        srcgrad.grad(vector_out)(np.ones(3))
    assert isinstance(info.value, NonScalarOutputError)
    assert "vjp" in str(info.value)
    assert "(3,)" in str(info.value)
    with pytest.raises(NonScalarOutputError, match="vjp"):
        srcgrad.value_and_grad(matrix_out, wrt=(0, 1))(np.ones((2, 3)), np.ones((3, 4)))


def test_grad_of_size_one_output_is_allowed():
    g = srcgrad.grad(matrix_out)(np.array([[1.0, 2.0]]), np.array([[3.0], [4.0]]))
    np.testing.assert_allclose(g, [[3.0, 4.0]])


def tuple_out(a, b):
    return a * b, a + b


def tuple_out_shared(x):
    y = np.sum(x ** 2)
    return y, y * 2.0


def test_grad_of_tuple_output_is_refused_cleanly():
    with pytest.raises(srcgrad.SrcgradError, match="vjp"):
        srcgrad.grad(tuple_out)(0.5, 0.7)


def test_grad_of_tuple_output_sharing_a_value_is_refused_cleanly():
    with pytest.raises(srcgrad.SrcgradError, match="vjp"):
        srcgrad.grad(tuple_out_shared)(np.ones(3))


def test_vjp_of_tuple_output_needs_a_tuple_seed():
    value, pullback = srcgrad.vjp(tuple_out, 0.5, 0.7, wrt=(0, 1))
    assert value == pytest.approx((0.35, 1.2))
    da, db = pullback((2.0, -1.0))
    assert da == pytest.approx(2.0 * 0.7 - 1.0)
    assert db == pytest.approx(2.0 * 0.5 - 1.0)
    with pytest.raises(srcgrad.SrcgradError, match="tuple"):
        pullback(np.array([2.0, -1.0]) * np.ones((1, 2)))


# ================================================ gradients never modify inputs
def upd_aug(x, c):
    y = x * c[:2]
    y += x
    y *= 2.0
    return np.sum(y ** 2)


def upd_indexing(x, c):
    return np.sum(x[np.array([0, 0, 1])] * c[:2]) + np.sum(x[x > 0] ** 2)


def upd_shapes(x, c):
    y = x.reshape(-1)
    z = np.concatenate((y, c))
    return np.sum(np.cumsum(z) ** 2) + np.sum(c ** 2 * y[:4])


def upd_reductions(x, c):
    return np.sum(np.max(x, axis=0)) + np.var(c) + np.prod(x[0]) + np.std(x)


def upd_vector(x, c):
    return np.tanh(x.reshape(-1) * c[:4])


@pytest.mark.parametrize("fn", [upd_aug, upd_indexing, upd_shapes, upd_reductions, upd_vector])
def test_gradient_calls_do_not_modify_inputs(fn):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 2))
    c = rng.normal(size=(4,))
    x0, c0 = x.copy(), c.copy()
    if fn is upd_vector:
        seed = rng.normal(size=(4,))
        seed0 = seed.copy()
        value, pullback = srcgrad.vjp(fn, x, c, wrt=(0, 1))
        pullback(seed)
        pullback(seed)
        np.testing.assert_array_equal(seed, seed0)
    else:
        srcgrad.grad(fn, wrt=(0, 1))(x, c)
        srcgrad.value_and_grad(fn, wrt="x")(x, c)
        value, pullback = srcgrad.vjp(fn, x, c, wrt=1)
        pullback(1.0)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(c, c0)
    # and the gradient is right (check_grads itself also checks inputs are unchanged)
    check_grads(fn, x, c, wrt=(0, 1))
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(c, c0)


def test_gradient_is_a_fresh_array():
    """Writing into a returned gradient must not change the inputs."""
    x = np.array([[0.5, -1.0], [2.0, 0.25]])
    c = np.array([1.0, 2.0, 3.0, 4.0])
    x0, c0 = x.copy(), c.copy()
    for fn in (upd_aug, upd_indexing, upd_shapes, upd_reductions):
        dx, dc = srcgrad.grad(fn, wrt=(0, 1))(x, c)
        dx[...] = 99.0
        dc[...] = 99.0
        np.testing.assert_array_equal(x, x0)
        np.testing.assert_array_equal(c, c0)


def test_a_local_import_is_resolved_like_a_global():
    g = srcgrad.testing.check_grads(local_import, 0.5)
    assert g == pytest.approx(math.exp(0.5) * (math.sin(0.5) + math.cos(0.5)))
