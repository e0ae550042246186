"""Normalize: the user's function -> a straight list of single-operation steps.

Guarantees, for the program it returns:
- every active value (one that depends on a `wrt` argument) is computed by a
  step holding exactly one differentiable operation on atoms (names, literals),
  with the rule that differentiates it; inactive code is kept whole;
- every binding has its own name (SSA): `h = f(h)` binds `h_2`, so the adjoint
  sweep can read any forward value;
- calls into the user's own helpers are inlined (loops and branches included);
- early returns become one return, `break`/`continue` become guard flags;
- a loop or branch that overwrites a value pushes the old one first (a SaveItem;
  the reverse pass keeps only those it reads);
- each step remembers the user's statement it came from;
- anything it cannot differentiate raises UnsupportedError at the user's line.

Shapes are inferred afterwards (shapes.py).
"""
import builtins
import copy
import importlib
import inspect
import sys
import types
from dataclasses import dataclass, field, replace

import gast

from . import nodes
from .namespace import Namespace, describe
from .sharing import Sharing, may_return_argument
from .shapes import SCALAR, constant_kind, infer_shapes, value_kind
from .templates import template_for
from .parse import (UNRESOLVED, input_steps, lambda_as_def, local_names,
                    lookup_global, parse_function)
from .. import rules
from ..errors import NoSourceError, UnsupportedError
from ..rules.operators import identity, make_list
from ..runtime import RecursiveCall

_INACTIVE_ATTRS = {"shape", "ndim", "size", "dtype", "itemsize", "nbytes"}
_OPERATORS = {gast.Add: "add", gast.Sub: "sub", gast.Mult: "mul", gast.Div: "truediv",
              gast.Pow: "pow", gast.MatMult: "matmul", gast.Mod: "mod",
              gast.FloorDiv: "floordiv"}
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
        return f"# line {line}{owner}: {text}" if line else "# the value returned"


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
    saved: bool = False            # its target's old value was pushed just before it


@dataclass(eq=False)
class SaveItem:
    """Before `name` is overwritten in a loop or branch: push its old value (with `index`:
    before `name[index]` is written, push the old elements)."""
    name: str
    index: object = None


@dataclass(eq=False)
class SetItem:
    """`array[index] = value`, in place."""
    array: str
    index: object
    value: object                  # an atom
    origin: Origin
    active: bool


@dataclass(eq=False)
class Append:
    """`xs.append(value)`, in place."""
    array: str
    value: object                  # an atom
    origin: Origin
    active: bool


@dataclass(eq=False)
class IfItem:
    cond: object                   # an atom: the branch taken
    body: list
    orelse: list
    origin: Origin


@dataclass(eq=False)
class LoopItem:
    """`for target in source` (kind "range" or "list"), or `while test` (kind "while")."""
    kind: str
    target: object                 # the loop variable (a gast target), or None
    source: str                    # the range / list / iteration counter's name
    body: list
    origin: Origin
    test: object = None            # while loops
    inits: list = field(default_factory=list)   # names first bound inside (outermost loop)
    bound_before: set = field(default_factory=set)
    known_before: set = field(default_factory=set)  # names bound on some path before the loop


@dataclass(eq=False)
class Program:
    parsed: object
    params: list
    body: list                     # Steps, SaveItems, IfItems and LoopItems, in order
    steps: list                    # every Step, flat
    outputs: list                  # atoms the function returns
    returns_tuple: bool
    return_origin: Origin
    shapes: dict
    names: Namespace
    active: set
    mutable: set                   # names assigned more than once (in loops and branches)
    lists: set = field(default_factory=set)           # names holding lists of values
    maybe_unbound: list = field(default_factory=list)  # saved, bound on some paths only
    wrt_names: list = field(default_factory=list)     # wrt as the caller named it ("self.w")
    wrt_ssa: list = field(default_factory=list)       # the names wrt is read into (self_w)
    input_kinds: dict = field(default_factory=dict)   # kinds of values read out of arguments
    guards: list = field(default_factory=list)        # (function, global name, object)
    inlined: list = field(default_factory=list)       # the helpers inlined
    int_names: set = field(default_factory=set)       # range loop indices (shapes.py)
    sharing: object = None         # which names may share memory (sharing.py), with numbers:
    is_number: object = None       # a test, once shapes are known, that a name holds a number
    free_kinds: dict = field(default_factory=dict)    # constants read by name (DT) -> kind


@dataclass(eq=False)
class _Mutation:
    """An in-place update of `name` (the user's `user`), checked once shapes are known."""
    name: str
    user: str
    kind: str                      # "array" or "list"
    visible: dict                  # SSA name -> user name of the other live variables
    upto: int                      # how many sharing facts were known at the update
    fresh: bool                    # the object is made anew in each iteration of its loop
    scope: object
    node: object
    what: str
    error: object = None           # refused outright unless the value is a number
    again: bool = False            # the check again at the end of an enclosing loop
    tick: int = 0                  # when it happens: names read later see the change
    loop: tuple = None             # (start, end) ticks of a loop body, for the check again:
    #                                names its next iteration reads before binding them


