"""benchmarks/spellings.py: every spelling of every workload gets the hand-written gradient
from srcgrad, or a SrcgradError that KNOWN_REFUSALS lists. Small sizes, no timing."""
import importlib.util
import inspect
import os
import sys

import numpy as np
import pytest

import srcgrad

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "benchmarks", "spellings.py")


def _load():
    name = "benchmarks_spellings"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


sp = _load()
CASES = [(w.name, s.name) for w in sp.WORKLOADS for s in w.spellings]
_inputs_cache = {}


def _inputs(workload):
    """The workload's small arguments and its hand-written gradient on them."""
    if workload.name not in _inputs_cache:
        args = workload.make_args(True)
        _inputs_cache[workload.name] = args, tuple(workload.hand(*args))
    return _inputs_cache[workload.name]


def test_the_corpus_is_large_enough():
    assert len(sp.WORKLOADS) >= 10
    for w in sp.WORKLOADS:
        assert len(w.spellings) >= 6, w.name


def test_known_refusals_name_spellings_that_exist():
    assert sp.KNOWN_REFUSALS <= {f"{w}:{s}" for w, s in CASES}


@pytest.mark.parametrize("workload", sp.WORKLOADS, ids=lambda w: w.name)
def test_every_spelling_computes_the_baselines_value(workload):
    sp.check_values(workload, workload.make_args(True))


def _finite_difference(f, args, i, index=None, eps=1e-6):
    def at(delta):
        moved = list(args)
        if index is None:
            moved[i] = args[i] + delta
        else:
            a = np.array(args[i], dtype=float)
            a[index] += delta
            moved[i] = a
        return float(f(*moved))
    x = args[i] if index is None else args[i][index]
    h = eps * max(1.0, abs(float(x)))
    return (at(h) - at(-h)) / (2 * h)


@pytest.mark.parametrize("workload", sp.WORKLOADS, ids=lambda w: w.name)
def test_hand_gradient_matches_finite_differences(workload):
    """The reference itself: the hand gradient against central differences of the baseline."""
    args, want = _inputs(workload)
    base = workload.spellings[0]

    def f(*canonical):
        fn, call_args = base.bind(canonical)
        return fn(*call_args)

    names = list(inspect.signature(workload.hand).parameters)
    wrt = workload.wrt if isinstance(workload.wrt, tuple) else (workload.wrt,)
    rng = np.random.default_rng(7)
    for name, grad in zip(wrt, want):
        i = names.index(name)
        if np.ndim(args[i]) == 0:
            got = [(_finite_difference(f, args, i), float(grad))]
        else:
            flat = rng.choice(np.size(args[i]), size=min(4, np.size(args[i])), replace=False)
            points = [np.unravel_index(k, np.shape(args[i])) for k in flat]
            got = [(_finite_difference(f, args, i, p), float(np.asarray(grad)[p])) for p in points]
        for fd, hand in got:
            assert abs(fd - hand) <= 1e-5 * (abs(hand) + 1e-2), (workload.name, name, fd, hand)


@pytest.mark.parametrize("wname,sname", CASES, ids=[f"{w}:{s}" for w, s in CASES])
def test_spelling_gets_the_hand_gradient_or_a_known_refusal(wname, sname):
    workload = sp.BY_NAME[wname]
    args, want = _inputs(workload)
    out = sp.evaluate(workload, workload.spelling(sname), args, want)
    key = f"{wname}:{sname}"
    if out.status == "refused":
        assert isinstance(out.exc, srcgrad.SrcgradError), (
            f"{key}: srcgrad raised {type(out.exc).__name__}, not a SrcgradError: {out.why}")
        assert key in sp.KNOWN_REFUSALS, f"{key} is refused and not in KNOWN_REFUSALS: {out.why}"
    else:
        assert out.status == "ok", f"{key}: {out.label()}"


def test_quick_run_writes_a_markdown_table(tmp_path, capsys):
    md = tmp_path / "spellings.md"
    code = sp.main(["--quick", "--only", "bce_scalar,rnn", "--markdown", str(md)])
    out = capsys.readouterr().out
    assert code == 0
    assert "× hand" in out and "median × hand" in out and "bce_scalar" in out
    text = md.read_text()
    assert "| workload | spelling | srcgrad µs | hand µs | × hand | × best spelling |" in text
    assert "| rnn | iter_list |" in text


def test_source_prints_the_generated_gradient(capsys):
    assert sp.main(["--quick", "--source", "rnn:iter_list"]) == 0
    out = capsys.readouterr().out
    assert "def rnn_iterate" in out and "def grad_rnn_iterate" in out
