"""The whole compiler in one place: each pass, in order.

    parse ──▶ normalize (then shapes) ──▶ reverse (rules inlined and optimized)
          ──▶ prune (grad only) ──▶ emit (text) ──▶ build (live function)

`compile_gradient(fn, wrt, mode, kinds)` runs them; `stages=True` keeps what
each pass produced, and its printed form (`srcgrad.source(df, *args, stages=True)`;
see docs/pipeline.md).
"""
import builtins
import types
from dataclasses import dataclass

from .dump import dump_adjoint, dump_program
from .emit import build, function_source, where_defined
from .normalize import normalize
from .parse import parse_function
from .shapes import value_kind
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
    guards: list = ()            # (owner, name, object): what the code assumed (_guard_checks)
    stages: dict = None
    cells: dict = None           # name -> object the source reads besides the user's names
    inlined: list = ()           # the user's helpers whose bodies the source holds
    from_disk: bool = False
    kinds: dict = None           # what it was compiled for (to print its stages again)
    single_pack: bool = False

    def still_valid(self):
        """Whether every global, closure variable, method and attribute the compiled code
        resolved still names the same object."""
        return self.checker()()

    def checker(self):
        """A function of no arguments that says whether the code is still valid."""
        check = self.__dict__.get("_check")
        if check is None:
            check = self._check = _guard_checker(_guard_checks(self.guards))
        return check


def _guard_checker(checks):
    """One function that tests every guard (one call per gradient call, no loop).

    A chain (`actmod.act`) starts from the object its root's own test just confirmed, so
    `np.sum` costs one attribute read."""
    from ..rules import registry             # a rule registered since: compile again
    env, tests, confirmed = {"_B": _BUILTINS, "_M": _MISSING, "_method": _method,
                             "_same": _same_method, "_R": registry, "_kind": value_kind,
                             "_g": registry.generation}, ["_R.generation is _g"], {}
    for k, (kind, base, root, path, obj, kind_only) in enumerate(checks):
        env[f"_o{k}"] = obj
        env[f"_b{k}"] = base
        if kind == "method":
            tests.append(f"_method(_b{k}, {root!r}) is _o{k}")
            continue
        start = confirmed.get((id(base), root))
        if start is not None:
            value = f"_o{start}"
        elif kind == "cell":
            value = f"_b{k}.cell_contents"
        elif kind == "globals":
            value = f"_b{k}.get({root!r}, _B.get({root!r}, _M))"
        else:                                   # an attribute path on an object
            value = f"_b{k}"
        value += "".join(f".{attr}" for attr in path)
        if kind_only and isinstance(obj, type):  # a number: one of the same type will do
            tests.append(f"type({value}) is _o{k}")
        elif kind_only:                         # an array: the same size-1 dimensions
            tests.append(f"_kind({value}) == _o{k}")
        elif kind == "equal":                   # defaults: an equal value will do
            tests.append(f"{value} == _o{k}")
        elif _is_bound(obj):                    # read anew each time: the same method
            tests.append(f"_same({value}, _o{k})")
        else:
            tests.append(f"{value} is _o{k}")
        if not path and kind != "object" and not kind_only:
            confirmed[(id(base), root)] = k
    source = ("def check():\n    try:\n        return " + (" and ".join(tests) or "True")
              + "\n    except Exception:\n        return False\n")   # a cell emptied, an
    exec(compile(source, "<srcgrad guards>", "exec"), env)            # attribute deleted
    return env["check"]


_BOUND = (types.MethodType, types.BuiltinMethodType, types.MethodWrapperType)


def _is_bound(obj):
    """A method bound to an object (made anew at each read); not a builtin function such as
    `min` or `math.exp`, whose `__self__` is its module and which reads as itself."""
    return isinstance(obj, _BOUND) and not isinstance(getattr(obj, "__self__", None),
                                                      types.ModuleType)


