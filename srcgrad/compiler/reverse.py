"""Reverse: a normalized program -> its adjoint sweep.

Guarantees: walking the steps backwards, each active step's rule is inlined
with the step's own names to give the contribution to each active operand's
adjoint. Every adjoint is assigned exactly once, by the sum of its
contributions, right after its last contribution is known (so `d_z` appears
under the user line that consumes `z` first); an adjoint that is only a copy of
another is not written out. Only adjoints on a path from `wrt` to the output
are computed.
"""
from collections import defaultdict
from dataclasses import dataclass

import gast

from . import nodes
from .normalize import SCALAR
from .optimize import product, simplify
from .templates import free_names, global_value, template_for
from .. import runtime


@dataclass(eq=False)
class AdjointStep:
    origin: object
    target: str
    value: object


@dataclass(eq=False)
class Adjoint:
    steps: list
    grads: list          # one gast expression per wrt parameter
    seed_params: list    # vjp mode: the pullback's parameters


def reverse(program, wrt, mode):
    return _Reverse(program, wrt, mode).run()


class _Reverse:
    def __init__(self, program, wrt, mode):
        self.p = program
        self.names = program.names
        self.wrt = list(wrt)
        self.mode = mode
        self.adj = {}                      # value name -> name of its adjoint
        self.contribs = defaultdict(list)
        self.pending = defaultdict(int)
        self.out = []

    def run(self):
        outputs = [o for o in self.p.outputs if isinstance(o, gast.Name) and o.id in self.p.active]
        needed = {o.id for o in outputs}
        for step in reversed(self.p.steps):
            if step.active and step.target in needed:
                for _, name_ in self.contributions(step):
                    needed.add(name_)
        self.needed = needed
        for step in self.p.steps:
            if step.active and step.target in needed:
                for name_ in {n for _, n in self.contributions(step)}:
                    self.pending[name_] += 1
        seed_params = self.seed(outputs)
        for step in reversed(self.p.steps):
            if step.active and step.target in needed:
                self.backward(step)
        grads = []
        for w in self.wrt:
            if w in self.adj:
                grads.append(nodes.name(self.adj[w]))
            else:
                zero = self.names.adjoint(w)
                self.emit(self.p.return_origin, zero,
                          nodes.call(self.cell("zeros_like", runtime.zeros_like), [nodes.name(w)]))
                grads.append(nodes.name(zero))
        return Adjoint(self.out, grads, seed_params)

    # ---- seeds
    def seed(self, outputs):
        origin = self.p.return_origin
        if self.mode == "grad":
            if not outputs:
                return []
            o = outputs[0].id
            self.pending[o] += 1
            self.add(origin, o, nodes.call(self.cell("scalar_seed", runtime.scalar_seed), [outputs[0]]))
            return []
        if not self.p.returns_tuple:
            param = self.names.fresh(f"d_{self.p.outputs[0].id}" if outputs else "d_out")
            seeds = [(o.id, nodes.name(param)) for o in outputs]
        else:
            param = self.names.fresh("d_out")
            seeds = [(o.id, nodes.subscript(nodes.name(param), nodes.const(i)))
                     for i, o in enumerate(self.p.outputs) if o in outputs]
        for name_, _ in seeds:
            self.pending[name_] += 1
        for name_, expr in seeds:
            self.add(origin, name_, expr)
        return [param]

    # ---- the chain rule, one step at a time
    def contributions(self, step):
        """(position, operand name) for each operand that takes a gradient from `step`."""
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

    def backward(self, step):
        g = nodes.name(self.adj[step.target])
        touched = []
        for position, name_ in self.contributions(step):
            expr = self.contribution(step, position, g)
            self.contribs[name_].append(expr)
            if name_ not in touched:
                touched.append(name_)
        for name_ in touched:
            self.done(step.origin, name_)

    def contribution(self, step, position, g):
        rule = step.rule
        template = template_for(rule)
        element = None
        if isinstance(position, tuple):
            position, element = position
        bindings = self.bindings(step, template, g)
        if template.result is None:          # a multi-statement rule: call it
            fn = self.cell(f"{_short(rule.name)}_vjp", rule.fn)
            args = [g, nodes.name(step.target)] + list(step.operands)
            expr = nodes.subscript(nodes.call(fn, args, step.keywords.items()), nodes.const(position)) \
                if template.arity > 1 or len(step.operands) > 1 else nodes.call(fn, args, step.keywords.items())
        else:
            expr = self.instantiate(template, template.part(position), bindings, step)
        if rule.kind == "partial":
            expr = product(g, expr, self.resolve)
            operand = dict(self.bound_operands(step))[position]
            if self.p.shapes.get(operand.id) != step.shape \
                    and not (step.shape == SCALAR and self.p.shapes.get(operand.id) == SCALAR):
                expr = nodes.call(self.cell("unbroadcast", runtime.unbroadcast), [expr, operand])
        if element is not None:
            expr = nodes.subscript(expr, nodes.const(element))
        return expr

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
            self.emit(step.origin, fresh, simplify(nodes.rename(value, mapping), self.resolve))
            mapping[local] = nodes.name(fresh)
        return simplify(nodes.rename(expr, mapping), self.resolve)

    # ---- adjoint bookkeeping
    def add(self, origin, name_, expr):
        self.contribs[name_].append(expr)
        self.done(origin, name_)

    def done(self, origin, name_):
        self.pending[name_] -= 1
        if self.pending[name_] > 0:
            return
        total = None
        for expr, count in _count_alike(self.contribs.pop(name_)):
            term = expr if count == 1 else nodes.mul(nodes.const(count), expr)
            total = term if total is None else nodes.add(total, term)
        if isinstance(total, gast.Name) and name_ not in self.wrt:
            self.adj[name_] = total.id
            return
        target = self.names.adjoint(name_)
        self.adj[name_] = target
        self.emit(origin, target, total)

    def emit(self, origin, target, value):
        self.out.append(AdjointStep(origin, target, value))

    def cell(self, preferred, obj):
        return self.names.cell(preferred, obj)

    def resolve(self, func):
        if isinstance(func, gast.Name):
            return self.names.cells.get(func.id)
        if isinstance(func, gast.Attribute):
            owner = self.resolve(func.value)
            return getattr(owner, func.attr, None) if owner is not None else None
        return None


def _count_alike(exprs):
    """[(expression, how many times it occurs)], in first-seen order."""
    counted = {}
    for e in exprs:
        key = nodes.to_source(e)
        expr, count = counted.get(key, (e, 0))
        counted[key] = (expr, count + 1)
    return list(counted.values())


def _short(name):
    return "".join(c if c.isalnum() else "_" for c in name.split(".")[-1]).strip("_") or "rule"
