"""A corpus of small straight-line functions, each checked against finite differences.

Every function below uses constructs that srcgrad claims to support (README,
"What is supported"), alone and in combination. The table CORPUS lists
(function, args factory, wrt); one parametrized test checks each entry with
srcgrad.testing.check_grads at three different inputs (seeds). Factories keep
the inputs on the functions' valid domains and away from kinks (ties in
max/min, zero in abs, clip boundaries, jumps of %).

Tests further down check what finite differences cannot see: no_grad and
stop_gradient (compared with hand-computed gradients), keyword-only arguments,
returned types and dtypes.
"""
import inspect
import math

import numpy as np
import pytest

import srcgrad
from srcgrad.testing import check_grads

import corpus_helpers as H
from srcgrad import no_grad, stop_gradient
from corpus_helpers import affine, multi_statement, scaled, shifted, sigmoid_of_scaled, softplus

SEEDS = [0, 1, 2]


# ---------------------------------------------------------------- input makers
def U(rng, *shape, lo=-1.0, hi=1.0):
    """Uniform values; a Python float when no shape is given."""
    if not shape:
        return float(rng.uniform(lo, hi))
    return rng.uniform(lo, hi, size=shape)


def P(rng, *shape, lo=0.5, hi=2.0):
    """Positive values."""
    return U(rng, *shape, lo=lo, hi=hi)


def NZ(rng, *shape):
    """Values bounded away from zero (for abs / fabs / sign)."""
    mag = U(rng, *shape, lo=0.2, hi=1.5)
    sign = rng.choice([-1.0, 1.0], size=shape) if shape else float(rng.choice([-1.0, 1.0]))
    return sign * mag


def distinct(rng, *shape, gap=0.05):
    """Values whose pairwise gaps are at least `gap` (no ties for max/min/argmax)."""
    n = int(np.prod(shape))
    vals = (np.arange(n) - n / 2) * gap * 2 + rng.uniform(0, gap / 2, size=n)
    return rng.permutation(vals).reshape(shape)


def away_from(rng, shape, points, margin=0.05, lo=-1.5, hi=1.5):
    """Uniform values at least `margin` away from each of `points`."""
    x = rng.uniform(lo, hi, size=shape)
    for p in points:
        close = np.abs(x - p) < margin
        x = np.where(close, p + np.sign(x - p + 1e-12) * margin * 2, x)
    return x


# ==================================================================== operators
def ops_floats(a, b):
    return a + b - a * b / (b + 3.0) + a ** 2 - (-b) ** 3 + (+a)


def ops_float_int(x, n):
    # n is a Python int (not differentiated)
    return x ** n + n * x - x / n + (n % 3) * x - 2 ** x + x ** 0.5


def ops_int_literal_pow(x):
    return 3 ** x + x ** 3 + x ** -1 + x ** 2.5


def ops_mod_float(a, b):
    return (a * 3.0) % b + a % 0.7


def mod_factory(rng):
    b = float(rng.uniform(0.8, 1.2))
    a = float(rng.uniform(0.3, 0.4))  # 3a in (0.9, 1.2) -> 3a % b and a % 0.7 away from jumps
    if abs((3 * a) % b) < 0.05 or abs((3 * a) % b - b) < 0.05:
        a += 0.02
    return a, b


def ops_numpy_scalars(a, b):
    return a * b + a / b - b ** a + -a + a % 5.0


def ops_arrays(x, y):
    z = x + y - x * y / (y + 3.0) - -x
    w = z ** 2 + 2.0 ** x + x ** y
    return np.sum(w) + np.sum(x @ y.T)


def ops_array_mod(x):
    return np.sum((x * 2.0) % 1.0 * x)


def array_mod_factory(rng):
    # keep 2x away from integers: x in (0.1, 0.4) + k/2
    k = rng.integers(0, 3, size=(3, 2)) / 2.0
    return (rng.uniform(0.1, 0.4, size=(3, 2)) + k,)


def ops_unary_minus_array(x):
    return -np.sum(-x * -x) + np.sum(+x)


# ================================================================= broadcasting
def bc_rowwise_div(x, b):
    return np.sum(x / b)


def bc_rowwise_all_ops(x, b):
    return np.sum(x + b) + np.sum(x - b) + np.sum(x * b) + np.sum(b - x) + np.sum(b / x)


def bc_col_row(u, v):
    # (4,1) with (1,3)
    return np.sum(u * v + u / v - u ** 2 * v)


def bc_pow_broadcast(x, p):
    return np.sum(x ** p) + np.sum(p ** x)


def bc_scalar_array(a, x):
    # a Python float with an array, in every op
    return np.sum(a * x + x / a - a / x + a ** x + x ** a - a + (a - x) % 7.0)


def bc_zero_d(a, x):
    # a 0-d array with a (3,) array
    return np.sum(a * x) + np.sum(x / a) + np.sum(x - a) + a ** 2


def bc_3d(x, c):
    # (2,3,4) with (3,1)
    return np.sum(np.sin(x) * c + c ** 2)


def bc_matmul_broadcast(x, w):
    # batched (2,3,4) @ (4,5): w is broadcast over the batch
    return np.sum(np.tanh(x @ w))


# ============================================================ math module
def m_exp(x): return math.exp(x)
def m_log(x): return math.log(x)
def m_log1p(x): return math.log1p(x)
def m_expm1(x): return math.expm1(x)
def m_sqrt(x): return math.sqrt(x)
def m_sin(x): return math.sin(x)
def m_cos(x): return math.cos(x)
def m_tan(x): return math.tan(x)
def m_asin(x): return math.asin(x)
def m_acos(x): return math.acos(x)
def m_atan(x): return math.atan(x)
def m_sinh(x): return math.sinh(x)
def m_cosh(x): return math.cosh(x)
def m_tanh(x): return math.tanh(x)
def m_asinh(x): return math.asinh(x)
def m_acosh(x): return math.acosh(x)
def m_atanh(x): return math.atanh(x)
def m_erf(x): return math.erf(x)
def m_erfc(x): return math.erfc(x)
def m_log2(x): return math.log2(x)
def m_log10(x): return math.log10(x)
def m_fabs(x): return math.fabs(x)
def m_degrees(x): return math.degrees(x)
def m_radians(x): return math.radians(x)
def m_atan2(a, b): return math.atan2(a, b)
def m_pow(a, b): return math.pow(a, b)
def m_hypot(a, b): return math.hypot(a, b)


