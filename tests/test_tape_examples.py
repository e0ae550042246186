"""examples/tape_*.py run, quickly, and print the tutorials' numbers the way PyTorch prints them."""
import os
import pathlib
import subprocess
import sys
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent

EXPECTED = {
    "tape_01_tutorials.py": [
        "x = tensor(5., requires_grad=True), y = tensor(25., grad_fn=<PowBackward>), dy/dx = tensor(10.)",
        "dy/dx = tensor(6.)", "dy/dx = tensor(4.)",
        "z = sin(x**2) = tensor(-0.1324, grad_fn=<SinBackward>), dz/dx = tensor(9.9120)",
        "z = sin(x**2) = tensor(0.4121, grad_fn=<SinBackward>), dz/dx = tensor(-5.4668)",
        "loss = tensor(6.7012, grad_fn=<NegBackward>)", "dL/dw = tensor(6.6918), dL/db = tensor(0.9988)",
        "y = tensor(4.6667, grad_fn=<MeanBackward>)", "dy/dx = tensor([0.6667, 1.3333, 2.0000])",
        "d(out)/dx = tensor([4.1508, 2.4988, 4.3869])",
        "grad can be implicitly created only for scalar outputs", "x.grad = tensor([1.2452, 7.4964, 0.0132])",
        "dg/da = tensor([-4.]), dg/db = tensor([-4.]), dg/dc = tensor([-4.]), dg/dd = tensor([4.])",
        "dL/db = tensor([0.0785, 0.0115, 0.0034])",
        "loss = tensor(1., grad_fn=<PowBackward>), dL/dw = tensor(-2.)", "converged: w = 1.9990",
        "dz/dx = tensor(4.) (not 12)", "shares data: True",
        "backward() after detach: backward() on a tensor that does not require grad",
        "epoch 9: weights.grad = tensor([100., 100., 100., 100.])",
        "epoch 2, cleared each step: weights.grad = tensor([10., 10., 10., 10.])",
        "factor 3, epoch 1: weights.grad = tensor([6., 6., 6., 6.])",
        "factor 3, epoch 1, cleared: weights.grad = tensor([3., 3., 3., 3.])",
        "y.grad (kept by retain_grad) = tensor([ 4.,  8., 12.])",
    ],
}


def test_every_tape_example_is_checked():
    assert sorted(p.name for p in (ROOT / "examples").glob("tape_*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_tape_example_runs(name):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    start = time.perf_counter()
    result = subprocess.run([sys.executable, str(ROOT / "examples" / name)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, f"{name} failed:\n{result.stdout}\n{result.stderr}"
    assert result.stderr == "", result.stderr  # no warnings either
    for expected in EXPECTED[name]:
        assert expected in result.stdout, f"{name} did not print {expected!r}:\n{result.stdout}"
    assert elapsed < 10, f"{name} took {elapsed:.1f} s"
