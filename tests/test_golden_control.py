"""Golden tests of the generated source for control flow: a loop (a scalar RNN), a
branch (if/elif/else with early returns) and a call into a helper with a loop.

After a deliberate change to the compiler, regenerate with
`SRCGRAD_UPDATE_GOLDEN=1 python -m pytest tests/test_golden_control.py` and read the
diff of tests/golden/ in review.
"""
import math
import os
from pathlib import Path

import numpy as np
import pytest

import srcgrad
from srcgrad.testing import check_grads

GOLDEN = Path(__file__).parent / "golden"


def rnn(a, b, x):
    h = 0.0
    for t in range(len(x)):
        h = math.tanh(a * h + b * x[t])
    return h


def piecewise(x):
    if x > 2.0:
        return x * 2.0
    elif x > 0.0:
        y = x * x
        return y + 1.0
    else:
        y = math.exp(x)
    return y * 3.0


def power(z, n):
    y = 1.0
    for _ in range(n):
        y = y * z
    return y


def calls_power(x, c):
    return power(x, 3) * c + x


CASES = {
    "control_rnn_loop": (srcgrad.grad(rnn, wrt=("a", "b")),
                         (0.5, -0.3, np.array([0.1, 0.7, -0.4]))),
    "control_branch": (srcgrad.grad(piecewise), (1.5,)),
    "control_helper_loop": (srcgrad.grad(calls_power, wrt=(0, 1)), (0.7, 2.0)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_generated_source_matches_golden(name):
    df, args = CASES[name]
    text = srcgrad.source(df, *args)
    path = GOLDEN / f"{name}.py.txt"
    if os.environ.get("SRCGRAD_UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.exists(), f"no golden file {path}: run with SRCGRAD_UPDATE_GOLDEN=1"
    assert text == path.read_text()


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_functions_are_right(name):
    """The code pinned above computes the right gradients (at points on every path)."""
    df, args = CASES[name]
    f, wrt = {"control_rnn_loop": (rnn, (0, 1)), "control_branch": (piecewise, 0),
              "control_helper_loop": (calls_power, (0, 1))}[name]
    points = {"control_branch": [(2.5,), (1.5,), (-0.5,)]}.get(name, [args])
    for point in points:
        check_grads(f, *point, wrt=wrt)


def test_golden_sources_read_like_the_user_code():
    """Loops stay loops, branches stay branches, helper lines are named."""
    rnn_text = srcgrad.source(*_case("control_rnn_loop"))
    assert "for t in range_len_x:" in rnn_text and "for t in reversed(range_len_x):" in rnn_text
    assert "# line 24: h = math.tanh(a * h + b * x[t])" in rnn_text
    branch_text = srcgrad.source(*_case("control_branch"))
    assert "# line 29: if x > 2.0:" in branch_text and "# line 31: elif x > 0.0:" in branch_text
    helper_text = srcgrad.source(*_case("control_helper_loop"))
    assert "in power: for _ in range(n):" in helper_text


def _case(name):
    df, args = CASES[name]
    return (df, *args)
