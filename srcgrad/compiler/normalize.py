"""Normalize: the user's function -> a straight list of single-operation steps.

Guarantees, for the program it returns:
- every active value (one that depends on a `wrt` argument) is computed by a
  step holding exactly one differentiable operation on atoms (names, literals),
  with the rule that differentiates it; inactive code is kept whole;
- every binding has its own name (SSA): `h = f(h)` binds `h_2`, so the adjoint
  sweep can read any forward value;
- calls into the user's own straight-line helpers are inlined;
- each step remembers the user's statement it came from;
- anything it cannot differentiate raises UnsupportedError at the user's line.

It also tracks a coarse shape for each value (a Python scalar, or a symbol
shared by values known to have equal shapes) so the reverse pass leaves out
broadcasting helpers that cannot be needed.
"""
import builtins
import inspect
import itertools
import math
import types
from dataclasses import dataclass, field

import gast

from . import nodes
from .namespace import Namespace, describe
from .parse import UNRESOLVED, parse_function
from .. import rules
from ..errors import NoSourceError, SrcgradError
from ..rules.operators import identity

SCALAR = "scalar"
_INACTIVE_ATTRS = {"shape", "ndim", "size", "dtype", "itemsize", "nbytes"}
_OPERATORS = {gast.Add: "add", gast.Sub: "sub", gast.Mult: "mul", gast.Div: "truediv",
              gast.Pow: "pow", gast.MatMult: "matmul", gast.Mod: "mod",
              gast.FloorDiv: "floordiv"}
_REDUCTIONS = None


def _reductions():
    global _REDUCTIONS
    if _REDUCTIONS is None:
        import numpy as np
        _REDUCTIONS = {id(f) for f in (np.sum, np.mean, np.max, np.min, np.prod, np.var, np.std)}
    return _REDUCTIONS


@dataclass(eq=False)
class Origin:
    """The user's statement a step came from."""
    parsed: object
    node: object
    helper: bool = False

    def where(self):
        return self.parsed.where(self.node)

    def comment(self):
        _, line, _, text = self.where()
        text = (text or "").strip()
        owner = f" in {self.parsed.name}" if self.helper else ""
        return f"# line {line}{owner}: {text}" if line else f"# {text}"


@dataclass(eq=False)
class Step:
    target: object                 # the SSA name bound, or None
    value: object                  # forward expression (gast), or None for `stmt`
    origin: Origin
    stmt: object = None            # a whole inactive statement kept verbatim
    rule: object = None
    operands: list = field(default_factory=list)
    keywords: dict = field(default_factory=dict)
    active: bool = False
    shape: object = None


@dataclass(eq=False)
class Program:
    parsed: object
    params: list
    steps: list
    outputs: list                  # atoms the function returns
    returns_tuple: bool
    return_origin: Origin
    shapes: dict
    names: Namespace
    active: set


class _Scope:
    def __init__(self, parsed, env, is_top):
        self.parsed = parsed
        self.env = env              # user name -> gast atom (Name of its SSA binding, or literal)
        self.is_top = is_top


def normalize(parsed, wrt, kinds):
    """Normalize `parsed` for gradients w.r.t. parameter names `wrt`.

    `kinds` maps parameter names to SCALAR or a shape-class symbol (equal
    symbols = equal shapes); parameters it omits have unknown shapes.
    """
    return _Normalizer(parsed, wrt, kinds).run()


