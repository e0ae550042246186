"""Every script under examples/ runs and prints the tutorials' numbers."""
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py") if not p.name.startswith(("tape_", "make_")))

# Strings each example must print: the tutorial's numbers, and a line of its generated gradient.
EXPECTED = {
    "01_scalar_derivatives.py": ["dy/dx = 10.0000", "dy/dx = 6.0000", "dy/dx = 4.0000",
                                 "z = -0.1324", "9.9120", "z = 0.4121", "-5.4668",
                                 "def value_and_grad_sin_square(x):", "d_x ="],
    "02_bce_logistic_neuron.py": ["bce_math  : loss = 6.7012, dL/dw = 6.6918, dL/db = 0.9988",
                                  "bce_numpy : loss = 6.7012, dL/dw = 6.6918, dL/db = 0.9988",
                                  "bce_helper: loss = 6.7012, dL/dw = 6.6918, dL/db = 0.9988",
                                  "def value_and_grad_bce_helper(w, b, x, y):", "d_w =", "d_b ="],
    "03_vector_mean.py": ["y = 4.6667", "[0.6667 1.3333 2.    ]", "def value_and_grad_mean_of_squares(x):"],
    "04_chain_through_vector.py": ["[4.1508 2.4988 4.3869]", "3.6324", "def grad_chain(x):"],
    "05_vjp_seed.py": ["NonScalarOutputError", "vjp", "seed", "[1.2452 7.4964 0.0132]",
                       "def vjp_chain(x):", "def pullback("],
    "06_four_leaves.py": ["dg/da = [-4.], dg/db = [-4.], dg/dc = [-4.], dg/dd = [4.]",
                          "def value_and_grad_graph(a, b, c, d):"],
    "07_logistic_layer.py": ["dL/db = [0.0785 0.0115 0.0034]", "def value_and_grad_logistic_layer(w, b, x, y):"],
    "08_linear_regression.py": ["loss = 1.0000, dL/dw = -2.0000", "converged: w = 1.9990",
                                "def value_and_grad_squared_error(w, x, y):"],
    "10_rnn_recurrence.py": ["def grad_rnn(a, b, x):", "h_stack.append(h)", "h = h_stack.pop()",
                             "dh/da = 0.391043, dh/db = 0.576925", "matches central finite differences"],
    "11_training_loop.py": ["epoch  0: loss = 1.1848", "epoch 29: loss = 0.0682",
                            "training accuracy = 0.97"],
    "09_stop_gradient.py": ["with_no_grad      : z = 8.0000, dz/dx = 4.0000",
                            "with_stop_gradient: z = 8.0000, dz/dx = 4.0000",
                            "without           : z = 8.0000, dz/dx = 12.0000",
                            "def value_and_grad_with_no_grad(x):"],
}


def test_every_example_is_checked():
    assert sorted(p.name for p in EXAMPLES) == sorted(EXPECTED)


def run_example(path):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run([sys.executable, str(path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(path):
    result = run_example(path)
    assert result.returncode == 0, f"{path.name} failed:\n{result.stdout}\n{result.stderr}"
    for expected in EXPECTED[path.name]:
        assert expected in result.stdout, f"{path.name} did not print {expected!r}:\n{result.stdout}"


def test_linear_regression_prints_decreasing_losses():
    result = run_example(ROOT / "examples" / "08_linear_regression.py")
    assert result.returncode == 0, result.stderr
    losses = [float(line.rsplit("loss = ", 1)[1]) for line in result.stdout.splitlines()
              if line.startswith("step ")]
    assert len(losses) > 5
    assert losses[0] == 1.0
    assert losses[-1] < 1e-6 <= min(losses[:-1])
    assert all(b < a for a, b in zip(losses, losses[1:]))
