"""Reverse: a normalized program -> its adjoint sweep.

Walking the program backwards, each active step's rule is inlined with the
step's own names to give the contribution to each active operand's adjoint.
Branches are replayed on the condition the forward sweep recorded; loops run
backwards (`for t in reversed(range_t)`, `for _ in range(iterations)`);
values a loop or branch overwrote are restored from the stack the forward
sweep pushed them on (`h = h_stack.pop()`), so at every point of the adjoint
sweep each name holds the value it had at the same point of the forward sweep.

Two ways to build an adjoint `d_v`:
- *summed once*, for values defined once in straight-line code and used only
  there: `d_v` is assigned exactly once, by the sum of its contributions, right
  after the last one is known; an adjoint that is only a copy is not written.
- *accumulated*, for everything else: the first contribution assigns `d_v`, the
  next ones add to it; a (re)definition of `v` ends the life of `d_v`. Where
  control flow joins a live adjoint with one that is known to be zero, the
  zero is written out (`d_v = zeros_like(v)`).
Only adjoints on a path from `wrt` to the output are computed.
"""
from collections import defaultdict
from dataclasses import dataclass, field

import gast
import numpy as np

from . import nodes
from .normalize import Append, IfItem, LoopItem, SaveItem, SetItem, Step
from .shapes import SCALAR
from .optimize import product, simplify
from .templates import free_names, global_value, template_for
from .. import runtime


@dataclass(eq=False)
class Line:
    """One line of the adjoint sweep: an assignment, or a marker."""
    origin: object
    target: str = None
    value: object = None
    kind: str = "assign"          # "assign", "restore" (pop a saved value), "zeros"


@dataclass(eq=False)
class Block:
    """A compound statement of the adjoint sweep: `header:` + body (+ `else:` body)."""
    origin: object
    header: object                # ("if", cond) / ("for", target, iterable)
    body: list
    orelse: list = field(default_factory=list)


@dataclass(eq=False)
class Adjoint:
    lines: list                   # Lines and Blocks, in order
    grads: list                   # one gast expression per wrt parameter
    seed_params: list             # vjp mode: the pullback's parameters
    saved: set                    # names whose overwritten values must be saved
    referenced: set = frozenset() # names the adjoint sweep reads
    saved_shapes: set = frozenset()  # names whose shapes (not values) are saved
    shape_names: dict = None      # name -> the variable holding its shape


def reverse(program, wrt, mode):
    return _Reverse(program, wrt, mode).run()


def walk_steps(items):
    """Every Step and SetItem in `items`, nested ones included, in order."""
    for item in items:
        if isinstance(item, (Step, SetItem, Append)):
            yield item
        elif isinstance(item, IfItem):
            yield from walk_steps(item.body)
            yield from walk_steps(item.orelse)
        elif isinstance(item, LoopItem):
            yield from walk_steps(item.body)


