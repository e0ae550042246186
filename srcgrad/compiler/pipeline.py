"""The whole compiler in one place: each pass, in order.

    parse ──▶ normalize ──▶ reverse ──▶ emit (text) ──▶ build (live function)

`compile_gradient(fn, wrt, mode, kinds)` runs them; `stages=True` keeps what
each pass produced, for debugging the compiler (see docs/pipeline.md).
"""
from dataclasses import dataclass

from .emit import build, function_source
from .normalize import normalize
from .parse import parse_function
from .reverse import reverse


@dataclass(eq=False)
class Compiled:
    function: object     # the generated function
    source: str          # its source text
    filename: str        # its linecache name
    wrt: tuple
    mode: str
    return_where: tuple = (None, None, None, None)   # the user's return statement
    stages: dict = None


def compile_gradient(fn, wrt, mode, kinds, single=False, stages=False):
    """Generate the gradient (mode "grad") or VJP (mode "vjp") of `fn` w.r.t. `wrt`."""
    parsed = parse_function(fn)
    program = normalize(parsed, wrt, kinds)
    program.wrt_names = list(wrt)
    adjoint = reverse(program, wrt, mode)
    name = program.names.fresh(f"{mode}_{'lambda' if parsed.is_lambda else fn.__name__}")
    source = function_source(program, adjoint, mode, name, single)
    function, filename = build(program, source, name)
    kept = {"parsed": parsed, "normalized": program, "adjoint": adjoint} if stages else None
    return Compiled(function, source, filename, tuple(wrt), mode, program.return_origin.where(), kept)
