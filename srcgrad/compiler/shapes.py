"""Shapes: a coarse shape for every value, so the reverse pass knows where
broadcasting cannot have happened.

A shape is SCALAR (a Python number, a numpy scalar or a 0-d array: anything
from `math`, a literal, a full reduction) or a symbol that values known to
have equal shapes share (an argument's kind, an elementwise result of
equal-shaped or scalar operands). Anything else gets a symbol of its own,
which forces `unbroadcast` where it matters. A name assigned several times (in
a loop or branch) has the shape all its definitions agree on, found by
iterating to a fixed point.
"""
import operator

import gast

from . import nodes

SCALAR = "scalar"


def infer_shapes(program, kinds):
    """{name: shape} for every name in `program`; also sets each step's `shape`."""
    return _Shapes(program, kinds).run()


class _Shapes:
    def __init__(self, program, kinds):
        self.p = program
        self.shapes = {p: kinds.get(p, ("param", p)) for p in program.params}
        self.ints = _range_indices(program.body)
        program.int_names = self.ints
        for name in self.ints:
            self.shapes[name] = SCALAR
        self.list_loops = _list_loops(program.body)

    def run(self):
        for _ in range(10):
            before = dict(self.shapes)
            for step in self.p.steps:
                if step.target is None:
                    continue
                step.shape = self.step_shape(step)
                self.assign(step.target, step.shape)
            for target, elements in self.list_loops:   # `for t in [0.5, 2.0]`: numbers
                if all(self.of(e) == SCALAR for e in elements):
                    self.assign(target, SCALAR)
            if self.shapes == before:
                break
        return self.shapes

    def assign(self, name, shape):
        if name in self.p.mutable and name in self.shapes and self.shapes[name] != shape:
            shape = ("any", name)          # definitions disagree: no knowledge
        self.shapes[name] = shape

    def step_shape(self, step):
        if not step.active:
            return self.of(step.value, ("step", id(step)))
        rule = step.rule
        operands = list(step.operands) + list(step.keywords.values())
        if rule.kind == "partial":
            if getattr(rule.primal, "__module__", None) == "math":
                return SCALAR
            return self.combine([self.of(a) for a in operands], ("step", id(step)))
        if rule.primal in _reductions():
            axis = step.keywords.get("axis", step.operands[1] if len(step.operands) > 1 else None)
            keep = step.keywords.get("keepdims")
            if _is_none(axis) and (keep is None or (isinstance(keep, gast.Constant) and not keep.value)):
                return SCALAR
        if rule.primal is operator.getitem:
            return self.element(step.operands[0], step.operands[1], ("step", id(step)))
        return ("step", id(step))

    def element(self, array, index, key):
        """The shape of `array[index]`: a scalar when every index is an int, one per dimension."""
        shape = self.shapes.get(array.id) if isinstance(array, gast.Name) else None
        parts = index.elts if isinstance(index, gast.Tuple) else [index]
        ints = all(not isinstance(i, (gast.Slice, gast.Constant)) and self.of(i) == SCALAR
                   or (isinstance(i, gast.Constant) and type(i.value) is int) for i in parts)
        if shape == SCALAR or (ints and isinstance(shape, tuple) and shape[0] == "array"
                               and shape[2] == len(parts)):
            return SCALAR
        return key

    def of(self, expr, key=None):
        """The shape of an expression over names (a literal, a name, arithmetic of those)."""
        key = key or ("expr", id(expr))
        if isinstance(expr, gast.Name):
            return self.shapes.get(expr.id, ("name", expr.id))
        if nodes.is_number(expr):
            return SCALAR
        if isinstance(expr, gast.BinOp):
            return self.combine([self.of(expr.left), self.of(expr.right)], key)
        if isinstance(expr, gast.UnaryOp) and not isinstance(expr.op, gast.Not):
            return self.of(expr.operand, key)
        if isinstance(expr, gast.Subscript):
            return self.element(expr.value, expr.slice, key)
        if isinstance(expr, gast.Call):
            callee = self.resolve(expr.func)
            if getattr(callee, "__module__", None) == "math" or callee in (float, int, len):
                return SCALAR
            if _is_ufunc(callee) and not expr.keywords:  # np.tanh(0.1): elementwise
                return self.combine([self.of(a) for a in expr.args], key)
            if callee in _makers() and expr.args:      # np.zeros(n), np.ones((3, 2))
                shape = expr.args[0]
                if isinstance(shape, gast.Tuple):
                    return ("array", key, len(shape.elts))
                if self.of(shape) == SCALAR:             # one number: a vector
                    return ("array", key, 1)
            from ..api import stop_gradient
            if callee is stop_gradient and len(expr.args) == 1:
                return self.of(expr.args[0], key)
        return key

    def combine(self, shapes, key):
        """The shape of an elementwise result of operands with these shapes."""
        shapes = set(shapes) - {SCALAR}
        if not shapes:
            return SCALAR
        return shapes.pop() if len(shapes) == 1 else key

    def resolve(self, func):
        if isinstance(func, gast.Name) and func.id in self.p.names.cells:
            return self.p.names.cells[func.id]
        from .parse import UNRESOLVED
        found = self.p.parsed.resolve(func)
        return None if found is UNRESOLVED else found


def _range_indices(items):
    """Names of `for i in range(...)` loop indices (always ints)."""
    from .normalize import IfItem, LoopItem
    found = set()
    for item in items:
        if isinstance(item, LoopItem):
            if item.kind == "range":
                found.add(item.target.id)
            found |= _range_indices(item.body)
        elif isinstance(item, IfItem):
            found |= _range_indices(item.body) | _range_indices(item.orelse)
    return found


def _list_loops(items, found=None):
    """(target name, element expressions) of loops over a list or tuple written out
    (`for t in [0.5, x]`, normalized to `items = list([0.5, x])`)."""
    from .normalize import IfItem, LoopItem, Step
    found = [] if found is None else found
    literals = {}
    for item in items:
        if isinstance(item, Step) and isinstance(item.value, gast.Call) \
                and nodes.is_name(item.value.func, "list") and item.value.args \
                and isinstance(item.value.args[0], (gast.List, gast.Tuple)):
            literals[item.target] = item.value.args[0].elts
        elif isinstance(item, LoopItem):
            if item.kind == "list" and isinstance(item.target, gast.Name) and item.source in literals:
                found.append((item.target.id, literals[item.source]))
            _list_loops(item.body, found)
        elif isinstance(item, IfItem):
            _list_loops(item.body, found)
            _list_loops(item.orelse, found)
    return found


_REDUCTIONS = None


def _reductions():
    global _REDUCTIONS
    if _REDUCTIONS is None:
        import numpy as np
        _REDUCTIONS = (np.sum, np.mean, np.max, np.min, np.prod, np.var, np.std)
    return _REDUCTIONS


def _is_ufunc(obj):
    import numpy as np
    return isinstance(obj, np.ufunc)


def _makers():
    import numpy as np
    return (np.zeros, np.ones, np.empty, np.full)


def _is_none(node):
    return node is None or (isinstance(node, gast.Constant) and node.value is None)
