"""Statements at the edge of what srcgrad differentiates: `:=`, repeated-index writes, code
that reads variables by name, many early returns, `global`, and where refusals point."""
import importlib.util
import statistics

import numpy as np
import pytest

import srcgrad
from srcgrad import SrcgradError
from srcgrad.testing import check_grads


# ------------------------------------------------------------------------------- walrus
def walrus_if(x):
    if (y := x * x) > 1.0:
        return y * x
    return x


def walrus_while(x):
    n = 1.0
    while (y := x * n) < 2.0:
        n = n + 1.0
    return y


def walrus_while_continue(x):
    n = 0.0
    total = 0.0
    while (y := x * n) < 3.0:
        n = n + 1.0
        if n < 2.0:
            continue
        total = total + y
    return total + y


def walrus_in_an_expression(x):
    z = (w := np.sin(x)) * 2.0 + w
    return z * w


@pytest.mark.parametrize("f, x, expected", [
    (walrus_if, 1.1, 3 * 1.1 ** 2),
    (walrus_if, 0.5, 1.0),
    (walrus_while, 0.63, 4.0),
])
def test_the_value_bound_by_walrus_is_differentiated(f, x, expected):
    assert srcgrad.grad(f)(x) == pytest.approx(expected)


@pytest.mark.parametrize("f", [walrus_if, walrus_while, walrus_while_continue, walrus_in_an_expression])
@pytest.mark.parametrize("x", [0.37, 0.63, 1.3])
def test_walrus_against_finite_differences(f, x):
    check_grads(f, x)
    assert srcgrad.value_and_grad(f)(x)[0] == pytest.approx(f(x))


def walrus_in_or(x):
    if x > 5.0 or (y := x * 2.0) > 1.0:
        return x
    return x * 3.0


def walrus_read_twice(x):
    return x + (x := x * 2.0)


@pytest.mark.parametrize("f", [walrus_in_or, walrus_read_twice])
def test_walrus_whose_order_matters_is_refused(f):
    with pytest.raises(SrcgradError, match=":=") as info:
        srcgrad.grad(f)(1.0)
    assert info.value.lineno is not None


# --------------------------------------------------------------- repeated-index writes
def add_at_repeated(x):
    y = np.zeros(2)
    y[[0, 0]] += x
    return y[0]


def set_repeated(x, z):
    y = np.zeros(2)
    y[[0, 0]] = np.array([x, z])
    return y[0]


def sub_repeated(x):
    y = np.zeros(3)
    y[[1, 1, 2]] -= x
    return np.sum(y * np.array([1.0, 2.0, 3.0]))


def rows_by_index_array(x, idx):
    y = np.zeros((3, 2))
    y[idx] = x
    return np.sum(y * np.arange(6.0).reshape(3, 2))


def test_a_repeated_index_is_written_once():
    assert srcgrad.grad(add_at_repeated)(1.0) == pytest.approx(1.0)
    assert srcgrad.grad(set_repeated, wrt=(0, 1))(1.0, 2.0) == pytest.approx((0.0, 1.0))
    assert srcgrad.grad(sub_repeated)(1.0) == pytest.approx(-5.0)


def test_repeated_rows_keep_the_last_write():
    x = np.arange(8.0).reshape(4, 2)
    g = srcgrad.grad(rows_by_index_array)(x, np.array([0, 2, 0, 1]))
    assert g == pytest.approx(np.array([[0.0, 0.0], [4.0, 5.0], [0.0, 1.0], [2.0, 3.0]]))
    check_grads(rows_by_index_array, x, np.array([2, 1, 0, 1]))


# ------------------------------------------------------- code that reads variables by name
def uses_eval(x):
    return eval("x * 2")


def uses_exec(x):
    exec("y = 1")
    return x * 2


def uses_locals(x):
    return locals()["x"] * 2


def uses_vars(x):
    return vars()["x"] * 2


def uses_globals(x):
    return globals()["np"].sin(x)


def helper_with_eval(x):
    return eval("x")


def calls_a_helper_with_eval(x):
    return helper_with_eval(x) * 2.0


@pytest.mark.parametrize("f", [uses_eval, uses_exec, uses_locals, uses_vars, uses_globals,
                               calls_a_helper_with_eval], ids=lambda f: f.__name__)
def test_code_that_reads_variables_by_name_is_refused(f):
    with pytest.raises(SrcgradError, match="reads or runs code by variable names") as info:
        srcgrad.grad(f)(1.0)
    assert info.value.lineno is not None and info.value.filename == __file__


