"""Printing what each pass produced, for reading the compiler's work (`srcgrad.source(df,
*args, stages=True)`, docs/pipeline.md).

The normalized program prints one step per line with its kind (shape) and whether it is
differentiated; loops and branches indent their bodies. The adjoint sweep prints its lines
as the emitter will write them, with the markers (`restore h`) the emitter expands.
"""
import gast

from . import nodes
from .normalize import Append, IfItem, LoopItem, SaveItem, SetItem, Step
from .reverse import Block

_WIDTH = 56


def dump_program(program):
    """The normalized program: `name = expression    # kind, active`, one per line."""
    lines = [f"def {program.parsed.name}({', '.join(program.params)}):"]
    kinds = {p: program.shapes.get(p) for p in program.params}
    lines += [f"    # {p}: {_kind(k)}" for p, k in kinds.items()]
    lines += [f"    # {n}: {_kind(k)} (constant)" for n, k in sorted(program.free_kinds.items())]
    _items(program.body, program, "    ", lines)
    outputs = ", ".join(_text(o) for o in program.outputs)
    lines.append(f"    return {outputs}")
    return "\n".join(lines) + "\n"


def _items(items, program, indent, lines):
    for item in items:
        if isinstance(item, Step):
            if item.stmt is not None:
                lines.append(indent + _text(item.stmt).strip())
                continue
            if item.target is None:
                continue
            text = f"{item.target} = {_text(item.value)}"
            notes = [_kind(program.shapes.get(item.target))]
            if item.active:
                notes.append("active" + (f", {item.rule.name}" if item.rule is not None else ""))
            lines.append(f"{indent + text:<{_WIDTH}}  # {'; '.join(notes)}")
        elif isinstance(item, SaveItem):
            part = f"[{_text(nodes.index_expression(item.index))}]" if item.index is not None else ""
            lines.append(f"{indent}save {item.name}{part}")
        elif isinstance(item, SetItem):
            lines.append(f"{indent}{item.array}[{_text(nodes.index_expression(item.index))}] = "
                         f"{_text(item.value)}" + ("  # active" if item.active else ""))
        elif isinstance(item, Append):
            lines.append(f"{indent}{item.array}.append({_text(item.value)})"
                         + ("  # active" if item.active else ""))
        elif isinstance(item, IfItem):
            lines.append(f"{indent}if {_text(item.cond)}:")
            _items(item.body, program, indent + "    ", lines)
            if item.orelse:
                lines.append(f"{indent}else:")
                _items(item.orelse, program, indent + "    ", lines)
        elif isinstance(item, LoopItem):
            if item.kind == "while":
                lines.append(f"{indent}while {_text(item.test)}:  # counted in {item.source}")
            else:
                lines.append(f"{indent}for {_text(item.target)} in {item.source}:  # {item.kind}")
            _items(item.body, program, indent + "    ", lines)


def dump_adjoint(adjoint):
    """The adjoint sweep: its lines, markers included, and the gradients it returns."""
    lines = []
    _lines(adjoint.lines, "", lines)
    lines.append("return " + ", ".join(_text(g) for g in adjoint.grads))
    if adjoint.saved:
        lines.append(f"# restored from stacks: {', '.join(sorted(adjoint.saved))}")
    if adjoint.saved_shapes:
        lines.append(f"# shapes kept: {', '.join(sorted(adjoint.saved_shapes))}")
    return "\n".join(lines) + "\n"


def _lines(items, indent, lines):
    for line in items:
        if isinstance(line, Block):
            head = line.header
            if head[0] == "for":
                lines.append(f"{indent}for {_text(head[1])} in {_text(head[2])}:")
            else:
                lines.append(f"{indent}{head[0]} {' '.join(_text(h) for h in head[1:])}:")
            _lines(line.body, indent + "    ", lines)
            if line.orelse:
                lines.append(f"{indent}else:")
                _lines(line.orelse, indent + "    ", lines)
        elif line.kind in ("restore", "restore_slice", "restore_list"):
            lines.append(f"{indent}{line.kind} {line.target}")
        elif line.target is None:
            lines.append(f"{indent}{_text(line.value)}")
        else:
            value = _text(line.value) if line.value is not None else "..."
            tag = f"  # {line.kind}" if line.kind not in ("assign",) else ""
            lines.append(f"{indent}{line.target} = {value}{tag}")


def _text(node):
    if node is None:
        return "None"
    if isinstance(node, str):
        return node
    if isinstance(node, gast.AST):
        return nodes.to_source(node)
    return repr(node)


def _kind(shape):
    """A shape as a reader takes it: `number`, `array(n, 3)`, `list of number`, `unknown`."""
    from .shapes import SCALAR
    if shape == SCALAR:
        return "number"
    if isinstance(shape, tuple) and len(shape) == 2 and shape[0] == "seq":
        return f"list of {_kind(shape[1]) if shape[1] is not None else 'unknown'}"
    if isinstance(shape, tuple) and len(shape) == 2 and shape[0] == "tuple":
        return "tuple(" + ", ".join(_kind(k) if k is not None else "unknown" for k in shape[1]) + ")"
    if isinstance(shape, tuple) and len(shape) == 3 and shape[0] == "array":
        dims = shape[1][1] if isinstance(shape[1], tuple) and shape[1][:1] == ("dims",) else None
        if dims is None:
            return f"array of {shape[2]} dimension{'s' if shape[2] != 1 else ''}"
        return "array(" + ", ".join(_dim(d) for d in dims) + ")"
    if isinstance(shape, tuple) and shape[:1] == ("any",):
        return "unknown (its definitions disagree)"
    return "unknown"


def _dim(symbol):
    if symbol == 1:
        return "1"
    if isinstance(symbol, int):
        return "n" + str(symbol - 1)
    return "c" + str(symbol[-1])
