"""Pruning: a gradient that does not return the value computes only what the
adjoint sweep reads.

`grad(f)` hands back the gradient alone, so the forward sweep keeps a step only
if the adjoint sweep reads its value, a kept step reads it, or a branch, a loop
or a write into an array needs it. `mean = np.mean(diff + log1p)`, `loss = -...`
and every value that only leads to them are left out. A value the adjoint sweep
reads only for its shape (`unbroadcast(g, diff)`, `unreduce(g, x_sq)`,
`reduced_size(x_sq)`) is read from a kept value of the same shape instead, the
nearest one it was computed from (`reduced_size(x)` for `x_sq = x ** 2`), else
an argument of that shape.

A step is left out only if it cannot matter otherwise: a derivative rule's
primal (numpy functions, operators) or arithmetic without calls. `math`
functions stay (`math.log(-1.0)` raises, and so does the gradient), as do calls
of anything else, statements, writes into arrays and appends.
"""
import gast
import numpy as np

from . import nodes
from .normalize import Append, IfItem, LoopItem, SaveItem, SetItem, Step
from .reverse import Block, Line
from .. import runtime

# runtime helpers that read only the shape of one argument: (function, argument index)
_SHAPE_ONLY = ((runtime.unbroadcast, 1), (runtime.unreduce, 1), (runtime.reduced_size, 0))


def prune(program, adjoint):
    """Drop the forward steps a gradient-only function does not need (in place)."""
    shape_args = []                               # (call node, argument index) reading a shape
    reads = _sweep_reads(adjoint.lines, program.names.cells, shape_args, frozenset())
    for grad in adjoint.grads:
        reads |= nodes.names_in(grad)
    reads |= set(adjoint.saved) | set(adjoint.saved_shapes)

    safe = _constant_calls(program)
    needed = _needed(program.body, reads, safe)
    extra = set()
    for call, index in shape_args:
        name_ = call.args[index].id
        if name_ in needed:
            continue
        found = _stand_in(program, name_, needed)
        if found is not None:
            call.args[index] = nodes.name(found)      # the same shape, from a value kept anyway
        else:
            extra.add(name_)
    if extra:
        needed = _needed(program.body, reads | extra, safe)
    saves = set(adjoint.saved) | set(adjoint.saved_shapes)
    program.body[:] = _keep(program.body, needed, safe, saves)
    program.steps[:] = [s for s in program.steps if not _removable(s, needed, safe)]


def _sweep_reads(lines, cells, shape_args, recomputed):
    """The forward values the adjoint sweep reads. A value a backward loop recomputes at
    the top of its body (`x_t = x[t]`) is not read from the forward sweep inside that loop;
    values read only for their shapes are listed in `shape_args` instead."""
    reads = set()
    for line in lines:
        if isinstance(line, Block):
            read = line.header[2:3] if line.header[0] == "for" else line.header[1:3]
            for part in read:                   # (a for loop binds its target)
                reads |= nodes.names_in(part) - recomputed
            inner = recomputed | {l.target for l in line.body
                                  if isinstance(l, Line) and l.kind == "recompute"}
            if line.header[0] == "for":
                inner |= nodes.names_in(line.header[1])
            reads |= _sweep_reads(line.body, cells, shape_args, inner)
            reads |= _sweep_reads(line.orelse, cells, shape_args, inner)
            continue
        if line.value is None:
            continue
        skip = set()
        for node in gast.walk(line.value):
            if isinstance(node, gast.Call) and isinstance(node.func, gast.Name):
                fn = cells.get(node.func.id)
                for helper, index in _SHAPE_ONLY:
                    if fn is helper and len(node.args) > index and isinstance(node.args[index], gast.Name):
                        shape_args.append((node, index))
                        skip.add(id(node.args[index]))
        reads |= {n.id for n in gast.walk(line.value)
                  if isinstance(n, gast.Name) and id(n) not in skip} - recomputed
    return reads