class _Normalizer:
    def __init__(self, parsed, wrt, kinds):
        self.top = parsed
        reserved = {n.id for n in gast.walk(parsed.node) if isinstance(n, gast.Name)}
        self.names = Namespace(reserved, lambda n: parsed.resolve(nodes.name(n)))
        self.params = [a.id for a in parsed.node.args.args + parsed.node.args.kwonlyargs]
        env = {}
        for p in self.params:
            self.names.bind_user(p)
            env[p] = nodes.name(p)
        self.scope = _Scope(parsed, env, True)
        self.active = set(wrt)
        self.counter = itertools.count()
        self.shapes = {p: kinds.get(p, self._unknown()) for p in self.params}
        self.steps = []
        self.nograd = 0
        self.inlining = [parsed.fn]
        self.origin = None

    # ---- helpers
    def _unknown(self):
        return next(self.counter)

    def error(self, node, message):
        return self.scope.parsed.error(node, message)

    def emit(self, step):
        self.steps.append(step)
        if step.target is not None:
            self.shapes.setdefault(step.target, step.shape if step.shape is not None else self._unknown())
            if step.active:
                self.active.add(step.target)

    def shape_of(self, atom):
        if isinstance(atom, gast.BinOp):
            return self.combine([self.shape_of(atom.left), self.shape_of(atom.right)])
        if isinstance(atom, gast.UnaryOp) and not isinstance(atom.op, gast.Not):
            return self.shape_of(atom.operand)
        if isinstance(atom, gast.Call):
            from ..api import stop_gradient
            callee = self.resolve(atom.func)
            if getattr(callee, "__module__", None) == "math":
                return SCALAR
            if callee is stop_gradient and len(atom.args) == 1:
                return self.shape_of(atom.args[0])
        if isinstance(atom, gast.Name):
            return self.shapes.setdefault(atom.id, self._unknown())
        if nodes.is_number(atom) or (isinstance(atom, gast.UnaryOp) and nodes.is_number(atom.operand)):
            return SCALAR
        return self._unknown()

    def combine(self, shapes):
        """The shape of an elementwise result of operands with these shapes."""
        shapes = set(shapes) - {SCALAR}
        if not shapes:
            return SCALAR
        return shapes.pop() if len(shapes) == 1 else self._unknown()

    def run(self):
        fdef = self.top.node
        a = fdef.args
        if a.vararg or a.kwarg:
            raise self.error(fdef, "cannot differentiate a function with *args or **kwargs; "
                                   "name its parameters")
        outputs, returns_tuple, ret = self.body(fdef.body, final=True)
        return Program(self.top, self.params, self.steps, outputs, returns_tuple,
                       Origin(self.top, ret), self.shapes, self.names, self.active)

    # ---- statements
    def body(self, stmts, final, target=None):
        for i, stmt in enumerate(stmts):
            self.origin = Origin(self.scope.parsed, stmt, not self.scope.is_top)
            if isinstance(stmt, gast.Return):
                if i != len(stmts) - 1 or not final:
                    raise self.error(stmt, "cannot differentiate an early `return` yet: "
                                           "return once, at the end of the function")
                return self.returned(stmt, target)
            self.statement(stmt)
        if final:
            raise self.error(stmts[-1], "the function must end with `return <value>`")
        return None

    def returned(self, stmt, target=None):
        value = stmt.value
        if value is None:
            raise self.error(stmt, "the function returns nothing to differentiate")
        if target is not None and not isinstance(value, (gast.Tuple, gast.List)):
            return [self.atom(value, target)], False, stmt
        if isinstance(value, (gast.Tuple, gast.List)):
            return [self.operand(e) for e in value.elts], True, stmt
        return [self.operand(value)], False, stmt

    def statement(self, stmt):
        kind = type(stmt).__name__
        handler = getattr(self, f"stmt_{kind}", None)
        if handler is None:
            raise self.error(stmt, _UNSUPPORTED_STATEMENTS.get(kind, f"cannot differentiate a `{kind}` statement yet"))
        handler(stmt)

    def stmt_Pass(self, stmt):
        pass

    def stmt_Expr(self, stmt):
        value = stmt.value
        if isinstance(value, gast.Constant):
            return  # a docstring or a bare literal
        if self.is_active(value) and not (isinstance(value, gast.Call)
                                          and self.resolve(value.func) is builtins.print):
            raise self.error(stmt, "cannot differentiate an expression statement that uses a "
                                   "differentiated value (it may modify it in place)")
        self.emit(Step(None, None, self.origin, stmt=gast.Expr(value=self.rename(value))))

    def stmt_Assert(self, stmt):
        self.emit(Step(None, None, self.origin, stmt=self.rename(stmt)))

    def stmt_Import(self, stmt):
        for alias in stmt.names:
            local = (alias.asname or alias.name).split(".")[0]
            self.scope.env[local] = nodes.name(self.names.bind_user(local))
        self.emit(Step(None, None, self.origin, stmt=stmt))

    stmt_ImportFrom = stmt_Import

    def stmt_With(self, stmt):
        if len(stmt.items) == 1 and stmt.items[0].optional_vars is None:
            ctx = stmt.items[0].context_expr
            if isinstance(ctx, gast.Call) and not ctx.args and not ctx.keywords:
                from ..api import no_grad
                if self.resolve(ctx.func) is no_grad:
                    self.nograd += 1
                    try:
                        self.body(stmt.body, final=False)
                    finally:
                        self.nograd -= 1
                    return
        raise self.error(stmt, "cannot differentiate a `with` block other than "
                               "`with srcgrad.no_grad():` (its effect on the values is unknown)")

    def stmt_Assign(self, stmt):
        targets, value = stmt.targets, stmt.value
        if len(targets) > 1:  # a = b = value
            first = self.assign(targets[0], value)
            for t in targets[1:]:
                self.assign(t, first)
            return
        self.assign(targets[0], value)

    def stmt_AnnAssign(self, stmt):
        if stmt.value is not None:
            self.assign(stmt.target, stmt.value)

    def stmt_AugAssign(self, stmt):
        target = stmt.target
        if not isinstance(target, gast.Name):
            raise self.error(stmt, "cannot differentiate an in-place update of an array element "
                                   "or attribute yet")
        self.check_not_aliased(target, stmt)
        self.assign(target, gast.BinOp(left=nodes.name(target.id), op=stmt.op, right=stmt.value))

    def check_not_aliased(self, target, stmt):
        current = self.scope.env.get(target.id)
        if current is None or not self.is_active(target):
            return
        maker = next((s for s in reversed(self.steps) if s.target == current.id), None)
        if maker is None or maker.rule is None:
            return
        if maker.rule.primal in _VIEWS() or (maker.rule.primal is identity):
            raise self.error(stmt, f"`{target.id}` may share memory with another array here, so "
                                   "an in-place update would change both; write "
                                   f"`{target.id} = {target.id} {_opsym(stmt.op)} ...` instead")

    def assign(self, target, value):
        """Bind `target` (a Name, or a tuple of them) to `value`; return the bound atom."""
        if isinstance(target, gast.Name):
            active = self.is_active(value)
            ssa = self.names.bind_user(target.id)
            if active:
                atom = self.atom(value, target=ssa)
            else:
                expr = self.rename(value)
                self.emit(Step(ssa, expr, self.origin, shape=self.shape_of(expr)))
                atom = nodes.name(ssa)
            self.scope.env[target.id] = atom
            return atom
        if isinstance(target, (gast.Tuple, gast.List)):
            if isinstance(value, (gast.Tuple, gast.List)) and len(value.elts) == len(target.elts) \
                    and all(isinstance(t, gast.Name) for t in target.elts):
                atoms = [self.operand(v) for v in value.elts]
                for t, a in zip(target.elts, atoms):
                    self.assign(t, a)
                return None
            if not self.is_active(value) and all(isinstance(t, gast.Name) for t in target.elts):
                expr = self.rename(value)
                bound = [self.names.bind_user(t.id) for t in target.elts]
                stmt = gast.Assign(targets=[nodes.tuple_([nodes.name(b, store=True) for b in bound])],
                                   value=expr, type_comment=None)
                self.emit(Step(None, None, self.origin, stmt=stmt))
                for t, b in zip(target.elts, bound):
                    self.scope.env[t.id] = nodes.name(b)
                return None
            raise self.error(target, "cannot differentiate unpacking a differentiated value that "
                                     "is not a literal tuple (e.g. `a, b = f(x)`) yet")
        raise self.error(target, "cannot differentiate assignment into an array element or "
                                 "attribute (in-place mutation) yet")

    # ---- activity
    def resolve(self, func):
        if isinstance(func, gast.Name) and func.id in self.scope.env:
            return UNRESOLVED
        return self.scope.parsed.resolve(func)

    def is_active(self, node):
        if self.nograd:
            return False
        if isinstance(node, gast.Name):
            atom = self.scope.env.get(node.id)
            return isinstance(atom, gast.Name) and atom.id in self.active
        if isinstance(node, (gast.Constant, gast.Compare, gast.BoolOp)):
            return False
        if isinstance(node, gast.UnaryOp) and isinstance(node.op, gast.Not):
            return False
        if isinstance(node, gast.Attribute):
            return node.attr not in _INACTIVE_ATTRS and self.is_active(node.value)
        if isinstance(node, gast.Subscript):
            return self.is_active(node.value)
        if isinstance(node, gast.Call):
            callee = self.resolve(node.func)
            from ..api import stop_gradient
            if callee is stop_gradient or (callee is not UNRESOLVED and rules.is_nondifferentiable(callee)):
                return False
            if isinstance(node.func, gast.Attribute) and self.is_active(node.func.value):
                return True
            return any(self.is_active(a) for a in node.args) or \
                any(self.is_active(k.value) for k in node.keywords)
        return any(self.is_active(child) for child in gast.iter_child_nodes(node))

    def rename(self, node):
        """`node` with the user's names replaced by their current bindings."""
        scope = self.scope
        mapping = {}
        for n in gast.walk(node):
            if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Load):
                if n.id in scope.env:
                    mapping[n.id] = scope.env[n.id]
                elif not scope.is_top and n.id not in scope.parsed.local_names:
                    obj = scope.parsed.resolve(n)
                    if obj is not UNRESOLVED:
                        mapping[n.id] = nodes.name(self.names.cell(n.id, obj))
        return nodes.rename(node, mapping) if mapping else nodes.clone(node)

    # ---- expressions
    def operand(self, node):
        """An atom for `node`; compound inactive values get a name of their own."""
        atom = self.atom(node)
        if nodes.is_atom(atom) or not nodes.names_in(atom):
            return atom
        target = self.names.fresh(describe(atom))
        self.emit(Step(target, atom, self.origin, shape=self.shape_of(atom)))
        return nodes.name(target)

    def atom(self, node, target=None):
        """Normalize `node`; when `target` is given, bind the result to that name."""
        if not self.is_active(node):
            expr = self.rename(node)
            if target is None:
                return expr
            self.emit(Step(target, expr, self.origin, shape=self.shape_of(expr)))
            return nodes.name(target)
        method = getattr(self, f"expr_{type(node).__name__}", None)
        if method is None:
            raise self.error(node, _UNSUPPORTED_EXPRESSIONS.get(
                type(node).__name__, f"cannot differentiate a `{type(node).__name__}` expression yet"))
        return method(node, target)

    def op(self, target, rule, operands, keywords, value, node, shape=None):
        target = target or self.names.fresh(describe(value))
        if shape is None:
            shape = self.result_shape(rule, operands, keywords)
        self.emit(Step(target, value, self.origin, rule=rule, operands=operands,
                       keywords=keywords, active=True, shape=shape))
        return nodes.name(target)

    def result_shape(self, rule, operands, keywords):
        if rule.kind == "partial":
            if getattr(rule.primal, "__module__", None) == "math":
                return SCALAR
            return self.combine([self.shape_of(a) for a in list(operands) + list(keywords.values())])
        if id(rule.primal) in _reductions():
            axis = keywords.get("axis", operands[1] if len(operands) > 1 else None)
            keep = keywords.get("keepdims")
            if (axis is None or (isinstance(axis, gast.Constant) and axis.value is None)) and \
                    (keep is None or (isinstance(keep, gast.Constant) and not keep.value)):
                return SCALAR
        return self._unknown()

    def expr_Name(self, node, target):
        atom = self.scope.env[node.id]
        if target is None:
            return atom
        return self.op(target, rules.lookup(identity), [atom], {}, atom, node,
                       shape=self.shape_of(atom))

    def expr_BinOp(self, node, target):
        primal = getattr(__import__("operator"), _OPERATORS.get(type(node.op), ""), None)
        rule = rules.lookup(primal) if primal else None
        if rule is None:
            raise self.error(node, f"cannot differentiate the operator `{_opsym(node.op)}`")
        left, right = self.operand(node.left), self.operand(node.right)
        return self.op(target, rule, [left, right], {},
                       gast.BinOp(left=left, op=node.op, right=right), node)

    def expr_UnaryOp(self, node, target):
        import operator
        primal = {gast.USub: operator.neg, gast.UAdd: operator.pos}.get(type(node.op))
        if primal is None:
            raise self.error(node, "cannot differentiate this unary operator")
        operand = self.operand(node.operand)
        return self.op(target, rules.lookup(primal), [operand], {},
                       gast.UnaryOp(op=node.op, operand=operand), node)

    def expr_Subscript(self, node, target):
        import operator
        if self.is_active(node.slice):
            raise self.error(node.slice, "cannot differentiate with respect to an index")
        value = self.operand(node.value)
        index = self.rename(node.slice)
        if _has_slice(index):
            import numpy as np
            index_expr = nodes.subscript(nodes.attribute(nodes.name(self.names.cell("np", np)), "s_"),
                                         index)
        else:
            index_expr = index
        return self.op(target, rules.lookup(operator.getitem), [value, index_expr], {},
                       nodes.subscript(value, index), node)

    def expr_Attribute(self, node, target):
        entry = rules.method_primal(node.attr)
        if entry is None or node.attr != "T":
            raise self.error(node, f"cannot differentiate the attribute `.{node.attr}` of a "
                                   "differentiated value")
        value = self.operand(node.value)
        return self.op(target, rules.lookup(entry[0]), [value], {},
                       nodes.attribute(value, "T"), node)

    def expr_Call(self, node, target):
        func = node.func
        for a in node.args:
            if isinstance(a, gast.Starred):
                raise self.error(a, "cannot differentiate a call with *args")
        if any(k.arg is None for k in node.keywords):
            raise self.error(node, "cannot differentiate a call with **kwargs")
        if isinstance(func, gast.Attribute) and self.is_active(func.value):
            return self.method_call(node, target)
        callee = self.resolve(func)
        if callee is UNRESOLVED:
            raise self.error(func, f"cannot tell which function `{nodes.to_source(func)}` is: "
                                   "call a function defined at module level or imported")
        if callee is builtins.sum and len(node.args) == 1 and not node.keywords and \
                isinstance(node.args[0], (gast.Tuple, gast.List)) and node.args[0].elts:
            total = node.args[0].elts[0]
            for e in node.args[0].elts[1:]:
                total = gast.copy_location(nodes.add(total, e), node)
            return self.atom(total, target)
        rule = rules.lookup(callee)
        if rule is not None:
            return self.rule_call(node, target, rule)
        if isinstance(callee, types.FunctionType):
            return self.inline(node, target, callee)
        raise self.error(node, f"no derivative rule for `{nodes.to_source(func)}`: register one "
                               "with srcgrad.rules.partial(fn, lambda x: ...) or @srcgrad.rules.vjp(fn) "
                               "(see docs/rules.md), or mark the value with srcgrad.stop_gradient")

    def call_operands(self, node, rule, args):
        params = rule.primal_params
        if len(args) > len(params):
            raise self.error(node, f"{rule.name} is differentiated for at most {len(params)} "
                                   "positional arguments")
        keywords = {}
        for kw in node.keywords:
            if kw.arg not in params:
                raise self.error(kw.value, f"{rule.name}: the argument `{kw.arg}` is not supported "
                                           "by its derivative rule")
            keywords[kw.arg] = self.operand(kw.value)
        return keywords

    def rule_call(self, node, target, rule):
        params = rule.primal_params
        if params and params[0] == "arrays":   # np.concatenate((a, b)), np.stack([a, b])
            first = node.args[0] if node.args else None
            if not isinstance(first, (gast.Tuple, gast.List)):
                raise self.error(node, f"{rule.name}: pass the arrays as a literal tuple or list")
            seq = type(first)(elts=[self.operand(e) for e in first.elts], ctx=gast.Load())
            args = [seq] + [self.operand(a) for a in node.args[1:]]
        else:
            args = [self.operand(a) for a in node.args]
        keywords = self.call_operands(node, rule, args)
        value = nodes.call(self.rename(node.func), args, keywords.items())
        return self.op(target, rule, args, keywords, value, node)

    def method_call(self, node, target):
        func = node.func
        entry = rules.method_primal(func.attr)
        if entry is None:
            raise self.error(func, f"no derivative rule for the method `.{func.attr}()`")
        primal, pack = entry
        rule = rules.lookup(primal)
        receiver = self.operand(func.value)
        args = [self.operand(a) for a in node.args]
        rule_args = [nodes.tuple_(args)] if pack and len(args) > 1 else args
        keywords = self.call_operands(node, rule, [receiver] + rule_args)
        value = nodes.call(nodes.attribute(receiver, func.attr), args, keywords.items())
        return self.op(target, rule, [receiver] + rule_args, keywords, value, node)

    # ---- inlining the user's own helpers
    def inline(self, node, target, callee):
        if callee in self.inlining:
            raise self.error(node, f"cannot differentiate the recursive call to "
                                   f"`{callee.__name__}` yet")
        try:
            parsed = parse_function(callee)
        except NoSourceError as exc:
            raise self.error(node, f"no derivative rule for `{callee.__qualname__}` and no "
                                   f"source to differentiate ({exc.message}); register a rule "
                                   "with srcgrad.rules.partial or srcgrad.rules.vjp") from exc
        a = parsed.node.args
        if a.vararg or a.kwarg:
            raise self.error(node, f"cannot differentiate a call to `{callee.__name__}`, "
                                   "which takes *args or **kwargs")
        env = self.bind_arguments(node, callee, parsed)
        saved_scope, saved_origin = self.scope, self.origin
        self.scope = _Scope(parsed, env, False)
        self.inlining.append(callee)
        try:
            outputs, is_tuple, _ = self.body(parsed.node.body, final=True, target=target)
        finally:
            self.scope, self.origin = saved_scope, saved_origin
            self.inlining.pop()
        if is_tuple:
            raise self.error(node, f"cannot differentiate `{callee.__name__}`, which returns a "
                                   "tuple, inside an expression yet")
        return outputs[0]

    def bind_arguments(self, node, callee, parsed):
        placeholders = [object() for _ in node.args]
        try:
            bound = inspect.signature(callee).bind(*placeholders, **{k.arg: k for k in node.keywords})
        except TypeError as exc:
            raise self.error(node, f"bad call to `{callee.__name__}`: {exc}") from exc
        env = {}
        by_placeholder = {id(p): a for p, a in zip(placeholders, node.args)}
        for name_, value in bound.arguments.items():
            expr = by_placeholder.get(id(value)) if not isinstance(value, gast.keyword) else value.value
            env[name_] = self.operand(expr)
        for name_, param in inspect.signature(callee).parameters.items():
            if name_ not in env:
                default = param.default
                if isinstance(default, (int, float, bool, str, type(None))):
                    env[name_] = nodes.const(default)
                else:
                    env[name_] = nodes.name(self.names.cell(name_, default))
        return env


