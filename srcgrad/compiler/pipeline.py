"""The whole compiler in one place: each pass, in order.

    parse ──▶ normalize (then shapes) ──▶ reverse (rules inlined and optimized)
          ──▶ emit (text) ──▶ build (live function)

`compile_gradient(fn, wrt, mode, kinds)` runs them; `stages=True` keeps what
each pass produced, for debugging the compiler (see docs/pipeline.md).
"""
import builtins
from dataclasses import dataclass

from .emit import build, function_source, where_defined
from .normalize import normalize
from .parse import lookup_global, parse_function
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
        for fn, name, obj in self.guards:
            if name in fn.__code__.co_freevars:
                if lookup_global(fn, name) is obj:
                    continue
                return False
            found = fn.__globals__.get(name, _MISSING)
            if found is _MISSING:
                found = _BUILTINS.get(name, _MISSING)
            if found is not obj:
                return False
        return True


def compile_gradient(fn, wrt, mode, kinds, single=False, stages=False):
    """Generate the gradient (mode "grad") or VJP (mode "vjp") of `fn` w.r.t. `wrt`.

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
    program.wrt_names = list(wrt)
    adjoint = reverse(program, wrt, mode)
    name = program.names.fresh(f"{mode}_{'lambda' if parsed.is_lambda else fn.__name__}")
    source = function_source(program, adjoint, mode, name, single)
    function, filename = build(fn, program.names.cells, source, name, where_defined(parsed))
    kept = {"parsed": parsed, "normalized": program, "adjoint": adjoint} if stages else None
    return Compiled(function, source, filename, tuple(wrt), mode, program.return_origin.where(),
                    "_stack.pop()" in source, program.guards, kept, dict(program.names.cells),
                    list(program.inlined))
