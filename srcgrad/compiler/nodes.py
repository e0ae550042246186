"""Every gast node the compiler builds is built here (one place to follow gast's API)."""
import ast
import copy

import gast


def name(id_, store=False):
    return gast.Name(id=id_, ctx=gast.Store() if store else gast.Load(), annotation=None,
                     type_comment=None)


def const(value):
    return gast.Constant(value=value, kind=None)


def binop(left, op, right):
    return gast.BinOp(left=left, op=op, right=right)


def mul(left, right):
    return binop(left, gast.Mult(), right)


def add(left, right):
    return binop(left, gast.Add(), right)


def neg(operand):
    return gast.UnaryOp(op=gast.USub(), operand=operand)


def call(func, args, keywords=()):
    if isinstance(func, str):
        func = name(func)
    return gast.Call(func=func, args=list(args),
                     keywords=[gast.keyword(arg=k, value=v) for k, v in keywords])


def attribute(value, attr):
    return gast.Attribute(value=value, attr=attr, ctx=gast.Load())


def subscript(value, index):
    return gast.Subscript(value=value, slice=index, ctx=gast.Load())


def tuple_(elts):
    return gast.Tuple(elts=list(elts), ctx=gast.Load())


def is_name(node, id_=None):
    return isinstance(node, gast.Name) and (id_ is None or node.id == id_)


def is_number(node, value=None):
    if not isinstance(node, gast.Constant) or isinstance(node.value, bool):
        return False
    if not isinstance(node.value, (int, float)):
        return False
    return value is None or node.value == value


def is_atom(node):
    """A name or a literal: an operand a rule may repeat without recomputing anything."""
    if isinstance(node, (gast.Name, gast.Constant)):
        return True
    if isinstance(node, gast.UnaryOp) and isinstance(node.op, gast.USub):
        return is_number(node.operand)
    if isinstance(node, gast.Attribute):
        return is_atom(node.value)
    if isinstance(node, (gast.Tuple, gast.List)):
        return all(is_atom(e) for e in node.elts)
    return False


def clone(node):
    return copy.deepcopy(node)


def names_in(node):
    """The identifiers loaded anywhere in `node`."""
    return {n.id for n in gast.walk(node) if isinstance(n, gast.Name)}


def rename(node, mapping):
    """A copy of `node` with every Name whose id is in `mapping` replaced."""
    class Renamer(gast.NodeTransformer):
        def visit_Name(self, n):
            if n.id in mapping:
                new = mapping[n.id]
                return clone(new) if isinstance(new, gast.AST) else name(new)
            return n
    return Renamer().visit(clone(node))


def to_source(node):
    """Python source of a gast expression or statement (stdlib ast.unparse)."""
    tree = gast.gast_to_ast(node)
    if isinstance(tree, ast.stmt):
        ast.fix_missing_locations(tree)
    return ast.unparse(tree)


def index_expression(index):
    """`x[1:2, None]`'s index as an expression usable outside a subscript."""
    if isinstance(index, gast.Slice):
        parts = [index.lower, index.upper, index.step]
        while parts and parts[-1] is None:
            parts.pop()
        return call("slice", [p if p is not None else const(None) for p in parts] or [const(None)])
    if isinstance(index, gast.Tuple):
        return tuple_([index_expression(e) for e in index.elts])
    return index
