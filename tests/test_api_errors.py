"""What grad does with what it is handed that is not a plain Python function of float
arguments (issue 9): numpy and builtin functions, non-callables, wrt forms, *args and
decorated functions, bad calls, complex and integer arguments, ndarray subclasses, and
recursion deeper than Python's limit. Each is either differentiated correctly or refused
with a SrcgradError that says why."""
import functools
import inspect
import math
import re
import sys
import warnings

import numpy as np
import pytest

import srcgrad
from srcgrad import tape
from srcgrad.errors import (ArgumentError, NonScalarOutputError, NoSourceError,
                            RecursionDepthError, UnsupportedError)


def f_xy(x, y):
    return x * y * y


def sum_sq(x):
    return np.sum(x * x)


# ======================================================== what is differentiated

def test_a_numpy_ufunc_is_differentiated_through_a_python_wrapper():
    assert srcgrad.grad(np.sin)(0.3) == pytest.approx(math.cos(0.3), rel=1e-15)
    assert type(srcgrad.grad(np.sin)(0.3)) is float
    dx1, dx2 = srcgrad.grad(np.multiply, wrt=(0, "x2"))(3.0, 2.0)
    assert (dx1, dx2) == (2.0, 3.0)
    x = np.array(0.7)
    np.testing.assert_allclose(srcgrad.grad(np.tanh)(x), 1 - np.tanh(0.7) ** 2, rtol=1e-15)
    assert srcgrad.grad(np.sin) is srcgrad.grad(np.sin)           # cached like a function
    text = srcgrad.source(srcgrad.grad(np.sin), 0.3)
    assert text.startswith("def grad_sin(x):") and "np.cos(x)" in text


def test_numpy_and_math_functions_with_rules():
    np.testing.assert_allclose(srcgrad.grad(np.sum)(np.arange(3.0)), np.ones(3))
    assert srcgrad.grad(math.exp)(1.0) == pytest.approx(math.e, rel=1e-15)
    value, g = srcgrad.value_and_grad(math.sqrt)(4.0)
    assert (value, g) == (2.0, 0.25)
    value, pullback = srcgrad.vjp(np.tanh, np.array([0.1, 0.2]))
    np.testing.assert_allclose(pullback(np.array([1.0, 2.0])),
                               np.array([1.0, 2.0]) * (1 - np.tanh([0.1, 0.2]) ** 2))


def test_an_error_in_a_wrapped_numpy_function_names_it():
    with pytest.raises(NonScalarOutputError) as info:
        srcgrad.grad(np.sin)(np.ones(3))
    assert str(info.value).startswith("<srcgrad: np.sin as a Python function>:2:")
    assert "return np.sin(x)" in str(info.value)
    with pytest.raises(TypeError, match=re.escape("np.add() missing 1 required positional "
                                                  "argument: 'x2'")):
        srcgrad.grad(np.add)(1.0)


def test_a_numpy_or_builtin_function_without_a_rule_is_refused():
    with pytest.raises(NoSourceError, match="np.isnan is a numpy function, not Python source, "
                                            "and srcgrad has no derivative rule for it"):
        srcgrad.grad(np.isnan)
    with pytest.raises(NoSourceError, match="len is a builtin function"):
        srcgrad.grad(len)
    # a rule, but no signature to call it with: the message says how to wrap it
    with pytest.raises(NoSourceError, match=re.escape("wrap it: srcgrad.grad(lambda x: max(x))")):
        srcgrad.grad(max)
    with pytest.raises(NoSourceError, match=re.escape("math.log is a builtin function, not Python "
                                                      "source: srcgrad differentiates functions "
                                                      "written in Python; wrap it: srcgrad.grad("
                                                      "lambda x: math.log(x))")):
        srcgrad.grad(math.log)
    assert srcgrad.grad(lambda x: math.log(x))(2.0) == 0.5


class Holder:
    @staticmethod
    def square(x):
        return x * x

    @classmethod
    def cube(cls, x):
        return x ** 3


