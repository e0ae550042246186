"""The `srcgrad` command line, run as `python -m srcgrad` on a file in a temporary directory."""
import importlib.util
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import srcgrad

ROOT = Path(__file__).resolve().parent.parent
ANSI = re.compile(r"\033\[[0-9;]*m")

MODEL = '''\
import math

import numpy as np


def sigmoid(z):
    return 1 / (1 + math.exp(-z))


def bce_loss(w, b, x, y):
    z = w * x + b
    y_pred = sigmoid(z)
    p = min(max(y_pred, 1e-8), 1 - 1e-8)
    loss = -(y * math.log(p) + (1 - y) * math.log(1 - p))
    return loss


def bce_numpy(w, b, x, y):
    z = w * x + b
    y_pred = 1 / (1 + np.exp(-z))
    p = np.clip(y_pred, 1e-8, 1 - 1e-8)
    loss = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    return loss


def layer(w, x):
    return np.tanh(x @ w)


def jump(x):
    return x + np.sign(x - 1.0)


def guarded(x):
    try:
        y = x * 2
    except ValueError:
        y = x
    return y


def broken(x):
    return x @ np.ones((7, 7))


def example_args():
    return 1.0, 0.0, 6.7, 0.0


def layer_args():
    return (np.ones((2, 3)),), {"x": np.arange(2.0)}


if __name__ == "__main__":
    raise SystemExit("the CLI must not run this block")
'''


@pytest.fixture
def model(tmp_path):
    (tmp_path / "model.py").write_text(MODEL)
    (tmp_path / "plain.py").write_text("def square(x):\n    return x ** 2\n")
    return tmp_path


def run(cwd, *argv, env=None, stdout=subprocess.PIPE):
    environment = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    environment.update(env or {})
    return subprocess.run([sys.executable, "-m", "srcgrad", *argv], cwd=cwd, env=environment,
                          stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=120)


