"""Names that share memory: every in-place update srcgrad accepts is one no other live name
sees; the rest are refused at the user's line. Also wrt attributes and dict entries read
through another name for their object."""
import numpy as np
import pytest

import srcgrad
from srcgrad import SrcgradError
from srcgrad.testing import check_grads

X3 = np.array([0.5, -1.0, 2.0])


def refused(f, *args, match="may share memory", wrt=0):
    with pytest.raises(SrcgradError, match=match) as info:
        srcgrad.grad(f, wrt=wrt)(*args)
    assert info.value.lineno is not None and info.value.filename.endswith(".py")
    return info.value


# ------------------------------------------------- in-place updates through another name
def aug_reads_an_element(x):
    a = x
    a += x[0]
    return np.sum(x * x)


def aug_after_a_write_loop(x):
    y = x * 1.0
    for i in range(2):
        y[i] = y[i] * 2.0
    a = y
    a += 1.0
    return np.sum(y * y)


def aug_then_a_loop(x, s):
    a = x
    a *= s
    r = 0.0
    for v in x:
        r = r + v * v
    return r


def aug_through_a_chain(x):
    y = x * 2.0
    a = y
    b = a
    b -= 1.0
    return np.sum(y ** 2)


def aug_through_a_view(x):
    y = x * 2.0
    v = y.reshape(3, 1)
    v += 1.0
    return np.sum(y ** 2)


def aug_alias_in_a_branch(x):
    y = x * 2.0
    if x[0] > 0:
        a = y
    else:
        a = y * 1.0
    a += 1.0
    return np.sum(y ** 2)


def aug_alias_made_later_in_the_loop(x):
    a = x * 1.0
    b = x * 2.0
    s = 0.0
    for _ in range(2):
        a += 1.0
        s = s + np.sum(b * x)        # the second time, b is a: changed by `a += 1.0`
        b = a
    return s


def write_seen_by_a_view_bound_in_the_last_iteration(X):
    Y = X * 1.0
    t = 0.0
    for i in range(2):
        r = Y[1]
        t = t + np.sum(r * X[0])
        Y[1] = Y[1] * 2.0
    return t


def write_through_a_slice(x):
    y = x * 1.0
    v = y[1:]
    v[0] = 0.0
    return np.sum(y ** 2)


def write_into_an_array_a_list_holds(x):
    y = x * 1.0
    ys = [y]
    y[0] = 5.0
    return np.sum(ys[0] ** 2)


def aug_of_stop_gradient_alias(x):
    c = srcgrad.stop_gradient(x)
    c += 1.0
    return np.sum(x * x)


def write_through_a_helper_result(x):
    y = x * 1.0
    z = _same(y)
    z[0] = 0.0
    return np.sum(y * y)


def _same(v):
    return v


@pytest.mark.parametrize("f, args", [
    (aug_reads_an_element, (X3,)),
    (aug_after_a_write_loop, (X3,)),
    (aug_then_a_loop, (X3, 2.0)),
    (aug_through_a_chain, (X3,)),
    (aug_through_a_view, (X3,)),
    (aug_alias_in_a_branch, (X3,)),
    (aug_alias_made_later_in_the_loop, (X3,)),
    (write_through_a_slice, (X3,)),
    (write_into_an_array_a_list_holds, (X3,)),
    (aug_of_stop_gradient_alias, (X3,)),
    (write_through_a_helper_result, (X3,)),
], ids=lambda v: getattr(v, "__name__", ""))
def test_an_update_another_name_sees_is_refused(f, args):
    err = refused(f, *[np.copy(a) if isinstance(a, np.ndarray) else a for a in args])
    assert "`" in err.message


def test_the_refusal_names_both_variables_and_the_fix():
    err = refused(aug_reads_an_element, X3.copy())
    assert "`a` may share memory with `x`" in err.message
    assert "a = a + ..." in err.message
    assert err.lineno == aug_reads_an_element.__code__.co_firstlineno + 2


def test_value_and_grad_refuses_too():
    with pytest.raises(SrcgradError, match="may share memory"):
        srcgrad.value_and_grad(aug_reads_an_element)(X3.copy())


# ------------------------------------------------------------- updates that are accepted
def aug_of_a_number_alias(x):
    s = x[0]
    t = s
    t += 1.0
    return s * t + np.sum(x)


def aug_of_a_fresh_array(x):
    a = x * 1.0
    a += x[0]
    return np.sum(a * x)


def aug_after_the_other_name_moved_on(x):
    a = x * 1.0
    b = a
    b = b * 2.0
    a += 1.0
    return np.sum(a * b)


def rows_made_anew_in_the_loop(x):
    rows = []
    for i in range(3):
        row = np.zeros(3)
        row[i] = x[i] * 2.0
        rows.append(row)
    return np.sum(np.stack(rows) ** 2)


def element_copy_then_write(x):
    y = x * 1.0
    first = y[0]
    y[0] = 3.0 * first
    return np.sum(y ** 2) + first


