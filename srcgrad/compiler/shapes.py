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
import builtins
import operator

import gast
import numpy as np

from . import nodes

SCALAR = "scalar"


def infer_shapes(program, kinds):
    """{name: shape} for every name in `program`; also sets each step's `shape`."""
    return _Shapes(program, kinds).run()


class _Shapes:
    def __init__(self, program, kinds):
        self.p = program
        self.shapes = {p: kinds.get(p, ("param", p)) for p in program.params}
        self.inputs = program.input_kinds                 # values read out of arguments (self_w)
        self.shapes.update(self.inputs)
        self.shapes.update(program.free_kinds)            # module and closure constants (DT)
        self.initial = dict(self.shapes)                  # bound before the first line
        self.ints = _range_indices(program.body)
        program.int_names = self.ints
        for name in self.ints:
            self.shapes[name] = SCALAR
        self.list_loops = _list_loops(program.body)
        self.loop_targets = _loop_targets(program.body)
        self.defined = set()                              # mutable names defined this round
        self.settled = set()

    def run(self):
        """Rounds over the program until nothing changes. A name assigned in several places
        (loops, branches) takes its first definition's shape in each round and becomes
        ("any", name) when a later one in the same round disagrees; a round that changes
        nothing is a consistent solution (each definition gives the shape every read of the
        name assumed). Without one in 10 rounds, every such name is left unknown."""
        for _ in range(10):
            if not self.round():
                return self.shapes
        for name in self.p.mutable:
            self.shapes[name] = ("any", name)
        self.settled = set(self.p.mutable)          # stays unknown, whatever is assigned
        self.round()
        return self.shapes

    def round(self):
        """One pass over the program; whether any shape changed."""
        before = dict(self.shapes)
        self.defined = set()
        for name, shape in self.initial.items():       # an argument is a definition too
            if name in self.p.mutable:
                self.shapes[name] = shape
                self.defined.add(name)
        for target, source in self.loop_targets:       # `for xt in xs`: an element of xs
            self.unpack(target, _element(self.shapes.get(source)))
        for target, elements in self.list_loops:       # `for t in [0.5, 2.0]`: numbers
            if all(self.of(e) == SCALAR for e in elements):
                self.assign(target, SCALAR)
        for step in self.p.steps:
            if step.target is None and isinstance(step.stmt, gast.Assign):
                self.unpack(step.stmt.targets[0], self.of(step.stmt.value))
            if step.target is None or step.target in self.inputs:
                continue
            step.shape = self.step_shape(step)
            self.assign(step.target, step.shape)
        return self.shapes != before

    def unpack(self, target, shape):
        """Bind the names of an assignment or loop target (`x, v = state`) to the parts of
        `shape` (a tuple's per element, a sequence's element); unknown parts stay unknown."""
        if isinstance(target, gast.Name):
            self.assign(target.id, shape if shape is not None else ("name", target.id))
        elif isinstance(target, (gast.Tuple, gast.List)):
            for k, part in enumerate(target.elts):
                self.unpack(part, _part(shape, k, len(target.elts)))

    def assign(self, name, shape):
        if name in self.settled:
            return
        if name in self.p.mutable:
            if name in self.defined and self.shapes.get(name) != shape:
                shape = ("any", name)          # definitions disagree: no knowledge
            self.defined.add(name)
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
        key = ("step", id(step))
        if rule.primal in _reductions():
            axis = step.keywords.get("axis", step.operands[1] if len(step.operands) > 1 else None)
            keep = step.keywords.get("keepdims")
            keep = keep is not None and (not isinstance(keep, gast.Constant) or keep.value)
            if _is_none(axis) and not keep:
                return SCALAR
            return _reduced(_dims(self.of(step.operands[0])), axis, keep, key)
        if rule.primal in _products() and len(step.operands) == 2 and not step.keywords:
            return _matmul(_dims(self.of(step.operands[0])), _dims(self.of(step.operands[1])), key)
        if rule.primal in _transposes() and len(step.operands) == 1 and not step.keywords:
            found = _dims(self.of(step.operands[0]))
            return key if found is None else _of_dims(found[::-1], key)
        if rule.primal is operator.getitem:
            return self.element(step.operands[0], step.operands[1], key)
        if rule.primal is _make_list() and isinstance(step.value, gast.Tuple):
            return self.of(step.value, key)          # `(x, v)`: a tuple of their shapes
        if rule.primal is builtins.sum and len(step.operands) == 1 and not step.keywords:
            return _summed(self.of(step.operands[0]), key)
        return key

    def element(self, array, index, key):
        """The shape of `array[index]`: a scalar when every index is an int, one per dimension."""
        shape = self.shapes.get(array.id) if isinstance(array, gast.Name) else None
        if _is_sequence(shape):              # xs[t] of a list, state[0] of a tuple
            if isinstance(index, gast.Constant) and type(index.value) is int:
                found = _part(shape, index.value, None)
            elif not isinstance(index, gast.Slice) and self.of(index) == SCALAR:
                found = _element(shape)
            else:
                found = None
            return key if found is None else found
        parts = index.elts if isinstance(index, gast.Tuple) else [index]
        ints = all(not isinstance(i, (gast.Slice, gast.Constant)) and self.of(i) == SCALAR
                   or (isinstance(i, gast.Constant) and type(i.value) is int) for i in parts)
        if shape == SCALAR or (ints and isinstance(shape, tuple) and shape[0] == "array"
                               and shape[2] == len(parts)):
            return SCALAR
        found = _dims(shape)
        if ints and found is not None and len(parts) < len(found):   # x[i]: a row
            return _of_dims(found[len(parts):], key)
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
            if isinstance(expr.value, gast.Attribute) and expr.value.attr == "shape" \
                    and not isinstance(expr.slice, gast.Slice):
                return SCALAR                            # x.shape[0]: an int
            return self.element(expr.value, expr.slice, key)
        if isinstance(expr, gast.Attribute) and expr.attr in ("size", "ndim"):
            return SCALAR
        if isinstance(expr, gast.Attribute):          # a module's constant: np.pi, cfg.DT
            dotted = _dotted(expr)
            if dotted in self.p.free_kinds:
                return self.p.free_kinds[dotted]
        if isinstance(expr, (gast.List, gast.Tuple)) and not any(
                isinstance(e, gast.Starred) for e in expr.elts):
            return ("tuple", tuple(self.of(e) for e in expr.elts))
        if isinstance(expr, gast.Call):
            callee = self.resolve(expr.func)
            if getattr(callee, "__module__", None) == "math" or callee in (float, int, len):
                return SCALAR
            if callee in _SEQUENCES and not expr.keywords:
                return self.sequence(callee, [self.of(a) for a in expr.args], key)
            if callee is builtins.sum and len(expr.args) == 1 and not expr.keywords:
                return _summed(self.of(expr.args[0]), key)
            if callee is builtins.abs and len(expr.args) == 1:
                return self.of(expr.args[0], key)
            if callee in (builtins.min, builtins.max) and not expr.keywords:
                found = [self.of(a) for a in expr.args]
                if len(found) == 1:
                    found = [_element(found[0])]
                return SCALAR if found and all(f == SCALAR for f in found) else key
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

    def sequence(self, callee, parts, key):
        """The shape of `list(xs)`, `zip(xs, ys)`, `enumerate(xs)`, `reversed(xs)`,
        `range(n)`, `sorted(xs)`: a sequence of their elements' shapes."""
        if callee is range:
            return ("seq", SCALAR)
        if callee is zip:
            return ("seq", ("tuple", tuple(_element(p) for p in parts))) if parts else key
        if callee is enumerate:
            return ("seq", ("tuple", (SCALAR, _element(parts[0])))) if parts else key
        if len(parts) != 1:
            return key
        element = _element(parts[0])
        return key if element is None else ("seq", element)

    def combine(self, shapes, key):
        """The shape of an elementwise result of operands with these shapes (numpy's
        broadcasting, where every operand's dimensions are known)."""
        if any(_is_sequence(s) for s in shapes):
            return key                          # a list in arithmetic: not followed
        shapes = set(shapes) - {SCALAR}
        if not shapes:
            return SCALAR
        if len(shapes) == 1:
            return shapes.pop()
        dims = [_dims(s) for s in shapes]
        if any(d is None for d in dims):
            return key
        out = []
        for i in range(1, max(map(len, dims)) + 1):
            sizes = {d[-i] for d in dims if len(d) >= i} - {1}
            if len(sizes) > 1:
                return key                  # numpy would refuse: no claim
            out.append(sizes.pop() if sizes else 1)
        return _of_dims(tuple(out[::-1]), key)

    def resolve(self, func):
        if isinstance(func, gast.Name) and func.id in self.p.names.cells:
            return self.p.names.cells[func.id]
        from .parse import UNRESOLVED
        found = self.p.parsed.resolve(func)
        return None if found is UNRESOLVED else found