class _Scope:
    def __init__(self, parsed, env, is_top):
        self.parsed = parsed
        self.env = env              # user name -> gast atom (Name of its SSA binding, or literal)
        self.is_top = is_top
        self.loop_users = set()     # user names active somewhere in the enclosing loops
        self.own = {a.id for a in env.values() if isinstance(a, gast.Name)} if is_top else set()
        self.phi = {}               # user name -> the one name both branches of an `if` bind
        self.functions = {}         # user name -> a function defined in the differentiated one


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
        self.names.globals_read = {n.id for n in gast.walk(parsed.node) if isinstance(n, gast.Name)
                                   and isinstance(n.ctx, gast.Load)} - parsed.local_names
        a = parsed.node.args
        self.params = [p.id for p in a.posonlyargs + a.args + a.kwonlyargs]
        env = {}
        for p in self.params:
            self.names.bind_user(p)
            env[p] = nodes.name(p)
        self.scope = _Scope(parsed, env, True)
        self.active = {w for w in wrt if "." not in w}
        self.kinds = dict(kinds)
        # values read out of an argument: wrt "self.w" (an attribute path) or "params['w']"
        # (a dict's entry) -> (parameter, ((kind, part), ...)) -> the name it is read into
        self.inputs = {}
        self.wrt_labels = list(wrt)    # as the caller named them ("self.w")
        self.wrt_ssa = []              # the names they are read into (self_w)
        for w in wrt:
            root, steps = input_steps(w)
            if not steps:
                self.wrt_ssa.append(w)
                continue
            name_ = self.names.fresh("_".join([root] + [str(part) for _, part in steps]))
            self.inputs[(root, steps)] = name_
            self.active.add(name_)
            self.wrt_ssa.append(name_)
            if w in kinds:
                self.kinds[name_] = kinds[w]
        self.sharing = Sharing()       # which names may share memory (sharing.py)
        self.mutations = []            # in-place updates, checked against sharing at the end
        self.fresh = {}                # name -> the loop whose body allocates it anew
        self.final_shapes = {}         # the shapes found after normalizing (for the checks)
        self.maybe_0d = {p for p in self.params if kinds.get(f"0d({p})")}   # 0-d arrays: a
        #                                number to the shapes, yet changed in place by `+=`
        self.tick = 0                  # counts the reads below, in program order
        self.read_at = {}              # name -> the ticks at which the forward code reads it
        self.bound_at = {}             # name -> the ticks at which it is bound
        self.outer = []                # the callers' scopes while a helper is inlined
        self.same_statement = {}       # values computed by the current statement, for reuse
        self.lists = set()             # names holding lists (or tuples) of values
        self.copied = set()            # arguments already copied before a write into them
        self.holders = {}              # name -> the path of an object it holds whose
        #                                attributes are differentiated (`m = self`)
        self.guards = {}               # (function, global name) -> the object it named
        self.free_kinds = {}           # a module or closure constant's name -> its kind
        self.steps = []
        self.block = []
        self.body_items = self.block
        self.compound = 0              # depth of if / for / while
        self.loops = []                # enclosing LoopItems
        self.maybe_unbound = []        # saved names bound on some paths only (None first)
        self.mutable = set()
        self.bound = set(self.params)   # names surely bound here (saves need an old value)
        self.known = set(self.params)   # names bound anywhere so far
        self.nograd = 0
        self.inlining = [parsed.fn]
        self.inlined = []              # every helper inlined (for the disk cache's checks)
        self.origin = None
        self.flat = False              # early returns lowered with flags only (lower_returns)

    # ---- helpers
    def error(self, node, message):
        return self.scope.parsed.error(node, message)

    def emit(self, step):
        target = step.target
        if target is not None and (self.loops or (self.compound and target in self.known)):
            self.block.append(SaveItem(target))
            step.saved = True
            if self.loops and target not in self.loops[0].known_before:
                self.loops[0].inits.append(target)     # first bound in the loop: None before it
            elif target not in self.bound and (not self.loops or target not in self.loops[0].bound_before) \
                    and target not in self.maybe_unbound:
                self.maybe_unbound.append(target)      # bound on some paths only: None at the top
        if target is not None and self.inputs and step.stmt is None:
            self.alias_input_holder(step)
        self.reads(step.value, step.stmt)          # (the operands are in the value)
        if target is not None:
            self.bound_at.setdefault(target, []).append(self.tick)
        elif step.stmt is not None and isinstance(step.stmt, gast.Assign):
            for t in step.stmt.targets:
                for n in nodes.names_in(t):
                    self.bound_at.setdefault(n, []).append(self.tick)
        self.block.append(step)
        self.steps.append(step)
        shared = self.record_sharing(step)
        if target is not None and self.makes_0d_array(step):
            self.maybe_0d.add(target)
        if target is not None and self.loops:
            if self.block is self.loops[-1].body and not shared:
                self.fresh[target] = self.loops[-1]
            else:
                self.fresh.pop(target, None)
        if target is not None and (isinstance(step.value, (gast.List, gast.Tuple, gast.ListComp)) or (
                isinstance(step.value, gast.BinOp) and any(
                    isinstance(side, (gast.List, gast.Tuple, gast.ListComp))
                    for side in (step.value.left, step.value.right)))):
            self.lists.add(target)
        if target is not None:
            self.bound.add(target)
            self.known.add(target)
            if step.active:
                self.active.add(step.target)

    def run(self):
        fdef = self.top.node
        a = fdef.args
        if a.vararg or a.kwarg:
            raise self.error(fdef, "cannot differentiate a function with *args or **kwargs; "
                                   "name its parameters")
        self.origin = Origin(self.top, fdef, False)
        for (root, steps), name_ in list(self.inputs.items()):   # `self_w = self.w`, once
            value = nodes.name(root)
            for kind, part in steps:
                value = nodes.attribute(value, part) if kind == "attr" else \
                    nodes.subscript(value, nodes.const(part))
            self.emit(Step(name_, value, self.origin))
            self.active.add(name_)
        outputs, returns_tuple, ret = self.body(self.lower_returns(fdef.body), final=True)
        program = Program(self.top, self.params, self.body_items, self.steps, outputs, returns_tuple,
                          Origin(self.top, ret), {}, self.names, self.active, self.mutable,
                          lists=self.lists, maybe_unbound=self.maybe_unbound,
                          wrt_names=self.wrt_labels, wrt_ssa=self.wrt_ssa,
                          input_kinds={n: self.kinds[n] for n in self.inputs.values()
                                       if n in self.kinds},
                          inlined=self.inlined, free_kinds=self.free_kinds)
        program.shapes = infer_shapes(program, self.kinds)
        self.returned_atoms = outputs
        self.check_mutations(program.shapes)
        program.sharing = self.sharing
        program.is_number = self.numbers(program.shapes)
        for fn in [self.top.fn] + self.inlined:   # defaults the code was built with
            if getattr(fn, "__defaults__", None) is not None:
                self.guards[(fn, "=.__defaults__")] = fn.__defaults__
            if getattr(fn, "__kwdefaults__", None) is not None:
                self.guards[(fn, "=.__kwdefaults__")] = dict(fn.__kwdefaults__)
        program.guards = [(fn, name_, obj) for (fn, name_), obj in self.guards.items()]
        return program

    def lower_returns(self, stmts):
        """Rewrite early returns (`if c: return a` ...) so the function returns once, at the end.

        A return in one arm of an `if` hands the rest of the block to the other arm. Where
        both arms can go on (or a loop returns), a flag records that a return ran: the rest
        of the function is guarded by `if not returned:`, and a return inside a loop also
        breaks out of it (and out of the loops around it)."""
        self.refuse_unknowable(stmts)
        if any(isinstance(n, gast.NamedExpr) for stmt in stmts for n in _walk_own(stmt)):
            stmts = self.hoist_walrus(copy.deepcopy(stmts))   # the parsed tree is cached
        last = stmts[-1] if stmts else None
        inner = [n for stmt in stmts for n in _walk_own(stmt) if isinstance(n, gast.Return)]
        if not inner or (len(inner) == 1 and inner[0] is last):
            return stmts
        result = self.names.available("result")
        self.names.reserved.add(result)
        self.flat = len(inner) > _NESTED_RETURNS     # many returns: flags, not nested arms
        try:
            if self.flat:
                raise _NeedsFlag
            lowered, always = self._lower(stmts, result, None)
        except _NeedsFlag:
            flag = self.names.available("returned")
            self.names.reserved.add(flag)
            lowered, always = self._lower(stmts, result, flag)
            lowered = [_flag(flag, False, stmts[0])] + lowered
        if not always:
            raise self.error(last, "not every path through the function returns a value")
        return lowered + [gast.Return(value=nodes.name(result))]

    def refuse_unknowable(self, stmts):
        """Refuse complex literals, and code that reads or runs code by variable names
        (`eval`, `exec`, `locals()`, `vars()`, `globals()`, frames, `dir()`): srcgrad
        renames the variables, so its effect is unknown."""
        resolve = self.scope.parsed.resolve
        for stmt in stmts:
            for node in gast.walk(stmt):
                if isinstance(node, gast.Constant) and isinstance(node.value, complex):
                    raise self.error(node, "cannot differentiate complex numbers: srcgrad "
                                           "differentiates real-valued functions of real values")
                if _reads_names_dynamically(node, resolve):
                    raise self.error(node, f"cannot differentiate a function that calls "
                                           f"`{nodes.to_source(node)}`: it reads or runs code by "
                                           "variable names, which the gradient renames; write the "
                                           "expression out")

    def hoist_walrus(self, stmts):
        """`if (y := f(x)) > 1:` becomes `y = f(x)` / `if y > 1:`; `while (y := f(x)) < 2:
        body` becomes `while True: y = f(x); if not y < 2: break; body`, so the value bound
        by `:=` is an ordinary, differentiated assignment."""
        out = []
        for stmt in stmts:
            if isinstance(stmt, (gast.FunctionDef, gast.AsyncFunctionDef, gast.ClassDef)):
                out.append(stmt)
                continue
            if isinstance(stmt, gast.While):
                before, test = self.hoisted(stmt.test, stmt)
                body = self.hoist_walrus(stmt.body)
                if before:
                    stop = gast.copy_location(gast.If(
                        test=gast.UnaryOp(op=gast.Not(), operand=test),
                        body=[gast.copy_location(gast.Break(), stmt)], orelse=[]), stmt)
                    stmt = gast.copy_location(gast.While(
                        test=gast.Constant(value=True, kind=None), body=before + [stop] + body,
                        orelse=self.hoist_walrus(stmt.orelse)), stmt)
                else:
                    stmt.body, stmt.orelse = body, self.hoist_walrus(stmt.orelse)
                out.append(stmt)
                continue
            before = []
            for field_name, value in gast.iter_fields(stmt):
                if isinstance(value, gast.expr):
                    hoisted, value = self.hoisted(value, stmt)
                    before += hoisted
                    setattr(stmt, field_name, value)
                elif isinstance(value, list) and value and isinstance(value[0], gast.stmt):
                    setattr(stmt, field_name, self.hoist_walrus(value))
                elif isinstance(value, list) and field_name in ("targets", "items"):
                    for k, v in enumerate(value):
                        if isinstance(v, gast.withitem):
                            hoisted, v.context_expr = self.hoisted(v.context_expr, stmt)
                        else:
                            hoisted, value[k] = self.hoisted(v, stmt)
                        before += hoisted
            out += before + [stmt]
        return out

    def hoisted(self, expr, stmt):
        """(assignments for each `:=` in `expr`, in evaluation order; `expr` reading their names)."""
        found = []

        def visit(node, conditional):
            if isinstance(node, (gast.Lambda, gast.ListComp, gast.SetComp, gast.DictComp,
                                 gast.GeneratorExp)):
                if any(isinstance(n, gast.NamedExpr) for n in gast.walk(node)):
                    raise self.error(node, "cannot differentiate `:=` inside a lambda or a "
                                           "comprehension")
                return node
            if isinstance(node, gast.NamedExpr):
                if conditional:
                    raise self.error(node, "cannot differentiate `:=` where it may not run "
                                           "(inside `and`, `or` or `... if ... else ...`): "
                                           "assign the value on a line of its own")
                value = visit(node.value, conditional)
                assign = gast.Assign(targets=[nodes.name(node.target.id, store=True)], value=value,
                                     type_comment=None)
                found.append((node.target.id, gast.copy_location(assign, node), _position(node)))
                return gast.copy_location(nodes.name(node.target.id), node)
            for field_name, value in gast.iter_fields(node):
                if isinstance(node, gast.BoolOp) and field_name == "values":
                    node.values = [visit(v, conditional or k > 0) for k, v in enumerate(value)]
                elif isinstance(node, gast.IfExp) and field_name in ("body", "orelse"):
                    setattr(node, field_name, visit(value, True))
                elif isinstance(value, gast.AST):
                    setattr(node, field_name, visit(value, conditional))
                elif isinstance(value, list):
                    setattr(node, field_name, [visit(v, conditional) if isinstance(v, gast.AST)
                                               else v for v in value])
            return node

        if not any(isinstance(n, gast.NamedExpr) for n in gast.walk(expr)):
            return [], expr
        reads = [n for n in gast.walk(expr) if isinstance(n, gast.Name)
                 and isinstance(n.ctx, gast.Load)]
        expr = visit(expr, False)
        names_bound = [name_ for name_, _, _ in found]
        twice = {n for n in names_bound if names_bound.count(n) > 1}
        if isinstance(stmt, gast.AugAssign) and isinstance(stmt.target, gast.Name):
            twice |= {stmt.target.id} & set(names_bound)   # `s += (s := ...)` reads s first
        if twice:
            raise self.error(stmt, f"cannot differentiate `:=` that binds `{sorted(twice)[0]}` "
                                   "where the same statement also binds or updates it: assign "
                                   "the values on lines of their own")
        for name_, _, where in found:      # `x + (x := 2 * x)`: x is read before it is bound
            if any(n.id == name_ and _position(n) < where for n in reads):
                raise self.error(stmt, f"cannot differentiate `:=` whose name `{name_}` the same "
                                       "expression reads before binding it: assign the value on "
                                       "a line of its own")
        return [a for _, a, _ in found], expr

    def _lower(self, stmts, result, flag, in_loop=False):
        """(statements, whether every path through them returns)."""
        out = []
        for i, stmt in enumerate(stmts):
            if isinstance(stmt, gast.Return):
                if stmt.value is None:
                    raise self.error(stmt, "the function returns nothing to differentiate here")
                assign = gast.Assign(targets=[nodes.name(result, store=True)], value=stmt.value,
                                     type_comment=None)
                out.append(gast.copy_location(assign, stmt))
                if flag is not None:
                    out.append(_flag(flag, True, stmt))
                if in_loop:
                    out.append(gast.copy_location(gast.Break(), stmt))
                return out, True
            if not any(isinstance(n, gast.Return) for n in _walk_own(stmt)):
                out.append(stmt)
                continue
            rest = stmts[i + 1:]
            if isinstance(stmt, gast.If):
                body, body_returns = self._lower(stmt.body, result, flag, in_loop)
                orelse, else_returns = self._lower(stmt.orelse, result, flag, in_loop)
                if rest and body_returns != else_returns and not in_loop and not self.flat:
                    if body_returns:                   # the arm that goes on takes the rest
                        orelse, else_returns = self._lower(stmt.orelse + rest, result, flag)
                    else:
                        body, body_returns = self._lower(stmt.body + rest, result, flag)
                    rest = []
                out.append(gast.copy_location(gast.If(test=stmt.test, body=body, orelse=orelse), stmt))
                if (body_returns and else_returns) or not rest:
                    return out, body_returns and else_returns
            elif isinstance(stmt, (gast.For, gast.While)) and not stmt.orelse:
                if flag is None:
                    raise _NeedsFlag
                body, _ = self._lower(stmt.body, result, flag, in_loop=True)
                if isinstance(stmt, gast.For):
                    loop = gast.For(target=stmt.target, iter=stmt.iter, body=body, orelse=[],
                                    type_comment=None)
                else:
                    loop = gast.While(test=stmt.test, body=body, orelse=[])
                out.append(gast.copy_location(loop, stmt))
                if in_loop:                            # a return ends the loops around it too
                    stop = gast.If(test=nodes.name(flag), body=[gast.Break()], orelse=[])
                    out.append(gast.copy_location(stop, stmt))
                forever = isinstance(stmt, gast.While) and isinstance(stmt.test, gast.Constant) \
                    and stmt.test.value is True
                if forever and not any(isinstance(n, gast.Break) for n in _walk_loop_body(stmt.body)):
                    return out, True                   # it ends only by returning
            else:
                where = next(n for n in _walk_own(stmt) if isinstance(n, gast.Return))
                what = "loop with `else`" if isinstance(stmt, (gast.For, gast.While)) else {
                    "With": "`with` block", "Try": "`try` block", "TryStar": "`try` block",
                    "Match": "`match` statement", "AsyncWith": "`async with` block",
                    "AsyncFor": "`async for` loop"}.get(type(stmt).__name__,
                                                       f"`{type(stmt).__name__}` statement")
                raise self.error(where, f"cannot differentiate a `return` inside a {what} yet: "
                                        "set a variable and return after it")
            if in_loop or not rest:
                continue
            if flag is None:                           # paths that returned and paths that go on
                raise _NeedsFlag
            guarded, always = self._lower(rest, result, flag)
            # `if not returned:` blocks follow one another rather than nest (Python allows
            # 100 levels): the guards the rest ends with are hoisted out of this one
            later = []
            while guarded and getattr(guarded[-1], "srcgrad_guard", False):
                later.insert(0, guarded.pop())
            for block in ([guarded] if guarded else []):
                test = gast.UnaryOp(op=gast.Not(), operand=nodes.name(flag))
                guard = gast.copy_location(gast.If(test=test, body=block, orelse=[]), rest[0])
                guard.srcgrad_guard = True
                out.append(guard)
            return out + later, always
        return out, False

    # ---- statements
    def body(self, stmts, final, target=None):
        for i, stmt in enumerate(stmts):
            self.origin = Origin(self.scope.parsed, stmt, not self.scope.is_top)
            self.same_statement = {}
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
        for part in value.elts if isinstance(value, (gast.Tuple, gast.List)) else [value]:
            if isinstance(part, gast.Constant) and not isinstance(part.value, (int, float)):
                raise self.error(part, f"the function returns {part.value!r}, not a number "
                                       "to differentiate")
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

    def stmt_Global(self, stmt):
        """`global G` (or `nonlocal`) only to read G: a no-op; assigning G is refused."""
        kind = "global" if isinstance(stmt, gast.Global) else "nonlocal"
        assigned = [n for n in stmt.names if n in local_names(self.scope.parsed.node)]
        if assigned:
            raise self.error(stmt, f"cannot differentiate a function that assigns the {kind} "
                                   f"variable `{assigned[0]}`: return the new value instead")

    stmt_Nonlocal = stmt_Global

    def stmt_FunctionDef(self, stmt):
        """`def g(t): ...` inside the differentiated function: inlined where it is called."""
        if stmt.decorator_list:
            raise self.error(stmt, "cannot differentiate a decorated function defined inside "
                                   "the differentiated one")
        self.define_function(stmt.name, stmt)

    def define_function(self, user, fdef):
        a = fdef.args
        if a.vararg or a.kwarg or a.kwonlyargs or a.posonlyargs or \
                not all(isinstance(d, gast.Constant) for d in a.defaults):
            raise self.error(fdef, f"cannot differentiate calls to `{user}`: a function defined "
                                   "inside the differentiated one may take plain parameters "
                                   "with literal defaults only")
        self.scope.env.pop(user, None)
        self.scope.functions[user] = fdef

    # ---- control flow
    def nested(self, items, stmts, loop=None):
        """Normalize `stmts` into `items`, one level deeper in loops and branches."""
        saved = self.block, self.origin
        self.block = items
        self.compound += 1
        if loop is not None:
            self.loops.append(loop)
        try:
            self.body(stmts, final=False)
        finally:
            self.compound -= 1
            if loop is not None:
                self.loops.pop()
            self.block, self.origin = saved

    def condition(self, test):
        """An atom holding the truth value of `test`, kept for the adjoint sweep."""
        expr = self.rename(test)
        if isinstance(expr, gast.Name) and expr.id not in self.mutable and not self.loops:
            return expr
        cond = self.names.fresh("cond")
        self.emit(Step(cond, expr, self.origin))
        return nodes.name(cond)

    def stmt_If(self, stmt):
        item = IfItem(self.condition(stmt.test), [], [], self.origin)
        self.block.append(item)
        self.reads(item.cond)
        self.branches(item, lambda: self.nested(item.body, stmt.body),
                      lambda: self.nested(item.orelse, stmt.orelse),
                      _stored_names(stmt.body + stmt.orelse))

    def branches(self, item, first, second, assigned=()):
        """Normalize both branches of `item`. Each starts from the names bound before it; a
        variable either branch assigns gets one name in both (a branch that leaves it alone
        copies the old value into that name), so after the `if` it has a single name."""
        scope = self.scope
        phi = {}
        for user in assigned:
            current = scope.env.get(user)
            if user in scope.phi:                    # an `if` inside a branch of another
                phi[user] = scope.phi[user]
            elif isinstance(current, gast.Name) and current.id in self.known and current.id in scope.own:
                phi[user] = current.id
            else:
                phi[user] = self.names.bind_user(user)
                scope.own.add(phi[user])
            self.mutable.add(phi[user])
        saved_phi, scope.phi = scope.phi, {**scope.phi, **phi}
        env_before, bound_before = dict(scope.env), set(self.bound)
        results = []
        try:
            for items, run in ((item.body, first), (item.orelse, second)):
                scope.env.clear()
                scope.env.update(env_before)
                self.bound = set(bound_before)
                run()
                results.append((items, dict(scope.env), self.bound))
        finally:
            scope.phi = saved_phi
        scope.env.clear()
        scope.env.update(env_before)
        self.bound = bound_before | (results[0][2] & results[1][2])
        for items, env_after, bound_after in results:
            for user, name_ in phi.items():
                old = env_before.get(user)
                if nodes.is_name(env_after.get(user), name_) or old is None or nodes.is_name(old, name_):
                    continue
                saved_block, self.block = self.block, items   # this branch keeps the old value
                try:
                    self.bind_copy(name_, old)
                finally:
                    self.block = saved_block
        for user, name_ in phi.items():
            scope.env[user] = nodes.name(name_)

    def bind_copy(self, name_, atom):
        """`name_ = atom`: a differentiated copy when `atom` is active, else a plain step."""
        if isinstance(atom, gast.Name) and self.is_active_name(atom.id):
            self.op(name_, rules.lookup(identity), [atom], {}, atom, None)
        else:
            self.emit(Step(name_, atom, self.origin))

    def expr_BoolOp(self, node, target):
        """`a or b` used for its value is `a if a else b` (`a and b`: `b if a else a`), with
        `a` computed once."""
        first = self.operand(node.values[0])
        if isinstance(first, gast.Name):
            self.scope.env.setdefault(first.id, first)
        rest = node.values[1:]
        other = rest[0] if len(rest) == 1 else gast.copy_location(
            gast.BoolOp(op=node.op, values=rest), rest[0])
        if isinstance(node.op, gast.Or):
            choice = gast.IfExp(test=first, body=first, orelse=other)
        else:
            choice = gast.IfExp(test=first, body=other, orelse=first)
        return self.atom(gast.copy_location(choice, node), target)

    def expr_IfExp(self, node, target):
        target = target or self.names.fresh("choice")
        self.mutable.add(target)
        item = IfItem(self.condition(node.test), [], [], self.origin)
        self.block.append(item)
        self.reads(item.cond)
        before = self.same_statement
        def branch(items, expr):
            saved = self.block
            self.block = items
            self.same_statement = dict(before)   # what one arm computes, the other has not
            self.compound += 1
            try:
                self.atom(expr, target=target)
            finally:
                self.compound -= 1
                self.block = saved
                self.same_statement = before
        self.branches(item, lambda: branch(item.body, node.body), lambda: branch(item.orelse, node.orelse))
        self.active.add(target)
        return nodes.name(target)

    def enter_loop(self, body_stmts, extra_targets=()):
        """Mark the user's variables that become active somewhere in this loop as active."""
        scope = self.scope
        found = set(scope.loop_users)
        changed = True
        saved = scope.loop_users
        while changed:
            changed = False
            scope.loop_users = found
            for node in gast.walk(gast.Module(body=list(body_stmts), type_ignores=[])):
                for names, value in _assignments(node):
                    if value is not None and not (set(names) <= found) and self.is_active(value):
                        found |= set(names)
                        changed = True
        scope.loop_users = saved
        for user in found:
            current = self.scope.env.get(user)
            if isinstance(current, gast.Name):
                self.active.add(current.id)
        return found

    def loop(self, kind, target, source, stmt, body_stmts, test=None):
        scope = self.scope
        for user in _stored_names(body_stmts):
            current = scope.env.get(user)
            borrowed = current is not None and (
                not isinstance(current, gast.Name) or current.id not in scope.own)
            if borrowed and not (target is not None and user in nodes.names_in(target)):
                # the loop overwrites the variable: give it a name of this scope first (in
                # a branch, the name the variable has after the branch)
                name_ = scope.phi.get(user) or self.names.bind_user(user)
                scope.own.add(name_)
                self.bind_copy(name_, current)
                scope.env[user] = nodes.name(name_)
        item = LoopItem(kind, target, source, [], self.origin, test=test,
                        bound_before=set(self.bound), known_before=set(self.known))
        found = self.enter_loop(body_stmts)
        scope = self.scope
        saved = scope.loop_users
        scope.loop_users = found
        self.block.append(item)
        first, start = len(self.mutations), self.tick
        self.reads(source)
        for n in nodes.names_in(target) if target is not None else ():
            self.bound_at.setdefault(n, []).append(self.tick)   # bound as each iteration starts
        try:
            self.nested(item.body, body_stmts, loop=item)
        finally:
            scope.loop_users = saved
        self.recheck_after_loop(first, start)
        return item

    def stmt_For(self, stmt):
        if stmt.orelse:
            raise self.error(stmt, "cannot differentiate `for ... else` yet: use a flag variable")
        stmt = self.lower_exits(stmt)
        stmt = self.loop_target_apart(stmt)
        it = stmt.iter
        callee = self.resolve(it.func) if isinstance(it, gast.Call) else UNRESOLVED
        if callee is builtins.range and isinstance(stmt.target, gast.Name) and not it.keywords:
            return self.range_loop(stmt.target.id, self.rename(it), stmt, stmt.body)
        if self.is_active(it):
            return self.indexed_loop(stmt)
        items = self.names.fresh("items")
        self.emit(Step(items, nodes.call("list", [self.rename(it)]), self.origin))
        target = self.bind_targets(stmt.target)
        self.loop("list", target, items, stmt, stmt.body)

    def loop_target_apart(self, stmt):
        """`for t in xs: ... t = f(t)`: the body overwrites the loop variable, so the loop runs
        over a name of its own and the body starts with `t = t_item`."""
        targets = nodes.names_in(stmt.target)
        clash = targets & set(_stored_names(stmt.body))
        if not clash:
            return stmt
        renamed = {}
        for user in sorted(clash):
            renamed[user] = self.names.available(f"{user}_item")
            self.names.reserved.add(renamed[user])
        target = nodes.rename(stmt.target, {u: nodes.name(n, store=True) for u, n in renamed.items()})
        starts = [gast.copy_location(gast.Assign(targets=[nodes.name(u, store=True)],
                                                 value=nodes.name(n), type_comment=None), stmt)
                  for u, n in renamed.items()]
        new = gast.For(target=target, iter=stmt.iter, body=starts + list(stmt.body), orelse=[],
                       type_comment=None)
        return gast.copy_location(new, stmt)

    def range_loop(self, user, range_expr, stmt, body):
        source = self.names.fresh(describe(range_expr))
        self.emit(Step(source, range_expr, self.origin))
        index = self.names.bind_user(user)
        self.scope.env[user] = nodes.name(index)
        return self.loop("range", nodes.name(index, store=True), source, stmt, body)

    def bind_targets(self, target):
        """Bind a loop's (possibly nested tuple) target; return it with the bound names."""
        if isinstance(target, gast.Name):
            name = self.bind(target.id)
            self.scope.env[target.id] = nodes.name(name)
            self.bound.add(name)
            self.known.add(name)
            return nodes.name(name, store=True)
        if isinstance(target, (gast.Tuple, gast.List)):
            return gast.Tuple(elts=[self.bind_targets(t) for t in target.elts], ctx=gast.Store())
        raise self.error(target, "cannot differentiate a loop that assigns into an element or attribute")

    def indexed_loop(self, stmt):
        """`for row in X` over a differentiated array X: `for i in range(len(X)): row = X[i]`."""
        pairs, index_user, reverse, start = self.loop_pairs(stmt.target, stmt.iter)
        sequences = [self.operand(seq) for _, seq in pairs]
        for k, seq in enumerate(sequences):
            if not isinstance(seq, gast.Name):      # `zip(x, [1.0, 2.0])`: the list gets a name
                held = self.names.fresh(describe(seq))
                self.emit(Step(held, seq, self.origin))
                sequences[k] = nodes.name(held)
        stored = set(_stored_names(list(stmt.body))) | {n for part, _ in pairs for n in nodes.names_in(part)}
        rebound = {a.id for u, a in self.scope.env.items() if isinstance(a, gast.Name) and u in stored}
        sequences = [self.held(seq) if isinstance(seq, gast.Name) and seq.id in rebound else seq
                     for seq in sequences]     # `for v in x: x = ...` loops over the old x
        lengths = [nodes.call("len", [s]) for s in sequences]
        length = lengths[0] if len(lengths) == 1 else nodes.call("min", lengths)
        if reverse:
            minus_one = nodes.binop(length, gast.Sub(), nodes.const(1))
            range_expr = nodes.call("range", [minus_one, nodes.const(-1), nodes.const(-1)])
        else:
            range_expr = nodes.call("range", [length])
        reads = []
        if start is not None:                  # enumerate(x, start): the count is i + start
            start = self.operand(start)
            if isinstance(start, gast.Name):
                self.scope.env.setdefault(start.id, start)
            counted = index_user
            index_user = self.names.available("i")
            self.names.reserved.add(index_user)
            shifted = gast.Assign(targets=[nodes.name(counted, store=True)], value=nodes.binop(
                nodes.name(index_user), gast.Add(), start), type_comment=None)
            reads.append(gast.copy_location(shifted, stmt))
        index_user = index_user or self.names.available("i")
        for (part, _), seq in zip(pairs, sequences):
            self.scope.env.setdefault(seq.id, seq)
            read = gast.Assign(targets=[part], value=nodes.subscript(nodes.name(seq.id), nodes.name(index_user)),
                               type_comment=None)
            reads.append(gast.copy_location(read, stmt))
        self.range_loop(index_user, range_expr, stmt, reads + list(stmt.body))

    def loop_pairs(self, target, it):
        """(target part, sequence) pairs, the enumerate index's name, whether reversed, and
        enumerate's start (None for 0)."""
        callee = self.resolve(it.func) if isinstance(it, gast.Call) else UNRESOLVED
        pair = isinstance(target, (gast.Tuple, gast.List))
        if callee is enumerate and pair and len(target.elts) == 2 and isinstance(target.elts[0], gast.Name) \
                and 1 <= len(it.args) + len(it.keywords) <= 2 and it.args \
                and all(k.arg == "start" for k in it.keywords):
            start = it.args[1] if len(it.args) > 1 else (it.keywords[0].value if it.keywords else None)
            if start is not None and self.is_active(start):
                raise self.error(start, "enumerate's start must not depend on differentiated values")
            pairs, index, reverse, _ = self.loop_pairs(target.elts[1], it.args[0])
            if index is None and not reverse:
                return pairs, target.elts[0].id, False, start
        elif callee is zip and pair and len(target.elts) == len(it.args) and not it.keywords:
            return list(zip(target.elts, it.args)), None, False, None
        elif callee is reversed and len(it.args) == 1:
            return [(target, it.args[0])], None, True, None
        elif callee is UNRESOLVED:
            return [(target, it)], None, False, None
        raise self.error(it, "cannot differentiate a loop over this iterable: loop over "
                             "range(...), an array, or zip/enumerate/reversed of arrays")

    def stmt_While(self, stmt):
        if stmt.orelse:
            raise self.error(stmt, "cannot differentiate `while ... else` yet: use a flag variable")
        stmt = self.lower_exits(stmt)
        counter = self.names.fresh("iterations")
        self.emit(Step(counter, nodes.const(0), self.origin))
        item = self.loop("while", None, counter, stmt, stmt.body, test=None)
        item.test = self.rename(stmt.test)
        self.reads(item.test)

    def lower_exits(self, loop):
        """Rewrite `break` and `continue` in `loop`'s own body as flags guarding what follows:
        `if c: break` ... becomes `if c: stopped = True` / `if not stopped: ...`, and a
        `while` also tests `not stopped`. The adjoint sweep then replays the same guards."""
        exits = {type(n) for n in _walk_loop_body(loop.body)} & {gast.Break, gast.Continue}
        if not exits:
            return loop
        flags = {}
        for kind, base in ((gast.Break, "stopped"), (gast.Continue, "skipped")):
            if kind in exits:
                flags[kind] = self.names.available(base)
                self.names.reserved.add(flags[kind])
        body = self._guard(loop.body, flags, loop)
        if gast.Continue in exits:
            body = [_flag(flags[gast.Continue], False, loop)] + body
        stopped = flags.get(gast.Break)
        if stopped is not None:
            self.statement(_flag(stopped, False, loop))
            self.origin = Origin(self.scope.parsed, loop, not self.scope.is_top)
            running = gast.UnaryOp(op=gast.Not(), operand=nodes.name(stopped))
            if isinstance(loop, gast.While):
                test = gast.BoolOp(op=gast.And(), values=[running, loop.test])
                return gast.copy_location(gast.While(test=test, body=body, orelse=[]), loop)
            body = [gast.copy_location(gast.If(test=running, body=body, orelse=[]), loop)]
        new = gast.For(target=loop.target, iter=loop.iter, body=body, orelse=[], type_comment=None) \
            if isinstance(loop, gast.For) else gast.While(test=loop.test, body=body, orelse=[])
        return gast.copy_location(new, loop)

    def _guard(self, stmts, flags, loop):
        out = []
        for i, stmt in enumerate(stmts):
            if isinstance(stmt, (gast.Break, gast.Continue)):
                out.append(_flag(flags[type(stmt)], True, stmt))
                return out
            if any(isinstance(n, (gast.Break, gast.Continue)) for n in _walk_loop_body([stmt])):
                if not isinstance(stmt, gast.If):
                    where = next(n for n in _walk_loop_body([stmt]) if isinstance(n, (gast.Break, gast.Continue)))
                    raise self.error(where, "cannot differentiate `break`/`continue` inside a "
                                            "`with` or `try` block")
                guarded = gast.If(test=stmt.test, body=self._guard(stmt.body, flags, loop),
                                  orelse=self._guard(stmt.orelse, flags, loop))
                out.append(gast.copy_location(guarded, stmt))
                rest = stmts[i + 1:]
                if rest:
                    going = [gast.UnaryOp(op=gast.Not(), operand=nodes.name(f)) for f in flags.values()]
                    test = going[0] if len(going) == 1 else gast.BoolOp(op=gast.And(), values=going)
                    out.append(gast.copy_location(
                        gast.If(test=test, body=self._guard(rest, flags, loop), orelse=[]), rest[0]))
                return out
            out.append(stmt)
        return out

    def stmt_Expr(self, stmt):
        value = stmt.value
        if isinstance(value, gast.Constant):
            return  # a docstring or a bare literal
        if _is_append(value) and value.func.value.id in self.scope.env:
            return self.append(value)
        if isinstance(value, gast.Call) and isinstance(value.func, gast.Attribute) \
                and value.func.attr in _MUTATING_METHODS:
            raise self.error(stmt, f"cannot differentiate `.{value.func.attr}(...)`, which changes "
                                   "an array in place; assign a new array instead")
        if self.is_active(value) and not (isinstance(value, gast.Call)
                                          and self.resolve(value.func) is builtins.print):
            raise self.error(stmt, "cannot differentiate an expression statement that uses a "
                                   "differentiated value (it may modify it in place)")
        self.emit(Step(None, None, self.origin, stmt=gast.Expr(value=self.rename(value))))

    def append(self, call):
        """`xs.append(v)`: the list grows in place; the adjoint sweep pops it again."""
        atom = self.scope.env[call.func.value.id]
        if atom.id in self.params or atom.id not in self.scope.own:
            raise self.error(call, f"cannot differentiate appending to `{call.func.value.id}`, "
                                   "which the caller passed in (every call would change the "
                                   "caller's list); build a new list inside the function")
        value = self.operand(call.args[0])
        mutation = self.mutated(call.func.value.id, atom.id, "list", call,
                                f"appending to `{call.func.value.id}` would change both")
        if isinstance(value, gast.Name):         # the list now holds this very object
            self.sharing.holds(atom.id, value.id)
        active = isinstance(value, gast.Name) and self.is_active_name(value.id)
        self.mutable.add(atom.id)
        self.lists.add(atom.id)
        if active:
            self.active.add(atom.id)
        self.same_statement = {}
        self.block.append(Append(atom.id, value, self.origin, active or self.is_active_name(atom.id)))
        self.reads(value)
        mutation.tick = self.tick

    def stmt_Assert(self, stmt):
        self.emit(Step(None, None, self.origin, stmt=self.rename(stmt)))

    def stmt_Import(self, stmt):
        """`import numpy as np` inside the function: the module, looked up now, like a global."""
        for alias in stmt.names:
            try:
                if isinstance(stmt, gast.ImportFrom):
                    if stmt.level:
                        raise ImportError("relative import")
                    obj = getattr(importlib.import_module(stmt.module), alias.name)
                    local = alias.asname or alias.name
                elif alias.asname:
                    obj, local = importlib.import_module(alias.name), alias.asname
                else:
                    local = alias.name.split(".")[0]
                    importlib.import_module(alias.name)
                    obj = importlib.import_module(local)
            except (ImportError, AttributeError) as exc:
                raise self.error(stmt, f"cannot import {alias.name} here: {exc}") from None
            self.scope.env[local] = nodes.name(self.names.cell(local, obj))

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
            if not all(isinstance(t, gast.Name) for t in targets):
                raise self.error(stmt, "cannot differentiate a chained assignment to a tuple yet")
            first = self.assign(targets[0], value)
            for t in targets[1:]:
                self.bind_atom(t.id, first)
            return
        self.assign(targets[0], value)

    def stmt_AnnAssign(self, stmt):
        if stmt.value is not None:
            self.assign(stmt.target, stmt.value)

    def stmt_AugAssign(self, stmt):
        target = stmt.target
        if isinstance(target, gast.Subscript):
            read = gast.Subscript(value=target.value, slice=target.slice, ctx=gast.Load())
            return self.setitem(target, gast.copy_location(
                gast.BinOp(left=read, op=stmt.op, right=stmt.value), stmt), stmt)
        if not isinstance(target, gast.Name):
            raise self.error(stmt, "cannot differentiate an in-place update of an attribute")
        first = len(self.mutations)
        self.check_not_aliased(target, stmt)
        self.assign(target, gast.copy_location(
            gast.BinOp(left=nodes.name(target.id), op=stmt.op, right=stmt.value), stmt))
        for m in self.mutations[first:]:          # the update reads its operands first
            m.tick = self.tick

    def bind_atom(self, user, atom):
        """Bind the user's variable to an atom already normalized (`a, b = b, a`; `a = b = v`)."""
        ssa = self.bind(user)
        self.bind_copy(ssa, atom)
        self.scope.env[user] = nodes.name(ssa)

    def held(self, atom):
        """A fresh copy of `atom`'s value, kept before its name is overwritten."""
        temp = self.names.fresh(f"old_{atom.id}")
        self.bind_copy(temp, atom)
        return nodes.name(temp)

    def is_active_name(self, ssa):
        return not self.nograd and ssa in self.active

    def record_sharing(self, step):
        """Record what `step.target` may share memory with (sharing.py); whether it may."""
        target = step.target
        if step.stmt is not None:                 # `a, b = pair`: each may be an item of it
            stmt = step.stmt
            if isinstance(stmt, gast.Assign) and isinstance(stmt.value, gast.Name):
                for t in stmt.targets:
                    for n in gast.walk(t):
                        if isinstance(n, gast.Name):
                            self.sharing.item(n.id, stmt.value.id)
            elif isinstance(stmt, gast.Assign):
                sources = self.shared_sources(stmt.value)
                for t in stmt.targets:
                    for n in gast.walk(t):
                        if isinstance(n, gast.Name):
                            for source in sources:
                                self.sharing.same(n.id, source)
            return False
        if target is None or step.value is None:
            return False
        if step.rule is not None:
            primal = step.rule.primal
            if primal is make_list:
                for e in step.operands[0].elts if step.operands else ():
                    if isinstance(e, gast.Name):
                        self.sharing.holds(target, e.id)
                return False
            sources = []
            if step.rule.kind == "pullback":     # a recursive call may return an argument
                sources = [a.id for a in step.operands[1:] if isinstance(a, gast.Name)]
            elif (primal is identity or (primal is not None and may_return_argument(primal)
                                         and not _fresh_method_call(step.value))) \
                    and step.operands and isinstance(step.operands[0], gast.Name):
                sources = [step.operands[0].id]
            getitem = primal is __import__("operator").getitem
            for source in sources:
                if getitem and source in self.lists:
                    self.sharing.item(target, source)
                elif getitem and len(step.operands) == 2:
                    self.sharing.same(target, source, self.not_element(source, step.operands[1]))
                else:
                    self.sharing.same(target, source)
            return bool(sources)
        sources = self.shared_sources(step.value)
        for source in sources:
            value = step.value
            if isinstance(value, gast.Subscript) and nodes.is_name(value.value, source) \
                    and source not in self.lists:
                self.sharing.same(target, source, self.not_element(source, value.slice))
            else:
                self.sharing.same(target, source)
        return bool(sources)

    def not_element(self, array, index):
        """A test, for once shapes are known, that `array[index]` is not a single element
        (one element is a number: a copy that shares no memory)."""
        parts = index.elts if isinstance(index, gast.Tuple) else [index]

        def test():
            shapes = self.final_shapes
            shape = shapes.get(array)
            return not (isinstance(shape, tuple) and shape[0] == "array" and shape[2] == len(parts)
                        and all(_integer_index(i, shapes) for i in parts))
        return test

    def shared_sources(self, value):
        """The names an inactive expression's value may share memory with."""
        if isinstance(value, gast.Name):
            return [value.id]
        if isinstance(value, (gast.Subscript, gast.Attribute, gast.Starred)):
            return self.shared_sources(value.value)
        if isinstance(value, gast.IfExp):
            return self.shared_sources(value.body) + self.shared_sources(value.orelse)
        if isinstance(value, gast.BoolOp):
            return [n for v in value.values for n in self.shared_sources(v)]
        if isinstance(value, (gast.List, gast.Tuple, gast.Set)):
            return [n for e in value.elts for n in self.shared_sources(e)]
        if isinstance(value, gast.Call):
            func = value.func
            copy_arg = next((k.value for k in value.keywords if k.arg == "copy"), None)
            no_copy = isinstance(copy_arg, gast.Constant) and copy_arg.value in (False, None)
            callee = self.generated_callee(func)
            if callee is UNRESOLVED and isinstance(func, gast.Attribute):    # a method
                receiver = self.shared_sources(func.value)
                if may_return_argument(None, func.attr) or no_copy:
                    return receiver + [n for a in value.args for n in self.shared_sources(a)]
                return []
            import numpy as np
            if may_return_argument(None if callee is UNRESOLVED else callee) or (
                    no_copy and callee is np.array):
                return [n for a in list(value.args) + [k.value for k in value.keywords]
                        for n in self.shared_sources(a)]
            return []
        return []

    def generated_callee(self, func):
        """The object a renamed (generated) call's function names, or UNRESOLVED."""
        root = func
        while isinstance(root, gast.Attribute):
            root = root.value
        if isinstance(root, gast.Name) and root.id in self.names.cells:
            obj = self.names.cells[root.id]
            for attr in _attribute_path(func):
                obj = getattr(obj, attr, UNRESOLVED)
            return obj
        if isinstance(root, gast.Name) and root.id in self.names.globals_read and \
                not self.names.is_user(root.id):
            return self.top.resolve(func)
        return UNRESOLVED

    def live_names(self, scope, user):
        """SSA name -> the user's name for it, for every variable visible here and in the
        callers of an inlined helper (all may be read later), but `user` of `scope`."""
        found = {}
        for s in self.outer + [self.scope]:
            for u, a in s.env.items():
                if isinstance(a, gast.Name) and not (s is scope and u == user):
                    found.setdefault(a.id, u)
        return found

    def mutated(self, user, name_, kind, node, what):
        """`name_` (the user's `user`) changes in place here: refused at the end if another
        live name may see the change (an array that turns out to be a number never does).
        The caller sets the mutation's tick once the update has read its operands."""
        fresh = bool(self.loops) and self.fresh.get(name_) is self.loops[-1]
        mutation = _Mutation(name_, user, kind, self.live_names(self.scope, user),
                             self.sharing.count, fresh, self.scope, node, what, tick=self.tick)
        self.mutations.append(mutation)
        return mutation

    def reads(self, *exprs):
        """The forward code reads the names in `exprs` here (the next tick)."""
        self.tick += 1
        for expr in exprs:
            if isinstance(expr, str):
                self.read_at.setdefault(expr, []).append(self.tick)
            elif expr is not None:
                for n in nodes.names_in(expr):
                    self.read_at.setdefault(n, []).append(self.tick)

    def read_later(self, n, m, returned):
        """Whether the forward code reads `n` after update `m` before binding `n` anew (on
        the next iteration of `m.loop`: reads before the body binds `n`)."""
        if n in self.params:                  # the caller holds the arguments: always live
            return True
        binds = self.bound_at.get(n, ())
        if m.loop is not None:
            start, end = m.loop
            return any(start < r <= end and not any(start < b < r for b in binds)
                       for r in self.read_at.get(n, ()))
        return n in returned and not any(b > m.tick for b in binds) or any(
            r > m.tick and not any(m.tick < b < r for b in binds) for r in self.read_at.get(n, ()))

    def recheck_after_loop(self, first, start):
        """At the end of a loop body, the updates in it are seen by the names bound later in
        the body too (on the next iteration), unless the object is made anew each time."""
        for m in list(self.mutations[first:]):
            if not m.fresh and not m.again:
                self.mutations.append(replace(m, visible=self.live_names(m.scope, m.user),
                                              upto=self.sharing.count, again=True,
                                              loop=(start, self.tick)))

    def makes_0d_array(self, step):
        """Whether a step may make a 0-d array (which shapes call a number): an array
        constructor or copy, a reshape, `x[...]`; not arithmetic, ufuncs or reductions."""
        value = step.value
        if step.rule is not None:
            return step.rule.primal in _ARRAY_MAKERS()
        if isinstance(value, gast.Subscript):
            return any(isinstance(n, gast.Constant) and n.value is Ellipsis
                       for n in gast.walk(value.slice))
        if isinstance(value, gast.Call):
            callee = self.generated_callee(value.func)
            if callee is UNRESOLVED:
                return isinstance(value.func, gast.Attribute) and value.func.attr in (
                    "copy", "reshape", "squeeze", "view", "astype", "__array__")
            return callee in _ARRAY_MAKERS()
        return False

    def numbers(self, shapes):
        """A test that a name surely holds a number (never a 0-d array, even one shared)."""
        maybe = set()
        for n in self.maybe_0d:
            maybe |= self.sharing.same_list(n, self.sharing.count)
        return lambda n: shapes.get(n) == SCALAR and n not in maybe

    def check_mutations(self, shapes):
        self.final_shapes = shapes
        is_number = self.numbers(shapes)
        for m in self.mutations:
            if m.kind == "array" and is_number(m.name):
                continue                          # numbers are never changed in place
            if m.error is not None:
                raise m.error
            reach = self.sharing.same_list(m.name, m.upto) if m.kind == "list" else \
                self.sharing.observers(m.name, m.upto, is_number)
            returned = {o.id for o in self.returned_atoms if isinstance(o, gast.Name)}
            others = sorted({m.visible[n] for n in reach if n in m.visible
                             and self.read_later(n, m, returned)})
            outside = sorted(n for n in reach if n in self.names.cells or (
                n in self.names.globals_read and not self.names.is_user(n)))
            if outside:
                raise m.scope.parsed.error(m.node, f"`{m.user}` may share memory with "
                                                   f"`{outside[0]}`, which the function does not "
                                                   f"own (a global), so {m.what.replace('both', 'it')}"
                                                   f"; copy it first (`{m.user} = {m.user}.copy()`)")
            if others:
                them = ", ".join(f"`{o}`" for o in others)
                fix = f"write `{m.user} = {m.user} {_opsym(m.node.op)} ...` instead" if \
                    m.kind == "array" and isinstance(m.node, gast.AugAssign) and \
                    isinstance(m.node.target, gast.Name) else \
                    f"copy it first (`{m.user} = {m.user}.copy()`)"
                raise m.scope.parsed.error(m.node, f"`{m.user}` may share memory with {them} here, "
                                                   f"so {m.what}; {fix}")

    def check_not_aliased(self, target, stmt):
        current = self.scope.env.get(target.id)
        if not isinstance(current, gast.Name):
            return
        if not self.scope.is_top and current.id not in self.scope.own:
            error = self.error(stmt, f"`{target.id}` is the caller's array here: `{target.id} "
                                     f"{_opsym(stmt.op)}= ...` would change it in the caller too; "
                                     f"write `{target.id} = {target.id} {_opsym(stmt.op)} ...`")
            # numbers are never shared: refuse only if the shapes found later say it is an array
            self.mutations.append(_Mutation(current.id, target.id, "array", {}, 0, False,
                                            self.scope, stmt, "", error))
            return
        self.mutated(target.id, current.id, "array", stmt,
                     "an in-place update would change both")

    def bind(self, user):
        """The name a new binding of the user's variable gets: fresh (SSA) in straight-line
        code; inside loops and branches, the variable's current name (it is overwritten)."""
        if user in self.scope.phi:
            return self.scope.phi[user]
        current = self.scope.env.get(user)
        if self.compound and isinstance(current, gast.Name) and current.id in self.known \
                and current.id in self.scope.own:
            self.mutable.add(current.id)
            return current.id
        name = self.names.bind_user(user)
        self.scope.own.add(name)
        if self.compound:
            self.mutable.add(name)
        return name

    def assign(self, target, value):
        """Bind `target` (a Name, or a tuple of them) to `value`; return the bound atom."""
        if isinstance(target, gast.Name) and isinstance(value, gast.Lambda):
            return self.define_function(target.id, lambda_as_def(value, target.id))
        if isinstance(target, gast.Name):
            self.scope.functions.pop(target.id, None)
            active = self.is_active(value)
            ssa = self.bind(target.id)
            if active:
                atom = self.atom(value, target=ssa)
            else:
                expr = self.rename(value)
                self.emit(Step(ssa, expr, self.origin))
                atom = nodes.name(ssa)
            self.scope.env[target.id] = atom
            return atom
        if isinstance(target, (gast.Tuple, gast.List)):
            if isinstance(value, (gast.Tuple, gast.List)) and len(value.elts) == len(target.elts) \
                    and all(isinstance(t, gast.Name) for t in target.elts):
                atoms = [self.operand(v) for v in value.elts]
                bound = {self.scope.env[t.id].id for t in target.elts
                         if isinstance(self.scope.env.get(t.id), gast.Name)}
                atoms = [self.held(a) if isinstance(a, gast.Name) and a.id in bound else a
                         for a in atoms]           # `a, b = b, a` overwriting in place
                for t, a in zip(target.elts, atoms):
                    self.bind_atom(t.id, a)
                return None
            if not self.is_active(value) and all(isinstance(t, gast.Name) for t in target.elts) \
                    and self.compound:
                whole = self.names.fresh("unpacked")     # each name gets its own saved step
                self.emit(Step(whole, self.rename(value), self.origin))
                self.scope.env.setdefault(whole, nodes.name(whole))
                for k, t in enumerate(target.elts):
                    self.assign(t, nodes.subscript(nodes.name(whole), nodes.const(k)))
                return None
            if not self.is_active(value) and all(isinstance(t, gast.Name) for t in target.elts):
                expr = self.rename(value)
                bound = [self.bind(t.id) for t in target.elts]
                self.bound.update(bound)
                self.known.update(bound)
                stmt = gast.Assign(targets=[nodes.tuple_([nodes.name(b, store=True) for b in bound])],
                                   value=expr, type_comment=None)
                gast.copy_location(stmt, target)
                self.emit(Step(None, None, self.origin, stmt=stmt))
                for t, b in zip(target.elts, bound):
                    self.scope.env[t.id] = nodes.name(b)
                return None
            if all(isinstance(t, gast.Name) for t in target.elts):
                whole = self.operand(value)       # a, b = pair: a = pair[0]; b = pair[1]
                reads = [nodes.subscript(whole, nodes.const(k)) for k in range(len(target.elts))]
                if isinstance(whole, gast.Name):
                    self.scope.env.setdefault(whole.id, whole)
                if isinstance(whole, gast.Name) and whole.id not in {t.id for t in target.elts}:
                    for t, r in zip(target.elts, reads):
                        self.assign(t, r)
                    return None
                atoms = [self.operand(r) for r in reads]
                for t, a in zip(target.elts, atoms):
                    self.bind_atom(t.id, a)
                return None
            raise self.error(target, "cannot differentiate unpacking into nested targets here")
        if isinstance(target, gast.Subscript):
            return self.setitem(target, value, target)
        raise self.error(target, "cannot differentiate assignment into an attribute")

    def setitem(self, target, value, stmt):
        """`x[index] = value`: x changes in place. Its old elements are saved if needed."""
        if not isinstance(target.value, gast.Name) or target.value.id not in self.scope.env:
            raise self.error(target, "cannot differentiate assignment into this element: assign "
                                     "into an array held by a local variable")
        user = target.value.id
        if self.holds_inputs(target.value):
            raise self.error(target, f"cannot write into `{user}`, whose entries are "
                                     "differentiated: build a new dict or array instead")
        if self.is_active(target.slice):
            raise self.error(target.slice, "cannot differentiate with respect to an index")
        current = self.scope.env[user]
        if not self.scope.is_top and current.id not in self.scope.own:
            raise self.error(stmt, f"`{user}` is the caller's array here: writing into it would "
                                   f"change it in the caller too; copy it first (`{user} = "
                                   f"{user}.copy()`)")
        maker = next((s for s in reversed(self.steps) if s.target == current.id), None)
        if maker is not None and isinstance(maker.value, (gast.Dict, gast.Set)):
            raise self.error(stmt, "cannot differentiate writing into a dict or set; keep "
                                   "differentiated values in arrays, lists or variables")
        value_atom = self.operand(value)
        mutation = self.mutated(user, current.id, "list" if current.id in self.lists else "array",
                                stmt, "writing into it would change both")
        if (current.id in self.params and current.id not in self.copied) or self.is_view(current.id):
            # never write into the caller's array (or through a view into another one)
            if self.loops:
                raise self.error(stmt, f"`{user}` is an argument (or a view of an array): copy it "
                                       f"before the loop (`{user} = {user}.copy()`) so that writing "
                                       "into it leaves the caller's array alone")
            copy = gast.Call(func=gast.Attribute(value=nodes.name(user), attr="copy", ctx=gast.Load()),
                             args=[], keywords=[])
            self.assign(nodes.name(user, store=True), copy)
            current = self.scope.env[user]
            self.copied.add(current.id)
        active = self.is_active_name(current.id) or (
            isinstance(value_atom, gast.Name) and self.is_active_name(value_atom.id))
        index = self.rename(target.slice)
        if current.id in nodes.names_in(index):     # `y[y < 0] = 0`: fix the index first
            held = self.names.fresh("mask" if isinstance(target.slice, gast.Compare) else "index")
            self.emit(Step(held, index, self.origin))
            index = nodes.name(held)
        self.mutable.add(current.id)
        self.block.append(SaveItem(current.id, index))
        self.same_statement = {}                   # what was read before the write is stale
        item = SetItem(current.id, index, value_atom, self.origin, active)
        self.block.append(item)
        self.reads(index, value_atom)
        mutation.tick = self.tick
        if active:
            self.active.add(current.id)

    def is_view(self, name_):
        maker = next((s for s in reversed(self.steps) if s.target == name_), None)
        return maker is not None and maker.rule is not None and maker.rule.primal is not None \
            and maker.rule.primal is not identity and may_return_argument(maker.rule.primal) \
            and not _fresh_method_call(maker.value)

    # ---- activity
    def resolve(self, func):
        root = func
        while isinstance(root, gast.Attribute):
            root = root.value
        bound = self.scope.env.get(root.id) if isinstance(root, gast.Name) else None
        if isinstance(bound, gast.Name) and bound.id in self.names.cells:   # a local import
            obj = owner = self.names.cells[bound.id]
            for attr in _attribute_path(func):
                obj = getattr(obj, attr, UNRESOLVED)
            if obj is not UNRESOLVED and func is not root:   # `mod.act` rebound: compile again
                self.guards[(owner, "." + ".".join(_attribute_path(func)))] = obj
            return obj
        if isinstance(func, gast.Name) and func.id in self.scope.env:
            return UNRESOLVED
        root = func
        while isinstance(root, gast.Attribute):
            root = root.value
        if isinstance(root, gast.Name) and root.id not in self.scope.parsed.local_names:
            fn = self.scope.parsed.fn
            self.guards[(fn, root.id)] = lookup_global(fn, root.id)
            found = self.scope.parsed.resolve(func)
            if found is not UNRESOLVED and func is not root:   # `mod.act` rebound: compile again
                self.guards[(fn, ".".join([root.id] + _attribute_path(func)))] = found
            return found
        return self.scope.parsed.resolve(func)

    def is_active(self, node):
        if self.nograd:
            return False
        if isinstance(node, gast.Name):
            if node.id in self.scope.loop_users:
                return True
            atom = self.scope.env.get(node.id)
            return isinstance(atom, gast.Name) and atom.id in self.active
        if isinstance(node, (gast.Constant, gast.Compare)):
            return False
        if isinstance(node, gast.BoolOp):          # `a or b` is a or b, not a truth value
            return any(self.is_active(v) for v in node.values)
        if isinstance(node, gast.UnaryOp) and isinstance(node.op, gast.Not):
            return False
        if isinstance(node, gast.Attribute):
            if self.input_of(node) is not None:
                return True
            return node.attr not in _INACTIVE_ATTRS and self.is_active(node.value)
        if isinstance(node, gast.Subscript):
            if self.input_of(node) is not None:
                return True
            if self.holds_inputs(node.value, items=True):
                raise self.error(node, f"`{nodes.to_source(node.value)}` is differentiated entry by "
                                       "entry: read its entries with constant string keys "
                                       f"(`{nodes.to_source(node.value)}['w']`)")
            if isinstance(node.value, (gast.Name, gast.Attribute)) and self.is_active(node.slice) \
                    and not self.is_active(node.value) and _is_index_builder(self.resolve(node.value)):
                raise self.error(node, f"cannot differentiate `{nodes.to_source(node.value)}[...]` "
                                       "of differentiated values: build the array with "
                                       "np.concatenate, np.stack or np.column_stack")
            return self.is_active(node.value)
        if isinstance(node, gast.Call):
            if isinstance(node.func, gast.Name) and node.func.id in self.scope.functions:
                return True                    # a function defined in here: always inlined
            if self.is_getattr(node) and self.input_path(node) is not None:
                return self.input_of(node) is not None or self.is_active(node.args[0])
            callee = self.resolve(node.func)
            from ..api import stop_gradient
            if callee is stop_gradient or (callee is not UNRESOLVED and rules.is_nondifferentiable(callee)):
                return False
            if isinstance(node.func, gast.Attribute) and (self.is_active(node.func.value)
                                                          or self.holds_inputs(node.func.value)):
                return True
            return any(self.is_active(a) or self.holds_inputs(a) for a in node.args) or \
                any(self.is_active(k.value) or self.holds_inputs(k.value) for k in node.keywords)
        return any(self.is_active(child) for child in gast.iter_child_nodes(node))

    def rename(self, node):
        """`node` with the user's names replaced by their current bindings."""
        self.check_input_uses(node)
        scope = self.scope
        mapping = {}
        for n in gast.walk(node):
            if isinstance(n, gast.Attribute) and scope.is_top:
                self.module_constant_kind(n)
            if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Load):
                if n.id in scope.functions:
                    raise self.error(n, f"cannot differentiate a use of `{n.id}`, a function "
                                        "defined inside the differentiated one, other than a call")
                if n.id in scope.env:
                    mapping[n.id] = scope.env[n.id]
                elif not scope.is_top and n.id not in scope.parsed.local_names:
                    mapping[n.id] = self.helper_global(scope.parsed, n.id)
                elif n.id not in scope.parsed.local_names:
                    self.constant_kind(scope.parsed.fn, n.id, n.id)
        return nodes.rename(node, mapping) if mapping else nodes.clone(node)

    def helper_global(self, parsed, name_):
        """How the generated code reads a global of an inlined helper from another namespace:
        modules, functions and classes by closure cell; data through its module, live."""
        obj = parsed.resolve(nodes.name(name_))
        if obj is UNRESOLVED:
            return nodes.name(name_)
        if self.top.resolve(nodes.name(name_)) is obj and name_ not in self.top.local_names \
                and parsed.fn.__globals__ is self.top.fn.__globals__ and name_ not in self.names.used:
            self.names.globals_read.add(name_)       # read bare: nothing may take this name
            self.names.reserved.add(name_)
            self.constant_kind(parsed.fn, name_, name_)
            return nodes.name(name_)
        if isinstance(obj, (types.ModuleType, type)) or callable(obj):
            self.guards[(parsed.fn, name_)] = obj
            return nodes.name(self.names.cell(name_, obj))
        module = sys.modules.get(parsed.fn.__module__)
        if module is not None and getattr(module, "__dict__", None) is parsed.fn.__globals__ \
                and name_ in parsed.fn.__globals__:
            alias = self.names.cell(module.__name__.rsplit(".", 1)[-1], module)
            return nodes.attribute(nodes.name(alias), name_)
        self.guards[(parsed.fn, name_)] = obj
        return nodes.name(self.names.cell(name_, obj))

    def constant_kind(self, fn, user, name_):
        """A module or closure constant `user` that `fn` reads (`DT = 0.01`), known to the code
        as `name_`."""
        if name_ not in self.free_kinds:
            self.note_constant(fn, user, name_, lookup_global(fn, user), guarded=True)

    def module_constant_kind(self, node):
        """`cfg.DT` or `np.pi`, a number or array read from a module the function names."""
        root = node
        while isinstance(root, gast.Attribute):
            root = root.value
        if not isinstance(root, gast.Name) or root.id in self.scope.env \
                or root.id in self.scope.parsed.local_names:
            return
        dotted = ".".join([root.id] + _attribute_path(node))
        module = self.scope.parsed.resolve(root)
        if dotted in self.free_kinds or not isinstance(module, types.ModuleType):
            return
        self.note_constant(self.scope.parsed.fn, dotted, dotted, self.scope.parsed.resolve(node),
                           guarded=module.__name__.split(".")[0] not in ("math", "numpy", "cmath"))

    def note_constant(self, fn, read, name_, value, guarded):
        """The kind of a constant `fn` reads as `read` joins the shapes (as `name_`); with
        `guarded`, a guard recompiles when it changes kind (another value of the same kind
        does not)."""
        kind = constant_kind(value, name_)
        if kind is not None:
            self.free_kinds[name_] = kind
            if guarded:
                self.guards[(fn, "~" + read)] = value_kind(value)

    # ---- expressions
    def operand(self, node):
        """An atom for `node`; compound inactive values get a name of their own."""
        atom = self.atom(node)
        if nodes.is_atom(atom) or not nodes.names_in(atom):
            return atom
        target = self.names.fresh(describe(atom))
        self.emit(Step(target, atom, self.origin))
        return nodes.name(target)

    def atom(self, node, target=None):
        """Normalize `node`; when `target` is given, bind the result to that name."""
        if not self.is_active(node):
            expr = self.rename(node)
            if target is None:
                return expr
            self.emit(Step(target, expr, self.origin))
            return nodes.name(target)
        found = self.input_of(node) if isinstance(node, (gast.Attribute, gast.Subscript)) or \
            self.is_getattr(node) else None
        if found is not None:                   # `self.w`, `params["w"]`: read once, at the top
            if target is None:
                return nodes.name(found)
            self.bind_copy(target, nodes.name(found))
            return nodes.name(target)
        method = getattr(self, f"expr_{type(node).__name__}", None)
        if method is None:
            raise self.error(node, _UNSUPPORTED_EXPRESSIONS.get(
                type(node).__name__, f"cannot differentiate a `{type(node).__name__}` expression yet"))
        return method(node, target)

    def op(self, target, rule, operands, keywords, value, node):
        used = {n for a in list(operands) + list(keywords.values()) for n in nodes.names_in(a)}
        if target is not None and target in used and target in self.mutable \
                and not self.updates_in_place(rule, operands, target):
            temp = self.op(None, rule, operands, keywords, value, node)
            return self.op(target, rules.lookup(identity), [temp], {}, temp, node)
        key = (rule.name, nodes.structure(value))
        if target is None and key in self.same_statement:   # `x[k] * x[k]`: read x[k] once
            return self.same_statement[key]
        target = target or self.names.fresh(describe(value))
        self.emit(Step(target, value, self.origin, rule=rule, operands=operands,
                       keywords=keywords, active=True))
        self.same_statement[key] = nodes.name(target)
        self.active.add(target)
        return nodes.name(target)

    def updates_in_place(self, rule, operands, target):
        """Whether `target = rule(..., target, ...)` can overwrite `target` directly: no
        partial derivative the adjoint needs reads the old value of `target`."""
        if rule.kind != "partial" or len(operands) != len(rule.primal_params):
            return False
        template = template_for(rule)
        old = {p for p, a in zip(rule.primal_params, operands) if nodes.is_name(a, target)}
        for position, atom in enumerate(operands):
            if isinstance(atom, gast.Name) and (atom.id in self.active or atom.id == target):
                part = template.part(position)
                if part is not None and nodes.names_in(part) & old:
                    return False
        return True

    def expr_List(self, node, target):
        """`[a, b]` or `(a, b)` of differentiated values: a list whose adjoint is a list."""
        if any(isinstance(e, gast.Starred) for e in node.elts):
            raise self.error(node, "cannot differentiate a starred element in a list or tuple")
        atoms = type(node)(elts=[self.operand(e) for e in node.elts], ctx=gast.Load())
        if any(isinstance(a, gast.Name) and a.id in self.lists for a in atoms.elts):
            raise self.error(node, "cannot differentiate a list of lists of differentiated values; "
                                   "use np.array or np.stack for nested values")
        result = self.op(target, rules.lookup(make_list), [atoms], {}, atoms, node)
        self.lists.add(result.id)
        return result

    expr_Tuple = expr_List

    def expr_Name(self, node, target):
        atom = self.scope.env[node.id]
        if target is None:
            return atom
        return self.op(target, rules.lookup(identity), [atom], {}, atom, node)

    def expr_BinOp(self, node, target):
        primal = getattr(__import__("operator"), _OPERATORS.get(type(node.op), ""), None)
        rule = rules.lookup(primal) if primal else None
        if rule is None:
            raise self.error(node, f"cannot differentiate the operator `{_opsym(node.op)}`")
        left, right = self.operand(node.left), self.operand(node.right)
        if any(isinstance(a, (gast.List, gast.Tuple)) or (isinstance(a, gast.Name) and a.id in self.lists)
               for a in (left, right)):
            raise self.error(node, "cannot differentiate arithmetic on lists or tuples (it "
                                   "concatenates or repeats them); build the list with append "
                                   "or a literal, or use np.array / np.stack")
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
        if isinstance(value, gast.Name) and value.id in self.lists and (
                _has_slice(index) or isinstance(index, (gast.List, gast.Tuple))):
            raise self.error(node, "srcgrad differentiates reading one element of a list "
                                   f"(`{nodes.to_source(node.value)}[i]`), not a slice of it; use "
                                   f"np.stack({nodes.to_source(node.value)})[...] instead")
        if _has_slice(index):
            import numpy as np
            index_expr = nodes.subscript(nodes.attribute(nodes.name(self.names.cell("np", np)), "s_"),
                                         index)
        else:
            index_expr = index
        return self.op(target, rules.lookup(operator.getitem), [value, index_expr], {},
                       nodes.subscript(value, index), node)

    def method_of(self, func):
        """The plain function `obj.name` calls, for an object whose attributes are
        differentiated and whose class the compile key names (guarded: rebinding the
        method on its class compiles again)."""
        if not isinstance(func.value, gast.Name):
            return None
        root = self.scope.env[func.value.id].id
        cls = self.kinds.get(f"type({root})")
        if not isinstance(cls, type):
            return None
        if func.attr in self.kinds.get(f"shadowed({root})", ()):
            raise self.error(func, f"cannot differentiate `{nodes.to_source(func)}(...)`: the "
                                   f"object's own attribute `{func.attr}` hides the method of "
                                   f"its class {cls.__name__}; call a function instead")
        home = next((c for c in cls.__mro__ if func.attr in c.__dict__), None)
        method = home.__dict__[func.attr] if home is not None else None
        if not isinstance(method, types.FunctionType):
            return None
        self.guards[(cls, func.attr)] = method
        return method

    def holds_inputs(self, node, items=False):
        """Whether `node` is an object whose attributes (or, with `items`, a dict whose
        entries) are differentiated (`self` for wrt "self.w", also `m` after `m = self`, and
        `self.sub` for wrt "self.sub.w"): a call it is passed to is differentiated, not run
        as a constant."""
        if not self.inputs or self.nograd:
            return False
        path = self.input_path(node)
        return path is not None and any(
            len(rest) and (not items or rest[0][0] == "item") for rest, _ in self.inputs_under(path))

    def input_path(self, node, renamed=False):
        """(root SSA name, ((kind, part), ...)) for a read `root.a["b"].c` of a variable
        (`obj.__dict__["w"]` and `getattr(obj, "w")` read `obj.w`), else None. `renamed`:
        `node` already reads SSA names."""
        steps = []
        while True:
            if isinstance(node, gast.Attribute):
                steps.append(("attr", node.attr))
                node = node.value
            elif isinstance(node, gast.Subscript) and isinstance(node.slice, gast.Constant) \
                    and isinstance(node.slice.value, str):
                steps.append(("item", node.slice.value))
                node = node.value
            elif self.is_getattr(node):
                steps.append(("attr", node.args[1].value))
                node = node.args[0]
            else:
                break
        if not isinstance(node, gast.Name):
            return None
        atom = node if renamed else self.scope.env.get(node.id)
        if not isinstance(atom, gast.Name):
            return None
        path = []
        for step in reversed(steps):
            if path and path[-1] == ("attr", "__dict__") and step[0] == "item":
                path[-1] = ("attr", step[1])
            else:
                path.append(step)
        return atom.id, tuple(path)

    def is_getattr(self, node):
        return isinstance(node, gast.Call) and len(node.args) == 2 and not node.keywords \
            and isinstance(node.args[1], gast.Constant) and isinstance(node.args[1].value, str) \
            and self.resolve(node.func) is builtins.getattr

    def inputs_under(self, path):
        """[(the rest of the path, the input's name)] for each wrt value read through `path`."""
        root, steps = path
        n = len(steps)
        return [(s[n:], name_) for (r, s), name_ in self.inputs.items()
                if r == root and s[:n] == steps]

    def input_of(self, node):
        """The name of a wrt attribute path (`self.w`) that `node` reads, else None."""
        if not self.inputs or self.nograd:
            return None
        path = self.input_path(node)
        if path is None:
            return None
        if ("attr", "__dict__") in path[1] and self.inputs_under((path[0], ())):
            raise self.error(node, f"cannot differentiate `{nodes.to_source(node)}`: read the "
                                   "differentiated attributes by name (`obj.w`), not through "
                                   "`__dict__`")
        return self.inputs.get(path)

    def alias_input_holder(self, step):
        """`m = self` or `sub = self.sub` (wrt "self.sub.w"): `m.w` then reads the same input.
        The name must hold that object wherever it is bound."""
        target = step.target
        path = self.input_path(step.value, renamed=True) if step.value is not None else None
        under = [(rest, n) for rest, n in self.inputs_under(path) if rest] if path else []
        if target in self.holders:
            if self.holders[target] != path:
                raise self.error(self.origin.node, f"cannot differentiate this: "
                                 f"`{nodes.to_source(step.value)}` is bound to a name that also "
                                 "holds an object whose attributes are differentiated; use "
                                 "another name")
            return
        if not under:
            return
        if target in self.known:
            raise self.error(self.origin.node, f"cannot differentiate binding "
                             f"`{nodes.to_source(step.value)}`, whose attributes are "
                             "differentiated, to a name that held another value: use a new name")
        self.holders[target] = path
        for rest, name_ in under:
            self.inputs[(target, rest)] = name_

    def check_input_uses(self, node):
        """Refuse reading an object whose attributes are differentiated other than through
        its attributes: inside a list, a call that is not inlined, an expression. (Binding
        it to a name, and passing it to a helper, are handled where they happen.)"""
        if not self.inputs or self.nograd:
            return
        def visit(n, top):
            if self.input_path(n) is not None:
                if self.holds_inputs(n) and not top:
                    raise self.error(n, f"cannot differentiate this use of `{nodes.to_source(n)}`,"
                                        " whose attributes are differentiated: read them by name"
                                        f" (`{nodes.to_source(n)}.w`) or pass it to a function")
                self.input_of(n)                  # `__dict__` refused
                return
            if isinstance(n, gast.Call) and self.resolve(n.func) in _HARMLESS:
                return
            for child in gast.iter_child_nodes(n):
                visit(child, False)
        visit(node, True)

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
        if isinstance(func, gast.Name) and func.id in self.scope.functions:
            return self.inline_local(node, target, self.scope.functions[func.id])
        if isinstance(func, gast.Attribute) and (self.is_active(func.value) or (
                rules.method_primal(func.attr) and self.is_known_array(func.value))):
            return self.method_call(node, target)
        if isinstance(func, gast.Attribute) and self.holds_inputs(func.value):
            method = self.method_of(func)
            if method is not None:            # self.predict(x): predict(self, x), inlined
                call = gast.copy_location(gast.Call(func=func, args=[func.value] + list(node.args),
                                                    keywords=node.keywords), node)
                return self.inline(call, target, method)
            path = ", ".join(self.wrt_labels)
            raise self.error(func, f"cannot differentiate the method call `{nodes.to_source(func)}"
                                   f"(...)` with respect to {path}: srcgrad inlines functions, "
                                   "not methods of an object passed in; call a function that "
                                   f"takes the object (`{func.attr}({nodes.to_source(func.value)}, ...)`)")
        callee = self.resolve(func)
        if callee is UNRESOLVED:
            hint = ""
            if isinstance(func, gast.Attribute) and rules.method_primal(func.attr):
                primal = rules.method_primal(func.attr)[0]
                hint = (f"; if `{nodes.to_source(func.value)}` is an array, write "
                        f"np.{getattr(primal, '__name__', func.attr)}({nodes.to_source(func.value)}, ...)")
            raise self.error(func, f"cannot tell which function `{nodes.to_source(func)}` is: "
                                   "call a function defined at module level or imported" + hint)
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
        if "dtype" in params and params.index("dtype") < len(args) and \
                not _is_float_dtype(self, args[params.index("dtype")]):
            raise self.error(node, f"{rule.name} with dtype={nodes.to_source(args[params.index('dtype')])}"
                                   ": differentiated for float dtypes only (an integer result has "
                                   "no gradient: use srcgrad.stop_gradient)")
        keywords = {}
        for kw in node.keywords:
            if kw.arg == "out" and not (isinstance(kw.value, gast.Constant) and kw.value.value is None):
                raise self.error(kw.value, f"cannot differentiate {rule.name} with `out=`, which "
                                           "writes into an array in place; assign the result")
            if kw.arg == "dtype" and not _is_float_dtype(self, kw.value):
                raise self.error(kw.value, f"{rule.name} with dtype={nodes.to_source(kw.value)}: "
                                           "differentiated for float dtypes only (an integer "
                                           "result has no gradient: use srcgrad.stop_gradient)")
            if kw.arg not in params:
                raise self.error(kw.value, f"{rule.name}: the argument `{kw.arg}` is not supported "
                                           "by its derivative rule")
            keywords[kw.arg] = self.operand(kw.value)
        defaults = template_for(rule).defaults
        missing = [p for p in params[len(args):] if p not in keywords and p not in defaults]
        if missing:
            raise self.error(node, f"{rule.name} is differentiated when called with "
                                   f"{len(params)} arguments ({', '.join(params)}); "
                                   + ("for the largest or smallest element use np.max / np.min"
                                      if rule.primal in (builtins.max, builtins.min) else
                                      f"`{missing[0]}` is missing"))
        return keywords

    def is_known_array(self, node):
        """Whether `node.method(...)` may be taken for the ndarray method: yes for arrays and
        values computed in the function, no for an argument that is not an array (a user
        object, whose `.sum` or `.dot` could be anything) or an object a class call made."""
        if not isinstance(node, gast.Name) or not isinstance(self.scope.env.get(node.id), gast.Name):
            return False
        name_ = self.scope.env[node.id].id
        if name_ in self.params:
            kind = self.kinds.get(name_)
            return kind == SCALAR or isinstance(kind, tuple) and kind[0] == "array"
        if not self.scope.is_top and name_ not in self.scope.own:
            return False
        maker = next((s for s in reversed(self.steps) if s.target == name_), None)
        if maker is None or maker.value is None:
            return False
        if isinstance(maker.value, gast.Call):
            func = maker.value.func
            callee = self.names.cells.get(func.id) if isinstance(func, gast.Name) and \
                func.id in self.names.cells else self.top.resolve(func)
            module = getattr(callee, "__module__", None) or ""
            return callee is not UNRESOLVED and (module.startswith("numpy") or self.makes_array(maker.value))
        return True

    def makes_array(self, expr):
        """Whether the (renamed) expression surely evaluates to a numpy array."""
        if isinstance(expr, gast.Call):
            func = expr.func
            callee = self.names.cells.get(func.id) if isinstance(func, gast.Name) and \
                func.id in self.names.cells else self.top.resolve(func)
            from ..api import stop_gradient
            if callee is stop_gradient and expr.args:
                return self.makes_array(expr.args[0]) or self.kind_is_array(expr.args[0])
            module = getattr(callee, "__module__", None)
            return isinstance(module, str) and module.startswith("numpy") and \
                any(self.makes_array(a) or self.kind_is_array(a) for a in expr.args[:1])
        if isinstance(expr, gast.BinOp):
            return any(self.makes_array(e) or self.kind_is_array(e) for e in (expr.left, expr.right))
        if isinstance(expr, gast.UnaryOp):
            return self.makes_array(expr.operand) or self.kind_is_array(expr.operand)
        return False

    def kind_is_array(self, atom):
        if not isinstance(atom, gast.Name) or atom.id in self.mutable:
            return False
        kind = self.kinds.get(atom.id)
        if isinstance(kind, tuple) and kind[0] == "array":
            return True
        maker = next((s for s in reversed(self.steps) if s.target == atom.id), None)
        return maker is not None and maker.value is not None and self.makes_array(maker.value)

    def rule_call(self, node, target, rule):
        params = rule.primal_params
        if params and params[0] == "arrays":   # np.concatenate((a, b)), np.stack([a, b])
            first = node.args[0] if node.args else None
            if isinstance(first, (gast.Tuple, gast.List)):
                seq = type(first)(elts=[self.operand(e) for e in first.elts], ctx=gast.Load())
            elif first is not None:
                seq = self.operand(first)         # a list built earlier (xs.append(...))
            else:
                raise self.error(node, f"{rule.name}: pass the arrays as a list or tuple")
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
            return self.recursive_call(node, target, callee)
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
        if callee not in self.inlined:
            self.inlined.append(callee)
        if not _is_library(parsed.filename) or _is_library(self.scope.parsed.filename):
            return self.inline_body(node, target, callee, _Scope(parsed, env, False))
        try:                                   # say where the user called into the library
            return self.inline_body(node, target, callee, _Scope(parsed, env, False))
        except UnsupportedError as exc:
            inner = f"{exc.filename}:{exc.lineno}" if exc.lineno else exc.filename
            name_ = f"{getattr(callee, '__module__', '')}.{callee.__qualname__}".lstrip(".")
            raise self.error(node, f"cannot differentiate `{name_}` (library code; at {inner}: "
                                   f"{exc.message}); register a derivative rule for it with "
                                   "srcgrad.rules.partial or srcgrad.rules.vjp, or mark its "
                                   "result with srcgrad.stop_gradient") from exc

    def inline_body(self, node, target, callee, scope):
        """Normalize `callee`'s body in `scope` (its parameters bound) in place of the call
        `node`; the value it returns (a tuple of them: a list of values)."""
        saved_scope, saved_origin = self.scope, self.origin
        self.outer.append(saved_scope)
        self.scope = scope
        self.inlining.append(callee)
        try:
            outputs, is_tuple, _ = self.body(self.lower_returns(scope.parsed.node.body), final=True,
                                             target=target)
        finally:
            self.scope, self.origin = saved_scope, saved_origin
            self.inlining.pop()
            self.outer.pop()
        if is_tuple:
            pack = nodes.tuple_(outputs)
            result = self.op(target, rules.lookup(make_list), [pack], {}, pack, node)
            self.lists.add(result.id)
            return result
        return outputs[0]

    def recursive_call(self, node, target, callee):
        """`g(n - 1, x)` inside g: a depth known only at run time cannot be inlined, so the
        forward sweep runs g's own VJP (`g_call = RecursiveCall(g, "x", n_1, x)`, compiled
        once per kind of arguments) and the adjoint sweep calls `g_call.pullback`."""
        args = [self.operand(a) for a in node.args]
        keywords = {k.arg: self.operand(k.value) for k in node.keywords}
        try:
            bound = inspect.signature(callee).bind(*args, **keywords)
        except TypeError as exc:
            raise self.error(node, f"bad call to `{callee.__name__}`: {exc}") from exc
        active = []
        for name_, atom in bound.arguments.items():
            if isinstance(atom, gast.Name) and self.is_active_name(atom.id) \
                    and atom.id not in self.lists:
                active.append(name_)
            elif any(self.is_active_name(n) for n in nodes.names_in(atom)):
                raise self.error(node, f"cannot differentiate the recursive call to "
                                       f"`{callee.__name__}`: pass each differentiated value as "
                                       "an argument of its own, not inside a list or tuple")
        wrt = nodes.const(active[0]) if len(active) == 1 else nodes.tuple_(map(nodes.const, active))
        call = self.names.fresh(f"{callee.__name__}_call")
        maker = nodes.name(self.names.cell("RecursiveCall", RecursiveCall))
        self.emit(Step(call, nodes.call(maker, [self.rename(node.func), wrt] + args, keywords.items()),
                       self.origin))
        rule = rules.Rule(primal=None, name=f"{callee.__qualname__} (recursive)", kind="pullback",
                          fn=None, params=(), uses_output=False)
        operands = [nodes.name(call)] + [bound.arguments[n] for n in active]
        return self.op(target, rule, operands, {}, nodes.attribute(nodes.name(call), "value"), node)

    def inline_local(self, node, target, fdef):
        """A call of a function defined inside the differentiated one: inlined with its
        arguments, reading the enclosing function's variables as they are at the call."""
        if any(f is fdef for f in self.inlining):
            raise self.error(node, f"cannot differentiate the recursive call to `{fdef.name}`, "
                                   "a function defined inside the differentiated one: define it "
                                   "at module level")
        a = fdef.args
        params = [p.id for p in a.args]
        if len(node.args) > len(params):
            raise self.error(node, f"bad call to `{fdef.name}`: too many arguments")
        given = dict(zip(params, node.args))
        for k in node.keywords:
            if k.arg not in params or k.arg in given:
                raise self.error(node, f"bad call to `{fdef.name}`: unexpected or repeated "
                                       f"argument `{k.arg}`")
            given[k.arg] = k.value
        defaults = dict(zip(params[len(params) - len(a.defaults):], a.defaults))
        env = {}
        for p in params:
            if p in given:
                env[p] = self.operand(given[p])
            elif p in defaults:
                env[p] = nodes.const(defaults[p].value)
            else:
                raise self.error(node, f"bad call to `{fdef.name}`: missing argument `{p}`")
        enclosing = self.scope
        inner = local_names(fdef)
        for free in nodes.names_in(fdef) - inner:      # the enclosing variables it reads
            if free in enclosing.env:
                env.setdefault(free, enclosing.env[free])
        parsed = replace(enclosing.parsed, node=fdef, local_names=inner, label=fdef.name,
                         is_lambda=False)
        scope = _Scope(parsed, env, False)
        scope.functions = {k: f for k, f in enclosing.functions.items() if k not in inner}
        return self.inline_body(node, target, fdef, scope)

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


