"""Rule templates: a registered rule's own source, ready to inline.

A rule is plain Python (a lambda or a def). Its source is parsed once; the
compiler substitutes the user's variable names for the rule's parameters and
inlines the result, so the generated code carries the calculus-table line itself.

A def with statements other than assignments and one `return` cannot be inlined:
its template calls the rule instead, one argument's share of what it returns at a
time (`rule_part(two_vjp(g, y, a, b), 1, b)`: the adjoint of `b`; `partial_part`
for partial derivatives).
"""
import builtins
import inspect
import linecache
import textwrap
from dataclasses import dataclass

import gast

from . import nodes
from .. import runtime
from ..errors import SrcgradError


@dataclass(eq=False)
class Template:
    rule: object
    params: tuple
    defaults: dict          # parameter -> default value expression
    assigns: list           # [(local name, expression)] before the result
    result: object          # gast expression: one adjoint/partial, or a Tuple of them
    called: bool = False    # a multi-statement rule: the result calls it
    own_globals: dict = None  # names the template reads that are not the rule's globals

    @property
    def arity(self):
        """How many primal arguments the result speaks of."""
        return len(self.result.elts) if isinstance(self.result, gast.Tuple) else 1

    def part(self, position):
        """The result's expression for primal argument `position`, or None."""
        if isinstance(self.result, gast.Tuple):
            if position >= len(self.result.elts):
                return None
            node = self.result.elts[position]
        else:
            node = self.result if position == 0 else None
        if node is None or (isinstance(node, gast.Constant) and node.value is None):
            return None
        return node


_TEMPLATES = {}
_FILES = {}


def template_for(rule):
    found = _TEMPLATES.get(id(rule))
    if found is None or found.rule is not rule:
        found = _TEMPLATES[id(rule)] = _build(rule)
    return found


def _build(rule):
    fn = rule.fn
    if fn.__name__ == "<lambda>":
        lam = _find_lambda(fn)
        return Template(rule, rule.params, _defaults(lam.args), [], lam.body)
    source = textwrap.dedent(inspect.getsource(fn))
    fdef = next(n for n in gast.walk(gast.parse(source)) if isinstance(n, gast.FunctionDef))
    assigns, result = [], None
    for stmt in fdef.body:
        if isinstance(stmt, gast.Expr) and isinstance(stmt.value, gast.Constant):
            continue  # docstring
        if isinstance(stmt, gast.Assign) and len(stmt.targets) == 1 and nodes.is_name(stmt.targets[0]):
            assigns.append((stmt.targets[0].id, stmt.value))
        elif isinstance(stmt, gast.Return) and result is None:
            result = stmt.value
        else:
            result = None
            break
    if result is None:
        return _calling(rule, _defaults(fdef.args))
    return Template(rule, rule.params, _defaults(fdef.args), assigns, result)


def _calling(rule, defaults):
    """The template of a rule that must be called, not inlined: for each primal argument,
    its share of the result, `rule_part(<rule>(<its parameters>), position, argument)`
    for a vjp (zeros where the rule gives None), `partial_part(<rule>(...), position,
    <every argument>)` for partial derivatives (shaped like the elementwise result)."""
    stem = rule.name.rsplit(".", 1)[-1]
    stem = "".join(c if c.isalnum() or c == "_" else "_" for c in stem).strip("_") or "rule"
    vjp = rule.kind == "vjp"
    fn_name = f"{stem}_{'vjp' if vjp else 'partials'}"
    part_name = "rule_part" if vjp else "partial_part"
    while fn_name in rule.params or fn_name == part_name:
        fn_name = "_" + fn_name
    args = [nodes.name(p) for p in rule.primal_params]
    count = len(rule.primal_params)
    parts = [nodes.call(part_name, [nodes.call(fn_name, [nodes.name(p) for p in rule.params]),
                                    nodes.const(position)]
                        + ([args[position], nodes.const(count)] if vjp else args))
             for position in range(count)]
    return Template(rule, rule.params, defaults, [], gast.Tuple(elts=parts, ctx=gast.Load()),
                    called=True, own_globals={fn_name: rule.fn, part_name: getattr(runtime, part_name)})


def _defaults(args):
    params = [a.id for a in args.args]
    return dict(zip(params[len(params) - len(args.defaults):], args.defaults))


def _find_lambda(fn):
    code = fn.__code__
    filename = code.co_filename
    tree = _FILES.get(filename)
    if tree is None:
        tree = _FILES[filename] = gast.parse("".join(linecache.getlines(filename)))
    params = list(code.co_varnames[:code.co_argcount])
    found = [n for n in gast.walk(tree) if isinstance(n, gast.Lambda)
             and n.lineno == code.co_firstlineno and [a.id for a in n.args.args] == params]
    if len(found) != 1:
        raise SrcgradError(f"cannot find the source of the rule for {fn!r} "
                           f"({filename}:{code.co_firstlineno}): write one rule per line")
    return found[0]


def free_names(template):
    """Names the template reads that are neither parameters nor its own locals."""
    own = set(template.params) | {n for n, _ in template.assigns}
    found = set()
    for expr in [e for _, e in template.assigns] + [template.result]:
        found |= nodes.names_in(expr)
    return found - own


def global_value(template, name):
    if template.own_globals and name in template.own_globals:
        return template.own_globals[name]
    fn_globals = template.rule.fn.__globals__
    if name in fn_globals:
        return fn_globals[name]
    return getattr(builtins, name)
