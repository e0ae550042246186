"""Emit: forward steps + adjoint steps -> Python source -> a live function.

Guarantees: the text is what runs (compiled from it, registered in linecache
under a readable name, so tracebacks, `inspect` and `pdb` show it); the
function reads the user's globals live, reaches the user's closure cells
live, and reaches everything else it needs (numpy for a rule, srcgrad's
runtime) through closure cells of its own.
"""
import itertools
import linecache
import types

import gast

from . import nodes

_COUNTER = itertools.count(1)
_INDENT = "    "


def _header(fdef):
    """`x, y=2, *, k=1` from the user's parameter list, without annotations."""
    a = fdef.args
    parts = []
    positional = a.posonlyargs + a.args
    defaults = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
    for i, (arg, default) in enumerate(zip(positional, defaults)):
        parts.append(arg.id if default is None else f"{arg.id}={nodes.to_source(default)}")
        if a.posonlyargs and i == len(a.posonlyargs) - 1:
            parts.append("/")
    if a.kwonlyargs:
        parts.append("*")
        for arg, default in zip(a.kwonlyargs, a.kw_defaults):
            parts.append(arg.id if default is None else f"{arg.id}={nodes.to_source(default)}")
    return ", ".join(parts)


def _lines(steps, indent, comment_of):
    """Statement lines, with the user's line as a comment above each group."""
    out, last = [], None
    for origin, text in steps:
        comment = comment_of(origin)
        if comment != last:
            out.append(indent + comment)
            last = comment
        out.extend(indent + line for line in text.splitlines())
    return out


def _forward_text(step):
    if step.stmt is not None:
        return nodes.to_source(step.stmt)
    return f"{step.target} = {nodes.to_source(step.value)}"


def _tuple_text(exprs):
    texts = [nodes.to_source(e) for e in exprs]
    return texts[0] if len(texts) == 1 else "(" + ", ".join(texts) + ")"


def function_source(program, adjoint, mode, name, single):
    """The generated function's source text."""
    fdef = program.parsed.node
    comment = lambda origin: origin.comment()
    forward = [(s.origin, _forward_text(s)) for s in program.steps]
    backward = [(s.origin, f"{s.target} = {nodes.to_source(s.value)}") for s in adjoint.steps]
    grads = [nodes.to_source(g) for g in adjoint.grads]
    grads_text = grads[0] if single else "(" + ", ".join(grads) + ("," if len(grads) == 1 else "") + ")"
    outs = program.outputs
    value_text = (_tuple_text(outs) if program.returns_tuple else nodes.to_source(outs[0]))
    lines = [f"def {name}({_header(fdef)}):"]
    if mode == "grad":
        lines.append(f'{_INDENT}"""The value of {program.parsed.name} and its gradient '
                     f'with respect to {", ".join(program.wrt_names)}."""')
        lines += _lines(forward, _INDENT, comment)
        lines += _lines(backward, _INDENT, comment)
        lines.append(f"{_INDENT}return {value_text}, {grads_text}")
    else:
        pullback = program.names.fresh("pullback")
        lines.append(f'{_INDENT}"""The value of {program.parsed.name} and its pullback '
                     f'(vector-Jacobian product) with respect to {", ".join(program.wrt_names)}."""')
        lines += _lines(forward, _INDENT, comment)
        lines.append("")
        lines.append(f"{_INDENT}def {pullback}({', '.join(adjoint.seed_params)}):")
        body = _lines(backward, _INDENT * 2, comment)
        lines += body
        lines.append(f"{_INDENT * 2}return {grads_text}")
        lines.append("")
        lines.append(f"{_INDENT}return {value_text}, {pullback}")
    return "\n".join(lines) + "\n"


def build(program, source, name):
    """Compile `source` and return the live function (and its linecache filename)."""
    fn = program.parsed.fn
    user_free = list(fn.__code__.co_freevars)
    cells = program.names.cells
    factory_params = list(dict.fromkeys(list(cells) + user_free))
    indented = "".join(_INDENT + line + "\n" if line else "\n" for line in source.splitlines())
    text = f"def __srcgrad_factory__({', '.join(factory_params)}):\n{indented}"
    where = f"{program.parsed.filename.rsplit('/', 1)[-1]}:{program.parsed.line_offset + 1}"
    filename = f"<srcgrad {name} of {where} #{next(_COUNTER)}>"
    code = compile(text, filename, "exec")
    factory = next(c for c in code.co_consts if isinstance(c, types.CodeType))
    inner = next(c for c in factory.co_consts if isinstance(c, types.CodeType) and c.co_name == name)
    closure = []
    for free in inner.co_freevars:
        if free in cells:
            closure.append(types.CellType(cells[free]))
        else:
            closure.append(fn.__closure__[user_free.index(free)])
    result = types.FunctionType(inner, fn.__globals__, name, fn.__defaults__, tuple(closure))
    result.__kwdefaults__ = fn.__kwdefaults__
    lines = text.splitlines(keepends=True)
    linecache.cache[filename] = (len(text), None, lines, filename)
    return result, filename
