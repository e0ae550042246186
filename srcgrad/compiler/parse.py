"""Parse: a Python function object -> its gast tree, its origin, and a resolver.

Guarantees: the returned tree is the function's own definition (decorators
ignored), every node's line and column can be mapped back to the user's file,
and names the function calls can be resolved to the objects they refer to.
"""
import __future__
import ast
import builtins
import hashlib
import inspect
import linecache
import os
import sys
import textwrap
import types
from dataclasses import dataclass, field

import gast

from ..errors import NoSourceError, StaleSourceError, UnsupportedError

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
    source = dedented if not is_lambda else _lambda_text(dedented)
    try:
        tree = gast.parse(source)
    except SyntaxError as exc:
        if os.path.isfile(filename):        # it was imported, so it parsed then: edited since
            raise stale_source_error(fn) from None
        raise NoSourceError(f"cannot parse the source of {fn.__qualname__}: {exc}",
                            filename, first) from exc
    try:
        node = _find_definition(tree, fn, is_lambda, filename, first)
    except NoSourceError:
        if os.path.isfile(filename):
            raise stale_source_error(fn) from None
        raise
    if not source_matches_code(code, source, node, first, is_lambda):
        raise stale_source_error(fn)
    parsed = ParsedFunction(fn, node, filename, first - 1, indent, is_lambda=is_lambda)
    parsed.local_names = local_names(node)
    return parsed


# ---- the source read is the code that runs

def stale_source_error(fn):
    code = fn.__code__
    name = getattr(fn, "__qualname__", code.co_name)
    return StaleSourceError(
        f"the source of `{name}` was edited after `{name}` was defined: the text in its file "
        "is no longer the code that runs, and srcgrad does not differentiate code that does "
        "not run. Reload the module (importlib.reload), re-run the cell or restart Python, "
        "then take the gradient again",
        code.co_filename, code.co_firstlineno)


_NESTED = inspect.CO_NESTED
_FUTURE_FLAGS = 0                 # the code flags that are `from __future__` imports
for _feature in __future__.all_feature_names:
    _FUTURE_FLAGS |= getattr(__future__, _feature).compiler_flag
_FUTURE_FLAGS &= ~_NESTED         # nested_scopes' old flag is CO_NESTED, not a future now
_VERIFIED = {}          # (code, source text) -> whether the text compiles to the code


def source_matches_code(code, source, node, first, is_lambda):
    """Whether `source` (the dedented text `_parse` read, the definition `node` in it, its
    first line `first` in the file) compiles to `code`: a file edited after the function was
    defined (linecache and inspect read the file as it is now) no longer does.

    The definition is compiled alone, inside empty functions and classes shaped after the
    code's qualified name (its free variables bound there), with the code's `__future__`
    flags, and compared with `code` (bytecode, names, constants, nested code). Code whose
    assert statements pytest rewrote is compared line by line, the asserts' lines left out."""
    memo = (code, source)
    if memo in _VERIFIED:
        return _VERIFIED[memo]
    result = _compiles_to(code, source, node, first, is_lambda)
    if len(_VERIFIED) > 4096:
        _VERIFIED.clear()
    _VERIFIED[memo] = result
    return result


def _compiles_to(code, source, node, first, is_lambda):
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    kinds = (ast.Lambda,) if is_lambda else (ast.FunctionDef, ast.AsyncFunctionDef)
    target = next((n for n in ast.walk(tree) if isinstance(n, kinds) and n.lineno == node.lineno
                   and n.col_offset == node.col_offset), None)
    if target is None:
        return False
    statement = ast.Expr(value=target) if is_lambda else target
    imported = _module_imports(code.co_filename)
    if imported is None:
        return False
    qualname = getattr(code, "co_qualname", None) or code.co_name
    # names the module binds by import: the compiler calls methods on them differently
    imports = [ast.Import(names=[ast.alias(name="_srcgrad_any_", asname=n)]) for n in imported]
    module = ast.Module(body=imports + _enclosing(statement, qualname, code.co_freevars),
                        type_ignores=[])
    ast.fix_missing_locations(module)
    ast.increment_lineno(module, first - 1)     # the file's line numbers
    try:
        fresh = compile(module, code.co_filename, "exec", flags=code.co_flags & _FUTURE_FLAGS,
                        dont_inherit=True)
    except (SyntaxError, ValueError, TypeError):
        return False
    candidates = [c for c in _all_code(fresh) if c.co_name == code.co_name]
    if any(_same_code(c, code) for c in candidates):
        return True
    if _rewritten(code):
        skip = {line for n in ast.walk(target) if isinstance(n, ast.Assert)
                for line in range(n.lineno, (n.end_lineno or n.lineno) + 1)}
        return any(_same_lines(c, code, skip) for c in candidates)
    return False


def code_fingerprint(code):
    """A hash of what `code` does (bytecode, names, constants, nested code; not its line
    numbers or file name), the same in every process of this Python version."""
    digest = hashlib.sha256()
    for c in _all_code(code):
        consts = [_constant_text(k) for k in c.co_consts if not isinstance(k, types.CodeType)]
        digest.update(repr((c.co_name, c.co_code, c.co_names, c.co_varnames, c.co_freevars,
                            c.co_cellvars, c.co_argcount, c.co_posonlyargcount,
                            c.co_kwonlyargcount, c.co_flags, consts)).encode())
    return digest.hexdigest()


