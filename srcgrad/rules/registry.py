"""The rule registry: the only seam between derivative rules and the engines.

Two ways to state a derivative, both plain Python:

``partial(fn, lambda x, y: 1 - y**2)``
    Partial derivatives of an elementwise function, one per argument (a tuple
    for several arguments, ``None`` where an argument takes no gradient). A last
    parameter named ``y`` receives the function's output. The engines multiply
    by the incoming adjoint and sum the result back to each argument's shape
    (numpy broadcasting).

``@vjp(fn)`` on ``def _(g, y, x, ...)``
    The vector-Jacobian product: given the adjoint ``g`` of the output ``y``,
    return the adjoint of each argument (a tuple for several, ``None`` where an
    argument takes no gradient). Parameters after ``y`` mirror ``fn``'s own.

``nondifferentiable(fn, ...)``
    Functions whose output carries no gradient (integer or boolean results,
    piecewise-constant functions).

The compiler inlines a rule's expression with the user's variable names; the
tape calls the same function at run time. Rules import neither engine.
"""
from dataclasses import dataclass, field

__all__ = ["Rule", "partial", "vjp", "nondifferentiable", "lookup", "is_nondifferentiable",
           "all_rules", "method_primal", "method", "nondifferentiable_names"]

_RULES = {}
_NONDIFF = {}
_METHODS = {}
_VERSION = [0]       # bumped by every registration (the disk cache keys on it)
generation = object()   # replaced by every registration: compiled gradients guard on it


@dataclass(eq=False)
class Rule:
    """One registered derivative."""
    primal: object
    name: str
    kind: str                 # "partial" or "vjp"
    fn: object                # the rule itself, callable by the tape
    params: tuple             # the rule's parameter names
    uses_output: bool
    domain: tuple = ()        # per argument: "real", "positive", "unit", ... (tests)
    cases: object = None      # rng -> [(args, kwargs), ...] for the registry test
    boundary: tuple = ()      # points on the edge of `domain` where fn is differentiable (tests)
    notes: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def primal_params(self):
        """The rule's names for the primal's arguments, in order."""
        if self.kind == "vjp":
            return self.params[2:]
        return self.params[:-1] if self.uses_output else self.params


def _key(fn):
    return id(fn)


def _display_name(fn):
    module = getattr(fn, "__module__", None) or ""
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", repr(fn))
    if module.startswith("numpy") or isinstance(fn, _ufunc_type()):
        return f"np.{name}"
    if module in ("builtins", ""):
        return name
    if module == "_operator":
        return f"operator.{name}"
    return f"{module}.{name}"


def _ufunc_type():
    import numpy
    return numpy.ufunc


def _params(fn):
    code = fn.__code__
    return code.co_varnames[:code.co_argcount]


def partial(primal, rule, *, name=None, domain=(), cases=None, notes="", boundary=()):
    """Register the partial derivatives of an elementwise function `primal`.

    `boundary` lists argument tuples on the edge of `domain` where `primal` is still
    differentiable (or constant): the registry test checks the rule there too, against
    one-sided differences. A "const:<literal>" entry is passed as a literal, not differentiated.
    """
    params = _params(rule)
    entry = Rule(primal, name or _display_name(primal), "partial", rule, params,
                 uses_output=len(params) > 0 and params[-1] == "y",
                 domain=tuple(domain), cases=cases, notes=notes, boundary=tuple(boundary))
    _RULES[_key(primal)] = (primal, entry)
    _bump(rule)
    return entry


def vjp(primal, *, name=None, domain=(), cases=None, notes="", boundary=()):
    """Decorator: register `def _(g, y, *args)` as the VJP of `primal` (`boundary` as for
    :func:`partial`)."""
    def register(rule):
        params = _params(rule)
        if params[:2] != ("g", "y"):
            raise TypeError(f"a vjp rule's first parameters are (g, y), not {params[:2]}")
        entry = Rule(primal, name or _display_name(primal), "vjp", rule, params,
                     uses_output=True, domain=tuple(domain), cases=cases, notes=notes,
                     boundary=tuple(boundary))
        _RULES[_key(primal)] = (primal, entry)
        _bump(rule)
        return rule
    return register


def nondifferentiable(*primals):
    """Declare functions whose output carries no gradient."""
    for fn in primals:
        _NONDIFF[_key(fn)] = fn
        _bump(fn)


def _bump(what):
    import hashlib
    code = getattr(what, "__code__", None)
    consts = [c for c in code.co_consts if not hasattr(c, "co_code")] if code else None
    text = repr((getattr(what, "__qualname__", None) or getattr(what, "__name__", "?"),
                 code.co_code if code else None, consts))
    _VERSION[0] = int(hashlib.sha256(f"{_VERSION[0]}:{text}".encode()).hexdigest()[:15], 16)
    global generation
    generation = object()


def version():
    """A number that changes whenever a rule is registered (with the rule's code)."""
    return _VERSION[0]


def method(name, primal, *, pack_varargs=False):
    """Declare that the array method `x.name(...)` means `primal(x, ...)`."""
    _METHODS[name] = (primal, pack_varargs)


def method_primal(name):
    """(primal, pack_varargs) for an ndarray method name, or None."""
    return _METHODS.get(name)


def lookup(fn):
    """The rule registered for the callable `fn`, or None."""
    try:
        found = _RULES.get(_key(fn))
    except TypeError:
        return None
    if found is not None and found[0] is fn:
        return found[1]
    return None


def is_nondifferentiable(fn):
    found = _NONDIFF.get(_key(fn))
    return found is not None and found is fn


def nondifferentiable_names():
    """Display names of the functions declared non-differentiable."""
    return [_display_name(fn) for fn in _NONDIFF.values()]


def all_rules():
    """Every registered rule, in registration order."""
    return [entry for _, entry in _RULES.values()]
