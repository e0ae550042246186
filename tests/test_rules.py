"""Every rule in the registry, checked against central finite differences.

Each rule declares where it is valid (`domain`, and for structural rules a
`cases` tag); this test walks the whole registry, builds a small function that
calls the rule's primal, differentiates it with srcgrad and compares with
finite differences, for several shapes including broadcasting.
"""
import itertools
import zlib
import linecache
import math

import numpy as np
import pytest

import srcgrad
from srcgrad.rules import all_rules
from srcgrad.testing import check_grads

_counter = itertools.count()


def make_function(call, params, primal):
    """A function `f(*params): return <call>` with source findable through linecache."""
    src = f"def f({', '.join(params)}):\n    return {call}\n"
    filename = f"<rule-test-{next(_counter)}>"
    linecache.cache[filename] = (len(src), None, src.splitlines(True), filename)
    namespace = {"fn": primal, "np": np, "math": math}
    exec(compile(src, filename, "exec"), namespace)
    return namespace["f"]


def sample(domain, shape, rng):
    size = shape if shape != () else None
    if domain == "positive":
        x = rng.uniform(0.5, 2.0, size)
    elif domain == "unit":
        x = rng.uniform(-0.9, 0.9, size)
    elif domain == "nonzero":
        x = rng.uniform(0.5, 2.0, size) * rng.choice([-1.0, 1.0], size)
    elif domain == "above1":
        x = rng.uniform(1.5, 3.0, size)
    elif domain == "mask":
        return rng.uniform(size=shape) > 0.5
    else:
        x = rng.normal(size=size)
    return float(x) if shape == () else np.asarray(x)


def is_python_scalar_rule(rule):
    module = getattr(rule.primal, "__module__", "")
    return module == "math" or rule.primal in (max, min, float)


ELEMENTWISE_SHAPES = {
    1: [[()], [(3,)], [(2, 3)]],
    2: [[(), ()], [(3,), (3,)], [(2, 3), (3,)], [(2, 1), (1, 3)], [(), (2, 3)], [(4,), ()]],
    3: [[(3,), (3,), (3,)], [(2, 3), (3,), (2, 1)]],
}


def elementwise_cases(rule, rng):
    domains = list(rule.domain) or ["real"] * len(rule.primal_params)
    domains += ["real"] * (len(rule.primal_params) - len(domains))
    shape_sets = [[()] * len(domains)] if is_python_scalar_rule(rule) else ELEMENTWISE_SHAPES[len(domains)]
    for shapes in shape_sets:
        params, args, call_args, wrt = [], [], [], []
        for i, (domain, shape) in enumerate(zip(domains, shapes)):
            if domain.startswith("const:"):
                call_args.append(domain[len("const:"):])
                continue
            name = f"x{i}"
            params.append(name)
            args.append(sample(domain, shape, rng))
            call_args.append(name)
            if domain != "mask":
                wrt.append(name)
        yield f"fn({', '.join(call_args)})", params, args, tuple(wrt)


def reduction_kwargs(tag):
    base = [{}, {"axis": 0}, {"axis": 1, "keepdims": True}, {"axis": -1}]
    if tag == "reduction":
        base.append({"axis": (0, 1)})
    return base


def kwargs_text(kwargs):
    return "".join(f", {k}={v!r}" for k, v in kwargs.items())