def _attribute_path(node):
    """["linalg", "norm"] for `np.linalg.norm`."""
    path = []
    while isinstance(node, gast.Attribute):
        path.append(node.attr)
        node = node.value
    return path[::-1]


def _flag(name_, value, where):
    assign = gast.Assign(targets=[nodes.name(name_, store=True)], value=nodes.const(value),
                         type_comment=None)
    return gast.copy_location(assign, where)


def _walk_loop_body(stmts):
    """The nodes of a loop body that belong to this loop (not to loops or functions inside)."""
    nested = (gast.For, gast.While, gast.FunctionDef, gast.AsyncFunctionDef, gast.Lambda, gast.ClassDef)
    for stmt in stmts:
        yield stmt
        if isinstance(stmt, nested):
            continue
        for child in gast.iter_child_nodes(stmt):
            if not isinstance(child, nested):
                yield from _walk_loop_body([child])


def _is_append(node):
    return isinstance(node, gast.Call) and isinstance(node.func, gast.Attribute) \
        and node.func.attr == "append" and isinstance(node.func.value, gast.Name) \
        and len(node.args) == 1 and not node.keywords


def _stored_names(stmts):
    """User names the statements assign (not inside nested functions)."""
    found = []
    for stmt in stmts:
        for node in _walk_own(stmt):
            for names, _ in _assignments(node):
                found += [n for n in names if n not in found]
    return found