def aug_alias_rebound_before_it_is_read(x):
    a = x * 1.0
    b = x * 2.0
    for _ in range(2):
        a += 1.0
        b = a
    return np.sum(a * b)


def dead_view_then_write(x):
    y = x * 1.0
    v = y[1:]
    s = np.sum(v * x[1:])
    y[0] = s
    return np.sum(y ** 2)


def row_view_rebound_each_iteration(x):
    Y = np.stack([x, 2.0 * x])
    for i in range(2):
        r = Y[i]
        Y[i] = r * x
    return np.sum(Y ** 2)


def fill_loop(x):
    out = np.zeros((3, 2))
    for i, row in enumerate(np.stack([x, x]).T):
        out[i] = np.tanh(row)
    return np.sum(out ** 2)


@pytest.mark.parametrize("f", [aug_of_a_number_alias, aug_of_a_fresh_array,
                               aug_after_the_other_name_moved_on, rows_made_anew_in_the_loop,
                               element_copy_then_write, fill_loop,
                               aug_alias_rebound_before_it_is_read, dead_view_then_write,
                               row_view_rebound_each_iteration,
                               write_seen_by_a_view_bound_in_the_last_iteration],
                         ids=lambda f: f.__name__)
def test_updates_no_other_name_sees_are_differentiated(f):
    check_grads(f, X3.copy())
    assert srcgrad.value_and_grad(f)(X3.copy())[0] == pytest.approx(f(X3.copy()))


# --------------------------------------------------------------------- two names, one list
def append_through_a_second_name(x):
    a = [x]
    b = a
    b.append(x * 3.0)
    return a[1]


def test_appending_through_a_second_name_for_a_list_is_refused():
    err = refused(append_through_a_second_name, 1.0)
    assert "`b` may share memory with `a`" in err.message


def append_to_a_copied_list(x):
    a = [x]
    b = [a[0]]
    b.append(x * 3.0)
    return a[0] + b[1]


def test_appending_to_a_new_list_is_differentiated():
    assert srcgrad.grad(append_to_a_copied_list)(1.0) == pytest.approx(4.0)


def test_a_list_slice_is_refused_at_the_users_line():
    def f(x):
        xs = [x, x * 2.0, x * 3.0]
        return np.sum(np.array(xs[1:]))
    err = refused(f, 2.0, match="one element of a list")
    assert err.lineno == f.__code__.co_firstlineno + 2


# ------------------------------------------------- wrt attributes read through another name
class Model:
    def __init__(self):
        self.w = 2.0
        self.b = 0.5

    def loss_dict(self, x):
        return self.__dict__["w"] * x

    def loss_alias_and_self(self, x):
        m = self
        return m.w * x * self.w

    def loss_getattr(self, x):
        return getattr(self, "w") * x + self.b


def through_a_name(model, x):
    m = model
    return m.w * x


def through_a_helper(model, x):
    return _helper_alias(model, x)


def _helper_alias(o, x):
    alias = o
    return alias.w * x


def dict_through_a_name(params, x):
    p = params
    return p["w"] * x


class Outer:
    def __init__(self):
        self.sub = Model()


def through_a_sub_object(outer, x):
    s = outer.sub
    return s.w * x * x


def sub_object_to_a_helper(outer, x):
    return _helper_alias(outer.sub, x)


def test_wrt_attribute_through_a_local_name():
    assert srcgrad.grad(through_a_name, wrt="model.w")(Model(), 3.0) == pytest.approx(3.0)


def test_wrt_attribute_through_a_helpers_local_name():
    assert srcgrad.grad(through_a_helper, wrt="model.w")(Model(), 3.0) == pytest.approx(3.0)


def test_wrt_dict_entry_through_a_local_name():
    g = srcgrad.grad(dict_through_a_name, wrt="params")({"w": 2.0}, 3.0)
    assert g == pytest.approx({"w": 3.0})


def test_wrt_attribute_through_dunder_dict_and_getattr():
    m = Model()
    assert srcgrad.grad(m.loss_dict, wrt="self.w")(3.0) == pytest.approx(3.0)
    assert srcgrad.grad(m.loss_getattr, wrt="self.w")(3.0) == pytest.approx(3.0)


def test_wrt_attribute_through_self_and_an_alias_counts_both():
    m = Model()
    assert srcgrad.grad(m.loss_alias_and_self, wrt="self.w")(3.0) == pytest.approx(12.0)


def test_wrt_nested_attribute_through_a_sub_object():
    o = Outer()
    assert srcgrad.grad(through_a_sub_object, wrt="outer.sub.w")(o, 3.0) == pytest.approx(9.0)
    assert srcgrad.grad(sub_object_to_a_helper, wrt="outer.sub.w")(o, 3.0) == pytest.approx(3.0)


def in_a_list(model, x):
    total = 0.0
    for o in [model, model]:
        total = total + o.w * x
    return total


