"""Every rule in the registry, run by the tape, against finite differences and the compiler.

The cases are tests/test_rules.py's (each rule's declared domain and shapes,
broadcasting included). Each case calls the rule's primal on tensors: `np.sin(t)`
reaches the tape through `__array_ufunc__`, `np.sum(t, axis=0)` through
`__array_function__`, `a @ b` and `a[i]` through the operators. The tape's
gradient must match central differences and the compiler's generated gradient.

A few primals cannot see a tensor: NO_DISPATCH lists them, with the reason. Their
rules still run through the tape, by `tape.apply(primal, ...)`, which records
one node with the primal's rule: so no rule is skipped. Two rules describe the
compiler's own constructs (a copy `b = a`, a list display `[a, b]`); in tape mode
those are plain Python, so COMPILER_ONLY runs them as they are and checks the
gradient that flows around them. test_dispatch_lists_are_exact keeps both lists
honest (a primal that starts dispatching must leave them).
"""
import ast
import pathlib
import zlib

import numpy as np
import pytest

import srcgrad
from srcgrad import tape
from srcgrad.rules import all_rules
from srcgrad.testing import numerical_grad
from test_rules import BOUNDARY_RULES, boundary_cases, cases_for, make_function, one_sided_grad

# Primals that never see a tensor, so tape mode cannot record them by themselves.
NO_DISPATCH = {
    # the `math` module converts its arguments with float(), which refuses a tensor that requires grad
    **{f"math.{name}": "math converts tensors with float()" for name in [
        "exp", "expm1", "log", "log1p", "log2", "log10", "sqrt", "pow", "sin", "cos", "tan",
        "asin", "acos", "atan", "atan2", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh",
        "hypot", "erf", "erfc", "fabs", "degrees", "radians"]},
    "max": "builtins.max compares, then returns one of its arguments unchanged",
    "min": "builtins.min compares, then returns one of its arguments unchanged",
    "float": "float(t) must return a Python float (as in PyTorch)",
    "sum": "builtins.sum iterates over t and adds: recorded item by item (x[index], +), not as sum",
    "np.float64": "np.float64(t) converts through float()",
    "np.asarray": "np.asarray does not dispatch; it calls t.__array__ (refused while t requires grad)",
    "np.array": "np.array does not dispatch; it calls t.__array__ (refused while t requires grad)",
}
# The compiler's own constructs: plain Python in tape mode, run as they are.
COMPILER_ONLY = {
    "b = a": "a copy: in tape mode `b = a` binds the same tensor",
    "[a, b, ...]": "a list display: in tape mode a list of tensors is a plain list",
}

RULES = all_rules()


def rng_for(rule):
    return np.random.default_rng(zlib.crc32(rule.name.encode()))


def recorded_rules(t):
    """The rules of every node in the graph behind tensor `t`."""
    found, stack, seen = [], [t], set()
    while stack:
        t = stack.pop()
        if not isinstance(t, tape.Tensor) or t.grad_fn is None or id(t) in seen:
            continue
        seen.add(id(t))
        found.append(t.grad_fn.rule)
        stack.extend(parent for _, _, parent in t.grad_fn.inputs)
    return found


def tape_inputs(args, params, wrt):
    return [tape.tensor(a, requires_grad=True) if p in wrt else a for a, p in zip(args, params)]


def through_apply(primal):
    """A stand-in for a primal tensors cannot reach: the same call, recorded by tape.apply."""
    return lambda *args, **kwargs: tape.apply(primal, *args, **kwargs)


def tape_grads(f, args, params, wrt, seed):
    inputs = tape_inputs(args, params, wrt)
    out = f(*inputs)
    assert isinstance(out, tape.Tensor) and out.requires_grad, f"nothing recorded: {out!r}"
    out.backward(None if seed is None else seed)
    return [inputs[params.index(name)].grad for name in wrt], out


def dispatches(rule):
    """Whether calling the rule's primal on tensors records a node with exactly this rule."""
    call, params, args, wrt = cases_for(rule, rng_for(rule))[0]
    f = make_function(call, params, rule.primal)
    try:
        out = f(*tape_inputs(args, params, wrt))
    except srcgrad.SrcgradError:  # np.asarray(t) refuses a tensor that requires grad
        return False
    return isinstance(out, tape.Tensor) and rule in recorded_rules(out)