class _Reverse:
    def __init__(self, program, wrt, mode):
        self.p = program
        self.names = program.names
        self.wrt = list(wrt)
        self.mode = mode
        self.adj = {}                      # value name -> name of its adjoint
        self.contribs = defaultdict(list)  # summed-once names: contributions so far
        self.pullbacks = {}                # id(step) -> the name of its recursive call's gradients
        self.spread = {}                   # name -> (its adjoint's line, the number it spreads)
        self.contributions_of = {}         # id(step) -> contributions(step)
        self.pending = defaultdict(int)    # summed-once names: contributions still to come
        self.live = set()                  # accumulated names whose adjoint is not zero
        self.owned = set()                 # ... whose adjoint is an array no other name holds
        self.recomputed = set()            # loop values recomputed in the adjoint, not saved
        self.shape_refs = []               # `unbroadcast(g, v)` calls: they read v's shape only
        self.out = []                      # where lines go now

    # ---- analysis
    def run(self):
        self._shared = {}
        self._loops = []                # the loops being swept, outermost first
        self.zero_reads = set()
        outputs = [o for o in self.p.outputs if isinstance(o, gast.Name) and o.id in self.p.active]
        self.needed = self.needed_names(outputs)
        self.summed = self.summed_once(outputs)
        counts = defaultdict(int)
        for step in walk_steps(self.p.body):
            if self.contributes(step):
                for _, name_ in self.contributions(step):
                    counts[name_] += 1
        self.single = {n for n, c in counts.items() if c == 1}
        for step in self.p.body:
            if isinstance(step, Step) and self.contributes(step) and self.is_plain(step):
                for name_ in {n for _, n in self.contributions(step)}:
                    if name_ in self.summed:
                        self.pending[name_] += 1
        self.bound_before = {}
        self.bound_at_end = _record_bound(self.p.body, set(self.p.params), self.bound_before)
        seed_params = self.seed(outputs)
        self.block(self.p.body)
        grads = [self.final_gradient(w) for w in self.wrt]
        saved = (self.saved_names() - self.recomputed) | self.zero_reads
        skip = {id(c.args[1]) for c in self.shape_refs}
        referenced = set().union(*[self.reads_of(line) | self.reads_of(line, skip, shapes=True)
                                   for line in flatten(self.out)])
        return Adjoint(self.out, grads, seed_params, saved, referenced, self.saved_shapes,
                       self.shape_names)

    def needed_names(self, outputs):
        needed = {o.id for o in outputs}
        steps = [s for s in walk_steps(self.p.body) if s.active]
        changed = True
        while changed:
            changed = False
            for step in steps:
                if self.target_of(step) in needed:
                    for _, name_ in self.contributions(step):
                        if name_ not in needed:
                            needed.add(name_)
                            changed = True
        return needed

    def summed_once(self, outputs):
        """Names whose adjoint can be summed once: all contributions from plain top-level steps."""
        nested, top = set(), {o.id for o in outputs}
        for item in self.p.body:
            if isinstance(item, Step):
                if self.contributes(item) and self.is_plain(item):
                    top |= {n for _, n in self.contributions(item)}
                elif self.contributes(item):
                    nested |= {n for _, n in self.contributions(item)}
            else:
                nested |= {n for s in walk_steps([item]) if self.contributes(s)
                           for _, n in self.contributions(s)}
        return {n for n in top - nested if n not in self.p.mutable}

    def is_plain(self, step):
        used = {n for a in list(step.operands) + list(step.keywords.values()) for n in nodes.names_in(a)}
        return step.target not in self.p.mutable and not (used & self.p.mutable)

    @staticmethod
    def target_of(step):
        return step.array if isinstance(step, (SetItem, Append)) else step.target

    def contributes(self, step):
        return step.active and self.target_of(step) in self.needed

    def contributions(self, step):
        """(position, operand name) for each operand that takes a gradient from `step`
        (computed once per step: the passes over the program ask many times)."""
        found = self.contributions_of.get(id(step))
        if found is None:
            found = self.contributions_of[id(step)] = self._contributions(step)
        return found

    def _contributions(self, step):
        if isinstance(step, (SetItem, Append)):
            value = step.value
            return [(0, value.id)] if isinstance(value, gast.Name) and value.id in self.p.active else []
        if step.rule.kind == "pullback":          # a recursive call: its arguments after the first
            return [(position, atom.id) for position, atom in enumerate(step.operands)
                    if position and atom.id in self.p.active]
        template = template_for(step.rule)
        found = []
        for position, atom in self.bound_operands(step):
            if template.result is not None and template.part(position) is None:
                continue
            if isinstance(atom, (gast.Tuple, gast.List)):
                found += [((position, k), e.id) for k, e in enumerate(atom.elts)
                          if isinstance(e, gast.Name) and e.id in self.p.active]
            elif isinstance(atom, gast.Name) and atom.id in self.p.active:
                found.append((position, atom.id))
        return found

    def bound_operands(self, step):
        params = step.rule.primal_params
        pairs = list(enumerate(step.operands))
        pairs += [(params.index(k), v) for k, v in step.keywords.items()]
        return pairs

    # ---- seeds and results
    def seed(self, outputs):
        origin = self.p.return_origin
        if self.mode != "vjp":
            if self.p.returns_tuple:
                from ..errors import NonScalarOutputError
                raise self.p.parsed.error(
                    self.p.return_origin.node, "grad needs a scalar output, but the function "
                    "returns a tuple: use `value, pullback = srcgrad.vjp(f, *args)` and call "
                    "`pullback(seeds)` with one seed per output", NonScalarOutputError)
            if outputs and self.p.shapes.get(outputs[0].id) == SCALAR:
                seed = nodes.const(1.0)           # a number for sure: nothing to check
            elif outputs:
                seed = nodes.call(self.cell("scalar_seed", runtime.scalar_seed), [outputs[0]])
            if outputs:
                self.deliver(origin, outputs[0].id, seed, counted=False)
            return []
        if not self.p.returns_tuple:
            param = self.names.fresh(f"d_{self.p.outputs[0].id}" if outputs else "d_out")
            seeds = [(o.id, nodes.name(param)) for o in outputs]
        else:
            param = self.names.fresh("d_out")
            seeds = [(o.id, nodes.subscript(nodes.name(param), nodes.const(i)))
                     for i, o in enumerate(self.p.outputs) if o in outputs]
        for name_, expr in seeds:
            if name_ not in self.summed and name_ not in self.live and isinstance(expr, gast.Name):
                self.adj[name_] = expr.id     # the pullback's parameter is the adjoint itself
                self.live.add(name_)
                continue
            if name_ in self.summed:
                self.pending[name_] += 1
                self.contribs[name_].append(expr)
            else:
                self.deliver(origin, name_, expr, counted=False)
        for name_, _ in seeds:
            if name_ in self.summed and name_ in self.pending:
                self.done(origin, name_)
        return [param]

    def final_gradient(self, w):
        if w in self.adj and (w in self.summed or w in self.live):
            return nodes.name(self.adj[w])
        zero = self.adjoint_name(w)
        self.emit(Line(self.p.return_origin, zero, nodes.const(0.0) if self.p.shapes.get(w) == SCALAR
                       else nodes.call(self.cell("zeros_like", runtime.zeros_like), [nodes.name(w)])))
        return nodes.name(zero)

    # ---- walking the program backwards
    def block(self, items):
        for item in reversed(items):
            if isinstance(item, Step):
                self.step(item)
            elif isinstance(item, SaveItem):
                pass  # restored right after its step
            elif isinstance(item, SetItem):
                self.setitem(item)
            elif isinstance(item, Append):
                self.append(item)
            elif isinstance(item, IfItem):
                self.if_item(item)
            else:
                self.loop_item(item)

    def step(self, step):
        restored = False
        if self.contributes(step) and ((step.target in self.summed and step.target in self.adj)
                                       or step.target in self.live
                                       or (step.target in self.adj and step.target not in self.p.mutable)):
            g = nodes.name(self.adj[step.target])
            shares = defaultdict(list)           # operand -> its contributions from this step
            spread = self.spread.pop(step.target, None)
            g_read = False
            for position, name_ in self.contributions(step):
                expr = self.spread_contribution(step, position, name_, spread)
                if expr is None:
                    expr, g_read = self.contribution(step, position, g), True
                shares[name_].append(expr)
            if spread is not None and not g_read and spread[0] in self.out:
                self.out.remove(spread[0])       # every contribution used the number itself
            delivered = []
            for name_, exprs in shares.items():
                if name_ == step.target:        # `s = s + t`: the old s gets its share last
                    continue
                if name_ in self.summed:
                    for expr in exprs:
                        self.deliver(step.origin, name_, expr, counted=True, batch=delivered)
                else:
                    self.deliver(step.origin, name_, _sum_alike(exprs, self.adder(name_)), counted=True)
            for name_ in dict.fromkeys(delivered):
                self.done(step.origin, name_)
            self.kill(step.target)
            if step.target in shares:
                own = _sum_alike(shares[step.target], self.adder(step.target))
                if step.saved and self.reads_old_shape_only(own, step.target):
                    # `y = y - r`: unbroadcast(d_y, y) means the old y, whose shape may differ
                    self.emit(Line(step.origin, step.target, kind="restore"))
                    restored = True
                self.deliver(step.origin, step.target, own, counted=True)
        else:
            if self.contributes(step) and self.is_plain(step):
                for name_ in {n for _, n in self.contributions(step)} & self.summed:
                    self.done(step.origin, name_)    # a dead value: it contributes nothing
            if step.target is not None and not (step.target in self.wrt
                                                and step.target not in self.p.params):
                self.kill(step.target)          # (`self_w = self.w` keeps the adjoint of w)
        if step.target is not None:
            if step.saved and not restored:
                self.emit(Line(step.origin, step.target, kind="restore"))

    def reads_old_shape_only(self, expr, name_):
        """Whether `expr`, a self-update's share for its operand `name_`, reads `name_` and
        only as the shape `unbroadcast` sums back to (the old value's shape), not as the
        result (`y = np.tanh(y)`: `1 - y * y` reads the new y)."""
        shape_refs = {id(call.args[1]) for call in self.shape_refs}
        found = [n for n in gast.walk(expr) if isinstance(n, gast.Name) and n.id == name_]
        return bool(found) and all(id(n) in shape_refs for n in found)

    def setitem(self, item):
        """`x[index] = v`: v's adjoint is d_x[index]; the overwritten elements' is zero."""
        array = item.array
        if self.contributes(item) and array in self.live:
            target = nodes.name(self.adjoint_name(array))
            part = nodes.subscript(target, item.index)
            if array not in self.p.lists and _may_repeat(item.index, self.p.int_names):
                # `y[[0, 0]] = v`: the last write to a position wins
                index = item.index
                if any(isinstance(n, gast.Slice) for n in gast.walk(index)):   # `y[:, [0, 0]]`
                    import numpy
                    index = nodes.subscript(nodes.attribute(nodes.name(self.cell("np", numpy)), "s_"), index)
                part = nodes.call(self.cell("last_writes", runtime.last_writes), [target, index])
            for _, name_ in self.contributions(item):
                if array in self.p.lists:
                    share = part                  # a list element: replaced below, not changed
                elif self.element_is_scalar(item) and self.p.shapes.get(name_) == SCALAR:
                    share = part                  # one number: nothing to copy or sum
                else:
                    share = nodes.call(self.cell("unbroadcast", runtime.unbroadcast),
                                       [nodes.call(nodes.attribute(part, "copy"), []), item.value])
                self.deliver(item.origin, name_, share, counted=True)
            self.own(item.origin, array)
            zero = gast.Assign(targets=[gast.Subscript(value=target, slice=item.index, ctx=gast.Store())],
                               value=nodes.const(0.0), type_comment=None)
            self.emit(Line(item.origin, value=zero, kind="stmt"))
        elif array in self.live:
            self.own(item.origin, array)
            zero = gast.Assign(targets=[gast.Subscript(value=nodes.name(self.adjoint_name(array)),
                                                       slice=item.index, ctx=gast.Store())],
                               value=nodes.const(0.0), type_comment=None)
            self.emit(Line(item.origin, value=zero, kind="stmt"))
        self.emit(Line(item.origin, array, value=item.index, kind="restore_slice"))

    def element_is_scalar(self, item):
        """Whether `array[index]` is one element (all indices ints, as many as dimensions)."""
        shape = self.p.shapes.get(item.array)
        parts = item.index.elts if isinstance(item.index, gast.Tuple) else [item.index]
        ints = self.p.int_names
        return isinstance(shape, tuple) and shape[0] == "array" and shape[2] == len(parts) and all(
            (isinstance(i, gast.Name) and i.id in ints) or
            (isinstance(i, gast.Constant) and type(i.value) is int) for i in parts)

    def append(self, item):
        """`xs.append(v)`: v's adjoint is the last element of d_xs, popped off."""
        if item.array in self.live:
            self.own(item.origin, item.array)
            popped = nodes.call(nodes.attribute(nodes.name(self.adjoint_name(item.array)), "pop"), [])
            values = [n for _, n in self.contributions(item)] if self.contributes(item) else []
            if values:
                self.deliver(item.origin, values[0], popped, counted=True)
            else:
                self.emit(Line(item.origin, value=popped, kind="call"))
        self.emit(Line(item.origin, item.array, kind="restore_list"))

    def adder(self, name_):
        """How two contributions to the adjoint of `name_` add up (lists element by element)."""
        if name_ in self.p.lists:
            add_lists = self.cell("add_lists", runtime.add_lists)
            return lambda a, b: nodes.call(add_lists, [a, b])
        return nodes.add

    def own(self, origin, name_):
        """Make the adjoint of `name_` an array no other name holds (before writing into it)."""
        if name_ not in self.owned:
            target = self.adjoint_name(name_)
            self.emit(Line(origin, target, nodes.call(self.cell("writable", runtime.writable),
                                                      [nodes.name(target)])))
            self.owned.add(name_)

    def kill(self, name_):
        """A definition of `name_`: its earlier value is another value, with a zero adjoint."""
        self.live.discard(name_)
        self.owned.discard(name_)

    def if_item(self, item):
        outer, live, owned = self.out, set(self.live), set(self.owned)
        branches = []
        for items in (item.body, item.orelse):
            self.out, self.live, self.owned = [], set(live), set(owned)
            self.block(items)
            branches.append((self.out, self.live, self.owned))
        merged = branches[0][1] | branches[1][1]
        for (lines, live_here, self.owned), arm in zip(branches, (item.body, item.orelse)):
            defined = {s.target for s in walk_steps(arm) if isinstance(s, Step)}
            bound = self.bound_before[id(item)] | defined
            for name_ in sorted(merged - live_here):
                lines.append(self.zeros_line(item.origin, name_, bound))
        # after the `if`, an adjoint is an array no other name holds only if it is so in both arms
        self.out, self.live = outer, merged
        self.owned = branches[0][2] & branches[1][2]
        body, orelse = branches[0][0], branches[1][0]
        self.emit(Block(item.origin, ("if", item.cond), body, orelse))   # emit drops it if empty

    def loop_item(self, item):
        defined = {s.target for s in walk_steps(item.body) if isinstance(s, Step) and s.target is not None}
        received = {n for s in walk_steps(item.body) if self.contributes(s)
                    for _, n in self.contributions(s)}
        carried = {n for n in defined if n in self.needed and n in self.p.mutable
                   and self.names.is_user(n) and (n in _exposed(item.body) or n in self.read_outside(item))}
        live_across = (received - defined) | carried
        bound = self.bound_before[id(item)]
        self._loops.append(item)
        for name_ in sorted(live_across - self.live):
            self.emit(self.zeros_line(item.origin, name_, bound))
        self.live |= live_across
        written = {s.array for s in walk_steps(item.body) if isinstance(s, SetItem)} & self.live
        for name_ in sorted(written - self.owned):
            self.own(item.origin, name_)          # once, before the loop writes into it
        owned_at_start = set(self.owned)
        outer = self.out
        self.out = self.recomputed_values(item, defined)
        self.block(item.body)
        for name_ in sorted(live_across - self.live):
            self.out.append(self.zeros_line(item.origin, name_, bound))
        self._loops.pop()
        for name_ in sorted((owned_at_start - self.owned) & written):
            self.own(item.origin, name_)
        body, self.out = self.out, outer
        self.live |= live_across
        self.owned &= owned_at_start
        source = nodes.name(item.source)
        if item.kind == "while":
            header = ("for", nodes.name(self.names.fresh("_"), store=True), nodes.call("range", [source]),
                      "replay")
        else:
            header = ("for", item.target, nodes.call("reversed", [source]))
        self.emit(Block(item.origin, header, body))

    def recomputed_values(self, loop, defined):
        """Values of the loop body cheaper to recompute than to save: `x_t = x[t]`, `t + 1`.

        They depend only on loop indices and on names the loop leaves alone, so at the top
        of each backward iteration they are computed again instead of popped from a stack."""
        indices = _loop_indices(self.p.body, loop)
        definitions = defaultdict(int)
        for step in walk_steps(self.p.body):
            if isinstance(step, Step) and step.target is not None:
                definitions[step.target] += 1
        exposed, outside = _exposed(loop.body), self.read_outside(loop)
        lines = []
        for step in loop.body:
            if not isinstance(step, Step) or step.target is None or step.stmt is not None:
                continue
            if step.target in self.p.mutable and (definitions[step.target] > 1 or step.target in exposed
                                                  or step.target in outside):
                continue
            names = nodes.names_in(step.value)
            steady = all(n in indices or (n not in defined and n not in self.p.mutable)
                         or n in self.recomputed for n in names)
            cheap = _is_read(step) or (step.shape == SCALAR and isinstance(step.value, (gast.BinOp, gast.UnaryOp)))
            if steady and cheap:
                self.recomputed.add(step.target)
                lines.append(Line(step.origin, step.target, step.value, kind="recompute"))
        return lines

    # ---- the chain rule, one step at a time
    def contribution(self, step, position, g):
        rule = step.rule
        if rule.kind == "pullback":
            return self.pullback_part(step, position, g)
        template = template_for(rule)
        element = None
        if isinstance(position, tuple):
            position, element = position
        if template.result is None:          # a multi-statement rule: call it
            fn = self.cell(f"{_short(rule.name)}_vjp", rule.fn)
            args = [g, nodes.name(step.target)] + list(step.operands)
            call = nodes.call(fn, args, step.keywords.items())
            expr = nodes.subscript(call, nodes.const(position)) if template.arity > 1 else call
        else:
            expr = self.instantiate(template, template.part(position), self.bindings(step, template, g), step)
        if rule.kind == "partial":
            expr = product(g, expr, self.resolve)
            operand = dict(self.bound_operands(step))[position]
            if self.p.shapes.get(operand.id) != step.shape \
                    and not (step.shape == SCALAR and self.p.shapes.get(operand.id) == SCALAR):
                expr = nodes.call(self.cell("unbroadcast", runtime.unbroadcast), [expr, operand])
                self.shape_refs.append(expr)      # reads only the shape of `operand`
        if element is not None:
            expr = nodes.subscript(expr, nodes.const(element))
        return expr

    def spread_contribution(self, step, position, name_, spread):
        """The contribution to `name_` when the adjoint of `step`'s result is a number spread
        over its shape (`d_t = unreduce(s, t)`, from a full sum or mean): `s * partial`, one
        pass instead of two, when no broadcasting is involved and the partial derivative has
        the result's shape (`d_x = s * 2 * x` for `t = x ** 2`); else None."""
        if spread is None or step.rule.kind != "partial" or step.shape in (None, SCALAR) \
                or self.p.shapes.get(name_) != step.shape:
            return None
        number = nodes.clone(spread[1])
        expr = self.contribution(step, position, number)
        own = {id(n) for n in gast.walk(number)}
        full = any(isinstance(n, gast.Name) and id(n) not in own and self.p.shapes.get(n.id) == step.shape
                   for n in gast.walk(expr))
        return expr if full and not _is_call(expr, self.names.cells, runtime.unbroadcast) else None

    def pullback_part(self, step, position, g):
        """`g_call.pullback(d_r)`, the gradient for the recursive call's argument at `position`
        (its element of the tuple the pullback returns, called once, for several)."""
        call = nodes.call(nodes.attribute(step.operands[0], "pullback"), [g])
        if len(step.operands) == 2:
            return call
        if id(step) not in self.pullbacks:
            parts = self.names.fresh(f"d_{step.operands[0].id}")
            self.emit(Line(step.origin, parts, call))
            self.pullbacks[id(step)] = parts
        return nodes.subscript(nodes.name(self.pullbacks[id(step)]), nodes.const(position - 1))

    def bindings(self, step, template, g):
        params = step.rule.primal_params
        found = {}
        if step.rule.kind == "vjp":
            found["g"], found["y"] = g, nodes.name(step.target)
        elif step.rule.uses_output:
            found["y"] = nodes.name(step.target)
        for i, atom in enumerate(step.operands):
            found[params[i]] = atom
        for k, atom in step.keywords.items():
            found[k] = atom
        for k, default in template.defaults.items():
            found.setdefault(k, default)
        return found

    def instantiate(self, template, expr, bindings, step):
        mapping = dict(bindings)
        for free in free_names(template):
            if free not in mapping:
                mapping[free] = nodes.name(self.cell(free, global_value(template, free)))
        for local, value in template.assigns:
            fresh = self.names.fresh(local)
            self.emit(Line(step.origin, fresh, simplify(nodes.rename(value, mapping), self.resolve)))
            mapping[local] = nodes.name(fresh)
        return simplify(nodes.rename(expr, mapping), self.resolve)

    # ---- adjoint bookkeeping
    def adjoint_name(self, name_):
        if name_ not in self.adj:
            self.adj[name_] = self.names.adjoint(name_)
        return self.adj[name_]

    def deliver(self, origin, name_, expr, counted, batch=None):
        """Add the contribution `expr` to the adjoint of `name_`."""
        if name_ in self.summed:
            self.contribs[name_].append(expr)
            if batch is not None:
                batch.append(name_)
            elif not counted:
                self.pending[name_] += 1
                self.done(origin, name_)
            return
        target = self.adjoint_name(name_)
        if name_ in self.live and name_ in self.owned and _is_call(expr, self.names.cells, runtime.unindex):
            g, _, index = expr.args              # d_x[index] += g, in place
            at = self.cell("accumulate_at", runtime.accumulate_at)
            self.emit(Line(origin, value=nodes.call(at, [nodes.name(target), index, g]), kind="call"))
            return
        if name_ not in self.live and isinstance(expr, gast.Name) and name_ in self.single \
                and not self.names.is_user(name_) and self.immutable_adjoint(expr.id):
            self.adj[name_] = expr.id             # a copy of another adjoint: not written out
            self.live.add(name_)
            return
        if isinstance(expr, gast.Name) and expr.id == target and name_ not in self.live:
            self.live.add(name_)                  # `d_s = d_s`: nothing to write
            return
        if name_ in self.live and name_ in self.p.lists:
            expr = nodes.call(self.cell("add_lists", runtime.add_lists), [nodes.name(target), expr])
            self.owned.add(name_)
        elif name_ in self.live:
            expr = nodes.add(nodes.name(target), expr)
            self.owned.add(name_)
        elif isinstance(expr, (gast.BinOp, gast.UnaryOp)) and self.p.shapes.get(name_) != SCALAR:
            self.owned.add(name_)                 # arithmetic makes a new array
        else:
            self.owned.discard(name_)
        self.live.add(name_)
        self.emit(Line(origin, target, expr))

    def immutable_adjoint(self, adjoint):
        """Whether `adjoint` is the adjoint of a value assigned once per pass of its block."""
        return any(a == adjoint and n not in self.p.mutable for n, a in self.adj.items())

    def done(self, origin, name_):
        if name_ not in self.summed:
            return
        self.pending[name_] -= 1
        if self.pending[name_] > 0:
            return
        contributions = self.contribs.pop(name_, None)
        if not contributions:
            return                                # every reader was dead: the adjoint is zero
        total = _sum_alike(contributions, self.adder(name_))
        if isinstance(total, gast.Name) and name_ not in self.wrt:
            self.adj[name_] = total.id
            return
        line = Line(origin, self.adjoint_name(name_), total)
        if _is_call(total, self.names.cells, runtime.unreduce) and len(total.args) == 2 \
                and not total.keywords and self.p.shapes.get(name_) not in (None, SCALAR):
            self.spread[name_] = (line, total.args[0])   # a number spread over name_'s shape
        self.emit(line)

    def zeros_line(self, origin, name_, bound=None):
        """`d_v = zeros_like(v)`; `d_v = 0.0` where `v` may not be bound (then no path
        through here defines `v`, and the zero only keeps the adjoint defined)."""
        if bound is not None and name_ not in bound:
            self.owned.discard(name_)
            if name_ in self._none_first():     # None on the first iteration, a value later:
                self.zero_reads.add(name_)      # (kept, with its None first, to be read here)
                return Line(origin, self.adjoint_name(name_),   # its zeros (read: kept)
                            nodes.call(self.cell("zeros_like", runtime.zeros_like),
                                       [nodes.name(name_)]), kind="assign")
            return Line(origin, self.adjoint_name(name_), nodes.const(0.0), kind="zeros")
        if self.p.shapes.get(name_) == SCALAR:     # a number: its dtype is the caller's
            return Line(origin, self.adjoint_name(name_), nodes.const(0.0), kind="zeros")
        if not self.defined_in_loop(name_):
            self.owned.add(name_)
        return Line(origin, self.adjoint_name(name_),
                    nodes.call(self.cell("zeros_like", runtime.zeros_like), [nodes.name(name_)]),
                    kind="zeros")

    def _none_first(self):
        """Names the forward sweep sets to None before they are first bound, at a point
        before this one (the top of the function, or the loops being swept): `zeros_like(v)`
        can read them (0.0 for None, zeros shaped like a later value)."""
        found = set(self.p.maybe_unbound)
        for loop in self._loops:
            found.update(loop.inits)
        return found

    def read_outside(self, loop):
        """Names read by steps outside `loop` or returned."""
        inside = {id(s) for s in walk_steps(loop.body)}
        found = {n for o in self.p.outputs for n in nodes.names_in(o)}
        for step in walk_steps(self.p.body):
            if id(step) not in inside:
                found |= _reads(step)
        return found

    def defined_in_loop(self, name_):
        return any(getattr(s, "target", None) == name_ for item in self.p.body
                   if isinstance(item, LoopItem) for s in walk_steps(item.body))

    def emit(self, line):
        self.out.append(line)

    def saved_names(self):
        """Names whose earlier values the adjoint sweep reads after restoring them: a restore
        (`h = h_stack.pop()`) is needed only if `h` is read later in the sweep, or anywhere in
        a loop around the restore (the next backward iteration reads it)."""
        flat = []                                   # (line, loops around it)

        def visit(lines, loops):
            for line in lines:
                if isinstance(line, Block):
                    inner = loops + (line,) if line.header[0] == "for" else loops
                    flat.append((line, loops))
                    visit(line.body, inner)
                    visit(line.orelse, inner)
                else:
                    flat.append((line, loops))
        visit(self.out, ())
        needed = self.restores_needed(flat, shapes=False)
        shaped = self.restores_needed(flat, shapes=True) - needed - self.recomputed
        needed |= shaped - self.bound_at_end       # may be unbound at the end: keep values
        shaped &= self.bound_at_end
        self.use_saved_shapes(shaped)
        return needed

    def restores_needed(self, flat, shapes):
        """Names whose restores are read afterwards (by values, or by `shapes` only)."""
        skip = {id(c.args[1]) for c in self.shape_refs}
        reads = [self.reads_of(line, skip, shapes) for line, _ in flat]
        if not shapes:                   # reading a view (`row = Y[0]`) reads Y's memory
            reads = [self.sharing_of(names) for names in reads]
        in_loop = {}
        for (line, loops), names in zip(flat, reads):
            for loop in loops:
                in_loop.setdefault(id(loop), set()).update(names)
        later = set()
        needed = set()
        for (line, loops), names in reversed(list(zip(flat, reads))):
            if not isinstance(line, Block) and line.kind in ("restore", "restore_slice", "restore_list"):
                if line.target in later or any(line.target in in_loop.get(id(l), ()) for l in loops):
                    needed.add(line.target)
            later |= names
        return needed

    def sharing_of(self, names):
        """`names` and the names whose memory they may share (views of one array)."""
        sharing = self.p.sharing
        if sharing is None or not names:
            return names
        found = set(names)
        for n in names:
            if n not in self._shared:           # a number is a copy: it shares nothing
                self._shared[n] = {n} if self.p.is_number(n) else \
                    sharing.same_list(n, sharing.count, self.p.is_number)
            found |= self._shared[n]
        return found

    def reads_of(self, line, skip=(), shapes=False):
        """The forward names one line of the adjoint sweep reads: their values, or (with
        `shapes`) only the shapes `unbroadcast` reads, the nodes in `skip`."""
        def names(node):
            if not skip:
                return set() if shapes else nodes.names_in(node)
            return nodes.names_in(node, lambda n: (id(n) in skip) == shapes)
        if isinstance(line, Block):
            return set() if shapes else set().union(*(nodes.names_in(part) for part in line.header[1:3]))
        if line.kind == "stmt":
            return set() if shapes else nodes.names_in(line.value.targets[0].slice)
        if line.kind in ("restore_slice",):
            return set() if shapes else nodes.names_in(line.value)
        if line.kind == "zeros" and not shapes and isinstance(line.value, gast.Call):
            # `zeros_like(v)` reads only v's shape, unless v's definitions disagree on it
            return {n for n in names(line.value) if _shape_varies(self.p.shapes.get(n))}
        if line.kind in ("assign", "call", "recompute") and not _is_call(
                line.value, self.names.cells, runtime.scalar_seed):
            return names(line.value)
        return set()

    def use_saved_shapes(self, shaped):
        """For names whose values are read only for their shapes, save the shapes instead:
        `unbroadcast(g, s)` becomes `sum_to_shape(g, s_shape)`."""
        self.saved_shapes = set()
        self.shape_names = {}
        for call in self.shape_refs:
            like = call.args[1]
            if like.id in shaped:
                if like.id not in self.shape_names:
                    self.shape_names[like.id] = self.names.fresh(f"{like.id}_shape")
                call.func = nodes.name(self.cell("sum_to_shape", runtime.sum_to_shape))
                call.args[1] = nodes.name(self.shape_names[like.id])
                self.saved_shapes.add(like.id)
        if self.saved_shapes:
            shape = nodes.attribute(nodes.name(self.cell("np", np)), "shape")
            self.out[:0] = [Line(None, self.shape_names[n], nodes.call(shape, [nodes.name(n)]),
                                 kind="shape") for n in sorted(self.saved_shapes)]

    def cell(self, preferred, obj):
        return self.names.cell(preferred, obj)

    def resolve(self, func):
        if isinstance(func, gast.Name):
            return self.names.cells.get(func.id)
        if isinstance(func, gast.Attribute):
            owner = self.resolve(func.value)
            return getattr(owner, func.attr, None) if owner is not None else None
        return None