def rebound_in_a_branch(model, other, x):
    m = model if x > 0 else other
    return m.w * x


def dunder_dict_whole(model, x):
    d = model.__dict__
    return d["w"] * x


@pytest.mark.parametrize("f, args", [
    (in_a_list, (Model(), 3.0)),
    (rebound_in_a_branch, (Model(), Model(), 3.0)),
    (dunder_dict_whole, (Model(), 3.0)),
], ids=lambda v: getattr(v, "__name__", ""))
def test_other_uses_of_the_object_are_refused(f, args):
    with pytest.raises(SrcgradError) as info:
        srcgrad.grad(f, wrt="model.w")(*args)
    assert info.value.lineno is not None


# ------------------------------------------------- found by review: more ways to share memory
G = np.array([1.0, 2.0, 3.0])


def write_through_an_item_read_out_of_a_list(x):
    y = x * 1.0
    ys = [y]
    z = ys[0]
    z[0] = 5.0
    return np.sum(y * x)


def aug_of_a_tuple_item(x):
    y = x * 1.0
    t = (y, 2.0)
    a, c = t
    a += 1.0
    return np.sum(y * y)


def aug_of_a_helpers_pair(x):
    y = x * 1.0
    a, b = _pair(y)
    a += 1.0
    return np.sum(y * y) + b


def _pair(v):
    return v, 1.0


def two_reads_of_one_slot(x):
    ys = [x * 1.0]
    z = ys[0]
    w = ys[0]
    z += 1.0
    return np.sum(w * x)


def write_through_a_view_of_a_global(x):
    v = G[:2]
    v[0] = x[0]
    return np.sum(G * x)


def aug_of_a_global(x):
    a = G
    a += x
    return np.sum(a)


def float64_of_an_array_is_the_array(x):
    y = x * 1.0
    z = np.float64(y)
    z += 1.0
    return np.sum(y * x)


@pytest.mark.parametrize("f", [write_through_an_item_read_out_of_a_list, aug_of_a_tuple_item,
                               aug_of_a_helpers_pair, two_reads_of_one_slot,
                               write_through_a_view_of_a_global, aug_of_a_global,
                               float64_of_an_array_is_the_array], ids=lambda f: f.__name__)
def test_more_ways_to_share_memory_are_refused(f):
    refused(f, X3.copy())


def view_read_by_the_adjoint_then_written(w, x):
    Y = np.outer(x, x) * 1.0
    s = np.sum(Y[0] * w)             # d/dw reads Y[0] as it was here
    Y[0] = 5.0 * w
    return s + np.sum(Y * w)


def test_a_view_the_adjoint_reads_sees_the_array_as_it_was():
    w, x = np.array([0.3, 0.2]), np.array([1.0, 2.0])
    check_grads(view_read_by_the_adjoint_then_written, w, x, wrt=(0, 1))


# ------------------------------------------- wrt attributes inside loops and branches
def attribute_in_a_loop(model, x):
    s = 0.0
    for _ in range(3):
        s = s + model.w * x
    return s


def attribute_in_a_branch(model, x):
    s = 0.0
    if x > 0:
        s = model.w * x
    return s


def entry_in_a_loop(p, x):
    s = 0.0
    for _ in range(3):
        s = s + p["w"] * x
    return s


def test_wrt_values_read_inside_loops_and_branches():
    assert srcgrad.grad(attribute_in_a_loop, wrt="model.w")(Model(), 3.0) == pytest.approx(9.0)
    assert srcgrad.grad(attribute_in_a_branch, wrt="model.w")(Model(), 3.0) == pytest.approx(3.0)
    assert srcgrad.grad(entry_in_a_loop, wrt="p")({"w": 2.0}, 3.0) == pytest.approx({"w": 9.0})


# ------------------------------------------------- one object reached by two paths
class _Box:
    def __init__(self, w):
        self.w = w


def two_arguments(a, b, x):
    return np.sum(a.w * b.w * x)


def two_attributes(o, x):
    return np.sum(o.s1.w * o.s2.w * x)


def test_one_object_passed_twice_is_refused():
    m = _Box(np.array([2.0]))
    with pytest.raises(SrcgradError, match="argument b is a"):
        srcgrad.grad(two_arguments, wrt="a.w")(m, m, 3.0)
    assert srcgrad.grad(two_arguments, wrt="a.w")(m, _Box(np.array([2.0])), 3.0) == pytest.approx([6.0])


def test_tied_weights_and_an_object_holding_itself_are_refused():
    m = _Box(np.array([2.0]))
    o = _Box(None)
    o.s1, o.s2 = m, m
    with pytest.raises(SrcgradError, match="o.s2 is o.s1"):
        srcgrad.grad(two_attributes, wrt="o.s1.w")(o, 3.0)
    m.me = m
    with pytest.raises(SrcgradError, match="m.me is m"):
        srcgrad.grad(lambda m, x: np.sum(m.w * m.me.w * x), wrt="m.w")(m, 3.0)
