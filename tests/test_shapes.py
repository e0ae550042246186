"""Shape inference with a symbol per dimension: the compile key names each
argument's dimensions (equal sizes share a symbol, size 1 is 1), so broadcasting,
matrix products, reductions over an axis and transposes have known shapes. Each
case is checked against finite differences at shapes where sizes coincide and
where a dimension is 1 (both change the key), and the generated code is checked
for what the shapes let srcgrad leave out."""
import numpy as np
import pytest

import srcgrad
from srcgrad.testing import check_grads


def layer(W, b, x):
    return np.sum(np.tanh(x @ W + b) * x[:, :1])


def softmax_ce(z, y):
    z = z - np.max(z, axis=1, keepdims=True)
    return -np.sum(y * (z - np.log(np.sum(np.exp(z), axis=1, keepdims=True)))) / z.shape[0]


def transposed(a, b):
    return np.sum((a.T @ b) * np.mean(b, axis=0))


def rows(x, v):
    total = 0.0
    for i in range(x.shape[0]):
        total = total + np.sum(x[i] * v)
    return total


def rng(seed, *shape):
    return np.random.default_rng(seed).uniform(-1.0, 1.0, size=shape)


@pytest.mark.parametrize("n, k, m", [(4, 3, 2), (3, 3, 3), (1, 3, 2), (4, 1, 2), (4, 3, 1)])
def test_layer_at_coinciding_and_unit_sizes(n, k, m):
    check_grads(layer, rng(1, k, m), rng(2, m), rng(3, n, k), wrt=(0, 1, 2))


@pytest.mark.parametrize("n, c", [(5, 3), (3, 3), (1, 4), (4, 1)])
def test_softmax_cross_entropy(n, c):
    y = np.eye(c)[np.arange(n) % c]
    check_grads(softmax_ce, rng(4, n, c), y)


@pytest.mark.parametrize("n, k, m", [(4, 3, 2), (3, 3, 3), (1, 2, 2)])
def test_transpose_and_axis_mean(n, k, m):
    check_grads(transposed, rng(5, n, k), rng(6, n, m), wrt=(0, 1))


@pytest.mark.parametrize("n, k", [(3, 4), (4, 4), (2, 1)])
def test_rows_of_a_matrix(n, k):
    check_grads(rows, rng(7, n, k), rng(8, k), wrt=(0, 1))


def test_known_shapes_leave_out_broadcasting_and_shape_only_values():
    def mlp(W1, b1, W2, b2, x, y):
        h = np.tanh(x @ W1 + b1)
        z = h @ W2 + b2
        return softmax_ce(z, y)
    args = rng(1, 6, 5), rng(2, 5), rng(3, 5, 3), rng(4, 3), rng(5, 4, 6), np.eye(3)[[0, 1, 2, 0]]
    df = srcgrad.grad(mlp, wrt=(0, 1, 2, 3))
    check_grads(mlp, *args, wrt=(0, 1, 2, 3))
    source = srcgrad.source(df, *args)
    # only what broadcasting really widened is summed back: the biases over the batch, the
    # row max and the row log-sum-exp over the classes; the loss itself is not computed
    assert source.count("unbroadcast(") == 4, source
    assert "scalar_seed" not in source and "y_log_p =" not in source


def test_a_shape_that_changes_size_reuses_the_compiled_code():
    df = srcgrad.grad(layer, wrt=(0, 1))
    df(rng(1, 3, 2), rng(2, 2), rng(3, 4, 3))
    df(rng(1, 5, 7), rng(2, 7), rng(3, 6, 5))       # new sizes, same pattern
    assert len(df._compiled) == 1
    df(rng(1, 3, 3), rng(2, 3), rng(3, 4, 3))       # k == m: another pattern
    assert len(df._compiled) == 2