def structural_cases(rule, rng):
    tag = rule.cases or rule.domain[0]
    x = lambda *shape: rng.normal(size=shape)
    if tag in ("reduction", "reduction1"):
        for kwargs in reduction_kwargs(tag):
            yield f"fn(a{kwargs_text(kwargs)})", ["a"], [x(3, 4)], ("a",)
        if rule.primal in (np.var, np.std):
            yield "fn(a, axis=0, ddof=1)", ["a"], [x(3, 4)], ("a",)
        if tag == "reduction1":  # a product with a zero in it, and over several axes
            a = x(3, 4)
            a[1, 2] = 0.0
            yield "fn(a, axis=1)", ["a"], [a], ("a",)
            yield "fn(a, axis=(0, 2))", ["a"], [x(2, 3, 2)], ("a",)
    elif tag == "cumsum":
        for kwargs in [{}, {"axis": 0}, {"axis": 1}]:
            yield f"fn(a{kwargs_text(kwargs)})", ["a"], [x(3, 4)], ("a",)
    elif tag == "matrix":
        pairs = [((3, 4), (4, 2)), ((4,), (4, 2)), ((3, 4), (4,)), ((4,), (4,))]
        if rule.primal is not np.dot:
            pairs += [((2, 3, 4), (4, 5)), ((2, 3, 4), (2, 4, 2)), ((4,), (2, 4, 3))]
        for sa, sb in pairs:
            yield "fn(a, b)", ["a", "b"], [x(*sa), x(*sb)], ("a", "b")
        if rule.primal is np.dot:
            yield "fn(a, b)", ["a", "b"], [x(), x(3)], ("a", "b")
    elif tag == "vector":
        yield "fn(a, b)", ["a", "b"], [x(3), x(4)], ("a", "b")
    elif tag == "square":
        yield "fn(a)", ["a"], [x(3, 3)], ("a",)
        yield "fn(a)", ["a"], [x(3, 2, 2)], ("a",)
    elif tag == "reshape":
        yield "fn(a, (4, 3))", ["a"], [x(3, 4)], ("a",)
        yield "fn(a, (-1,))", ["a"], [x(2, 3)], ("a",)
    elif tag == "array":
        yield "fn(a)", ["a"], [x(2, 3)], ("a",)
    elif tag == "transpose":
        yield "fn(a)", ["a"], [x(2, 3)], ("a",)
        yield "fn(a, (1, 0, 2))", ["a"], [x(2, 3, 4)], ("a",)
        yield "fn(a, axes=(2, 0, 1))", ["a"], [x(2, 3, 4)], ("a",)
    elif tag == "expand_dims":
        yield "fn(a, 1)", ["a"], [x(2, 3)], ("a",)
    elif tag == "squeeze":
        yield "fn(a)", ["a"], [x(1, 3, 1)], ("a",)
        yield "fn(a, axis=0)", ["a"], [x(1, 3, 1)], ("a",)
    elif tag == "broadcast_to":
        yield "fn(a, (4, 3))", ["a"], [x(3)], ("a",)
        yield "fn(a, (2, 4, 3))", ["a"], [x(4, 1)], ("a",)
    elif tag == "swapaxes":
        yield "fn(a, 0, 2)", ["a"], [x(2, 3, 4)], ("a",)
    elif tag == "concatenate":
        yield "fn((a, b), axis=1)", ["a", "b"], [x(2, 3), x(2, 2)], ("a", "b")
        yield "fn([a, b, a])", ["a", "b"], [x(2, 3), x(1, 3)], ("a", "b")
        yield "fn((a, b), axis=None)", ["a", "b"], [x(2, 3), x(4)], ("a", "b")
    elif tag == "stack":
        yield "fn([a, b], axis=1)", ["a", "b"], [x(2, 3), x(2, 3)], ("a", "b")
        yield "fn((a, b, a))", ["a", "b"], [x(3), x(3)], ("a", "b")
    elif tag == "getitem":
        for index in ["1", "-1", "1:3", "::-1, 0", "None, 1:", "..., 0", "1:2, None",
                      "np.array([0, 2, 0, 0])", "a > 0", "[1, 1], [0, 2]"]:
            yield f"a[{index}]", ["a"], [x(4, 3)], ("a",)
    elif tag == "np_array":
        yield "fn(a)", ["a"], [x(2, 3)], ("a",)
        yield "fn([a, b, a])", ["a", "b"], [x(3), x(3)], ("a", "b")
    elif tag == "make_list":
        yield "np.stack(fn([a, b]))", ["a", "b"], [x(3), x(3)], ("a", "b")
    elif tag == "builtin_sum":
        yield "fn(a)", ["a"], [x(4)], ("a",)
        yield "fn(a)", ["a"], [x(3, 2)], ("a",)
        yield "fn(a, b)", ["a", "b"], [x(3, 2), x(2)], ("a", "b")
        yield "fn([a, b, a])", ["a", "b"], [x(2), x(2)], ("a", "b")
    elif tag == "real":  # the compiler's own copy rule
        yield "fn(a)", ["a"], [x(3)], ("a",)
    else:
        raise AssertionError(f"rule {rule.name} declares no test cases (cases={tag!r})")


def cases_for(rule, rng):
    if rule.kind == "partial" and not rule.cases:
        return list(elementwise_cases(rule, rng))
    return list(structural_cases(rule, rng))


RULES = all_rules()


@pytest.mark.parametrize("rule", RULES, ids=[r.name for r in RULES])
def test_rule_against_finite_differences(rule):
    rng = np.random.default_rng(zlib.crc32(rule.name.encode()))
    cases = cases_for(rule, rng)
    assert cases, f"no test cases for {rule.name}"
    for call, params, args, wrt in cases:
        f = make_function(call, params, rule.primal)
        try:
            check_grads(f, *args, wrt=wrt, rtol=1e-4, atol=1e-6)
        except AssertionError as exc:
            raise AssertionError(f"{rule.name} at `{call}` with shapes "
                                 f"{[np.shape(a) for a in args]}:\n{exc}") from None


def test_every_rule_has_readable_source():
    from srcgrad.compiler.templates import template_for
    for rule in RULES:
        template = template_for(rule)
        assert template.result is not None, f"{rule.name}: rule is not a single expression"
        if rule.kind == "partial":
            assert template.arity == len(rule.primal_params), rule.name