def test_a_staticmethod_object_is_its_function():
    raw = Holder.__dict__["square"]
    assert isinstance(raw, staticmethod)
    assert srcgrad.grad(raw)(3.0) == 6.0
    assert srcgrad.grad(Holder.square)(3.0) == 6.0


def test_a_classmethod_object_is_refused_but_the_bound_method_works():
    with pytest.raises(ArgumentError, match=re.escape("srcgrad.grad(Holder.cube)")):
        srcgrad.grad(Holder.__dict__["cube"])
    assert srcgrad.grad(Holder.cube)(2.0) == pytest.approx(12.0)


@pytest.mark.parametrize("thing", [3, "f", [1.0], np.ones(2)])
def test_a_value_that_is_not_callable_is_refused(thing):
    with pytest.raises(ArgumentError, match="is not callable") as info:
        srcgrad.grad(thing)
    assert isinstance(info.value, TypeError)


# ======================================================== wrt

def test_wrt_as_a_list_is_the_tuple_it_lists():
    assert srcgrad.grad(f_xy, wrt=[0, "y"])(2.0, 3.0) == srcgrad.grad(f_xy, wrt=(0, "y"))(2.0, 3.0) \
        == (9.0, 12.0)
    assert srcgrad.grad(f_xy, wrt=[1])(2.0, 3.0) == (12.0,)
    assert srcgrad.grad(wrt=["x", "y"])(f_xy)(2.0, 3.0) == (9.0, 12.0)
    _, pullback = srcgrad.vjp(f_xy, 2.0, 3.0, wrt=[0, 1])
    assert pullback(1.0) == (9.0, 12.0)


@pytest.mark.parametrize("wrt", [(), []])
def test_an_empty_wrt_is_refused(wrt):
    with pytest.raises(ArgumentError, match=re.escape("wrt=() names no argument")):
        srcgrad.grad(f_xy, wrt=wrt)


def test_a_wrt_item_that_is_not_an_index_or_a_name_is_refused():
    with pytest.raises(ArgumentError, match="wrt must name a parameter by index or name, not \\[0\\]"):
        srcgrad.grad(f_xy, wrt=[[0]])


# ======================================================== *args and decorators

def star_args(*args):
    return args[0] * args[0]


def star_kwargs(x, **options):
    return x * options["scale"]


def passthrough(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)
    return wrapper


@passthrough
def decorated(x):
    return x * x


def doubling(fn):
    @functools.wraps(fn)
    def wrapper(x):
        return 2.0 * fn(x)
    return wrapper


@doubling
def decorated_named(x):
    return x * x


def _def_line(fn):
    lines, first = inspect.getsourcelines(fn.__code__)
    return first + next(i for i, line in enumerate(lines) if line.lstrip().startswith("def "))


@pytest.mark.parametrize("fn, star", [(star_args, "*args"), (star_kwargs, "**kwargs")])
def test_star_parameters_are_refused_at_the_def(fn, star):
    with pytest.raises(UnsupportedError) as info:
        srcgrad.grad(fn)
    err = info.value
    assert err.message == (f"srcgrad cannot differentiate with respect to {star} parameters; "
                           "name the parameters")
    assert err.filename == __file__ and err.lineno == _def_line(fn)
    assert "out of range" not in str(err)


def test_a_decorators_star_args_wrapper_is_refused_naming_the_wrapper():
    with pytest.raises(UnsupportedError) as info:
        srcgrad.grad(decorated)
    err = info.value
    assert "decorated is a wrapper a decorator made (`wrapper(*args, **kwargs)`" in err.message
    assert "*args parameters" in err.message
    assert "srcgrad.grad(decorated.__wrapped__)" in err.message
    assert err.filename == __file__ and err.lineno == _def_line(decorated)   # the wrapper's def
    # and what it points to works
    assert srcgrad.grad(decorated.__wrapped__)(3.0) == 6.0


def test_a_decorators_wrapper_with_named_parameters_is_differentiated():
    assert srcgrad.grad(decorated_named)(3.0) == 12.0      # d/dx 2 x^2


# ======================================================== calls with the wrong arguments