def constant_kind(value, name_):
    """The shape kind of a constant: SCALAR for a real number, an array's dimensions (a
    symbol of its own for each, but 1 for size 1), else None (not known)."""
    kind = type(value)
    if kind is float or kind is int or (isinstance(value, np.generic) and value.dtype.kind in "fiu"):
        return SCALAR
    if kind is np.ndarray and value.ndim and value.dtype.kind == "f":
        dims = tuple(1 if n == 1 else ("constant", name_, i) for i, n in enumerate(value.shape))
        return ("array", ("dims", dims), value.ndim)
    return None


def value_kind(value):
    """What code built for a constant assumed about it: its type, and for an array which of
    its dimensions have size 1 (the compiler's shapes give every other one a symbol)."""
    kind = type(value)
    if kind is np.ndarray:
        return kind, value.dtype.char, tuple(n == 1 for n in value.shape)
    return kind


def _is_sequence(shape):
    return isinstance(shape, tuple) and len(shape) == 2 and shape[0] in ("seq", "tuple")


def _element(shape):
    """The shape of any one element of a value of `shape` (a sequence's, a tuple's when
    all agree, an array's row), or None."""
    if _is_sequence(shape):
        if shape[0] == "seq":
            return shape[1]
        parts = set(shape[1])
        return parts.pop() if len(parts) == 1 and None not in parts else None
    found = _dims(shape)
    if found:
        return _of_dims(found[1:], None)
    return None