def test_dispatch_lists_are_exact():
    names = {rule.name for rule in RULES}
    listed = set(NO_DISPATCH) | set(COMPILER_ONLY)
    assert listed <= names, f"not in the registry: {listed - names}"
    for rule in RULES:
        if rule.name in listed:
            assert not dispatches(rule), f"{rule.name} now dispatches: remove it from the list"
        else:
            assert dispatches(rule), f"{rule.name} is not recorded when called on tensors"


@pytest.mark.parametrize("rule", RULES, ids=[r.name for r in RULES])
def test_rule_through_the_tape(rule):
    primal = through_apply(rule.primal) if rule.name in NO_DISPATCH else rule.primal
    cases = cases_for(rule, rng_for(rule))
    assert cases, f"no test cases for {rule.name}"
    for call, params, args, wrt in cases:
        where = f"{rule.name} at `{call}` with shapes {[np.shape(a) for a in args]}"
        f_numpy = make_function(call, params, rule.primal)
        f_tape = make_function(call, params, primal)
        value = f_numpy(*args)
        seed = None if np.ndim(value) == 0 else np.random.default_rng(0).normal(size=np.shape(value))
        got, out = tape_grads(f_tape, args, params, wrt, seed)
        np.testing.assert_allclose(out.data, value, rtol=1e-12, err_msg=f"value of {where}")
        _, pullback = srcgrad.vjp(f_numpy, *args, wrt=tuple(wrt))
        compiled = pullback(1.0 if seed is None else seed)
        for name, g, c in zip(wrt, got, compiled):
            index = params.index(name)
            assert g is not None, f"no gradient for {name}: {where}"
            assert g.shape == np.shape(args[index]), f"d/d{name} has shape {g.shape}: {where}"
            numeric = numerical_grad(f_numpy, args, index, seed)
            np.testing.assert_allclose(g.data, numeric, rtol=1e-4, atol=1e-6,
                                       err_msg=f"d/d{name}, tape vs finite differences: {where}")
            np.testing.assert_allclose(g.data, c, rtol=1e-10, atol=1e-12,
                                       err_msg=f"d/d{name}, tape vs compiler: {where}")


@pytest.mark.parametrize("rule", BOUNDARY_RULES, ids=[r.name for r in BOUNDARY_RULES])
def test_rule_through_the_tape_at_the_edge_of_its_domain(rule):
    """test_rules.py's boundary points (a ** b at a = 0, ...), run by the tape: finite
    gradients that match one-sided differences and the compiler."""
    primal = through_apply(rule.primal) if rule.name in NO_DISPATCH else rule.primal
    for call, params, args, wrt, sides in boundary_cases(rule):
        f_numpy = make_function(call, params, rule.primal)
        got, out = tape_grads(make_function(call, params, primal), args, params, wrt, None)
        compiled = srcgrad.grad(f_numpy, wrt=wrt)(*args)
        for name, g, c, side in zip(wrt, got, compiled, sides):
            where = f"{rule.name} at `{call}` = {out.item()!r}, d/d{name}, args {args}"
            assert g is not None and np.all(np.isfinite(g.data)), f"{where}: {g}"
            expected = one_sided_grad(f_numpy, args, params.index(name), side)
            np.testing.assert_allclose(g.data, expected, rtol=1e-5, atol=1e-6, err_msg=where)
            np.testing.assert_allclose(g.data, c, rtol=1e-12, atol=0, err_msg=where)


# ---- the rules import neither engine


RULES_DIR = pathlib.Path(srcgrad.__file__).parent / "rules"
FORBIDDEN = ("srcgrad.tape", "srcgrad.compiler")
NOT_RULES = set()


def imported_modules(path):
    """Every module a file imports, relative imports resolved against srcgrad.rules."""
    package = ["srcgrad", "rules"]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            yield module
            yield from (f"{module}.{alias.name}" for alias in node.names)


def test_rules_import_neither_engine():
    files = sorted(p for p in RULES_DIR.glob("*.py") if p.name not in NOT_RULES)
    assert {"registry.py", "math.py", "numpy.py", "operators.py"} <= {p.name for p in files}
    for path in files:
        for module in imported_modules(path):
            assert not module.startswith(FORBIDDEN), f"{path.name} imports {module}"


def test_files_exempted_from_the_import_check_still_exist():
    assert all((RULES_DIR / name).exists() for name in NOT_RULES), "drop them from NOT_RULES"


def test_import_check_sees_relative_imports(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from .. import tape\nfrom ..compiler import nodes\nimport srcgrad.tape.tensor\n")
    found = set(imported_modules(bad))
    assert {"srcgrad.tape", "srcgrad.compiler", "srcgrad.tape.tensor"} <= found