def math_combo_unit(x):
    # x in (0.1, 0.9): every unit-domain function together
    y = math.asin(x) + math.acos(x * 0.5) + math.atanh(x) + math.tan(x)
    z = math.log(x) * math.log2(x + 1) - math.log10(x) + math.sqrt(x) * math.log1p(x)
    w = math.erf(x) * math.erfc(x) + math.degrees(x) / math.radians(60.0) + math.fabs(x - 2.0)
    return y * z + w + math.expm1(x) * math.atan(x)


def math_combo_big(x, y):
    # x > 1 for acosh
    a = math.acosh(x) + math.sinh(y) * math.cosh(y) - math.tanh(x * y) + math.asinh(y)
    b = math.pow(x, y) + math.hypot(x, y) + math.atan2(y, x) + math.exp(-x) * math.sin(y)
    return a * b + math.cos(a)


# ================================================================= builtins
def b_abs(x):
    return abs(x) * x + abs(-3.0 * x)


def b_min_max(a, b):
    return max(a, b) * 2.0 + min(a, b) * 3.0 + max(a, 0.0) + min(b, 5.0)


def b_sum_list(a, b, c):
    return sum([a, b * 2.0, c * a]) + sum((a, c))


def b_sum_list_arrays(x, y):
    return np.sum(sum([x, y, x * y]))


def b_sum_array(x):
    return sum(x * x)


def b_float(x, y):
    return float(x) * 2.0 + float(np.sum(y)) ** 2


def b_abs_array(x):
    return np.sum(abs(x) * x)


# ======================================================= numpy elementwise
def np_unary_all(x):
    # x in (0.1, 0.9)
    a = np.exp(x) + np.log(x) + np.sqrt(x) + np.sin(x) + np.cos(x) + np.tan(x)
    b = np.arcsin(x) + np.arccos(x) + np.arctan(x) + np.sinh(x) + np.cosh(x) + np.tanh(x)
    c = np.arcsinh(x) + np.arctanh(x) + np.log2(x) + np.log10(x) + np.log1p(x) + np.expm1(x)
    d = np.exp2(x) + np.cbrt(x) + np.reciprocal(x) + np.square(x) + np.deg2rad(x) + np.rad2deg(x)
    e = np.negative(x) + np.positive(x) + np.abs(x - 2.0) + np.arccosh(x + 1.5)
    return np.sum(a * b + c * d + e)


def np_binary_all(x, y):
    a = np.power(x, y) + np.add(x, y) - np.subtract(y, x) + np.multiply(x, y) + np.divide(x, y)
    b = np.maximum(x, y) + np.minimum(x, y) + np.fmax(x, y) + np.fmin(x, y)
    c = np.logaddexp(x, y) + np.logaddexp2(x, y) + np.arctan2(x, y) + np.hypot(x, y)
    return np.sum(a * b - c)


def np_relu_clip_where(x):
    a = np.maximum(x, 0.0) + np.minimum(x, 0.5)
    b = np.clip(x, -0.5, 0.5) * x
    c = np.where(x > 0, x ** 2, 0.1 * x)
    return np.sum(a + b + c)


def np_clip_active_bounds(x, lo, hi):
    return np.sum(np.clip(x, lo, hi) ** 2)


def clip_bounds_factory(rng):
    x = away_from(rng, (4, 3), [-0.5, 0.5], lo=-1.5, hi=1.5)
    lo = -0.5 + rng.uniform(-0.01, 0.01, size=(3,))
    hi = 0.5 + rng.uniform(-0.01, 0.01, size=(3,))
    x = np.where(np.abs(x - lo) < 0.05, x + 0.1, x)
    x = np.where(np.abs(x - hi) < 0.05, x + 0.1, x)
    return x, lo, hi


def np_where_both(x, y):
    return np.sum(np.where(x > y, x * y, y - x) ** 2)


def np_max_min_broadcast(x, y):
    # (4,3) with (3,)
    return np.sum(np.maximum(x, y) * np.minimum(x, y))


def np_float64_asarray(x):
    return np.sum(np.asarray(x) * np.float64(2.0)) + np.float64(np.sum(x)) ** 2


# ================================================================ reductions
def red_sum_axes(x):
    return np.sum(np.sum(x, axis=0) ** 2) + np.sum(np.sum(x, axis=-1, keepdims=True) * x) \
        + np.sum(np.sum(x, axis=(0, 2)) ** 3) + np.sum(np.sum(x, 1) ** 2)


def red_mean(x):
    return np.sum(np.mean(x, axis=1) ** 2) + np.mean(x) ** 2 + \
        np.sum(np.mean(x, axis=(0, 1), keepdims=True) * x)


def red_max_min(x):
    return np.sum(np.max(x, axis=0) ** 2) + np.max(x) * np.min(x) + \
        np.sum(np.min(x, axis=-1, keepdims=True) * x) + np.sum(np.max(x, axis=(0, 1)))


def red_prod(x):
    return np.prod(x) + np.sum(np.prod(x, axis=1) ** 2) + np.sum(np.prod(x, axis=0, keepdims=True) * x)


def red_prod_tuple_axis(x):
    return np.sum(np.prod(x, axis=(0, 1)))


def red_var_std(x):
    return np.var(x) + np.std(x) + np.sum(np.var(x, axis=0, ddof=1)) + \
        np.sum(np.std(x, axis=1, keepdims=True, ddof=1) * x) + np.sum(np.var(x, axis=1) ** 2)


def red_cumsum(x):
    return np.sum(np.cumsum(x) ** 2) + np.sum(np.cumsum(x, axis=1) * x) + np.sum(np.cumsum(x, axis=-2) ** 3)


# ============================================================ linear algebra
def la_dot(v, w, m):
    return np.dot(v, w) + np.sum(np.dot(m, v) ** 2) + np.sum(np.dot(m.T, m))


def la_matmul(v, m, n):
    # 1-D @ 2-D, 2-D @ 1-D, 2-D @ 2-D, 1-D @ 1-D
    return np.sum(v @ m) + np.sum(m @ w_of(v)) + np.sum((m @ n) ** 2) + v @ v + np.sum(np.matmul(m, n))


def w_of(v):
    return v[:3] * 2.0


def la_batched_matmul(a, b):
    # (2,3,4) @ (2,4,5), and a batched matrix times a vector
    return np.sum(np.sin(a @ b)) + np.sum((a @ b[0, :, 0]) ** 2) + np.sum(np.matmul(a, b))


def la_vec_batched(v, b):
    # (4,) @ (2,4,5)
    return np.sum(np.cos(v @ b))


def la_outer_trace(u, v, m):
    return np.sum(np.outer(u, v) ** 2) + np.trace(m) ** 2 + np.trace(np.outer(u, u)) + np.trace(m @ m)


def la_trace_3d(x):
    # np.trace of a 3-D array sums x[i, i, :]
    return np.sum(np.trace(x) ** 2)