def _reads(step):
    if isinstance(step, Append):
        return {step.array} | nodes.names_in(step.value)
    if isinstance(step, SetItem):
        return {step.array} | nodes.names_in(step.index) | nodes.names_in(step.value)
    if step.stmt is not None:
        return nodes.names_in(step.stmt)
    return nodes.names_in(step.value)


def _exposed(items, defined=None):
    """Names read in `items` before `items` surely assigns them (upward-exposed reads)."""
    defined = set() if defined is None else defined
    found = set()
    for item in items:
        if isinstance(item, (Step, SetItem)):
            found |= _reads(item) - defined
            if isinstance(item, Step) and item.target is not None:
                defined.add(item.target)
        elif isinstance(item, IfItem):
            found |= nodes.names_in(item.cond) - defined
            found |= _exposed(item.body, set(defined)) | _exposed(item.orelse, set(defined))
        elif isinstance(item, LoopItem):
            found |= _exposed(item.body, set(defined))
            if item.test is not None:
                found |= nodes.names_in(item.test) - defined
    return found


def _is_call(expr, cells, fn):
    return isinstance(expr, gast.Call) and isinstance(expr.func, gast.Name) \
        and cells.get(expr.func.id) is fn


def _shape_varies(shape):
    return isinstance(shape, tuple) and shape[0] == "any"


