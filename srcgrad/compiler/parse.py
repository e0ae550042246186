"""Parse: a Python function object -> its gast tree, its origin, and a resolver.

Guarantees: the returned tree is the function's own definition (decorators
ignored), every node's line and column can be mapped back to the user's file,
and names the function calls can be resolved to the objects they refer to.
"""
import ast
import builtins
import inspect
import linecache
import textwrap
from dataclasses import dataclass, field

import gast

from ..errors import NoSourceError, UnsupportedError

UNRESOLVED = object()


@dataclass(eq=False)
class ParsedFunction:
    fn: object
    node: gast.FunctionDef      # body may be a Lambda's expression wrapped in a Return
    filename: str
    line_offset: int            # user line = node line + line_offset
    col_offset: int             # user column = node column + col_offset
    local_names: set = field(default_factory=set)
    is_lambda: bool = False
    label: str = None           # a function defined inside the differentiated one: its name

    @property
    def name(self):
        if self.label is not None:
            return self.label
        return self.fn.__name__ if not self.is_lambda else "lambda"

    def where(self, node):
        """(filename, line, column, line text) of `node` in the user's file."""
        lineno = getattr(node, "lineno", None)
        if lineno is None:
            return self.filename, None, None, None
        line = lineno + self.line_offset
        col = getattr(node, "col_offset", 0) + self.col_offset
        return self.filename, line, col, linecache.getline(self.filename, line)

    def error(self, node, message, cls=UnsupportedError):
        return cls(message, *self.where(node))

    def resolve(self, node):
        """The object an expression like `np.sum` or `math.exp` names, or UNRESOLVED."""
        if isinstance(node, gast.Attribute):
            owner = self.resolve(node.value)
            if owner is UNRESOLVED:
                return UNRESOLVED
            return getattr(owner, node.attr, UNRESOLVED)
        if not isinstance(node, gast.Name) or node.id in self.local_names:
            return UNRESOLVED
        return lookup_global(self.fn, node.id)


def lookup_global(fn, name):
    """`name` as `fn` sees it: a closure cell, a module global or a builtin."""
    code = fn.__code__
    if name in code.co_freevars and fn.__closure__:
        cell = fn.__closure__[code.co_freevars.index(name)]
        try:
            return cell.cell_contents
        except ValueError:
            return UNRESOLVED
    if name in fn.__globals__:
        return fn.__globals__[name]
    return getattr(builtins, name, UNRESOLVED)


_CACHE = {}


def parse_function(fn):
    """Parse `fn` (cached by code object)."""
    code = getattr(fn, "__code__", None)
    if code is None:
        raise NoSourceError(f"{fn!r} is not a Python function: srcgrad differentiates "
                            "functions written in Python")
    cached = _CACHE.get(code)
    if cached is not None and cached.fn is fn:
        return cached
    parsed = _parse(fn, code)
    _CACHE[code] = parsed
    return parsed


def source_lines(fn):
    """`fn`'s source lines and first line number, or NoSourceError (cheap: no parsing)."""
    code = getattr(fn, "__code__", None)
    if code is None:
        raise NoSourceError(f"{fn!r} is not a Python function: srcgrad differentiates "
                            "functions written in Python")
    try:
        return inspect.getsourcelines(code)   # the code itself: no __wrapped__ detours
    except (OSError, TypeError):
        raise NoSourceError(
            f"cannot find the source code of {fn.__qualname__} (defined in {code.co_filename}): "
            "srcgrad reads a function's source. Define it in a file or a notebook cell; "
            "functions typed at the plain `python` prompt or made by exec() have none") from None


def input_label(root, steps):
    """How `wrt` names a value read out of an argument: "self.w" (steps (("attr", "w"),)),
    "params['w']" (steps (("item", "w"),)); the inverse of input_steps."""
    return root + "".join(f".{part}" if kind == "attr" else f"[{part!r}]" for kind, part in steps)