def la_dot_scalar(x):
    return np.sum(np.dot(2.0, x) * x)


def la_dot_nd(a, b):
    # np.dot of two 3-D arrays: sum over the last axis of a and the second-to-last of b
    return np.sum(np.dot(a, b) ** 2)


# ================================================================= shapes
def sh_reshape_transpose(x):
    a = np.reshape(x, (3, 4)) * np.arange(12.0).reshape(3, 4)
    b = np.transpose(x, (1, 0, 2)) ** 2
    c = np.transpose(x) * 1.5
    d = x.T
    return np.sum(a) + np.sum(b[0]) + np.sum(c * d.T.T) + np.sum(np.transpose(x, axes=(2, 0, 1))[1])


def sh_expand_squeeze(x):
    a = np.expand_dims(x, 0)
    b = np.expand_dims(x, axis=(0, 2))
    c = np.squeeze(a, axis=0)
    d = np.squeeze(b)
    return np.sum(a * 2.0) + np.sum(b ** 2) + np.sum(c * d)


def sh_concat_stack(x, y):
    a = np.concatenate((x, y), axis=0)
    b = np.concatenate([x, x * 2.0, y]) + np.concatenate([y, x, y], axis=0)
    b2 = np.concatenate([x, x * 2.0, y], axis=-1)
    c = np.stack([x, y])
    d = np.stack((x, y, x * y), axis=1)
    e = np.stack([x, y], axis=-1)
    return np.sum(a ** 2) + np.sum(b * 3.0) + np.sum(b2 ** 2) + np.sum(c[1] * c[0]) + np.sum(d ** 3) + np.sum(e[..., 0] * e[..., 1])


def sh_concat_axis1(x, y):
    return np.sum(np.concatenate((x, y), axis=1) ** 2)


def sh_concat_axis_none(x, y):
    return np.sum(np.concatenate((x, y), axis=None) ** 2)


def sh_broadcast_ravel_swap(x, r):
    a = np.broadcast_to(r, (4, 3))
    b = np.broadcast_to(x[:, :1], (4, 3))
    c = np.ravel(x)
    d = np.swapaxes(x, 0, 1)
    return np.sum(a * x) + np.sum(b ** 2) + np.sum(c ** 3) + np.sum(d[1] * d[2])


# =============================================================== indexing
def ix_ints_slices(x):
    # x: (6,)
    return x[1] * x[-1] + np.sum(x[1:5:2] ** 2) + np.sum(x[::-1] * x) + np.sum(x[-3:]) + x[::2][1]


def ix_2d(x):
    # x: (4,5)
    return x[1, 2] * x[-1, -1] + np.sum(x[:, 1] ** 2) + np.sum(x[::2, 1::2] * 3.0) + np.sum(x[2]) \
        + np.sum(x[1:3, :-1] ** 2)


def ix_none_ellipsis(x):
    # x: (2,3,4)
    a = x[None]
    b = x[..., 0]
    c = x[0, ..., 1:]
    d = x[:, None, 1]
    return np.sum(a ** 2) + np.sum(b * 3.0) + np.sum(c ** 3) + np.sum(d * x[:, None, 2])


def ix_slice_none(x):
    # x[1:2, None]
    return np.sum(x[1:2, None] ** 2) + np.sum(x[None, 1:3] * 2.0)


def ix_int_arrays(x):
    # repeated indices must add up
    idx = np.array([0, 2, 2, 1, 0, 0])
    a = x[idx]
    b = x[[3, 3, 1]]
    return np.sum(a ** 2) + np.sum(b * x[np.array([1, 2, 3])])


def ix_int_arrays_2d(x):
    # x: (4,3)
    rows = np.array([0, 3, 3, 1])
    cols = np.array([2, 2, 0, 2])
    return np.sum(x[rows, cols] ** 2) + np.sum(x[rows] * 2.0) + np.sum(x[:, cols] ** 3)


def ix_bool_mask(x, m):
    # m is a non-differentiated boolean array; x > 0 is computed inside
    a = x[x > 0]
    b = x[m]
    return np.sum(a ** 2) + np.sum(np.exp(b))


def mask_factory(rng):
    x = NZ(rng, 3, 4)
    m = rng.uniform(size=(3, 4)) > 0.5
    m[0, 0] = True
    return x, m


def ix_attrs_arith(x):
    n = x.shape[0]
    m = x.shape[-1]
    return np.sum(x) / n + x.size * np.mean(x) + x.ndim * x[0, 0] + np.sum(x[n - 1]) * m + x.shape[1] ** 2


# ========================================================== array methods
def meth_reductions(x):
    # x: (2,3)
    return np.sum(x.sum(axis=0) ** 2) + x.mean() + np.sum(x.max(axis=1, keepdims=True) * x) \
        + x.min() * x.prod() + x.var() + x.std() + np.sum(x.cumsum() ** 2) + np.sum(x.sum(1) ** 2)


def meth_shapes(x):
    # x: (2,3)
    a = x.reshape(2, 3)
    b = x.reshape(-1)
    c = x.reshape((3, 2))
    d = x.transpose(1, 0)
    e = x.transpose()
    f = x.ravel() * x.flatten()
    return np.sum(a * 2.0) + np.sum(b ** 2) + np.sum(c[0]) + np.sum(d[1] * e[2]) + np.sum(f) \
        + np.sum(x.swapaxes(0, 1) ** 3) + np.sum(x.copy() * x.squeeze())


def meth_clip_dot(x, y):
    # x: (2,3) in (-1.5, 1.5) away from 0 and 1; y: (3,)
    return np.sum(x.clip(0, 1) ** 2) + np.sum(x.dot(y) ** 2) + np.sum(y.dot(y))


def meth_dot_constant_receiver(x, w):
    # w is not differentiated: `w.dot(x)` is the method form of np.dot(w, x)
    return np.sum(w.dot(x) ** 2)


# ===================================================== assignment forms
def as_swap(a, b):
    a, b = b, a * 2.0
    a, b = b * a, a
    return a + 3.0 * b


def as_multiple(x):
    a = b = x * 2.0
    c = a * b
    return np.sum(c + a)


def as_reassign(x):
    y = x * 2.0
    y = np.sin(y)
    y = y * x
    x = y + x
    x = x ** 2
    return np.sum(x)


def as_augmented(x, y):
    z = x * 1.0
    z += y
    z *= 2.0
    z -= x
    z /= 3.0
    z **= 2
    w = np.sin(x)
    w += w
    return np.sum(z) + np.sum(w)


def as_augmented_float(x):
    x += 1.0
    x *= x
    y = x * 1.0
    y -= 3.0
    return y


