"""Optimize: algebraic clean-up of inlined rule expressions.

Guarantees: the result computes the same value as the input (up to floating-
point rounding of reassociated products) and reads the way a person writes it:
constants folded, multiplications by one and additions of zero dropped,
`g * (1 / b)` written `g / b`, `g * (2 * x)` written `g * 2 * x`, comparisons of numbers
and branches on constants taken, keyword arguments equal to the callee's default left out,
`times_power(2, x, 1)` (a power rule's `b * a ** (b - 1)` for a literal b) written `2 * x`.
"""
import inspect
import operator

import gast

from . import nodes
from .. import runtime

_FOLD = {gast.Add: operator.add, gast.Sub: operator.sub, gast.Mult: operator.mul,
         gast.Div: operator.truediv, gast.Pow: operator.pow}
_COMPARE = {gast.Eq: operator.eq, gast.NotEq: operator.ne, gast.Lt: operator.lt,
            gast.LtE: operator.le, gast.Gt: operator.gt, gast.GtE: operator.ge}


def simplify(expr, resolve=None):
    """Simplify `expr`; `resolve(func_node)` finds a callee to drop default keywords."""
    return _Simplifier(resolve).visit(expr)


def product(g, factor, resolve=None):
    """`g * factor`, simplified: the chain-rule step for one partial derivative."""
    return simplify(nodes.mul(g, factor), resolve)


class _Simplifier(gast.NodeTransformer):
    def __init__(self, resolve):
        self.resolve = resolve

    def visit_BinOp(self, node):
        self.generic_visit(node)
        left, right, op = node.left, node.right, node.op
        if nodes.is_number(left) and nodes.is_number(right) and type(op) in _FOLD:
            try:
                value = _FOLD[type(op)](left.value, right.value)
            except (ZeroDivisionError, OverflowError):
                return node
            if isinstance(value, (int, float)) and abs(value) < 1e15:
                return nodes.const(value)
        if isinstance(op, gast.Mult):
            if nodes.is_number(right, 1):
                return left
            if nodes.is_number(left, 1):
                return right
            if nodes.is_number(right, -1):
                return self.visit(nodes.neg(left))
            if nodes.is_number(left, -1):
                return self.visit(nodes.neg(right))
            if isinstance(right, gast.UnaryOp) and isinstance(right.op, gast.USub):
                # g * -e  ->  -g * e
                return self.visit(nodes.mul(nodes.neg(left), right.operand))
            if isinstance(right, gast.BinOp) and isinstance(right.op, gast.Div):
                if nodes.is_number(right.left, 1):       # g * (1 / b)  ->  g / b
                    return gast.BinOp(left=left, op=gast.Div(), right=right.right)
                # g * (a / b)  ->  g * a / b
                return gast.BinOp(left=self.visit(nodes.mul(left, right.left)), op=gast.Div(),
                                  right=right.right)
            if isinstance(right, gast.BinOp) and isinstance(right.op, gast.Mult) \
                    and nodes.is_number(right.left):
                # g * (2 * x)  ->  g * 2 * x: numbers meet first (one pass over an array x)
                return self.visit(nodes.mul(self.visit(nodes.mul(left, right.left)), right.right))
            if isinstance(left, gast.UnaryOp) and isinstance(left.op, gast.USub) \
                    and nodes.is_number(left.operand):
                return nodes.mul(nodes.const(-left.operand.value), right)
        if isinstance(op, gast.Div) and nodes.is_number(right, 1):
            return left
        if isinstance(op, gast.Pow) and nodes.is_number(right, 1):
            return left
        if isinstance(op, gast.Add):
            if nodes.is_number(right, 0):
                return left
            if nodes.is_number(left, 0):
                return right
        if isinstance(op, gast.Sub) and nodes.is_number(right, 0):
            return left
        return node

    def visit_UnaryOp(self, node):
        self.generic_visit(node)
        inner = node.operand
        if isinstance(node.op, gast.USub):
            if isinstance(inner, gast.UnaryOp) and isinstance(inner.op, gast.USub):
                return inner.operand
            if nodes.is_number(inner) and inner.value < 0:
                return nodes.const(-inner.value)
        return node

    def visit_Compare(self, node):
        self.generic_visit(node)
        if len(node.ops) == 1 and type(node.ops[0]) in _COMPARE and nodes.is_number(node.left) \
                and nodes.is_number(node.comparators[0]):
            return nodes.const(_COMPARE[type(node.ops[0])](node.left.value, node.comparators[0].value))
        if len(node.ops) == 1 and isinstance(node.ops[0], (gast.Is, gast.IsNot)):
            left, right = node.left, node.comparators[0]
            literal = (gast.Constant, gast.Tuple, gast.List)
            if isinstance(left, literal) and isinstance(right, gast.Constant) and right.value is None:
                same = isinstance(left, gast.Constant) and left.value is None
                return nodes.const(same if isinstance(node.ops[0], gast.Is) else not same)
        return node

    def visit_BoolOp(self, node):
        self.generic_visit(node)
        ends = isinstance(node.op, gast.Or)           # the truth value that ends an `or`
        flag = lambda v: isinstance(v, gast.Constant) and isinstance(v.value, bool)
        values = list(node.values)
        if flag(values[0]) and values[0].value is ends:
            return values[0]                          # `False and x` is False
        # `True and x` is x; a constant that does not end it is skipped, unless it is last
        values = [v for i, v in enumerate(values)
                  if i == len(values) - 1 or not (flag(v) and v.value is not ends)]
        if len(values) == 1:
            return values[0]
        node.values = values
        return node

    def visit_IfExp(self, node):
        self.generic_visit(node)
        if isinstance(node.test, gast.Constant):
            return node.body if node.test.value else node.orelse
        return node

    def visit_Call(self, node):
        self.generic_visit(node)
        if self.resolve is None:
            return node
        callee = self.resolve(node.func)
        if callee is runtime.times_power and len(node.args) == 3 and not node.keywords \
                and nodes.is_number(node.args[0]) and node.args[0].value != 0:
            return self.visit(nodes.mul(node.args[0], nodes.binop(node.args[1], gast.Pow(), node.args[2])))
        try:
            params = list(inspect.signature(callee).parameters.values())
        except (TypeError, ValueError):
            return node
        node.keywords = [kw for kw in node.keywords
                         if not _is_default(next((p for p in params if p.name == kw.arg), None), kw.value)]
        if not node.keywords:
            while node.args and len(node.args) <= len(params) and \
                    _is_default(params[len(node.args) - 1], node.args[-1]):
                node.args.pop()
        return node


def _is_default(param, value):
    """Whether passing `value` (a literal) for `param` is the same as leaving it out."""
    if param is None or not isinstance(value, gast.Constant):
        return False
    if param.default is inspect.Parameter.empty or param.kind is param.VAR_POSITIONAL:
        return False
    return type(param.default) is type(value.value) and param.default == value.value