def test_missing_and_extra_arguments_name_the_users_function():
    cases = [
        (lambda: srcgrad.grad(f_xy)(2.0), "f_xy() missing 1 required positional argument: 'y'"),
        (lambda: srcgrad.grad(f_xy)(), "f_xy() missing 2 required positional arguments: 'x' and 'y'"),
        (lambda: srcgrad.grad(f_xy)(1.0, 2.0, 3.0), "f_xy() takes 2 positional arguments but 3 were given"),
        (lambda: srcgrad.grad(f_xy)(1.0, z=2.0), "f_xy() got an unexpected keyword argument 'z'"),
        (lambda: srcgrad.value_and_grad(f_xy)(2.0), "f_xy() missing 1 required positional argument: 'y'"),
        (lambda: srcgrad.vjp(f_xy, 2.0), "f_xy() missing 1 required positional argument: 'y'"),
    ]
    for call, message in cases:
        with pytest.raises(TypeError) as info:
            call()
        assert isinstance(info.value, srcgrad.SrcgradError)
        assert str(info.value) == message
        assert "__srcgrad" not in str(info.value)


def uses_len(x, n):
    return x * len(n)


def test_a_type_error_inside_the_function_is_left_as_it_is():
    with pytest.raises(TypeError, match="object of type 'int' has no len") as info:
        srcgrad.grad(uses_len)(1.0, 3)
    assert not isinstance(info.value, srcgrad.SrcgradError)


# ======================================================== complex numbers, ndarray subclasses

@pytest.mark.parametrize("x, what", [(np.array([1.0 + 1j, 2.0]), "a complex128 array"),
                                     (np.complex64(1 + 1j), "a numpy complex64 scalar"),
                                     (1 + 2j, "a complex number")])
def test_a_complex_wrt_argument_is_refused(x, what):
    with pytest.raises(ArgumentError) as info:
        srcgrad.grad(f_xy)(x, 2.0)
    assert str(info.value).startswith(f"f_xy's argument x is {what}: srcgrad differentiates "
                                      "real-valued functions of real arguments")


def scaled_sum(x, c):
    return np.sum(x * c)


def test_a_complex_constant_argument_is_refused():
    with pytest.raises(ArgumentError, match="scaled_sum's argument c is a complex128 array"):
        srcgrad.grad(scaled_sum)(np.ones(2), np.array([1j, 2.0]))
    with pytest.raises(ArgumentError, match="argument c is a complex number"):
        srcgrad.grad(scaled_sum)(np.ones(2), 2j)


C = np.array([1j, 2.0])


def abs_times_complex(x):
    return np.sum(np.abs(x * C))


def root_below(x):
    return (x - 2.0) ** 0.5


@pytest.mark.parametrize("fn, x", [(abs_times_complex, np.array([2.0, -1.0])),
                                   (root_below, 1.0)])
def test_a_gradient_that_comes_out_complex_is_refused(fn, x):
    with pytest.raises(UnsupportedError, match="the gradient with respect to x came out complex"):
        srcgrad.grad(fn)(x)


def test_a_cached_gradient_still_refuses_another_dtype_of_the_same_shape():
    df = srcgrad.grad(sum_sq)
    np.testing.assert_array_equal(df(np.ones(2)), [2.0, 2.0])
    with pytest.raises(ArgumentError, match="complex128"):
        df(np.ones(2, dtype=complex))
    with pytest.raises(ArgumentError, match="int64 array"):
        df(np.ones(2, dtype=np.int64))
    np.testing.assert_array_equal(df(np.ones(2)), [2.0, 2.0])


with warnings.catch_warnings():            # np.matrix is deprecated, but still made
    warnings.simplefilter("ignore", PendingDeprecationWarning)
    MATRIX = np.matrix([[1.0, 2.0], [3.0, 4.0]])

SUBCLASSES = [
    (MATRIX, "numpy.matrix", "matrix products"),
    (np.ma.array([[1.0, 2.0], [3.0, 4.0]], mask=[[0, 1], [0, 0]]), "numpy.ma.MaskedArray",
     "skip masked entries"),
    (np.rec.array(np.ones((2, 2))), "numpy.rec.recarray", "fields"),
]