def as_swap_plain(x, y):
    x, y = y, x
    return x * y ** 2


def as_tuple_computed(x, y):
    u, v = x * 2.0, y
    return u * v


def as_multiple_after_rebind(x):
    a = x * 1.0
    a = b = x * 2.0
    return np.sum(a * b)


def as_literal_unpack_inactive(x):
    r, c = 1, 2
    k, s = (3.0, 0.5)
    return np.sum(x[r, c] ** 2) * k + np.sum(x) * s


def as_annotated(x):
    y: float = x * 2.0
    return y ** 2


def as_inactive_unpack(x):
    n, m = x.shape
    r, c = 1, 2
    return np.sum(x) * n / m + np.sum(x[r, c] ** 2)


def as_aug_then_alias(x):
    # z is the same array as y; `y *= 3.0` changes z too in numpy
    y = x * 2.0
    z = y
    y *= 3.0
    return np.sum(z * x)


def as_aug_then_view(x):
    # z is a view of y; `y += x` changes z too in numpy
    y = x * 2.0
    z = y.reshape(-1)
    y += x
    return np.sum(z * x.reshape(-1))


def as_multiple_then_aug(x):
    # a and b are the same array; `a *= 3.0` changes b too in numpy
    a = b = x * 2.0
    a *= 3.0
    return np.sum(a * b)


# ================================================ arguments and defaults
def kw_defaults(x, scale=2.0, power=3):
    return np.sum((x * scale) ** power)


def kw_calls(x):
    # keyword arguments in calls, including to a helper
    a = np.sum(x, axis=0, keepdims=True)
    b = affine(x, w=2.0, b=1.0)
    c = affine(x, 3.0)
    d = multi_statement(z=x, k=0.5)
    return np.sum(a * x) + np.sum(b * c) + np.sum(d)


# ============================================= integer / boolean values
def int_bool_values(x):
    n = len(x)
    mask = x > 0
    k = int(np.argmax(x))
    s = np.sign(x)
    f = np.floor(x * 3.0)
    return np.sum(x * mask) / n + x[k] * 2.0 + np.sum(s * x) + np.sum(f * x) + np.sum(x[mask] ** 2)


def int_bool_math(x):
    n = math.floor(x * 10)
    b = x > 0.5
    return x * n + x * b + x ** 2 * (not b)


# ================================================================= helpers
def hp_module_helpers(x):
    return np.sum(scaled(x) * softplus(x)) + np.sum(shifted(x) ** 2)


def hp_twice(x, y):
    a = softplus(x)
    b = softplus(y * 2.0)
    c = softplus(a + b)
    return np.sum(c) + np.sum(H.softplus(x))


def hp_nested(z):
    return sigmoid_of_scaled(z) * H.sigmoid(z)


def hp_defaults(x, w):
    return np.sum(affine(x, w) ** 2) + np.sum(affine(x, w, 0.0) * affine(x, w=w, b=-1.0))


def hp_multi(x):
    return np.sum(multi_statement(x) + multi_statement(x * 2.0, k=3.0))


def local_helper(a, b):
    a = a * b
    t = a + 1.0
    return t * t


def local_helper2(t):
    return local_helper(t, t) + local_helper(t, 2.0)


def hp_local_names(x):
    # the helper's local names (a, t) clash with the caller's
    a = x * 3.0
    t = local_helper2(a)
    return np.sum(t + a)


def hp_shadowing_names(x, d_x):
    # user names that look like generated ones
    x_2 = x * d_x
    scalar_seed = np.sum(x_2)
    unreduce = scalar_seed * 2.0
    unbroadcast = unreduce + np.sum(x)
    return unbroadcast


def hp_rule_param_names(b, a):
    # user names equal to the rules' own parameter names (a, b, y, g), in swapped roles
    y = b / a
    g = a ** b
    x = np.maximum(y, g) + np.arctan2(a, b)
    return np.sum(y * g + x)


def ident(z):
    return z


def hp_identity_and_chains(x):
    # x: (2,3); a helper returning its argument, chained method calls
    y = ident(x)
    return np.sum(ident(x) * y) + np.sum(x.sum(axis=0).mean() * x.reshape(x.shape[0], -1).max(1))


def helper_array_default(z, w=np.array([1.0, -2.0, 0.5])):
    return z * w


def hp_array_default(x):
    return np.sum(helper_array_default(x) ** 2) + np.sum(helper_array_default(x, w=x))


def hp_from_import_no_grad(x):
    with no_grad():
        c = np.exp(x)
    return np.sum(c * x) + np.sum(stop_gradient(x) * x) - np.sum(c * x)


# ===================================================== multiple wrt / outputs
def mw_three(a, x, w):
    return a * np.sum(np.tanh(x @ w)) + a ** 2


def out_array(x):
    return np.sin(x) * x


def out_matrix(x, w):
    return np.tanh(x @ w)


def out_tuple(x):
    return np.sin(x), x ** 2


def out_tuple_scalars(a, b):
    return a * b, a + b, math.exp(a)


# ===================================================================== lambdas
lam_square = lambda x: x ** 2
lam_two = lambda x, y: np.sum(x * y) + np.sum(np.exp(x))
lam_helper = lambda z: H.sigmoid(z) * z
lam_default = lambda x, k=2.0: math.sin(k * x)
lam_calls_lambda = lambda x: lam_square(x) * lam_helper(x)


# ================================================= nested functions, closures
def make_closure(c, w):
    def inner(x):
        return np.sum(np.tanh(w @ x)) * c

    return inner


closure_f = make_closure(1.5, np.random.default_rng(7).normal(size=(3, 4)))


def make_closure_with_helper(k):
    def square_plus(t):
        return t * t + k

    def inner(x):
        return np.sum(square_plus(x) * k)

    return inner


closure_helper_f = make_closure_with_helper(2.5)


# ================================================================ misc
def misc_docstring_pass_print(x):
    """A docstring, a pass, an assert and a print are kept."""
    pass
    assert x.shape == (3,)
    y = x * 2.0
    return np.sum(y ** 2)


def misc_no_grad_free_consts(x):
    # values computed in no_grad are constants; here they do not depend on x
    with srcgrad.no_grad():
        c = np.arange(3.0) + 1.0
    return np.sum(c * x)


def misc_posonly(x, /, y):
    return np.sum(x * y)


def misc_wrt_int(x):
    return x ** 3


def misc_float32(x, y):
    return np.sum(np.tanh(x) * y)


def misc_logistic(w, b, X, t):
    z = X @ w + b
    p = 1 / (1 + np.exp(-z))
    return -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p)) + 0.01 * np.sum(w ** 2)


