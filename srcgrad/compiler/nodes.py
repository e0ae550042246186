"""Every gast node the compiler builds is built here (one place to follow gast's API)."""
import ast

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
    """A deep copy of a gast tree (several times faster than copy.deepcopy)."""
    if isinstance(node, list):
        return [clone(n) for n in node]
    if not isinstance(node, gast.AST):
        return node
    new = type(node).__new__(type(node))
    for f in node._fields:
        setattr(new, f, clone(getattr(node, f, None)))
    for a in node._attributes:
        if hasattr(node, a):
            setattr(new, a, getattr(node, a))
    return new


def structure(node):
    """A hashable value equal for equal expressions (a cheaper key than their source)."""
    if isinstance(node, gast.AST):
        return (type(node).__name__,) + tuple(structure(getattr(node, f, None)) for f in node._fields
                                              if f not in ("ctx", "type_comment"))
    if isinstance(node, list):
        return tuple(structure(n) for n in node)
    return (type(node).__name__, node)


def names_in(node, keep=None):
    """The identifiers anywhere in `node` (of the Name nodes `keep` accepts, if given)."""
    found, stack = set(), [node]
    while stack:
        n = stack.pop()
        if isinstance(n, gast.Name):
            if keep is None or keep(n):
                found.add(n.id)
        elif isinstance(n, list):
            stack.extend(n)
        elif isinstance(n, gast.AST):
            stack.extend(getattr(n, f, None) for f in n._fields)
    return found


def rename(node, mapping):
    """A copy of `node` with every Name whose id is in `mapping` replaced (by a copy of
    the node it maps to, or a Name of the string)."""
    if isinstance(node, gast.Name) and node.id in mapping:
        new = mapping[node.id]
        return clone(new) if isinstance(new, gast.AST) else name(new)
    if isinstance(node, list):
        return [rename(n, mapping) for n in node]
    if not isinstance(node, gast.AST):
        return node
    new = type(node).__new__(type(node))
    for f in node._fields:
        setattr(new, f, rename(getattr(node, f, None), mapping))
    for a in node._attributes:
        if hasattr(node, a):
            setattr(new, a, getattr(node, a))
    return new


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