@pytest.mark.parametrize("x, cls, why", SUBCLASSES)
def test_ndarray_subclasses_are_refused_as_wrt_and_as_constants(x, cls, why):
    with pytest.raises(ArgumentError) as info:
        srcgrad.grad(sum_sq)(x)
    assert str(info.value).startswith(f"sum_sq's argument x is a {cls}, a subclass of numpy.ndarray")
    assert why in str(info.value) and "np.asarray(x)" in str(info.value)
    with pytest.raises(ArgumentError, match=f"scaled_sum's argument c is a {re.escape(cls)}"):
        srcgrad.grad(scaled_sum)(np.ones((2, 2)), x)
    # what the message suggests gives the plain array's gradient
    np.testing.assert_array_equal(srcgrad.grad(sum_sq)(np.asarray(x, dtype=float)),
                                  2 * np.asarray(x, dtype=float))


def test_tape_refuses_complex_and_subclass_data():
    with pytest.raises(srcgrad.SrcgradError, match="tape.tensor: the data is complex"):
        tape.tensor(np.array([1.0 + 1j, 2.0]), requires_grad=True)
    with pytest.raises(srcgrad.SrcgradError, match="tape.tensor: the data is complex"):
        tape.tensor([1j])
    for x, cls, _ in SUBCLASSES:
        with pytest.raises(srcgrad.SrcgradError, match=f"the data is a {re.escape(cls)}"):
            tape.tensor(x, requires_grad=True)
    with pytest.raises(srcgrad.SrcgradError, match="only floating-point tensors can require"):
        tape.Tensor(np.array([1j]), requires_grad=True)
    t = tape.tensor(np.array([1.0, 3.0]), requires_grad=True)
    (t * t).sum().backward()
    np.testing.assert_array_equal(t.grad.data, [2.0, 6.0])


# ======================================================== integer, bool and low-precision arguments

@pytest.mark.parametrize("dtype", [np.bool_, np.int8, np.uint8, np.int16, np.int64])
def test_integer_and_bool_arrays_are_refused_as_wrt(dtype):
    x = np.array([1, 0, 1], dtype=dtype)
    name = np.dtype(dtype).name
    article = "an" if name[0] in "aeio" else "a"
    with pytest.raises(ArgumentError) as info:
        srcgrad.grad(sum_sq)(x)
    assert str(info.value) == (f"sum_sq's argument x is {article} {name} array: gradients are "
                               "defined for float arguments; pass x.astype(float)")


def test_integer_scalars_and_bools_as_wrt():
    with pytest.raises(ArgumentError, match=re.escape("x is a numpy int8 scalar: gradients are "
                                                      "defined for float arguments; pass float(x)")):
        srcgrad.grad(f_xy)(np.int8(2), 3.0)
    with pytest.raises(ArgumentError, match=re.escape("x is a bool: gradients are defined for "
                                                      "float arguments; pass float(x)")):
        srcgrad.grad(f_xy)(True, 3.0)
    # a Python int is a number: its gradient is the float64 one, as for float(x)
    g = srcgrad.grad(f_xy, wrt=(0, 1))(2, 3)
    assert g == (9.0, 12.0) and all(type(d) is float for d in g)
    assert srcgrad.grad(lambda x: x ** 3 / 7)(3) == pytest.approx(27 / 7, rel=1e-15)


def test_integer_arrays_are_fine_as_other_arguments():
    def pick(x, idx):
        return np.sum(x[idx] * 2.0)
    np.testing.assert_array_equal(srcgrad.grad(pick)(np.ones(4), np.array([0, 2, 2])),
                                  [2.0, 0.0, 4.0, 0.0])