def misc_mlp(W1, b1, W2, x):
    h = np.maximum(x @ W1 + b1, 0.0)
    out = h @ W2
    out = out - np.max(out, axis=1, keepdims=True)
    logp = out - np.log(np.sum(np.exp(out), axis=1, keepdims=True))
    return -np.mean(logp[np.arange(3), np.array([0, 1, 0])])


def misc_softmax_attention(q, k, v):
    s = q @ k.T / np.sqrt(q.shape[-1])
    s = s - s.max(axis=-1, keepdims=True)
    a = np.exp(s)
    a = a / a.sum(axis=-1, keepdims=True)
    return np.sum((a @ v) ** 2)


def misc_layernorm(x, g, b):
    mu = x.mean(axis=-1, keepdims=True)
    var = x.var(axis=-1, keepdims=True)
    y = (x - mu) / np.sqrt(var + 1e-5) * g + b
    return np.sum(y * np.arange(4.0))


# ============================================================== the table
def C(f, factory, wrt=0, bug=None, **kw):
    marks = [pytest.mark.xfail(strict=True, reason=f"BUG: {bug}")] if bug else []
    return pytest.param(f, factory, wrt, kw, id=getattr(f, "__name__", "f") if f.__name__ != "<lambda>"
                        else f"lambda_{_lambda_ids[id(f)]}", marks=marks)


_lambda_ids = {id(lam_square): "square", id(lam_two): "two", id(lam_helper): "helper",
               id(lam_default): "default", id(lam_calls_lambda): "calls_lambda"}

F = lambda lo=-1.0, hi=1.0: (lambda rng: (U(rng, lo=lo, hi=hi),))  # noqa: E731

