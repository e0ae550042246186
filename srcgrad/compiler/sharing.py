"""Which names may share memory: the facts behind every in-place update srcgrad accepts.

Python names refer to objects, and numpy arrays share memory through views, so an
in-place update (`a += v`, `a[i] = v`, `xs.append(v)`) changes what every other name
for the same object sees. The normalizer gives each binding its own SSA name and
differentiates `a += v` as `a_2 = a + v`; that is right only when no other live name
sees the old object. This module records, in program order, the facts that say
which names may see one object:

- `same(a, b)`: `a` and `b` may be one object or views of one memory (`b = a`,
  `b = a.T`, `b = a[1:]`, a function that may return its argument);
- `holds(xs, v)`: the list `xs` may hold the object `v` (`xs = [v]`, `xs.append(v)`);
- `item(c, xs)`: `c` may be an object the list `xs` holds (`c = xs[0]`, `for c in xs`).

`observers(name, upto)` is every name that may see an in-place change of `name`'s
object by the first `upto` facts; `same_list(name, upto)` the names that may be the
very same list. The facts are flow-insensitive within their prefix: a may-alias
over-approximation, so srcgrad refuses an update it cannot prove unseen and never
differentiates one wrongly.
"""
import builtins
import math
import operator


class Sharing:
    def __init__(self):
        self.count = 0
        self._same = {}           # name -> [(fact index, other name, when)]
        self._held_by = {}        # object name -> [(fact index, list name)]
        self._holds = {}          # list name -> [(fact index, object name)]
        self._readers = {}        # list name -> [(fact index, name read out of it)]
        self._read_from = {}      # name -> [(fact index, list name it was read out of)]

    def same(self, a, b, when=None):
        """`when`: a test, asked once shapes are known, of whether the fact holds at all
        (`v = x[i]` shares nothing when it is one element)."""
        if a != b:
            self._same.setdefault(a, []).append((self.count, b, when))
            self._same.setdefault(b, []).append((self.count, a, when))
            self.count += 1

    def holds(self, xs, v):
        self._held_by.setdefault(v, []).append((self.count, xs))
        self._holds.setdefault(xs, []).append((self.count, v))
        self.count += 1

    def item(self, c, xs):
        self._readers.setdefault(xs, []).append((self.count, c))
        self._read_from.setdefault(c, []).append((self.count, xs))
        self.count += 1

    def same_list(self, name, upto, is_number=lambda n: False):
        """The names that may be `name`'s very object, or a view of its memory."""
        found, todo = {name}, [name]
        while todo:
            for k, other, when in self._same.get(todo.pop(), ()):
                if k < upto and other not in found and not is_number(other) and (
                        when is None or when()):
                    found.add(other)
                    todo.append(other)
        return found

    def observers(self, name, upto, is_number=lambda n: False):
        """Names that may see an in-place change of `name`'s object: the names that may be
        it (or a view of it), the lists that may hold it, and what was or is read out of
        those lists. A number (`is_number`) is never shared: no path runs through one
        (`v = x[0]` of a vector is a copy)."""
        same, lists, todo = {name}, set(), [name]

        def reach(n):
            if n not in same and not is_number(n):
                same.add(n)
                todo.append(n)

        def add_list(xs):
            for ys in self.same_list(xs, upto) - lists:
                lists.add(ys)
                for k, c in self._readers.get(ys, ()):   # `c = xs[0]` may be this object
                    if k < upto:
                        reach(c)

        while todo:
            n = todo.pop()
            for k, o, when in self._same.get(n, ()):
                if k < upto and (when is None or when()):
                    reach(o)
            for k, xs in self._held_by.get(n, ()):       # lists that may hold it
                if k < upto:
                    add_list(xs)
            for k, xs in self._read_from.get(n, ()):     # `n = xs[0]`: n may be any item
                if k < upto:
                    add_list(xs)
                    for ys in self.same_list(xs, upto):
                        for j, v in self._holds.get(ys, ()):
                            if j < upto:
                                reach(v)
        return same | lists


def may_return_argument(callee, method=None):
    """Whether a call may return one of its arguments, or a view of one.

    `callee` is the resolved function (None when srcgrad cannot tell); `method` the name
    of a method called on a value. numpy functions and ufuncs allocate a new array unless
    they are listed as views; builtins that make numbers never share; the user's own
    functions, unknown callables and unknown methods may."""
    if method is not None:
        return method not in _FRESH_METHODS
    if callee is None:
        return True
    views, fresh = _tables()
    try:
        if callee in views:
            return True
        if callee in fresh:
            return False
    except TypeError:                      # an unhashable callable
        return True
    module = getattr(callee, "__module__", None) or ""
    if module in ("operator", "_operator"):
        return False                       # arithmetic (getitem is a view, listed above)
    if module.startswith("srcgrad."):
        return getattr(callee, "__name__", "") == "stop_gradient"
    if module == "numpy" or module.startswith("numpy."):
        return False                       # ufuncs and numpy functions allocate
    if getattr(callee, "__self__", None) is math or module == "math":
        return False
    return True


_TABLES = None


def _tables():
    global _TABLES
    if _TABLES is None:
        import numpy as np
        views = {np.reshape, np.transpose, np.ravel, np.squeeze, np.expand_dims, np.broadcast_to,
                 np.broadcast_arrays, np.swapaxes, np.moveaxis, np.rollaxis, np.asarray,
                 np.asanyarray, np.ascontiguousarray, np.asfortranarray, np.atleast_1d,
                 np.atleast_2d, np.atleast_3d, np.real, np.imag, np.diagonal, np.flip, np.fliplr,
                 np.flipud, np.rot90, np.split, np.array_split, np.hsplit, np.vsplit, np.dsplit,
                 np.require, np.frombuffer, operator.getitem, builtins.min, builtins.max,
                 builtins.list, builtins.tuple, builtins.sorted, builtins.reversed, builtins.zip,
                 builtins.enumerate, builtins.iter, builtins.next, builtins.getattr,
                 builtins.vars, builtins.dict, np.float64, np.float32, np.float16,
                 np.longdouble, np.int64, np.int32, np.bool_, np.complex128}
        fresh = {builtins.len, builtins.range, builtins.float, builtins.int, builtins.bool,
                 builtins.abs, builtins.round, builtins.sum, builtins.isinstance, builtins.print,
                 builtins.str, builtins.repr, builtins.hash, builtins.id, builtins.type,
                 builtins.complex, builtins.divmod, builtins.pow, builtins.any, builtins.all}
        _TABLES = views, fresh
    return _TABLES


# ndarray methods that always return a new object (or a number)
_FRESH_METHODS = {
    "copy", "flatten", "sum", "mean", "prod", "std", "var", "max", "min", "argmax", "argmin",
    "cumsum", "cumprod", "dot", "clip", "round", "trace", "all", "any", "nonzero", "tolist",
    "item", "tobytes", "conj", "conjugate", "repeat", "take", "compress", "choose", "searchsorted",
    "argsort", "ptp", "__len__", "count", "index", "astype",
}