def _constant_text(value):
    if isinstance(value, tuple):
        return ("tuple", [_constant_text(v) for v in value])
    if isinstance(value, frozenset):          # its order changes with the hash seed
        return ("frozenset", sorted(repr(_constant_text(v)) for v in value))
    return (type(value).__name__, repr(value))


_IMPORTS = {}            # filename -> (its text, the names its module level imports)


def _module_imports(filename):
    """The names the module level of `filename` (as linecache has it now) binds by `import`,
    in order; None when it does not parse."""
    text = "".join(linecache.getlines(filename))
    cached = _IMPORTS.get(filename)
    if cached is not None and cached[0] == text:
        return cached[1]
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        names = None
    else:
        names, stack = [], list(tree.body)
        while stack:
            node = stack.pop()
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names += [a.asname or a.name.split(".")[0] for a in node.names if a.name != "*"]
            elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
                                       ast.Lambda, ast.expr)):
                stack.extend(ast.iter_child_nodes(node))      # if / try / with ... bodies
        names = list(dict.fromkeys(names))
    _IMPORTS[filename] = (text, names)
    return names


def _enclosing(statement, qualname, freevars):
    """`statement` inside the functions and classes `qualname` names ("C.m",
    "outer.<locals>.f"), the free variables assigned in the innermost function."""
    parts = qualname.split(".")[:-1]
    scopes = []
    for i, part in enumerate(parts):
        if part == "<locals>":
            continue
        is_function = not part.isidentifier() or (i + 1 < len(parts) and parts[i + 1] == "<locals>")
        scopes.append(("def" if is_function else "class",
                       part if part.isidentifier() else "_srcgrad_scope_"))
    free = [v for v in freevars if v != "__class__"]
    if free and not any(kind == "def" for kind, _ in scopes):
        scopes.insert(0, ("def", "_srcgrad_scope_"))
    innermost = max((i for i, (kind, _) in enumerate(scopes) if kind == "def"), default=None)
    extra = {"type_params": []} if sys.version_info >= (3, 12) else {}
    body = [statement]
    for i in reversed(range(len(scopes))):
        kind, name_ = scopes[i]
        if i == innermost and free:
            body = [ast.Assign(targets=[ast.Name(id=v, ctx=ast.Store()) for v in free],
                               value=ast.Constant(value=None))] + body
        if kind == "def":
            args = ast.arguments(posonlyargs=[], args=[], vararg=None, kwonlyargs=[],
                                 kw_defaults=[], kwarg=None, defaults=[])
            body = [ast.FunctionDef(name=name_, args=args, body=body, decorator_list=[],
                                    returns=None, type_comment=None, **extra)]
        else:
            body = [ast.ClassDef(name=name_, bases=[], keywords=[], body=body, decorator_list=[],
                                 **extra)]
    return body


def _all_code(code):
    stack, found = [code], []
    while stack:
        c = stack.pop()
        found.append(c)
        stack.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
    return found


def _same_code(a, b):
    return (a.co_code == b.co_code and a.co_names == b.co_names and a.co_varnames == b.co_varnames
            and a.co_freevars == b.co_freevars and a.co_cellvars == b.co_cellvars
            and a.co_argcount == b.co_argcount and a.co_posonlyargcount == b.co_posonlyargcount
            and a.co_kwonlyargcount == b.co_kwonlyargcount
            and (a.co_flags & ~_NESTED) == (b.co_flags & ~_NESTED)
            and getattr(a, "co_exceptiontable", None) == getattr(b, "co_exceptiontable", None)
            and len(a.co_consts) == len(b.co_consts)
            and all(_same_constant(x, y) for x, y in zip(a.co_consts, b.co_consts)))


def _same_constant(x, y):
    if type(x) is not type(y):
        return False
    if isinstance(x, types.CodeType):
        return _same_code(x, y)
    if isinstance(x, tuple):
        return len(x) == len(y) and all(_same_constant(p, q) for p, q in zip(x, y))
    if isinstance(x, frozenset):
        return sorted(map(repr, x)) == sorted(map(repr, y))
    return repr(x) == repr(y)      # tells 0.0 from -0.0, and nan from nan


def _rewritten(code):
    """Whether names no source can spell are in `code`: pytest's assertion rewriting."""
    return any(not n.isidentifier() for c in _all_code(code)
               for n in c.co_names + c.co_varnames)


def _same_lines(a, b, skip):
    """Whether `a` and `b` run the same instructions on every line outside `skip`."""
    lines_a, nested_a = _instructions_by_line(a, skip)
    lines_b, nested_b = _instructions_by_line(b, skip)
    return lines_a == lines_b and len(nested_a) == len(nested_b) and \
        all(_same_lines(p, q, skip) for p, q in zip(nested_a, nested_b))


def _instructions_by_line(code, skip):
    import dis
    jumps = set(dis.hasjrel) | set(dis.hasjabs)
    table, nested, line = {}, [], None
    for ins in dis.get_instructions(code):
        positions = getattr(ins, "positions", None)
        if positions is not None:
            line = positions.lineno
        elif ins.starts_line is not None:
            line = ins.starts_line
        if line in skip or ins.opname in ("NOP", "EXTENDED_ARG"):
            continue
        if isinstance(ins.argval, types.CodeType):
            nested.append(ins.argval)
            arg = ("code", ins.argval.co_name)
        elif ins.opcode in jumps:
            arg = None                    # targets move when a skipped line's code grows
        else:
            arg = (type(ins.argval).__name__, repr(ins.argval))
        table.setdefault(line, []).append((ins.opname, arg))
    return table, nested


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