CORPUS = [
    # operators
    C(ops_floats, lambda r: (U(r, lo=0.2, hi=1.5), U(r, lo=0.2, hi=1.5)), (0, 1)),
    C(ops_float_int, lambda r: (P(r), int(r.integers(1, 5))), 0),
    C(ops_int_literal_pow, lambda r: (P(r),), 0),
    C(ops_mod_float, mod_factory, (0, 1)),
    C(ops_numpy_scalars, lambda r: (np.float64(P(r)), np.float64(P(r))), ("a", "b")),
    C(ops_arrays, lambda r: (P(r, 3, 2), P(r, 3, 2)), (0, 1)),
    C(ops_array_mod, array_mod_factory, 0),
    C(ops_unary_minus_array, lambda r: (U(r, 4),), 0),
    # broadcasting
    C(bc_rowwise_div, lambda r: (U(r, 4, 3), P(r, 3)), (0, 1)),
    C(bc_rowwise_all_ops, lambda r: (P(r, 4, 3), P(r, 3)), (0, 1)),
    C(bc_col_row, lambda r: (U(r, 4, 1), P(r, 1, 3)), (0, 1)),
    C(bc_pow_broadcast, lambda r: (P(r, 4, 3), P(r, 3)), (0, 1)),
    C(bc_scalar_array, lambda r: (P(r), P(r, 4, 3)), (0, 1)),
    C(bc_zero_d, lambda r: (np.array(P(r)), U(r, 3)), (0, 1)),
    C(bc_3d, lambda r: (U(r, 2, 3, 4), U(r, 3, 1)), (0, 1)),
    C(bc_matmul_broadcast, lambda r: (U(r, 2, 3, 4), U(r, 4, 5)), (0, 1)),
    # math module, one function at a time, on its domain
    C(m_exp, F()), C(m_log, F(0.1, 3.0)), C(m_log1p, F(-0.5, 2.0)), C(m_expm1, F()),
    C(m_sqrt, F(0.1, 3.0)), C(m_sin, F(-3, 3)), C(m_cos, F(-3, 3)), C(m_tan, F()),
    C(m_asin, F(-0.9, 0.9)), C(m_acos, F(-0.9, 0.9)), C(m_atan, F(-3, 3)), C(m_sinh, F()),
    C(m_cosh, F()), C(m_tanh, F()), C(m_asinh, F(-3, 3)), C(m_acosh, F(1.1, 3.0)),
    C(m_atanh, F(-0.9, 0.9)), C(m_erf, F()), C(m_erfc, F()), C(m_log2, F(0.1, 3.0)),
    C(m_log10, F(0.1, 3.0)), C(m_fabs, lambda r: (NZ(r),)), C(m_degrees, F()), C(m_radians, F(-90, 90)),
    C(m_atan2, lambda r: (U(r), U(r, lo=0.2, hi=1.0)), (0, 1)),
    C(m_pow, lambda r: (P(r), U(r)), (0, 1)),
    C(m_hypot, lambda r: (NZ(r), NZ(r)), (0, 1)),
    C(math_combo_unit, F(0.1, 0.9)),
    C(math_combo_big, lambda r: (U(r, lo=1.2, hi=2.0), U(r, lo=0.2, hi=1.0)), (0, 1)),
    # builtins
    C(b_abs, lambda r: (NZ(r),)), C(b_min_max, lambda r: tuple(distinct(r, 2)), (0, 1)),
    C(b_sum_list, lambda r: (U(r), U(r), U(r)), (0, 1, 2)),
    C(b_sum_list_arrays, lambda r: (U(r, 3), U(r, 3)), (0, 1)),
    C(b_sum_array, lambda r: (U(r, 4),), 0),
    C(b_float, lambda r: (np.float64(U(r)), U(r, 3)), (0, 1)),
    C(b_abs_array, lambda r: (NZ(r, 3, 2),), 0),
    # numpy elementwise
    C(np_unary_all, lambda r: (U(r, 3, 2, lo=0.1, hi=0.9),), 0),
    C(np_binary_all, lambda r: (P(r, 5), P(r, 5) + 0.05), (0, 1)),
    C(np_relu_clip_where, lambda r: (away_from(r, (4, 3), [0.0, 0.5, -0.5]),), 0),
    C(np_clip_active_bounds, clip_bounds_factory, (0, 1, 2)),
    C(np_where_both, lambda r: tuple(distinct(r, 2, 3, 2)), (0, 1)),
    C(np_max_min_broadcast, lambda r: (distinct(r, 4, 3), distinct(r, 3) + 0.013), (0, 1)),
    C(np_float64_asarray, lambda r: (U(r, 3),), 0),
    # reductions
    C(red_sum_axes, lambda r: (U(r, 2, 3, 4),), 0),
    C(red_mean, lambda r: (U(r, 2, 3, 4),), 0),
    C(red_max_min, lambda r: (distinct(r, 3, 4, 2),), 0),
    C(red_prod, lambda r: (U(r, 3, 4, lo=0.5, hi=1.5),), 0),
    C(red_prod_tuple_axis, lambda r: (U(r, 2, 3, 2, lo=0.5, hi=1.5),), 0),
    C(red_var_std, lambda r: (U(r, 4, 5),), 0),
    C(red_cumsum, lambda r: (U(r, 3, 4),), 0),
    # linear algebra
    C(la_dot, lambda r: (U(r, 3), U(r, 3), U(r, 4, 3)), (0, 1, 2)),
    C(la_matmul, lambda r: (U(r, 4), U(r, 4, 3), U(r, 3, 2)), (0, 1, 2)),
    C(la_batched_matmul, lambda r: (U(r, 2, 3, 4), U(r, 2, 4, 5)), (0, 1)),
    C(la_vec_batched, lambda r: (U(r, 4), U(r, 2, 4, 5)), (0, 1)),
    C(la_outer_trace, lambda r: (U(r, 3), U(r, 4), U(r, 3, 3)), (0, 1, 2)),
    C(la_trace_3d, lambda r: (U(r, 3, 3, 2),), 0),
    C(la_dot_scalar, lambda r: (U(r, 3),), 0),
    # shapes
    C(sh_reshape_transpose, lambda r: (U(r, 2, 3, 2),), 0),
    C(sh_expand_squeeze, lambda r: (U(r, 3, 2),), 0),
    C(sh_concat_stack, lambda r: (U(r, 2, 3), U(r, 2, 3)), (0, 1)),
    C(sh_concat_axis1, lambda r: (U(r, 2, 3), U(r, 2, 4)), (0, 1)),
    C(sh_concat_axis_none, lambda r: (U(r, 2, 3), U(r, 4)), (0, 1)),
    C(sh_broadcast_ravel_swap, lambda r: (U(r, 4, 3), U(r, 3)), (0, 1)),
    # indexing
    C(ix_ints_slices, lambda r: (U(r, 6),), 0),
    C(ix_2d, lambda r: (U(r, 4, 5),), 0),
    C(ix_none_ellipsis, lambda r: (U(r, 2, 3, 4),), 0),
    C(ix_slice_none, lambda r: (U(r, 3, 2),), 0),
    C(ix_int_arrays, lambda r: (U(r, 4),), 0),
    C(ix_int_arrays_2d, lambda r: (U(r, 4, 3),), 0),
    C(ix_bool_mask, mask_factory, 0),
    C(ix_attrs_arith, lambda r: (U(r, 3, 4),), 0),
    # methods
    C(meth_reductions, lambda r: (distinct(r, 2, 3, gap=0.1) + 1.5,), 0),
    C(meth_shapes, lambda r: (U(r, 2, 3),), 0),
    C(meth_clip_dot, lambda r: (away_from(r, (2, 3), [0.0, 1.0]), U(r, 3)), (0, 1)),
    C(meth_dot_constant_receiver, lambda r: (U(r, 3), U(r, 2, 3)), 0),
    # assignment forms
    C(as_swap, lambda r: (U(r), U(r)), (0, 1)),
    C(as_swap_plain, lambda r: (U(r), U(r)), (0, 1)),
    C(as_tuple_computed, lambda r: (U(r), U(r)), (0, 1)),
    C(as_multiple_after_rebind, lambda r: (U(r, 3),), 0),
    C(as_literal_unpack_inactive, lambda r: (U(r, 3, 4),), 0),
    C(as_multiple, lambda r: (U(r, 3),), 0),
    C(as_reassign, lambda r: (U(r, 3),), 0),
    C(as_augmented, lambda r: (U(r, 3), U(r, 3)), (0, 1)),
    C(as_augmented_float, F(), 0),
    C(as_annotated, F(), 0),
    C(as_inactive_unpack, lambda r: (U(r, 3, 4),), 0),
    # arguments and defaults
    C(kw_defaults, lambda r: (U(r, 3),), 0),
    C(kw_defaults, lambda r: (U(r, 3), P(r), 2), ("x", "scale")),
    C(kw_calls, lambda r: (U(r, 2, 3),), 0),
    # integer / boolean values
    C(int_bool_values, lambda r: (away_from(r, (5,), [0.0, -1 / 3, 1 / 3, 2 / 3, -2 / 3, 1.0, -1.0],
                                            margin=0.02) + distinct(r, 5, gap=0.001),), 0),
    C(int_bool_math, lambda r: (float(r.choice([0.13, 0.27, 0.66, 0.84])),), 0),
    # helpers
    C(hp_module_helpers, lambda r: (U(r, 3),), 0),
    C(hp_twice, lambda r: (U(r, 3), U(r, 3)), (0, 1)),
    C(hp_nested, F(-2, 2), 0),
    C(hp_defaults, lambda r: (U(r, 3), U(r, 3)), (0, 1)),
    C(hp_multi, lambda r: (U(r, 2, 2),), 0),
    C(hp_local_names, lambda r: (U(r, 3),), 0),
    C(hp_shadowing_names, lambda r: (U(r, 3), U(r, 3)), (0, 1)),
    C(hp_rule_param_names, lambda r: (P(r, 3), P(r, 3)), (0, 1)),
    C(hp_identity_and_chains, lambda r: (distinct(r, 2, 3),), 0),
    C(hp_array_default, lambda r: (U(r, 3),), 0),
    # multiple wrt, by name and mixed
    C(mw_three, lambda r: (U(r), U(r, 2, 3), U(r, 3, 2)), (0, 1, 2)),
    C(mw_three, lambda r: (U(r), U(r, 2, 3), U(r, 3, 2)), ("w", "a")),
    C(mw_three, lambda r: (U(r), U(r, 2, 3), U(r, 3, 2)), (-1, "x")),
    C(mw_three, lambda r: (U(r), U(r, 2, 3), U(r, 3, 2)), "x"),
    # non-scalar outputs (check_grads uses a vjp with a random seed)
    C(out_array, lambda r: (U(r, 4),), 0),
    C(out_matrix, lambda r: (U(r, 2, 3), U(r, 3, 4)), (0, 1)),
    C(out_tuple, lambda r: (U(r, 3),), 0),
    C(out_tuple_scalars, lambda r: (U(r), U(r)), (0, 1)),
    # lambdas at module level
    C(lam_square, F(), 0), C(lam_two, lambda r: (U(r, 3), U(r, 3)), (0, 1)),
    C(lam_helper, F(), 0), C(lam_default, F(), 0), C(lam_calls_lambda, F(), 0),
    # closures
    C(closure_f, lambda r: (U(r, 4),), 0),
    C(closure_helper_f, lambda r: (U(r, 3),), 0),
    # misc
    C(misc_docstring_pass_print, lambda r: (U(r, 3),), 0),
    C(misc_no_grad_free_consts, lambda r: (U(r, 3),), 0),
    C(misc_posonly, lambda r: (U(r, 3), U(r, 3)), (0, 1)),
    C(misc_wrt_int, lambda r: (int(r.integers(1, 5)),), 0),
    C(misc_float32, lambda r: (U(r, 3).astype(np.float32), U(r, 3)), (0, 1), rtol=1e-3, atol=1e-4),
    C(misc_logistic, lambda r: (U(r, 3), U(r), U(r, 5, 3), (U(r, 5) > 0).astype(float)), (0, 1)),
    C(misc_mlp, lambda r: (U(r, 4, 5), U(r, 5), U(r, 5, 2), U(r, 3, 4)), (0, 1, 2)),
    C(misc_softmax_attention, lambda r: (U(r, 3, 4), U(r, 5, 4), U(r, 5, 2)), (0, 1, 2)),
    C(misc_layernorm, lambda r: (U(r, 3, 4), U(r, 4), U(r, 4)), (0, 1, 2)),
]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("f, factory, wrt, kw", CORPUS)
def test_corpus(f, factory, wrt, kw, seed):
    args = factory(np.random.default_rng(seed))
    got = check_grads(f, *args, wrt=wrt, **kw)
    # the gradient has its argument's shape (a float for a float)
    names = wrt if isinstance(wrt, tuple) else (wrt,)
    grads = got if isinstance(wrt, tuple) else (got,)
    params = list(f.__code__.co_varnames[:f.__code__.co_argcount])
    for name, g in zip(names, grads):
        x = args[params.index(name) if isinstance(name, str) else name]
        assert np.shape(g) == np.shape(x)
        if type(x) in (float, int):
            assert type(g) is float
        if isinstance(x, np.generic):
            assert type(g) is type(x)
        if isinstance(x, np.ndarray):
            assert g.dtype == (x.dtype if np.issubdtype(x.dtype, np.inexact) else np.float64)


