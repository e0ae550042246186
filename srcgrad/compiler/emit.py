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
import numpy as np

from . import nodes
from .normalize import Append, IfItem, LoopItem, SaveItem, SetItem, Step
from .reverse import Block

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


class _Writer:
    """Lines of Python at an indentation, with the user's line as a comment above each group."""

    def __init__(self, indent):
        self.lines = []
        self.indent = indent
        self.last = None

    def line(self, origin, text):
        comment = origin.comment() if origin is not None else None
        if comment is not None and comment != self.last:
            self.lines.append(self.indent + comment)
            self.last = comment
        self.lines.extend(self.indent + part for part in text.splitlines())

    def nested(self, header, origin, write_body):
        self.line(origin, header)
        inner = _Writer(self.indent + _INDENT)
        inner.last = self.last
        write_body(inner)
        if not inner.lines:
            inner.lines.append(inner.indent + "pass")
        self.lines.extend(inner.lines)


def _forward(writer, items, saved):
    for item in items:
        if isinstance(item, SaveItem) and item.index is not None:
            if item.name in saved.slices:
                part = f"{item.name}[{_index(item.index)}]"
                kept = part if item.name in saved.lists else f"{part}.copy()"
                writer.line(None, f"{saved.stack('slices', item.name)}.append({kept})")
        elif isinstance(item, SaveItem):
            if item.name in saved:
                writer.line(None, f"{saved.stack('value', item.name)}.append({item.name})")
            elif item.name in saved.shapes:
                writer.line(None, f"{saved.stack('shape', item.name)}.append({saved.np}.shape({item.name}))")
        elif isinstance(item, SetItem):
            writer.line(item.origin, f"{item.array}[{_index(item.index)}] = {nodes.to_source(item.value)}")
        elif isinstance(item, Append):
            writer.line(item.origin, f"{item.array}.append({nodes.to_source(item.value)})")
        elif isinstance(item, Step):
            text = nodes.to_source(item.stmt) if item.stmt is not None else \
                f"{item.target} = {nodes.to_source(item.value)}"
            writer.line(item.origin, text)
        elif isinstance(item, IfItem):
            if _has_forward(item.body, saved):
                writer.nested(f"if {nodes.to_source(item.cond)}:", item.origin,
                              lambda w, i=item: _forward(w, i.body, saved))
                if _has_forward(item.orelse, saved):
                    writer.nested("else:", None, lambda w, i=item: _forward(w, i.orelse, saved))
            elif _has_forward(item.orelse, saved):     # only the else arm computes anything
                negated = gast.UnaryOp(op=gast.Not(), operand=item.cond)
                writer.nested(f"if {nodes.to_source(negated)}:", item.origin,
                              lambda w, i=item: _forward(w, i.orelse, saved))
        else:
            for name in item.inits:
                if name in saved or name in saved.shapes:
                    writer.line(item.origin, f"{name} = None")
            if item.kind == "while":
                writer.nested(f"while {nodes.to_source(item.test)}:", item.origin,
                              lambda w, i=item: (_forward(w, i.body, saved),
                                                 w.line(None, f"{i.source} += 1")))
            else:
                writer.nested(f"for {nodes.to_source(item.target)} in {item.source}:", item.origin,
                              lambda w, i=item: _forward(w, i.body, saved))


def _has_forward(items, saved):
    """Whether `items` write any line of the forward sweep."""
    return any(_has_forward(i.body, saved) or _has_forward(i.orelse, saved) if isinstance(i, IfItem)
               else not isinstance(i, SaveItem) or i.name in saved for i in items)


def _index(index):
    """The text of an index inside brackets: `1:2, None`, `i, j`."""
    text = nodes.to_source(nodes.subscript(nodes.name("x"), index))
    return text[2:-1]


def _backward(writer, lines, saved):
    for line in lines:
        if isinstance(line, Block):
            if not _emits(line, saved):
                continue                     # nothing left in it once unneeded restores go
            if line.header[0] == "if":
                has_body = any(_emits(x, saved) for x in line.body)
                test = nodes.to_source(line.header[1])
                if has_body:
                    writer.nested(f"if {test}:", line.origin,
                                  lambda w, b=line: _backward(w, b.body, saved))
                    if any(_emits(x, saved) for x in line.orelse):
                        writer.nested("else:", None, lambda w, b=line: _backward(w, b.orelse, saved))
                else:
                    writer.nested(f"if not {_parenthesized(line.header[1])}:", line.origin,
                                  lambda w, b=line: _backward(w, b.orelse, saved))
            else:
                target, iterable = line.header[1], line.header[2]
                writer.nested(f"for {nodes.to_source(target)} in {nodes.to_source(iterable)}:",
                              line.origin, lambda w, b=line: _backward(w, b.body, saved))
        else:
            text = _backward_text(line, saved)
            if text:
                writer.line(line.origin, text)