def _is_read(step):
    """`x[i]`: an element read (cheap to repeat)."""
    return step.value is not None and isinstance(step.value, gast.Subscript)


def _loop_indices(items, loop, found=None):
    """The index names of `loop` and of the loops around it."""
    for item in items:
        if item is loop:
            return (found or set()) | ({item.target.id} if item.kind == "range" else set())
        if isinstance(item, LoopItem):
            inner = (found or set()) | ({item.target.id} if item.kind == "range" else set())
            hit = _loop_indices(item.body, loop, inner)
            if hit is not None:
                return hit
        elif isinstance(item, IfItem):
            for arm in (item.body, item.orelse):
                hit = _loop_indices(arm, loop, found)
                if hit is not None:
                    return hit
    return None


def _record_bound(items, bound, found):
    """For each if and loop: the names surely bound before it. Returns those after `items`."""
    bound = set(bound)
    for item in items:
        if isinstance(item, Step) and item.target is not None:
            bound.add(item.target)
        elif isinstance(item, IfItem):
            found[id(item)] = set(bound)
            bound |= _record_bound(item.body, bound, found) & _record_bound(item.orelse, bound, found)
        elif isinstance(item, LoopItem):
            found[id(item)] = set(bound)
            inner = set(bound) | (nodes.names_in(item.target) if item.target is not None else set())
            _record_bound(item.body, inner, found)
    return bound