def input_steps(label):
    """(parameter, steps) for a label made by input_label; (label, ()) for a parameter."""
    if "[" in label:
        root, rest = label.split("[", 1)
        return root, (("item", ast.literal_eval(rest[:-1])),)
    root, *attrs = label.split(".")
    return root, tuple(("attr", a) for a in attrs)


def source_text(fn):
    """The lines of `fn`'s file its bytecode spans (nested code included), read from
    linecache without tokenizing: a cheap fingerprint of its source (the disk cache's key),
    and a check that there is a source. NoSourceError when there is none."""
    code = getattr(fn, "__code__", None)
    lines = linecache.getlines(code.co_filename) if code is not None else []
    if not lines or len(lines) < code.co_firstlineno:
        source_lines(fn)                      # raises the error that says why
        lines = linecache.getlines(code.co_filename)
    last, stack = code.co_firstlineno, [code]
    while stack:
        c = stack.pop()
        last = max([last] + [line for _, _, line in c.co_lines() if line is not None])
        stack.extend(k for k in c.co_consts if hasattr(k, "co_lines"))
    return "".join(lines[code.co_firstlineno - 1:last])


def _parse(fn, code):
    filename = code.co_filename
    lines, first = source_lines(fn)
    text = "".join(lines)
    dedented = textwrap.dedent(text)
    indent = len(lines[0]) - len(lines[0].lstrip()) if lines else 0
    is_lambda = code.co_name == "<lambda>"
    try:
        tree = gast.parse(dedented if not is_lambda else _lambda_text(dedented))
    except SyntaxError as exc:
        raise NoSourceError(f"cannot parse the source of {fn.__qualname__}: {exc}",
                            filename, first) from exc
    node = _find_definition(tree, fn, is_lambda, filename, first)
    parsed = ParsedFunction(fn, node, filename, first - 1, indent, is_lambda=is_lambda)
    parsed.local_names = local_names(node)
    return parsed


def _lambda_text(text):
    # A lambda's source is the whole statement around it, which may be cut
    # mid-expression; keep what parses.
    for end in range(len(text), 0, -1):
        try:
            gast.parse(text[:end])
            return text[:end]
        except SyntaxError:
            continue
    return text


def _find_definition(tree, fn, is_lambda, filename, first):
    if not is_lambda:
        for node in gast.walk(tree):
            if isinstance(node, (gast.FunctionDef, gast.AsyncFunctionDef)) and node.name == fn.__code__.co_name:
                if isinstance(node, gast.AsyncFunctionDef):
                    raise UnsupportedError("cannot differentiate an async function", filename, first)
                return node
        raise NoSourceError(f"cannot find the definition of {fn.__name__} in its source", filename, first)
    params = list(fn.__code__.co_varnames[:fn.__code__.co_argcount])
    found = [n for n in gast.walk(tree) if isinstance(n, gast.Lambda)
             and [a.id for a in n.args.args] == params]
    if len(found) != 1:
        raise NoSourceError("cannot tell which lambda on this line to differentiate; "
                            "give it its own line or use def", filename, first)
    return lambda_as_def(found[0])


def lambda_as_def(lam, name="lambda"):
    """`lambda a: e` as `def name(a): return e` (same locations)."""
    ret = gast.Return(value=lam.body)
    gast.copy_location(ret, lam.body)
    fdef = gast.FunctionDef(name=name, args=lam.args, body=[ret], decorator_list=[],
                            returns=None, type_comment=None, type_params=[])
    return gast.copy_location(fdef, lam)


def local_names(fdef):
    names = set()
    args = fdef.args
    for a in args.posonlyargs + args.args + args.kwonlyargs + [args.vararg, args.kwarg]:
        if a is not None:
            names.add(a.id)
    for node in gast.walk(fdef):
        if isinstance(node, gast.Name) and isinstance(node.ctx, (gast.Store, gast.Del)):
            names.add(node.id)
        elif isinstance(node, gast.alias):
            names.add((node.asname or node.name).split(".")[0])
    return names
