"""benchmarks/run.py --quick runs end to end with only srcgrad and numpy (peers blocked)."""
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "benchmarks", "run.py")

# Make `import torch` (and the other peers) fail, as on a machine without them.
BLOCKED = ("torch", "jax", "jaxlib", "autograd", "matplotlib")
LAUNCH = (
    "import runpy, sys\n"
    "for name in {blocked!r}:\n"
    "    sys.modules[name] = None\n"
    "sys.argv = [{script!r}, '--quick', '--markdown', {md!r}]\n"
    "runpy.run_path({script!r}, run_name='__main__')\n"
)


def test_quick_run_prints_a_table(tmp_path):
    md = str(tmp_path / "bench.md")
    code = LAUNCH.format(blocked=BLOCKED, script=SCRIPT, md=md)
    started = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         timeout=60)
    elapsed = time.perf_counter() - started
    assert res.returncode == 0, res.stderr[-3000:]
    out = res.stdout
    assert "workload" in out and "µs/call" in out and "× hand" in out
    for name in ("bce_scalar", "mean_square", "mlp", "rnn_scalar", "logistic_layer",
                 "fill_loop", "while_newton"):
        rows = [line for line in out.splitlines() if line.startswith(name + " ")]
        methods = {line.split()[1]: line for line in rows}
        for method in ("forward", "hand", "srcgrad", "srcgrad.fn", "tape"):
            assert method in methods, f"{name}: no {method} row in\n{out}"
            assert "n/a" not in methods[method].split()[2], methods[method]
        for method in ("autograd", "torch", "jax"):  # blocked: skipped, not failed
            assert method not in methods
    assert "DISAGREES" not in out and "fails:" not in out, out
    assert "compile time of a 50-line function" in out
    assert "import srcgrad" in out
    text = open(md).read()
    assert "<!-- benchmarks:begin -->" in text and "| workload | method |" in text
    assert elapsed < 20, f"the quick run took {elapsed:.1f} s"