def test_corpus_size():
    assert len({p.values[0] for p in CORPUS}) >= 60


# ======================== in-place updates of aliased arrays, N-D np.dot: refused cleanly
@pytest.mark.parametrize("f", [as_aug_then_alias, as_aug_then_view, as_multiple_then_aug])
def test_in_place_update_of_an_aliased_array_is_refused(f):
    """`t op= v` while another name shares t's memory: refused at the update's line
    (a rebinding would leave the other name with a stale value)."""
    x = np.array([0.3, -0.7, 1.1, 0.2, -0.4, 0.9])
    x = x[:3] if f is not as_aug_then_view else x.reshape(2, 3)
    with pytest.raises(srcgrad.SrcgradError, match="share memory") as info:
        srcgrad.grad(f)(x)
    err = info.value
    lines, first = inspect.getsourcelines(f)
    update = next(first + i for i, line in enumerate(lines)
                  if not line.strip().startswith("#") and ("*=" in line or "+=" in line))
    assert err.filename.endswith("test_corpus.py") and err.lineno == update, str(err)


def test_dot_of_nd_arrays_is_refused():
    rng = np.random.default_rng(0)
    with pytest.raises(srcgrad.SrcgradError, match="np.matmul") as info:
        srcgrad.grad(la_dot_nd, wrt=(0, 1))(U(rng, 2, 3, 4), U(rng, 5, 4, 2))
    assert "internal error" not in str(info.value)


# ================================================ no_grad / stop_gradient
def sg_array(x):
    return np.sum(x * srcgrad.stop_gradient(x))


def sg_float(a, b):
    c = srcgrad.stop_gradient(a * b)
    return c * a + math.exp(srcgrad.stop_gradient(b)) * b


def sg_in_helper_chain(x):
    y = np.sin(x)
    z = srcgrad.stop_gradient(y) * y + softplus(srcgrad.stop_gradient(x))
    return np.sum(z)


def ng_block(x):
    with srcgrad.no_grad():
        c = x ** 2
        d = np.sum(x)
    return np.sum(c * x) + d * x[0]


def ng_reassign(x):
    y = x * 2.0
    with srcgrad.no_grad():
        y = y * 3.0
    return np.sum(y * x)


def ng_after_block(x):
    with srcgrad.no_grad():
        m = np.mean(x)
    y = x - m          # m is a constant; x still carries gradient after the block
    return np.sum(y ** 2)


def test_stop_gradient_array():
    x = np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(srcgrad.grad(sg_array)(x), x)  # not 2x


def test_stop_gradient_float():
    a, b = 0.7, -0.3
    da, db = srcgrad.grad(sg_float, wrt=(0, 1))(a, b)
    assert da == pytest.approx(a * b)               # d/da (const * a)
    assert db == pytest.approx(math.exp(b))         # d/db (const * b)


def test_stop_gradient_mixed():
    x = np.array([0.3, -0.8, 1.1])
    y = np.sin(x)
    np.testing.assert_allclose(srcgrad.grad(sg_in_helper_chain)(x), y * np.cos(x))


def test_no_grad_block():
    x = np.array([0.5, -1.5, 2.0])
    expected = x ** 2                                # c treated as constant
    expected[0] += np.sum(x)                         # d * x[0], d constant
    np.testing.assert_allclose(srcgrad.grad(ng_block)(x), expected)


def test_no_grad_reassign():
    x = np.array([0.5, -1.5, 2.0])
    np.testing.assert_allclose(srcgrad.grad(ng_reassign)(x), 6.0 * x)  # y = 6x is a constant


def test_no_grad_ends_with_block():
    x = np.array([0.5, -1.5, 2.0, 4.0])
    np.testing.assert_allclose(srcgrad.grad(ng_after_block)(x), 2 * (x - np.mean(x)))


def test_no_grad_and_stop_gradient_imported_by_name():
    # `from srcgrad import no_grad, stop_gradient`: c*x terms cancel in value but not in
    # gradient (c is a constant), and stop_gradient(x) * x has gradient x
    x = np.array([0.5, -1.5, 2.0])
    np.testing.assert_allclose(srcgrad.grad(hp_from_import_no_grad)(x), x)


def test_no_grad_and_stop_gradient_values_unchanged():
    x = np.array([0.5, -1.5, 2.0])
    for f in (sg_array, ng_block, ng_reassign, ng_after_block, hp_from_import_no_grad):
        value, _ = srcgrad.value_and_grad(f)(x)
        assert value == pytest.approx(f(x))


# ======================================= keyword-only arguments, kwargs in the call
def kwonly(x, *, scale=2.0, shift=0.5):
    return np.sum(np.sin(x * scale) + shift * x)


