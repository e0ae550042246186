"""`srcgrad.source(df, *args, stages=True)`: what each pass produced, printed, with the
kind the compiler found for every value."""
import math

import numpy as np
import pytest

import srcgrad

H0 = 0.0


def rnn_list(a, b, xs):
    h = H0
    for xt in xs:
        h = math.tanh(a * h + b * xt)
    return h


def layer(W, x):
    return np.sum(np.tanh(W @ x) ** 2)


def test_the_stages_of_a_loop_over_a_list():
    df = srcgrad.grad(rnn_list, wrt=(0, 1))
    args = (0.5, 0.3, [0.1, 0.2])
    text = srcgrad.source(df, *args, stages=True)
    titles = [line for line in text.splitlines() if line.startswith("# ==== ")]
    assert titles == ["# ==== normalized", "# ==== adjoint", "# ==== pruned", "# ==== generated"]
    assert "# xs: list of number" in text and "# H0: number (constant)" in text
    assert "restore h" in text and "# restored from stacks: h" in text
    assert text.split("# ==== generated\n")[1].rstrip() == srcgrad.source(df, *args).rstrip()


def test_the_stages_show_array_kinds_and_need_arguments_or_a_call():
    df = srcgrad.value_and_grad(layer)
    with pytest.raises(srcgrad.SrcgradError, match="example arguments"):
        srcgrad.source(df, stages=True)
    W, x = np.ones((3, 4)), np.ones(4)
    df(W, x)
    text = srcgrad.source(df, stages=True)           # the last call's kinds
    assert "# W: array(n1, n2)" in text and "# x: array(n2)" in text
    assert "# ==== pruned" not in text                # value_and_grad keeps the whole function