def _emits(line, saved):
    """Whether `line` (a Line or a Block) writes anything."""
    if isinstance(line, Block):
        return any(_emits(x, saved) for x in line.body) or any(_emits(x, saved) for x in line.orelse)
    return bool(_backward_text(line, saved))


def _parenthesized(expr):
    text = nodes.to_source(expr)
    return text if isinstance(expr, (gast.Name, gast.Call, gast.Attribute, gast.Subscript)) else f"({text})"


def _backward_text(line, saved):
    if isinstance(line, Block):
        return True
    if line.kind == "restore":
        if line.target in saved.shapes:
            return f"{saved.shape_names[line.target]} = {saved.stack('shape', line.target)}.pop()"
        return f"{line.target} = {saved.stack('value', line.target)}.pop()" if line.target in saved else None
    if line.kind == "restore_list":
        return f"{line.target}.pop()" if line.target in saved.restored else None
    if line.kind == "restore_slice":
        if line.target not in saved.slices:
            return None
        return f"{line.target}[{_index(line.value)}] = {saved.stack('slices', line.target)}.pop()"
    if line.kind in ("call", "stmt"):
        return nodes.to_source(line.value)
    if line.kind == "recompute":
        needed = saved.needed if saved is not None else ()
        return f"{line.target} = {nodes.to_source(line.value)}" if line.target in needed else None
    return f"{line.target} = {nodes.to_source(line.value)}"


def _keep_outputs(program, saved, views_too=False):
    """(name, expression) keeping the returned value, when the adjoint sweep restores the
    names it is held in (`h = h_stack.pop()`), writes into it, or pops its list. With
    `views_too` (a pullback runs after the value is handed out), any array output is copied
    when the sweep restores elements of some array, which the output may be a view of."""
    exprs = []
    touched = False
    for out in program.outputs:
        text = nodes.to_source(out)
        if views_too and saved.slices and isinstance(out, gast.Name) and out.id not in saved \
                and program.shapes.get(out.id) != "scalar":
            text, touched = f"{saved.np}.array({text}, copy=True)", True
        elif isinstance(out, gast.Name) and out.id in saved.slices:
            text, touched = f"{text}.copy()", True
        elif isinstance(out, gast.Name) and out.id in program.lists and out.id in saved.restored:
            text, touched = f"list({text})", True
        elif isinstance(out, gast.Name) and out.id in saved:
            touched = True
        exprs.append(text)
    if not touched:
        return None
    value = program.names.fresh("value")
    return value, exprs[0] if not program.returns_tuple else "(" + ", ".join(exprs) + ")"


def _tuple_text(exprs):
    texts = [nodes.to_source(e) for e in exprs]
    return texts[0] if len(texts) == 1 else "(" + ", ".join(texts) + ")"


def _rebound(lines, saved):
    """Forward names the adjoint sweep assigns (restored, recomputed, loop indices)."""
    found = set()
    for line in lines:
        if isinstance(line, Block):
            if line.header[0] == "for" and len(line.header) == 3:   # not a while's replay count
                found |= nodes.names_in(line.header[1])
            found |= _rebound(line.body, saved) | _rebound(line.orelse, saved)
        elif line.kind == "restore" and line.target in saved:
            found.add(line.target)
        elif line.kind == "recompute" and line.target in saved.needed:
            found.add(line.target)
    return found