def test_keyword_only_arguments():
    x = np.array([0.1, 0.2, -0.3])
    np.testing.assert_allclose(srcgrad.grad(kwonly)(x), 2.0 * np.cos(2.0 * x) + 0.5)
    np.testing.assert_allclose(srcgrad.grad(kwonly)(x, scale=3.0, shift=-1.0),
                               3.0 * np.cos(3.0 * x) - 1.0)
    dx, dscale = srcgrad.grad(kwonly, wrt=("x", "scale"))(x, scale=1.5)
    np.testing.assert_allclose(dx, 1.5 * np.cos(1.5 * x) + 0.5)
    assert dscale == pytest.approx(np.sum(x * np.cos(1.5 * x)))
    assert type(dscale) is float


def test_default_argument_as_wrt():
    x = np.array([0.1, 0.2, -0.3])
    dscale = srcgrad.grad(kw_defaults, wrt="scale")(x)
    assert dscale == pytest.approx(np.sum(3 * (x * 2.0) ** 2 * x))


def test_arguments_passed_by_keyword():
    x = np.array([0.1, 0.2, -0.3])
    dx = srcgrad.grad(kw_defaults)(x, power=2, scale=1.0)
    np.testing.assert_allclose(dx, 2 * x)


# ==================================================== returned values and types
def test_value_and_grad_value():
    x = np.array([0.3, -0.2, 0.9])
    value, g = srcgrad.value_and_grad(ops_unary_minus_array)(x)
    assert value == pytest.approx(ops_unary_minus_array(x))
    np.testing.assert_allclose(g, -2 * x + 1)


def test_float32_gradient_keeps_dtype():
    x = np.array([0.3, -0.2, 0.9], dtype=np.float32)
    g = srcgrad.grad(misc_float32)(x, np.ones(3))
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, 1 - np.tanh(x) ** 2, rtol=1e-5)


def test_numpy_scalar_gradient_type():
    da = srcgrad.grad(ops_numpy_scalars)(np.float64(0.7), np.float64(1.3))
    assert isinstance(da, np.float64)


def test_vjp_matches_manual_jacobian():
    x = np.array([0.3, -0.2, 0.9, 1.4])
    value, pullback = srcgrad.vjp(out_array, x)
    np.testing.assert_allclose(value, np.sin(x) * x)
    seed = np.array([1.0, -2.0, 0.5, 3.0])
    np.testing.assert_allclose(pullback(seed), seed * (np.cos(x) * x + np.sin(x)))


def test_compiled_gradient_is_cached_and_specialised_per_shape():
    # the same function called with different shape relations must stay correct
    for xs, bs in [((4, 3), (3,)), ((4, 3), (4, 3)), ((3,), (3,)), ((2, 3), (1, 3))]:
        rng = np.random.default_rng(3)
        check_grads(bc_rowwise_div, U(rng, *xs), P(rng, *bs), wrt=(0, 1))


def test_vjp_of_tuple_outputs_against_finite_differences():
    """check_grads cannot seed a tuple output (see out_tuple); check the vjp by hand."""
    from srcgrad.testing import numerical_grad
    x = np.array([0.3, -0.7, 1.1])
    s1, s2 = np.array([1.0, -2.0, 0.5]), np.array([0.3, 0.2, -1.0])
    value, pullback = srcgrad.vjp(out_tuple, x)
    np.testing.assert_allclose(value[0], np.sin(x))
    np.testing.assert_allclose(value[1], x ** 2)
    expected = numerical_grad(lambda x: np.sum(s1 * out_tuple(x)[0] + s2 * out_tuple(x)[1]), (x,), 0)
    np.testing.assert_allclose(pullback((s1, s2)), expected, rtol=1e-6)
    value, pullback = srcgrad.vjp(out_tuple_scalars, 0.4, -0.6, wrt=(0, 1))
    da, db = pullback((1.0, 2.0, -1.0))
    assert da == pytest.approx(-0.6 + 2.0 - math.exp(0.4))
    assert db == pytest.approx(0.4 + 2.0)


def test_tuple_swap_value():
    """`x, y = y, x` must swap; srcgrad's forward value must equal the function's."""
    value, (dx, dy) = srcgrad.value_and_grad(as_swap_plain, wrt=(0, 1))(0.5, 0.7)
    assert (value, dx, dy) == pytest.approx((0.7 * 0.5 ** 2, 2 * 0.5 * 0.7, 0.5 ** 2))



# module globals: the generated gradient must read them live, not freeze them
GAIN = 2.0
BIAS = 1.0


def uses_bias(x):
    return np.sum(x * BIAS) * BIAS


def gain_helper(z):
    return z * GAIN


def uses_gain(x):
    return np.sum(gain_helper(x)) * GAIN


def test_top_level_globals_are_read_live():
    global BIAS
    x = np.ones(3)
    df = srcgrad.grad(uses_bias)
    try:
        BIAS = 2.0
        np.testing.assert_allclose(df(x), 4.0)
        BIAS = 3.0
        np.testing.assert_allclose(df(x), 9.0)   # same compiled gradient, new global
    finally:
        BIAS = 1.0


def test_same_module_helper_globals_are_read_live():
    global GAIN
    x = np.ones(3)
    df = srcgrad.grad(uses_gain)
    try:
        GAIN = 2.0
        np.testing.assert_allclose(df(x), 4.0)
        GAIN = 3.0
        assert uses_gain(x) == pytest.approx(27.0)
        np.testing.assert_allclose(df(x), 9.0)
    finally:
        GAIN = 2.0


def scaled_twice(x):
    return np.sum(scaled(x)) * 2.0


def test_other_module_helper_globals_are_read_live():
    x = np.ones(3)
    df = srcgrad.grad(scaled_twice)
    try:
        H.SCALE = 3.0
        np.testing.assert_allclose(df(x), 6.0)
        H.SCALE = 5.0
        assert scaled_twice(x) == pytest.approx(30.0)
        np.testing.assert_allclose(df(x), 10.0)
    finally:
        H.SCALE = 3.0


# a module-level name bound to a function, rebound later (a configurable activation)
activation = np.tanh


def uses_activation(x):
    return np.sum(activation(x))


def test_rebound_global_callee():
    global activation
    x = np.array([0.3, -0.5, 1.2])
    df = srcgrad.value_and_grad(uses_activation)
    try:
        activation = np.tanh
        np.testing.assert_allclose(df(x)[1], 1 - np.tanh(x) ** 2)
        activation = np.sin
        value, g = df(x)
        assert value == pytest.approx(np.sum(np.sin(x)))
        np.testing.assert_allclose(g, np.cos(x))
    finally:
        activation = np.tanh