@pytest.mark.parametrize("dtype, rtol", [(np.float16, 1e-3), (np.float32, 1e-6)])
def test_low_precision_float_gradients_keep_their_dtype_and_precision(dtype, rtol):
    def f(x):
        return np.sum(np.sin(x))
    x = np.array([0.1, 0.7, -1.3], dtype=dtype)
    g = srcgrad.grad(f)(x)
    assert g.dtype == dtype
    np.testing.assert_allclose(g.astype(float), np.cos(x.astype(float)), rtol=rtol)
    s = srcgrad.grad(f)(dtype(0.5))
    assert type(s) is dtype and float(s) == pytest.approx(math.cos(float(dtype(0.5))), rel=rtol)


# ======================================================== recursion deeper than Python's limit

def power(x, n):
    if n == 0:
        return 1.0
    return x * power(x, n - 1)


def power_300(x):
    return power(x, 300)


def power_3000(x):
    return power(x, 3000)


@pytest.fixture
def recursion_limit():
    before = sys.getrecursionlimit()
    yield sys.setrecursionlimit
    sys.setrecursionlimit(before)


def test_depth_300_with_a_raised_limit(recursion_limit):
    recursion_limit(5000)
    assert srcgrad.grad(power_300)(1.001) == pytest.approx(300 * 1.001 ** 299, rel=1e-12)
    _, pullback = srcgrad.vjp(power_300, 1.001)
    assert pullback(2.0) == pytest.approx(600 * 1.001 ** 299, rel=1e-12)


def test_past_the_default_limit_the_error_says_how_deep_and_how_to_raise_it(recursion_limit):
    recursion_limit(1000)
    for call in (lambda: srcgrad.grad(power_3000)(1.0001), lambda: srcgrad.vjp(power_3000, 1.0001)):
        with pytest.raises(RecursionDepthError) as info:
            call()
        message = str(info.value)
        assert isinstance(info.value, RecursionError)      # what the function itself raises
        assert message.startswith("the gradient of power_3000 reached Python's recursion limit "
                                  "(1000) ")
        assert "(calls of `power`, in the forward sweep)" in message
        assert "sys.setrecursionlimit(10000)" in message
        # a level of the recursion takes two frames: about 500 levels fit in 1000 frames
        depth = int(re.search(r"(\d+) recursive calls deep", message).group(1))
        assert 400 < depth < 500



def test_tape_refuses_a_gradient_that_comes_out_complex():
    t = tape.tensor(np.ones(2), requires_grad=True)
    with pytest.raises(srcgrad.SrcgradError, match="complex"):
        (t * np.array([1j, 2.0])).sum().backward()


def test_check_grads_and_compare_take_a_numpy_function():
    from srcgrad.testing import check_grads
    assert check_grads(np.sin, 0.3) == pytest.approx(np.cos(0.3))
    assert srcgrad.compare(np.tanh, np.array([0.3, -1.2])).ok


# ======================================================== the fast call for numbers

def log_of(x, y):
    return math.log(x) * y


def test_the_call_for_numbers_keeps_every_check():
    df = srcgrad.grad(log_of, wrt=(0, 1))
    assert df(2.0, 3.0) == (1.5, math.log(2.0))            # the general call, then the fast one
    assert df(2.0, 3.0) == (1.5, math.log(2.0)) and type(df(2.0, 3.0)[0]) is float
    g = df(np.float32(2.0), 3.0)                            # another kind: the general call
    assert type(g[0]) is np.float32 and type(g[1]) is float
    assert df(4, 3.0) == (0.75, math.log(4.0))              # an int constant... and back
    assert df(x=2.0, y=3.0) == (1.5, math.log(2.0))         # keywords: the general call
    errors = []
    for _ in range(2):                                      # the same error, either call
        with pytest.raises(Exception) as info:
            df(-1.0, 3.0)
        errors.append((type(info.value), str(info.value)))
    assert errors[0] == errors[1] and "math domain error" in errors[0][1]
    with pytest.raises(TypeError, match="takes 2 positional arguments but 3 were given"):
        df(1.0, 2.0, 3.0)
    v, g = srcgrad.value_and_grad(log_of)(2.0, 3.0)
    assert srcgrad.value_and_grad(log_of)(2.0, 3.0) == (v, g) == (3 * math.log(2.0), 1.5)