def function_source(program, adjoint, mode, name, single):
    """The generated function's source text."""
    fdef = program.parsed.node
    saved = adjoint.saved & _saved_candidates(program.body)
    saved_slices = adjoint.saved & _saved_candidates(program.body, slices=True)
    grads = [nodes.to_source(g) for g in adjoint.grads]
    grads_text = grads[0] if single else "(" + ", ".join(grads) + ("," if len(grads) == 1 else "") + ")"
    outs = program.outputs
    value_text = (_tuple_text(outs) if program.returns_tuple else nodes.to_source(outs[0]))
    wrt = ", ".join(program.wrt_names)
    forward = _Writer(_INDENT)
    saved_shapes = set(adjoint.saved_shapes) & _saved_candidates(program.body)
    saved_all = _Saved(saved, saved_slices, adjoint.referenced, adjoint.saved, program.lists,
                       saved_shapes, program.names.cell("np", np), program.names,
                       adjoint.shape_names or {})
    for kind, names in (("value", saved), ("slices", saved_slices), ("shape", saved_shapes)):
        for name_ in sorted(names):
            forward.lines.append(f"{_INDENT}{saved_all.stack(kind, name_)} = []")
    for name_ in program.maybe_unbound:          # bound on some paths only, and saved
        if name_ in saved or name_ in saved_shapes:
            forward.lines.append(f"{_INDENT}{name_} = None")
    _forward(forward, program.body, saved_all)
    if mode == "grad":
        lines = [f"def {name}({_header(fdef)}):",
                 f'{_INDENT}"""The gradient of {program.parsed.name} with respect to {wrt}."""']
        backward = _Writer(_INDENT)
        _backward(backward, adjoint.lines, saved_all)
        lines += forward.lines + backward.lines
        lines.append(f"{_INDENT}return {grads_text}")
    elif mode == "value_and_grad":
        lines = [f"def {name}({_header(fdef)}):",
                 f'{_INDENT}"""The value of {program.parsed.name} and its gradient with respect to {wrt}."""']
        backward = _Writer(_INDENT)
        _backward(backward, adjoint.lines, saved_all)
        kept = _keep_outputs(program, saved_all)
        if kept:
            value_text = kept[0]
            forward.lines.append(f"{_INDENT}{kept[0]} = {kept[1]}  # the adjoint sweep restores earlier values")
        lines += forward.lines + backward.lines
        lines.append(f"{_INDENT}return {value_text}, {grads_text}")
    else:
        pullback = program.names.fresh("pullback")
        lines = [f"def {name}({_header(fdef)}):",
                 f'{_INDENT}"""The value of {program.parsed.name} and its pullback '
                 f'(vector-Jacobian product) with respect to {wrt}."""']
        kept = _keep_outputs(program, saved_all, views_too=True)
        if kept:
            value_text = kept[0]
            forward.lines.append(f"{_INDENT}{kept[0]} = {kept[1]}  # the pullback restores earlier values")
        lines += forward.lines
        lines += ["", f"{_INDENT}def {pullback}({', '.join(adjoint.seed_params)}):"]
        rebound = _rebound(adjoint.lines, saved_all)
        if rebound:
            lines.append(f"{_INDENT * 2}nonlocal {', '.join(sorted(rebound))}")
        backward = _Writer(_INDENT * 2)
        _backward(backward, adjoint.lines, saved_all)
        lines += backward.lines
        lines += [f"{_INDENT * 2}return {grads_text}", "", f"{_INDENT}return {value_text}, {pullback}"]
    return "\n".join(lines) + "\n"


class _Saved:
    """Which names' overwritten values are pushed: whole (`in`), or elements (`slices`)."""

    def __init__(self, whole, slices, needed=(), restored=(), lists=(), shapes=(), np_name="np",
                 names=None, shape_names=None):
        self.whole, self.slices, self.needed, self.lists = whole, slices, needed, lists
        self.shapes, self.np, self.names, self.shape_names = shapes, np_name, names, shape_names
        self.restored = restored        # every name a restore of the adjoint sweep is kept for
        self._stacks = {}

    def stack(self, kind, name):
        """The stack the forward sweep pushes `name`'s values (or elements, or shapes) on."""
        key = (kind, name)
        if key not in self._stacks:
            base = {"value": name, "slices": f"{name}_slices", "shape": f"{name}_shape"}[kind]
            self._stacks[key] = self.names.fresh(f"{base}_stack")
        return self._stacks[key]

    def __contains__(self, name):
        return name in self.whole


def _saved_candidates(items, slices=False):
    found = set()
    for item in items:
        if isinstance(item, SaveItem) and (item.index is not None) == slices:
            found.add(item.name)
        elif isinstance(item, IfItem):
            found |= _saved_candidates(item.body, slices) | _saved_candidates(item.orelse, slices)
        elif isinstance(item, LoopItem):
            found |= _saved_candidates(item.body, slices)
    return found


def build(fn, cells, source, name, where, code=None):
    """Compile `source` (the function `name`) and return it live, with its linecache name.

    `fn` is the user's function: the result reads its globals and closure cells; `cells`
    maps the other names the source needs to the objects they stand for. `code`, the
    function's code object compiled from this source before (the disk cache keeps it),
    saves compiling it again."""
    user_free = list(fn.__code__.co_freevars)
    factory_params = list(dict.fromkeys(list(cells) + user_free))
    indented = "".join(_INDENT + line + "\n" if line else "\n" for line in source.splitlines())
    text = f"def __srcgrad_factory__({', '.join(factory_params)}):\n{indented}"
    filename = f"<srcgrad {name} of {where} #{next(_COUNTER)}>"
    if code is not None:
        inner = _refile(code, filename)
    else:
        module = compile(text, filename, "exec")
        factory = next(c for c in module.co_consts if isinstance(c, types.CodeType))
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


def _refile(code, filename):
    """`code` (and the code nested in it) as if compiled from `filename`."""
    consts = tuple(_refile(c, filename) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


def where_defined(parsed):
    """`model.py:12`: where the user's function starts, for the generated file's name."""
    return f"{parsed.filename.rsplit('/', 1)[-1]}:{parsed.line_offset + 1}"