def _stand_in(program, name_, needed):
    """A value surely bound when the adjoint sweep runs, kept anyway, with `name_`'s shape
    (known per dimension): the nearest one `name_` was computed from (`diff` for
    `diff_sq = diff ** 2`), else an argument of that shape; None if there is none."""
    shape = program.shapes.get(name_)
    if not (isinstance(shape, tuple) and shape[0] == "array"):
        return None
    top = {item.target for item in program.body if isinstance(item, Step)} - program.mutable
    available = (needed & top) | set(program.params)
    defined = {s.target: s for s in program.steps if s.target is not None}
    queue, seen = [name_], {name_}
    while queue:                                  # breadth first through what it was made of
        step = defined.get(queue.pop(0))
        for n in sorted(nodes.names_in(step.value)) if step is not None and step.value is not None else ():
            if n in seen:
                continue
            seen.add(n)
            if n in available and program.shapes.get(n) == shape:
                return n
            queue.append(n)
    return next((p for p in program.params if program.shapes.get(p) == shape), None)


def _removable(step, needed, safe=frozenset()):
    if not isinstance(step, Step) or step.stmt is not None or step.target is None \
            or step.value is None or step.target in needed:
        return False
    if step.rule is not None:            # math raises outside its domain: the error stays
        return getattr(step.rule.primal, "__module__", None) != "math"
    return id(step) in safe or not any(isinstance(n, gast.Call) for n in gast.walk(step.value))


def _constant_calls(program):
    """Steps that call only `math` functions or numpy ufuncs on constants
    (`0.5 * math.log(2 * math.pi)`) and do not raise: nothing is lost by leaving them out."""
    safe = set()
    for step in program.steps:
        if step.rule is not None or step.value is None or step.target is None \
                or not any(isinstance(n, gast.Call) for n in gast.walk(step.value)):
            continue
        modules = {n.id: program.parsed.resolve(n) for n in gast.walk(step.value)
                   if isinstance(n, gast.Name)}
        if any(getattr(m, "__name__", None) not in ("math", "numpy") for m in modules.values()):
            continue
        calls = [program.parsed.resolve(n.func) for n in gast.walk(step.value)
                 if isinstance(n, gast.Call)]
        if any(getattr(f, "__module__", None) != "math" and not isinstance(f, np.ufunc)
               for f in calls):
            continue
        try:
            with np.errstate(all="raise"):
                eval(compile(gast.gast_to_ast(gast.Expression(body=step.value)), "<constant>",
                             "eval"), dict(modules))
        except Exception:
            continue                     # it raises: the gradient raises too
        safe.add(id(step))
    return safe


def _needed(body, roots, safe):
    """Names the kept forward items read, starting from `roots`, to a fixed point (a loop
    body reads values of the previous iteration)."""
    needed = set(roots)
    while True:
        before = len(needed)
        _visit(body, needed, safe)
        if len(needed) == before:
            return needed


def _visit(items, needed, safe):
    for item in reversed(items):
        if isinstance(item, Step):
            if not _removable(item, needed, safe):
                if item.value is not None:
                    needed |= nodes.names_in(item.value)
                if item.stmt is not None:
                    needed |= nodes.names_in(item.stmt)
        elif isinstance(item, SaveItem):
            if item.name in needed and item.index is not None:
                needed |= nodes.names_in(item.index)
        elif isinstance(item, (SetItem, Append)):
            needed.add(item.array)
            needed |= nodes.names_in(item.value)
            if isinstance(item, SetItem):
                needed |= nodes.names_in(item.index)
        elif isinstance(item, IfItem):
            needed |= nodes.names_in(item.cond)
            _visit(item.body, needed, safe)
            _visit(item.orelse, needed, safe)
        elif isinstance(item, LoopItem):
            needed.add(item.source)
            if item.test is not None:
                needed |= nodes.names_in(item.test)
            _visit(item.body, needed, safe)


def _keep(items, needed, safe, saves):
    kept = []
    for item in items:
        if isinstance(item, Step) and _removable(item, needed, safe):
            continue
        if isinstance(item, SaveItem) and (item.name not in needed or item.name not in saves):
            continue                             # (the sweep restores only what it reads)
        if isinstance(item, IfItem):
            item.body[:] = _keep(item.body, needed, safe, saves)
            item.orelse[:] = _keep(item.orelse, needed, safe, saves)
        elif isinstance(item, LoopItem):
            item.body[:] = _keep(item.body, needed, safe, saves)
            if not item.body and item.kind != "while" \
                    and not nodes.names_in(item.target) & needed:
                continue                         # nothing left to do in it
        kept.append(item)
    return kept