def _has_slice(index):
    return any(isinstance(n, gast.Slice) for n in gast.walk(index))


def _opsym(op):
    return {gast.Add: "+", gast.Sub: "-", gast.Mult: "*", gast.Div: "/", gast.Pow: "**",
            gast.MatMult: "@", gast.Mod: "%", gast.FloorDiv: "//"}.get(type(op), "?")


_VIEW_SET = None


def _VIEWS():
    global _VIEW_SET
    if _VIEW_SET is None:
        import operator
        import numpy as np
        _VIEW_SET = {np.reshape, np.transpose, np.ravel, np.squeeze, np.expand_dims,
                     np.broadcast_to, np.swapaxes, np.asarray, operator.getitem}
    return _VIEW_SET


_UNSUPPORTED_STATEMENTS = {
    "If": "cannot differentiate an `if` statement yet (branches come with control-flow support)",
    "For": "cannot differentiate a `for` loop yet (loops come with control-flow support)",
    "While": "cannot differentiate a `while` loop yet (loops come with control-flow support)",
    "Try": "cannot differentiate a `try` block",
    "Raise": "cannot differentiate a `raise` statement yet",
    "FunctionDef": "cannot differentiate a function that defines a function inside it yet",
    "ClassDef": "cannot differentiate a function that defines a class",
    "Delete": "cannot differentiate a `del` statement",
    "Global": "cannot differentiate a function that assigns globals",
    "Nonlocal": "cannot differentiate a function that assigns nonlocal variables",
    "AsyncWith": "cannot differentiate an `async with` block",
    "Match": "cannot differentiate a `match` statement yet",
}
_UNSUPPORTED_EXPRESSIONS = {
    "IfExp": "cannot differentiate a conditional expression (`a if c else b`) yet",
    "Lambda": "cannot differentiate a lambda that uses a differentiated value here",
    "ListComp": "cannot differentiate a list comprehension yet",
    "GeneratorExp": "cannot differentiate a generator expression yet",
    "DictComp": "cannot differentiate a dict comprehension yet",
    "SetComp": "cannot differentiate a set comprehension yet",
    "Tuple": "cannot differentiate a tuple of differentiated values here yet",
    "List": "cannot differentiate a list of differentiated values here yet",
    "Dict": "cannot differentiate a dict of differentiated values yet",
    "Starred": "cannot differentiate a starred expression",
    "NamedExpr": "cannot differentiate an assignment expression (`:=`) yet",
    "JoinedStr": "cannot differentiate an f-string of a differentiated value",
}