# ---------------------------------------------------------------------- many early returns
@pytest.mark.parametrize("count", [5, 13, 98, 150])
def test_many_sequential_early_returns(tmp_path, count):
    lines = ["def f(x):", "    y = x * 1.0"]
    for k in range(count):
        lines += [f"    if y > {k + 100}.5:", f"        return y * {k}.0", "    y = y + 0.001"]
    lines += ["    return y * y"]
    path = tmp_path / f"many_returns_{count}.py"
    path.write_text("\n".join(lines) + "\n")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert srcgrad.grad(module.f)(2.0) == pytest.approx(2 * (2.0 + 0.001 * count))
    assert srcgrad.grad(module.f)(101.0) == pytest.approx(0.0)
    source = srcgrad.source(srcgrad.grad(module.f), 2.0)
    depth = max(len(line) - len(line.lstrip()) for line in source.splitlines()) // 4
    assert depth < 8


# -------------------------------------------------------------------------- global names
G = 3.0


def reads_a_global(x):
    global G
    return x * G


def assigns_a_global(x):
    global G
    G = x
    return x * G


def test_global_only_read_is_fine():
    assert srcgrad.grad(reads_a_global)(2.0) == pytest.approx(3.0)


def test_assigning_a_global_is_refused_by_name():
    with pytest.raises(SrcgradError, match="assigns the global variable `G`"):
        srcgrad.grad(assigns_a_global)(2.0)


# ------------------------------------------------------------- messages name the construct
def return_in_try(x):
    try:
        return x
    finally:
        pass


def return_in_match(x):
    match 1:
        case 1:
            return x
    return x


@pytest.mark.parametrize("f, what", [(return_in_try, "`try` block"),
                                     (return_in_match, "`match` statement")])
def test_return_in_try_or_match_names_the_statement(f, what):
    with pytest.raises(SrcgradError, match=what) as info:
        srcgrad.grad(f)(1.0)
    assert "with" not in info.value.message


def calls_library_code(x):
    return statistics.fmean([x, x])


def test_a_refusal_inside_library_code_points_at_the_users_call():
    with pytest.raises(SrcgradError) as info:
        srcgrad.grad(calls_library_code)(1.0)
    err = info.value
    assert err.filename == __file__
    assert err.lineno == calls_library_code.__code__.co_firstlineno + 1
    assert "statistics.fmean" in err.message and "library code" in err.message


def test_np_r_and_c_of_differentiated_values_are_refused():
    def f(x):
        return np.sum(np.r_[x, 1.0, x] ** 2)
    with pytest.raises(SrcgradError, match="np.concatenate"):
        srcgrad.grad(f)(np.ones(2))


def test_an_error_found_while_the_gradient_runs_names_the_users_line():
    def f(x):
        xs = [x, x * 2.0, x * 3.0]
        k = slice(1, None)
        return np.sum(np.array(xs[k]))
    with pytest.raises(SrcgradError, match="one element of a list") as info:
        srcgrad.grad(f)(2.0)
    assert info.value.filename == __file__
    assert info.value.lineno == f.__code__.co_firstlineno + 3


# ------------------------------------------------------------------- found by review
def or_for_its_value(x):
    return (x[1] or x[2]) * 2.0


def and_for_its_value(x):
    return (x[0] and x[1]) * 3.0


def test_and_or_for_their_value_are_differentiated():
    x = np.array([0.5, -1.0, 2.0])
    assert srcgrad.grad(or_for_its_value)(x) == pytest.approx([0.0, 2.0, 0.0])
    assert srcgrad.grad(and_for_its_value)(x) == pytest.approx([0.0, 3.0, 0.0])
    assert srcgrad.grad(or_for_its_value)(np.array([0.5, 0.0, 2.0])) == pytest.approx([0.0, 0.0, 2.0])


def sum_into_out(x):
    buf = np.zeros(())
    z = np.sum(x * x, out=buf)
    return buf * 2.0 + z


def integer_sum(x):
    return np.sum(x * 3.0, dtype=int)


def integer_array(x):
    return np.sum(np.array(x * 3.0, int))


def walrus_twice(x):
    return (t := x[0]) * (t := t + 1.0)


def walrus_in_its_own_update(x):
    s = x[0]
    s += (s := x[1] * 2.0)
    return s