_NESTED_RETURNS = 12     # more early returns than this: flat `if not returned:` blocks


class _NeedsFlag(Exception):
    """Early returns that need a `returned` flag (lower_returns starts again with one)."""


def _walk_own(node):
    """Like gast.walk, but not into nested function or class definitions."""
    yield node
    if isinstance(node, (gast.FunctionDef, gast.AsyncFunctionDef, gast.Lambda, gast.ClassDef)):
        return
    for child in gast.iter_child_nodes(node):
        yield from _walk_own(child)


def _assignments(node):
    """[(assigned user names, value)] for an assignment node (value None for loop targets)."""
    def names(t):
        while isinstance(t, gast.Subscript):      # x[i] = v assigns x, not i
            t = t.value
        return [n.id for n in gast.walk(t) if isinstance(n, gast.Name)]
    if isinstance(node, gast.Assign):
        return [(names(t), node.value) for t in node.targets]
    if isinstance(node, gast.AugAssign):
        return [(names(node.target), gast.BinOp(left=node.target, op=node.op, right=node.value))]
    if isinstance(node, gast.AnnAssign) and node.value is not None:
        return [(names(node.target), node.value)]
    if isinstance(node, gast.For):
        target, it = node.target, node.iter
        if isinstance(it, gast.Call) and isinstance(it.func, gast.Name) and it.func.id == "enumerate" \
                and isinstance(target, gast.Tuple) and len(target.elts) == 2:
            target = target.elts[1]                 # the count is an int, never differentiated
        return [(names(target), it)]
    if isinstance(node, gast.Expr) and _is_append(node.value):
        return [([node.value.func.value.id], node.value.args[0])]
    return []