def _part(shape, k, count):
    """The shape of element `k` of a value of `shape` unpacked into `count` names (None:
    any count), or None."""
    if _is_sequence(shape) and shape[0] == "tuple":
        parts = shape[1]
        if (count is None or len(parts) == count) and -len(parts) <= k < len(parts):
            return parts[k]
        return None
    return _element(shape)


def _summed(shape, key):
    """The shape of builtin `sum(x)`: a sequence's element, an array's row."""
    found = _element(shape)
    return key if found is None else found


_SEQUENCES = (list, tuple, zip, enumerate, reversed, range, sorted)


def _dotted(node):
    """"a.b.c" for an attribute chain on a name, else None."""
    parts = []
    while isinstance(node, gast.Attribute):
        parts.append(node.attr)
        node = node.value
    return ".".join([node.id] + parts[::-1]) if isinstance(node, gast.Name) else None


def _make_list():
    from ..rules.operators import make_list
    return make_list


def _loop_targets(items, found=None):
    """(target, source name) of loops over a sequence (`for xt in items`)."""
    from .normalize import IfItem, LoopItem
    found = [] if found is None else found
    for item in items:
        if isinstance(item, LoopItem):
            if item.kind == "list" and item.target is not None:
                found.append((item.target, item.source))
            _loop_targets(item.body, found)
        elif isinstance(item, IfItem):
            _loop_targets(item.body, found)
            _loop_targets(item.orelse, found)
    return found


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


def _dims(shape):
    """The dimension symbols of a shape known dimension by dimension, else None."""
    if isinstance(shape, tuple) and len(shape) == 3 and shape[0] == "array" \
            and isinstance(shape[1], tuple) and shape[1][:1] == ("dims",):
        return shape[1][1]
    return None


def _of_dims(dims, key):
    return SCALAR if len(dims) == 0 else ("array", ("dims", tuple(dims)), len(dims))


def _reduced(dims, axis, keep, key):
    """The shape of a reduction over constant `axis` (an int or a tuple of them)."""
    if dims is None:
        return key
    if isinstance(axis, gast.Constant) and type(axis.value) is int:
        axes = [axis.value]
    elif isinstance(axis, gast.Tuple) and all(isinstance(e, gast.Constant) and type(e.value) is int
                                              for e in axis.elts):
        axes = [e.value for e in axis.elts]
    else:
        return key
    if any(not -len(dims) <= a < len(dims) for a in axes):
        return key
    axes = {a % len(dims) for a in axes}
    out = [1 if i in axes else d for i, d in enumerate(dims) if keep or i not in axes]
    return _of_dims(out, key)


def _matmul(a, b, key):
    """The shape of `a @ b` for operands of one or two dimensions."""
    if a is None or b is None or len(a) > 2 or len(b) > 2:
        return key
    if len(a) == 1 and len(b) == 1:
        return SCALAR
    if len(a) == 2 and len(b) == 2:
        return _of_dims((a[0], b[1]), key)
    return _of_dims((a[0],) if len(a) == 2 else (b[1],), key)


def _products():
    import numpy as np
    return (operator.matmul, np.matmul, np.dot)


def _transposes():
    import numpy as np
    return (np.transpose,)


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
