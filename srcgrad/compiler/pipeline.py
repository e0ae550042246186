"""The whole compiler in one place: each pass, in order.

    parse ──▶ normalize (then shapes) ──▶ reverse (rules inlined and optimized)
          ──▶ prune (grad only) ──▶ emit (text) ──▶ build (live function)

`compile_gradient(fn, wrt, mode, kinds)` runs them; `stages=True` keeps what
each pass produced, for debugging the compiler (see docs/pipeline.md).
"""
import builtins
from dataclasses import dataclass

from .emit import build, function_source, where_defined
from .normalize import normalize
from .parse import lookup_global, parse_function
from .prune import prune
from .reverse import reverse
from .. import diskcache


_MISSING = object()
_BUILTINS = builtins.__dict__


@dataclass(eq=False)
class Compiled:
    function: object     # the generated function
    source: str          # its source text
    filename: str        # its linecache name
    wrt: tuple
    mode: str
    return_where: tuple = (None, None, None, None)   # the user's return statement
    single_use: bool = False     # a vjp pullback that pops saved values: callable once
    guards: list = ()            # (function, global name, object): what the code assumed
    stages: dict = None
    cells: dict = None           # name -> object the source reads besides the user's names
    inlined: list = ()           # the user's helpers whose bodies the source holds
    from_disk: bool = False

    def still_valid(self):
        """Whether every global the compiled code resolved still names the same object."""
        return self.checker()()

    def checker(self):
        """A function of no arguments that says whether the code is still valid."""
        check = self.__dict__.get("_check")
        if check is None:
            check = self._check = _guard_checker(_guard_checks(self.guards))
        return check


def _guard_checker(checks):
    """One function that tests every guard (one call per gradient call, no loop)."""
    env, tests = {"_B": _BUILTINS, "_M": _MISSING, "_method": _method}, []
    for k, (namespace, name, obj) in enumerate(checks):
        env[f"_o{k}"] = obj
        if isinstance(namespace, type):
            env[f"_t{k}"] = namespace
            tests.append(f"_method(_t{k}, {name!r}) is _o{k}")
        elif namespace is None:                             # a closure cell
            env[f"_c{k}"] = name
            tests.append(f"_c{k}.cell_contents is _o{k}")
        else:
            env[f"_n{k}"] = namespace
            tests.append(f"_n{k}.get({name!r}, _B.get({name!r}, _M)) is _o{k}")
    source = ("def check():\n    try:\n        return " + (" and ".join(tests) or "True")
              + "\n    except ValueError:\n        return False\n")   # a cell emptied since
    exec(compile(source, "<srcgrad guards>", "exec"), env)
    return env["check"]


def _method(cls, name):
    """What `cls.name` finds in the class and its bases, without calling descriptors."""
    for c in cls.__mro__:
        if name in c.__dict__:
            return c.__dict__[name]
    return _MISSING


def _guard_checks(guards):
    """(namespace, name, object) per guard: a function's globals, a class's own attributes, or
    (None, cell, object) for a closure variable."""
    checks, seen = [], set()
    for fn, name, obj in guards:
        if isinstance(fn, type):                        # a method, looked up on a class
            checks.append((fn, name, obj))
            continue
        if (id(fn.__globals__), name) in seen:
            continue
        seen.add((id(fn.__globals__), name))
        if name in fn.__code__.co_freevars:
            checks.append((None, fn.__closure__[fn.__code__.co_freevars.index(name)], obj))
        else:
            checks.append((fn.__globals__, name, obj))
    return checks


def compile_gradient(fn, wrt, mode, kinds, single=False, stages=False):
    """Generate the gradient (mode "grad"), the value and gradient ("value_and_grad") or
    the VJP ("vjp") of `fn` w.r.t. `wrt`.

    A gradient generated before, in this process or another, comes from the disk cache."""
    if not stages:
        cached = diskcache.load(fn, wrt, mode, kinds, single)
        if cached is not None:
            return cached
    compiled = _compile(fn, wrt, mode, kinds, single, stages)
    if not stages:
        diskcache.store(compiled, fn, wrt, mode, kinds, single)
    return compiled


def _compile(fn, wrt, mode, kinds, single, stages):
    parsed = parse_function(fn)
    program = normalize(parsed, wrt, kinds)
    adjoint = reverse(program, program.wrt_ssa, mode)   # wrt "self.w" is read into self_w
    if mode == "grad":
        prune(program, adjoint)          # the value is not returned: only what the sweep reads
    name = program.names.fresh(f"{mode}_{'lambda' if parsed.is_lambda else fn.__name__}")
    source = function_source(program, adjoint, mode, name, single)
    function, filename = build(fn, program.names.cells, source, name, where_defined(parsed))
    kept = {"parsed": parsed, "normalized": program, "adjoint": adjoint} if stages else None
    return Compiled(function, source, filename, tuple(wrt), mode, program.return_origin.where(),
                    "_stack.pop()" in source, program.guards, kept, dict(program.names.cells),
                    list(program.inlined))