def eval_through_getattr(x):
    import builtins
    return getattr(builtins, "eval")("x[0] * 2.0") + x[1]


def dir_of_the_locals(x):
    return np.sum(x * 2.0) * len(dir())


def aug_concatenating_a_list(x):
    xs = [x[0]]
    xs += [x[1]]
    return xs[0]


@pytest.mark.parametrize("f, match", [
    (sum_into_out, "out="), (integer_sum, "dtype"), (integer_array, "dtype"),
    (walrus_twice, ":="), (walrus_in_its_own_update, ":="),
    (eval_through_getattr, "variable names"), (dir_of_the_locals, "variable names"),
    (aug_concatenating_a_list, "lists"),
], ids=lambda v: getattr(v, "__name__", ""))
def test_refused_with_the_users_line(f, match):
    with pytest.raises(SrcgradError, match=match) as info:
        srcgrad.grad(f)(np.array([0.5, -1.0, 2.0]))
    assert info.value.filename == __file__ and info.value.lineno is not None


def zip_with_a_literal(x):
    s = 0.0
    for a, b in zip(x, [1.0, 2.0, 3.0]):
        s = s + a * b
    return s


def test_a_loop_over_zip_with_a_literal_list():
    assert srcgrad.grad(zip_with_a_literal)(np.array([0.5, -1.0, 2.0])) == pytest.approx([1, 2, 3])


def adds_a_complex_constant(x):
    return x + 1j


def returns_a_string(x):
    y = x * 2.0
    return "done"


@pytest.mark.parametrize("f", [adds_a_complex_constant, returns_a_string], ids=lambda f: f.__name__)
def test_outputs_that_are_not_real_numbers_are_refused(f):
    with pytest.raises(SrcgradError) as info:
        srcgrad.grad(f)(1.0)
    assert info.value.filename == __file__


@pytest.mark.parametrize("seed", [None, "a", 1j])
def test_a_pullback_seed_must_be_a_real_number(seed):
    _, pullback = srcgrad.vjp(lambda x: x * 2.0, np.ones(2))
    with pytest.raises(SrcgradError, match="seed"):
        pullback(seed)


# ------------------------------------------------------------ found by the generators
def update_of_a_0d_array_through_an_alias(x):
    a = np.asarray(np.sum(x * x))
    b = a
    b += x[0]
    return a * 1.0 + b


def update_of_a_0d_argument_through_an_alias(a, x):
    b = a
    b += x
    return a * x


def test_a_0d_array_is_changed_in_place_so_an_alias_update_is_refused():
    with pytest.raises(SrcgradError, match="may share memory"):
        srcgrad.grad(update_of_a_0d_array_through_an_alias)(np.array([0.5, -1.0]))
    with pytest.raises(SrcgradError, match="may share memory"):
        srcgrad.grad(update_of_a_0d_argument_through_an_alias, wrt=1)(np.array(2.0), 3.0)
    assert srcgrad.grad(update_of_a_0d_argument_through_an_alias, wrt=1)(2.0, 3.0) == 2.0


def repeated_columns(x):
    y = np.zeros((2, 2))
    y[:, [0, 0]] = x
    return np.sum(y * np.array([[1.0, 2.0], [3.0, 4.0]]))


def test_a_repeated_index_next_to_a_slice_keeps_the_last_write():
    g = srcgrad.grad(repeated_columns)(np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert g == pytest.approx(np.array([[0.0, 1.0], [0.0, 3.0]]))


def list_made_in_the_loop(p):
    t = 0.0
    for j in range(3):
        hs = [p * j]
        t = t + hs[0] * p
    return t + hs[0]


def list_appended_in_the_loop(p):
    for j in range(2):
        hs = []
        hs.append(p)
    return sum(hs)


def test_a_list_made_anew_in_a_loop_body():
    assert srcgrad.grad(list_made_in_the_loop)(0.3) == pytest.approx(3.8)
    assert srcgrad.grad(list_appended_in_the_loop)(0.3) == pytest.approx(1.0)


def array_first_bound_in_a_while_and_indexed(p):
    n = 0
    while np.mean(y := np.tanh(p * np.ones(3))) > 0.163 and n < 2:
        n = n + 1
        p = 0.8 * p + np.tanh(y[n])
    return np.sum(y * 0.5) + p


def test_an_array_first_bound_inside_a_loop_and_written_by_index_in_the_sweep():
    check_grads(array_first_bound_in_a_while_and_indexed, 0.9)
