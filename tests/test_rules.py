"""Every rule in the registry, checked against central finite differences.

Each rule declares where it is valid (`domain`, and for structural rules a
`cases` tag); this test walks the whole registry, builds a small function that
calls the rule's primal, differentiates it with srcgrad and compares with
finite differences, for several shapes including broadcasting. The reductions
are also walked over one element (where np.std is the constant 0), and each
rule at the points on the edge of its domain where it is still differentiable
(`boundary`: a ** b at a = 0, hypot(0, b) ...), against one-sided differences.
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
    elif domain == "signs":  # -1, 0 or 1, held constant: where a step function jumps, and not
        x = rng.choice([-1.0, 0.0, 1.0], size)
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


HELD_CONSTANT = ("mask", "signs")   # domains of arguments passed, but not differentiated


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
            if domain not in HELD_CONSTANT:
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
        # over one element: np.std is the constant 0 there (and np.var), not 0 / 0
        yield "fn(a)", ["a"], [x(1)], ("a",)
        yield "fn(a, axis=0)", ["a"], [x(1, 4)], ("a",)
        yield "fn(a, axis=1, keepdims=True)", ["a"], [x(3, 1)], ("a",)
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
    elif tag == "linspace":
        yield "fn(a, b, 5)", ["a", "b"], [x(), x()], ("a", "b")
        yield "fn(a, b, 4, endpoint=False)", ["a", "b"], [x(), x()], ("a", "b")
        yield "fn(a, b, 1)", ["a", "b"], [x(), x()], ("a", "b")
        yield "fn(a, b)", ["a", "b"], [x(), x()], ("a", "b")
        yield "fn(a, b, 3, axis=1)", ["a", "b"], [x(2), x(2)], ("a", "b")
        yield "fn(a, b, 4, axis=-1)", ["a", "b"], [x(2, 1), x(3)], ("a", "b")
        yield "fn(a, 2.0, 3)", ["a"], [x(2)], ("a",)
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
BOUNDARY_RULES = [r for r in RULES if r.boundary]

# the edge of each bounded domain, and the side of it the domain lies on
DOMAIN_EDGES = {"positive": {0.0: 1}, "nonzero": {0.0: 0}, "unit": {-1.0: 1, 1.0: -1},
                "above1": {1.0: 1}}


def boundary_cases(rule):
    """The rule's `boundary` points, as Python numbers and (numpy rules) arrays: yields
    (call, params, args, wrt, sides), sides[k] the one side (+1 or -1) to which finite
    differences may step from wrt[k], or 0 for both."""
    domains = list(rule.domain) or ["real"] * len(rule.primal_params)
    shapes = [()] if is_python_scalar_rule(rule) else [(), (3,)]
    for point in rule.boundary:
        for shape in shapes:
            params, args, call_args, wrt, sides = [], [], [], [], []
            for i, (domain, value) in enumerate(zip(domains, point)):
                if isinstance(value, str):
                    assert value.startswith("const:"), f"{rule.name}: boundary entry {value!r}"
                    call_args.append(value[len("const:"):])
                    continue
                name = f"x{i}"
                params.append(name)
                args.append(float(value) if shape == () else np.full(shape, float(value)))
                call_args.append(name)
                wrt.append(name)
                sides.append(DOMAIN_EDGES.get(domain, {}).get(float(value), 0))
            call = f"fn({', '.join(call_args)})"
            yield (call if shape == () else f"np.sum({call})"), params, args, tuple(wrt), sides


def one_sided_grad(f, args, index, side, h=1e-6):
    """d f / d args[index] by second-order differences to one side (central for side 0)."""
    x = np.array(args[index], dtype=float)
    grad = np.zeros(x.shape)
    for i in np.ndindex(x.shape):
        def at(step):
            moved = x.copy()
            moved[i] += step
            values = list(args)
            values[index] = float(moved) if np.ndim(args[index]) == 0 else moved
            return float(f(*values))
        if side == 0:
            grad[i] = (at(h) - at(-h)) / (2 * h)
        else:
            grad[i] = side * (-3 * at(0.0) + 4 * at(side * h) - at(2 * side * h)) / (2 * h)
    return grad


def test_boundary_points_lie_on_the_edge_of_the_domain():
    assert {"np.power", "operator.pow", "math.pow", "np.hypot", "np.arctan2"} <= \
        {r.name for r in BOUNDARY_RULES}
    for rule in BOUNDARY_RULES:
        domains = list(rule.domain) or ["real"] * len(rule.primal_params)
        for point in rule.boundary:
            assert len(point) == len(rule.primal_params), f"{rule.name}: {point}"
            on_edge = [not isinstance(v, str) and float(v) in DOMAIN_EDGES.get(d, {})
                       for d, v in zip(domains, point)]
            assert any(on_edge), f"{rule.name}: {point} is inside the domain {rule.domain}"


@pytest.mark.parametrize("rule", BOUNDARY_RULES, ids=[r.name for r in BOUNDARY_RULES])
def test_rule_at_the_edge_of_its_domain(rule):
    for call, params, args, wrt, sides in boundary_cases(rule):
        f = make_function(call, params, rule.primal)
        got = srcgrad.grad(f, wrt=wrt)(*args)      # a tuple wrt: a tuple of gradients
        for name, g, side in zip(wrt, got, sides):
            where = f"{rule.name} at `{call}` = {f(*args)!r}, d/d{name}, args {args}"
            assert np.all(np.isfinite(g)), f"{where}: {g}"
            expected = one_sided_grad(f, args, params.index(name), side)
            np.testing.assert_allclose(g, expected, rtol=1e-5, atol=1e-6, err_msg=where)


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