def load(path):
    spec = importlib.util.spec_from_file_location(path.stem + "_for_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---- show


def test_show_prints_plain_source_when_piped(model):
    result = run(model, "show", "model.py:bce_loss", "--wrt", "w,b")
    assert result.returncode == 0, result.stderr
    assert "\033" not in result.stdout
    module = load(model / "model.py")
    expected = srcgrad.source(srcgrad.grad(module.bce_loss, wrt=("w", "b")), *module.example_args())
    assert result.stdout == expected + "\n"
    assert "# line 11: z = w * x + b" in expected   # the line in the user's file


def test_show_with_color_highlights_keywords_comments_strings_and_numbers(model):
    result = run(model, "show", "model.py:bce_loss", "--wrt", "w,b", "--color", env={"NO_COLOR": "1"})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("\033[1;35mdef\033[0m \033[1;34mgrad_bce_loss\033[0m(w, b, x, y):")
    assert '\033[32m"""The gradient of bce_loss with respect to w, b."""\033[0m' in out
    assert "\033[90m# line 11: z = w * x + b\033[0m" in out
    assert "\033[1;35mreturn\033[0m " in out
    assert "\033[36m1e-08\033[0m" in out
    assert ANSI.sub("", out) == run(model, "show", "model.py:bce_loss", "--wrt", "w,b").stdout


def test_show_colors_a_terminal_unless_told_not_to(model):
    if not hasattr(os, "openpty"):
        pytest.skip("needs a POSIX pseudo-terminal")

    def on_a_terminal(*argv, env=None):
        leader, follower = os.openpty()
        try:
            result = run(model, *argv, env=env, stdout=follower)
            os.close(follower)
            chunks = []
            while True:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            assert result.returncode == 0, result.stderr
            return b"".join(chunks).decode()
        finally:
            os.close(leader)

    assert "\033[1;35mdef\033[0m" in on_a_terminal("show", "plain.py:square")
    assert "\033" not in on_a_terminal("show", "plain.py:square", "--no-color")
    assert "\033" not in on_a_terminal("show", "plain.py:square", env={"NO_COLOR": "1"})


def test_show_specialises_on_example_args_and_shows_a_vjp_for_vector_output(model):
    result = run(model, "show", "model.py:layer")   # layer_args() gives the arguments
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("def vjp_layer(w, x):")
    assert "def pullback(d_tanh_x_at_w):" in result.stdout
    generic = run(model, "show", "plain.py:square", "--args", "2.0")
    assert generic.returncode == 0 and "def grad_square(x):" in generic.stdout


# ---- compare


def test_compare_with_args(model):
    result = run(model, "compare", "model.py:bce_numpy", "--wrt", "w,b", "--args", "1.0, 0.0, 6.7, y=0.0")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("bce_numpy(w=1.0, b=0.0, x=6.7, y=0.0) with respect to w, b\n  value 6.70123\n")
    assert re.search(r"d/dw  source +6\.69176", out) and re.search(r"d/db  source +0\.99877", out)
    assert re.search(r"source vs tape +0 +0 +yes", out)
    assert out.rstrip().endswith("ok: all three methods agree within rtol=1e-05, atol=1e-06")


def test_compare_with_example_args(model):
    result = run(model, "compare", "model.py:bce_loss", "--wrt", "w,b")
    assert result.returncode == 0, result.stderr
    assert "bce_loss(w=1.0, b=0.0, x=6.7, y=0.0) with respect to w, b" in result.stdout
    assert "tape mode could not run bce_loss:" in result.stdout
    assert "(tape did not run)" in result.stdout
    assert "the CLI must not run this block" not in result.stdout + result.stderr


def test_compare_with_function_args_as_args_and_kwargs(model):
    result = run(model, "compare", "model.py:layer")
    assert result.returncode == 0, result.stderr
    assert "layer(w=<float64 array (2, 3)>, x=<float64 array (2,)>) with respect to w" in result.stdout
    assert "gradients of sum(seed * output)" in result.stdout


def test_compare_exits_1_when_the_methods_disagree(model):
    result = run(model, "compare", "model.py:jump", "--args", "1.0 + 1e-7")
    assert result.returncode == 1, result.stderr
    assert "NOT OK: source vs finite differences; tape vs finite differences" in result.stdout


# ---- errors: one clear line, exit status 2, no traceback


@pytest.mark.parametrize("argv, message", [
    (["show", "missing.py:f"], "srcgrad: error: missing.py: no such file"),
    (["compare", "missing.py:f", "--args", "1.0"], "srcgrad: error: missing.py: no such file"),
    (["show", "model.py:nope"], "srcgrad: error: model.py defines no function 'nope'; it defines "
                                "bce_loss, bce_numpy, broken, example_args, guarded, jump, layer, "
                                "layer_args, sigmoid"),
    (["show", "model.py"], "srcgrad: error: expected FILE.py:FUNCTION (e.g. model.py:loss), not 'model.py'"),
    (["compare", "model.py:bce_numpy", "--args", "1.0, (0.0"],
     "srcgrad: error: --args '1.0, (0.0' is not valid Python: '(' was never closed"),
    (["compare", "model.py:bce_numpy", "--args", "1.0) + (2"],
     "srcgrad: error: --args '1.0) + (2' is not a list of arguments: write what goes between "
     "the parentheses of a call, e.g. --args \"np.ones(3), 2.0\""),
    (["compare", "model.py:bce_numpy", "--args", "np.onez(3)"],
     "srcgrad: error: --args 'np.onez(3)' failed: AttributeError: module 'numpy' has no attribute 'onez'"),
    (["compare", "model.py:bce_numpy", "--args", "1.0, 2.0"],
     "srcgrad: error: the arguments from --args do not fit bce_numpy(w, b, x, y): "
     "missing a required argument: 'x'"),
    (["compare", "model.py:sigmoid"],
     "srcgrad: error: model.py:sigmoid: no arguments to call sigmoid with: pass --args \"...\" or define "
     "sigmoid_args() or example_args() in the file (the arguments from example_args() do not fit "
     "sigmoid(z): too many positional arguments)"),
    (["compare", "model.py:layer", "--args", "np.ones(2)"],
     "srcgrad: error: the arguments from --args do not fit layer(w, x): missing a required argument: 'x'"),
    (["compare", "plain.py:square"],
     "srcgrad: error: plain.py:square: no arguments to call square with: pass --args \"...\" "
     "or define square_args() or example_args() in the file"),
    (["compare", "model.py:bce_numpy", "--wrt", "q"],
     "srcgrad: error: wrt='q' is not a parameter of bce_numpy('w', 'b', 'x', 'y')"),
    (["show", "model.py:bce_numpy", "--wrt", ","], "srcgrad: error: --wrt ',' names no argument"),
])
def test_usage_errors_exit_2_with_a_clear_message(model, argv, message):
    result = run(model, *argv)
    assert result.returncode == 2
    assert result.stderr.strip() == message
    assert result.stdout == ""


@pytest.mark.parametrize("command", [["show", "model.py:guarded"],
                                     ["compare", "model.py:guarded", "--args", "2.0"]])
def test_srcgrad_errors_exit_2_with_file_line_and_column(model, command):
    result = run(model, *command)
    assert result.returncode == 2
    assert result.stderr == textwrap.dedent(f"""\
        srcgrad: error: {model / 'model.py'}:35:5: cannot differentiate a `try` block
            try:
            ^
        """)


def test_a_syntax_error_in_the_file_exits_2(model):
    (model / "bad.py").write_text("def f(x):\n    return x +\n")
    result = run(model, "show", "bad.py:f")
    assert result.returncode == 2
    assert result.stderr.startswith(f"srcgrad: error: {model / 'bad.py'}:2:")
    assert "Traceback" not in result.stderr


def test_an_exception_in_the_users_code_shows_where_in_their_code(model):
    result = run(model, "compare", "model.py:broken", "--args", "np.ones(3)")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith("srcgrad: error: ValueError: matmul: Input operand 1 has a mismatch")
    assert lines[1] == "Traceback (most recent call last):"
    assert f'File "{model / "model.py"}", line 43, in broken' in lines[2]
    assert "srcgrad" not in "".join(lines[2:]).replace(str(model), "")


# ---- help and demo


def test_help_documents_the_commands_and_the_args_syntax(model):
    for argv in (["--help"], ["compare", "--help"]):
        result = run(model, *argv)
        assert result.returncode == 0
        for text in ("FILE.py:FUNCTION", "--args", "numpy as `np`", "example_args()",
                     "FUNCTION_args()", "(args, kwargs)", "--wrt w,b"):
            assert text in result.stdout, (argv, text)
    top = run(model, "--help").stdout
    assert "show" in top and "compare" in top and "demo" in top and "Exit status" in top
    assert "--no-color" in run(model, "show", "--help").stdout
    assert run(model).stdout == top   # no command: the help


def test_demo_still_runs(model):
    result = run(model, "demo")
    assert result.returncode == 0, result.stderr
    assert "dL/dw = 6.6918" in result.stdout and "dL/db = 0.9988" in result.stdout


def test_the_highlighter_leaves_text_alone_and_colours_whole_tokens():
    from srcgrad.__main__ import highlight
    source = 'def f(x1):\n    s = "a # b" + f\'{x1}\'  # note 2\n    return x1 if x1 in (1.5e-3, 2) else None\n'
    painted = highlight(source)
    assert ANSI.sub("", painted) == source
    assert '\033[32m"a # b"\033[0m' in painted and "\033[32mf'{x1}'\033[0m" in painted
    assert "\033[90m# note 2\033[0m" in painted
    assert "\033[1;34mf\033[0m(x1)" in painted and "\033[36m1.5e-3\033[0m" in painted
    assert "x1 \033[1;35min\033[0m" in painted and "\033[1;35mNone\033[0m" in painted
    assert "\033[36m1\033[0m" not in painted   # the 1 of x1 is part of a name
