"""Names in generated code: fresh, readable, and never clashing.

Temporaries are named after what they compute (`w_x`, `log_p`, `neg_z`);
a second binding of a user variable `h` becomes `h_2`; adjoints are `d_<name>`.
Objects the generated code needs beyond the user's globals (numpy for a rule,
the runtime's helpers, an inlined helper's globals) become closure cells,
named after themselves unless that would shadow something else.
"""
import builtins
import keyword

import gast

from . import nodes

_OPWORDS = {gast.Add: "plus", gast.Sub: "minus", gast.Mult: "", gast.Div: "over",
            gast.Pow: "pow", gast.MatMult: "at", gast.Mod: "mod"}
_NUMWORDS = {0: "zero", 1: "one", 2: "two", 3: "three", 10: "ten", 0.5: "half"}
_MAX = 18
_BUILTINS = set(dir(builtins))


class Namespace:
    def __init__(self, reserved, resolve_top):
        self.reserved = set(reserved)      # identifiers anywhere in the user's code
        self.used = set()                  # names already given out
        self.cells = {}                    # name -> object, bound as closure cells
        self.user_names = set()            # names that bind a variable of the user's
        self.globals_read = set()          # global names the generated code reads bare
        self._resolve_top = resolve_top    # name -> object the top function sees

    def _free(self, candidate):
        return (candidate not in self.used and candidate not in self.reserved
                and candidate not in _BUILTINS
                and not keyword.iskeyword(candidate) and candidate.isidentifier())

    def fresh(self, base):
        base = base if base and base.isidentifier() and not keyword.iskeyword(base) else "t"
        if self._free(base):
            self.used.add(base)
            return base
        stem = base
        n = 2
        while not self._free(f"{stem}_{n}"):
            n += 1
        self.used.add(f"{stem}_{n}")
        return f"{stem}_{n}"

    def available(self, base):
        """A name free now (not reserved: the next `bind_user` takes it)."""
        if self._free(base):
            return base
        n = 2
        while not self._free(f"{base}_{n}"):
            n += 1
        return f"{base}_{n}"

    def bind_user(self, name):
        """The SSA name for a new binding of the user's variable `name`."""
        if name not in self.used and name not in self.globals_read and name not in _BUILTINS:
            self.used.add(name)
            self.user_names.add(name)
            return name
        fresh = self.fresh(name)
        self.user_names.add(fresh)
        return fresh

    def is_user(self, name):
        return name in self.user_names

    def cell(self, preferred, obj):
        """A name under which generated code reaches `obj` (a closure cell)."""
        if self.cells.get(preferred) is obj:
            return preferred
        if preferred not in self.cells and preferred not in self.used and \
                (preferred not in self.reserved or self._resolve_top(preferred) is obj):
            self.cells[preferred] = obj
            self.used.add(preferred)
            return preferred
        for existing, value in self.cells.items():
            if value is obj and existing.startswith(preferred):
                return existing
        name = self.fresh(preferred)
        self.cells[name] = obj
        return name

    def adjoint(self, name):
        return self.fresh(f"d_{name}")


def describe(expr):
    """A short name for the value `expr` computes."""
    if isinstance(expr, gast.Name):
        return expr.id
    if isinstance(expr, gast.Constant):
        return _NUMWORDS.get(expr.value, "c")
    if isinstance(expr, gast.BinOp):
        left, right = describe(expr.left), describe(expr.right)
        if isinstance(expr.op, gast.Pow) and nodes.is_number(expr.right, 2):
            return _fit(f"{left}_sq", "square")
        word = _OPWORDS.get(type(expr.op), "op")
        joined = f"{left}_{word}_{right}" if word else f"{left}_{right}"
        fallback = {gast.Add: "total", gast.Sub: "diff", gast.Mult: "prod", gast.Div: "ratio",
                    gast.Pow: "power", gast.MatMult: "product"}.get(type(expr.op), "t")
        return _fit(joined, fallback)
    if isinstance(expr, gast.UnaryOp):
        return _fit(f"neg_{describe(expr.operand)}", "neg")
    if isinstance(expr, gast.Call):
        func = expr.func
        if _called(func) == "stop_gradient" and expr.args:
            return describe(expr.args[0])
        fname = func.attr if isinstance(func, gast.Attribute) else describe(func)
        if isinstance(func, gast.Attribute) and not _is_module_like(func.value):
            arg = describe(func.value)            # x.sum() -> sum_x
        else:
            arg = describe(expr.args[0]) if expr.args else ""
        return _fit(f"{fname}_{arg}" if arg else fname, fname)
    if isinstance(expr, gast.Subscript):
        index = expr.slice
        if isinstance(index, gast.Name):
            return _fit(f"{describe(expr.value)}_{index.id}", "part")
        if isinstance(index, gast.Constant) and type(index.value) is int and index.value >= 0:
            return _fit(f"{describe(expr.value)}_at_{index.value}", "part")
        return _fit(f"{describe(expr.value)}_part", "part")
    if isinstance(expr, gast.Attribute):
        return _fit(f"{describe(expr.value)}_{expr.attr}", expr.attr)
    return "t"


def _called(func):
    return func.attr if isinstance(func, gast.Attribute) else getattr(func, "id", None)


def _is_module_like(node):
    return isinstance(node, gast.Name) and node.id in ("np", "numpy", "math", "jnp", "operator")


def _fit(name, fallback):
    name = name.replace("__", "_").strip("_")
    if len(name) <= _MAX:
        return name
    return f"{fallback}_of" if fallback in _BUILTINS else fallback