def _is_float_dtype(normalizer, node):
    """Whether a dtype argument surely names a floating-point type."""
    import numpy as np
    if isinstance(node, gast.Constant):
        value = node.value
    else:
        value = normalizer.resolve(node)
        if value is UNRESOLVED:
            return False
    try:
        return value is not None and np.issubdtype(np.dtype(value), np.floating)
    except TypeError:
        return False


_MAKERS = None


def _ARRAY_MAKERS():
    global _MAKERS
    if _MAKERS is None:
        import numpy as np
        _MAKERS = {np.array, np.asarray, np.asanyarray, np.copy, np.zeros, np.ones, np.empty,
                   np.full, np.zeros_like, np.ones_like, np.empty_like, np.full_like, np.reshape,
                   np.squeeze, np.require, np.ascontiguousarray}
    return _MAKERS


def _fresh_method_call(value):
    """`x.flatten()`: a method that shares its rule with a view (np.ravel) but copies."""
    return isinstance(value, gast.Call) and isinstance(value.func, gast.Attribute) and \
        not may_return_argument(None, value.func.attr)


def _integer_index(index, shapes):
    """Whether an index is one integer: literals and numbers combined by arithmetic
    (`i`, `-1`, `i - 1`, `(k + 1) % 3`)."""
    if isinstance(index, gast.Constant):
        return type(index.value) is int
    if isinstance(index, gast.Name):
        return shapes.get(index.id) == SCALAR
    if isinstance(index, gast.UnaryOp):
        return _integer_index(index.operand, shapes)
    if isinstance(index, gast.BinOp):
        return _integer_index(index.left, shapes) and _integer_index(index.right, shapes)
    return False