def _may_repeat(index, ints):
    """Whether an index may name one position twice (an integer array or list may)."""
    parts = index.elts if isinstance(index, gast.Tuple) else [index]
    for part in parts:
        if isinstance(part, (gast.Slice, gast.Compare)) or (
                isinstance(part, gast.Constant) and type(part.value) in (int, bool, type(None),
                                                                        type(Ellipsis))):
            continue
        if isinstance(part, gast.Name) and part.id in ints:
            continue
        if isinstance(part, gast.UnaryOp) and isinstance(part.op, gast.USub) and \
                isinstance(part.operand, gast.Constant):
            continue
        return True
    return False


def flatten(lines):
    """Every Line and Block of the adjoint sweep, blocks before their bodies."""
    for line in lines:
        yield line
        if isinstance(line, Block):
            yield from flatten(line.body)
            yield from flatten(line.orelse)


def _sum_alike(exprs, add=nodes.add):
    """The sum of `exprs`, equal terms counted: `a + a + b` is `2 * a + b`."""
    total = None
    for expr, count in _count_alike(exprs):
        if count > 1:
            expr = nodes.mul(nodes.const(count), expr) if add is nodes.add else \
                _repeat(expr, count, add)
        total = expr if total is None else add(total, expr)
    return total


def _repeat(expr, count, add):
    total = expr
    for _ in range(count - 1):
        total = add(total, expr)
    return total


def _count_alike(exprs):
    """[(expression, how many times it occurs)], in first-seen order."""
    counted = {}
    for e in exprs:
        key = nodes.structure(e)
        expr, count = counted.get(key, (e, 0))
        counted[key] = (expr, count + 1)
    return list(counted.values())


def _short(name):
    return "".join(c if c.isalnum() else "_" for c in name.split(".")[-1]).strip("_") or "rule"