def _same_method(value, obj):
    """`obj.m` makes a new bound method each time: the same function bound to the same object."""
    return type(value) is type(obj) and value == obj


def _method(cls, name):
    """What `cls.name` finds in the class and its bases, without calling descriptors."""
    for c in cls.__mro__:
        if name in c.__dict__:
            return c.__dict__[name]
    return _MISSING


def _guard_checks(guards):
    """(kind, namespace, root, attributes, object, kind_only) per guard, roots before the
    chains read through them. A guard (owner, name, object) is one of:

    - (function, "name"): `name` as the function sees it (closure cell, global, builtin);
    - (function, "name.a.b"): the attribute chain `name.a.b` read the same way;
    - (class, "name"): a method, looked up on the class and its bases;
    - (object, ".a.b"): the attribute chain `.a.b` of that object (a module imported inside
      the function);
    - (function, "=.__defaults__"): an attribute whose value must stay equal (defaults);
    - (owner, "~" + any of the above, value_kind(object)): a constant whose kind (not its
      value) the code was built for, such as a module's `DT = 0.01`."""
    checks, seen = [], set()
    for owner, name, obj in guards:
        kind_only = name.startswith("~")
        name = name[1:] if kind_only else name
        if name.startswith("=."):
            kind, base, root, path = "equal", owner, None, tuple(name[2:].split("."))
        elif name.startswith("."):
            kind, base, root, path = "object", owner, None, tuple(name[1:].split("."))
        elif isinstance(owner, type):
            kind, base, root, path = "method", owner, name, ()
        else:
            root, *path = name.split(".")
            code = owner.__code__
            if root in code.co_freevars:
                kind, base = "cell", owner.__closure__[code.co_freevars.index(root)]
            else:
                kind, base = "globals", owner.__globals__
        if (kind, kind_only, id(base), name) in seen:
            continue
        seen.add((kind, kind_only, id(base), name))
        checks.append((kind, base, root, tuple(path), obj, kind_only))
    checks.sort(key=lambda check: len(check[3]))
    return checks


def compile_gradient(fn, wrt, mode, kinds, single=False, stages=False):
    """Generate the gradient (mode "grad"), the value and gradient ("value_and_grad") or
    the VJP ("vjp") of `fn` w.r.t. `wrt`.

    A gradient generated before, in this process or another, comes from the disk cache."""
    if not stages:
        cached = diskcache.load(fn, wrt, mode, kinds, single)
        if cached is not None:
            cached.kinds, cached.single_pack = kinds, single
            return cached
    compiled = _compile(fn, wrt, mode, kinds, single, stages)
    compiled.kinds, compiled.single_pack = kinds, single
    if not stages:
        diskcache.store(compiled, fn, wrt, mode, kinds, single)
    return compiled


def _compile(fn, wrt, mode, kinds, single, stages):
    parsed = parse_function(fn)
    program = normalize(parsed, wrt, kinds)
    printed = {"normalized": dump_program(program)} if stages else None
    adjoint = reverse(program, program.wrt_ssa, mode)   # wrt "self.w" is read into self_w
    if stages:
        printed["adjoint"] = dump_adjoint(adjoint)
    if mode == "grad":
        prune(program, adjoint)          # the value is not returned: only what the sweep reads
        if stages:
            printed["pruned"] = dump_program(program)
    name = program.names.fresh(f"{mode}_{'lambda' if parsed.is_lambda else fn.__name__}")
    source = function_source(program, adjoint, mode, name, single)
    function, filename = build(fn, program.names.cells, source, name, where_defined(parsed))
    kept = {"parsed": parsed, "normalized": program, "adjoint": adjoint,
            "printed": dict(printed, generated=source)} if stages else None
    return Compiled(function, source, filename, tuple(wrt), mode, program.return_origin.where(),
                    "_stack.pop()" in source, program.guards, kept, dict(program.names.cells),
                    list(program.inlined))