def _position(node):
    return getattr(node, "lineno", 0) or 0, getattr(node, "col_offset", 0) or 0


def _is_index_builder(obj):
    """np.r_, np.c_ and their kin: objects that build arrays when subscripted."""
    import numpy as np
    return any(obj is maker for maker in (np.r_, np.c_, np.s_, np.index_exp, np.mgrid, np.ogrid))


def _is_library(filename):
    """Whether `filename` belongs to Python's standard library or an installed package."""
    import os
    import sysconfig
    if not filename or filename.startswith("<"):
        return False
    path = os.path.realpath(filename)
    roots = {sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    return any(root and path.startswith(os.path.realpath(root) + os.sep) for root in roots)


_HARMLESS = {builtins.len, builtins.isinstance, builtins.type, builtins.print, builtins.id,
             builtins.hasattr, builtins.str, builtins.repr}


_INTROSPECTION = {"eval", "exec", "locals", "vars", "globals", "compile", "_getframe",
                  "currentframe", "stack", "dir", "__import__"}


def _reads_names_dynamically(node, resolve):
    """Whether `node` names (or calls) something that reads or runs code by variable name."""
    if isinstance(node, gast.Call):
        callee = resolve(node.func)
        named = [a.value for a in node.args[1:2] if isinstance(a, gast.Constant)]
        return (callee is builtins.dir and not node.args) or (
            callee is builtins.getattr and bool(named) and named[0] in _INTROSPECTION)
    if not isinstance(node, (gast.Name, gast.Attribute)) or not isinstance(node.ctx, gast.Load):
        return False
    if isinstance(node, gast.Name) and node.id == "__builtins__":
        return True
    obj = resolve(node)
    return any(obj is f for f in (builtins, builtins.__dict__, builtins.eval, builtins.exec,
                                  builtins.locals, builtins.vars, builtins.globals,
                                  builtins.compile, sys._getframe, inspect.currentframe,
                                  inspect.stack))


def _has_slice(index):
    return any(isinstance(n, gast.Slice) for n in gast.walk(index))


def _opsym(op):
    return {gast.Add: "+", gast.Sub: "-", gast.Mult: "*", gast.Div: "/", gast.Pow: "**",
            gast.MatMult: "@", gast.Mod: "%", gast.FloorDiv: "//"}.get(type(op), "?")


_MUTATING_METHODS = {"fill", "sort", "resize", "put", "itemset", "partition", "setfield",
                     "byteswap", "setflags", "extend", "insert", "pop", "remove", "clear",
                     "reverse", "update", "setdefault"}

_UNSUPPORTED_STATEMENTS = {
    "Try": "cannot differentiate a `try` block",
    "Raise": "cannot differentiate a `raise` statement yet",
    "ClassDef": "cannot differentiate a function that defines a class",
    "Delete": "cannot differentiate a `del` statement",
    "AsyncWith": "cannot differentiate an `async with` block",
    "Match": "cannot differentiate a `match` statement yet",
}
_UNSUPPORTED_EXPRESSIONS = {
    "Lambda": "cannot differentiate a lambda that uses a differentiated value here",
    "ListComp": "cannot differentiate a list comprehension yet",
    "GeneratorExp": "cannot differentiate a generator expression yet",
    "DictComp": "cannot differentiate a dict comprehension yet",
    "SetComp": "cannot differentiate a set comprehension yet",
    "Dict": "cannot differentiate a dict of differentiated values yet",
    "Starred": "cannot differentiate a starred expression",
    "NamedExpr": "cannot differentiate an assignment expression (`:=`) yet",
    "JoinedStr": "cannot differentiate an f-string of a differentiated value",
}
