"""Tape mode: a PyTorch-style tensor that records each operation as it runs.

An operation on tensors runs on their numpy data and, when a gradient may
flow (some input has requires_grad and no `srcgrad.no_grad()` block is
active), keeps a `Node`: the derivative rule from the registry the compiler
uses (`srcgrad.rules.lookup`), the values the rule needs, and the input
tensors. `backward()` walks the nodes in reverse topological order and calls
each rule:

* a `partial` rule gives the partial derivatives; each is multiplied by the
  output's adjoint and summed back to its argument's shape (`unbroadcast`);
* a `vjp` rule is called as `rule.fn(g, y, *args, **kwargs)` and gives the
  adjoints directly (for a sequence argument such as np.concatenate's
  `arrays`, a sequence with one adjoint per array).

Operators, indexing, numpy functions (`__array_ufunc__`,
`__array_function__`) and array methods (`srcgrad.rules.method_primal`) all
go through `_apply`. Only leaves (and tensors that called `retain_grad()`)
keep `.grad`; `backward()` frees the graph unless `retain_graph=True`.
"""
import operator
import re
import warnings

import numpy as np

from ..api import is_grad_enabled
from ..errors import SrcgradError
from ..rules import is_nondifferentiable, lookup, method_primal
from ..runtime import unbroadcast
from .printing import tensor_repr

__all__ = ["Tensor", "tensor", "apply"]

# keywords that change how a ufunc computes but not its derivative
_HARMLESS_UFUNC_KEYWORDS = {"dtype", "casting", "order", "subok"}
# a few spellings PyTorch users reach for, mapped to the registry's names
_METHOD_ALIASES = {"clamp": "clip"}
_BACKWARD_NAMES = {"truediv": "Div", "divide": "Div", "subtract": "Sub", "multiply": "Mul",
                   "negative": "Neg", "power": "Pow", "absolute": "Abs", "getitem": "Index"}


def tensor(data, requires_grad=False):
    """A leaf tensor holding a copy of `data`: float64, unless `data` is float32 (or bool).
    Complex data and ndarray subclasses (np.matrix, masked arrays) are refused."""
    data = data.detach()._data if isinstance(data, Tensor) else data
    if isinstance(data, np.ndarray) and type(data) not in (np.ndarray, np.memmap):
        kind = type(data)
        raise SrcgradError(f"tape.tensor: the data is a {kind.__module__}.{kind.__qualname__}, "
                           "a subclass of numpy.ndarray whose operations tape mode would not "
                           "follow (a matrix's * is a matrix product, a masked array skips "
                           "masked entries): pass np.asarray(data)")
    array = np.array(data)
    if array.dtype.kind == "c":
        raise SrcgradError(f"tape.tensor: the data is complex ({array.dtype}): tape mode "
                           "differentiates real-valued functions of real tensors; make the real "
                           "and imaginary parts separate tensors")
    if array.dtype != np.float32 and array.dtype.kind not in "bc":
        array = array.astype(np.float64)
    return Tensor(array, requires_grad=requires_grad)


# ---- the graph: one Node per recorded operation


class Node:
    """How a tensor was made: its rule, the values the rule needs, the tensors it came from.

    `inputs` lists `(i, j, tensor)` for each input that takes a gradient: argument
    `i` of the call, item `j` of it when the argument is a sequence (else None).
    """
    __slots__ = ("rule", "args", "kwargs", "y", "inputs", "versions")

    def __init__(self, rule, args, kwargs, y, inputs, versions):
        self.rule, self.args, self.kwargs, self.y = rule, args, kwargs, y
        self.inputs, self.versions = inputs, versions

    def name(self):
        """`MulBackward` for np.multiply or `a * b`: the primal's name, as PyTorch names it."""
        name = getattr(self.rule.primal, "__name__", None) or self.rule.name
        name = _BACKWARD_NAMES.get(name, name)
        return "".join(part[:1].upper() + part[1:] for part in re.split(r"\W|_", name)) + "Backward"

    def __repr__(self):
        return f"<{self.name()}>"

    def output_moved(self, t, old):
        """Its output `t` is about to change in place: keep using the copy `old` instead."""
        if self.y is t._data:
            self.y = old._data
        self.versions = tuple((old._version, 0) if box is t._version and box[0] == version
                              else (box, version) for box, version in self.versions)

    def adjoints(self, g):
        """Yield `(tensor, adjoint)` for each input, given the adjoint `g` of the output."""
        if self.args is None:
            raise SrcgradError(
                "Trying to backward through the graph a second time: backward() freed the values "
                "it saved. Pass retain_graph=True to the first backward() to call it again.")
        if any(box[0] != version for box, version in self.versions):
            raise SrcgradError(
                f"a value that {self.name()} needs was modified in place (+=, t[i] = v, zero_()) "
                "after it was used: call backward() before changing it, or write t = t + ...")
        rule = self.rule
        try:
            if rule.kind == "partial":
                found = rule.fn(*self.args, self.y) if rule.uses_output else rule.fn(*self.args)
            else:
                found = rule.fn(g, self.y, *self.args, **self.kwargs)
        except SrcgradError:
            raise
        except Exception as exc:
            raise SrcgradError(f"the derivative rule for {rule.name} failed on this call: "
                               f"{type(exc).__name__}: {exc}") from exc
        found = found if isinstance(found, tuple) else (found,)
        for i, j, t in self.inputs:
            d = found[i] if i < len(found) else None
            if d is not None and j is not None:
                d = d[j]
            if d is None:
                continue
            if rule.kind == "partial":
                d = unbroadcast(g * d, self.args[i])
            elif np.shape(d) != t.shape:
                raise SrcgradError(f"the rule for {rule.name} gave an adjoint of shape {np.shape(d)} "
                                   f"for an argument of shape {t.shape}; please report this")
            yield t, d


def _topological_order(root):
    """Every tensor `root` depends on through recorded nodes, inputs before outputs."""
    order, seen, stack = [], set(), [(root, False)]
    while stack:
        t, expanded = stack.pop()
        if expanded:
            order.append(t)
        elif id(t) not in seen:
            seen.add(id(t))
            stack.append((t, True))
            if t.grad_fn is not None:
                stack.extend((parent, False) for _, _, parent in t.grad_fn.inputs)
    return order


# ---- recording: every operation goes through _apply


def _unwrap(x):
    """`x` with every tensor replaced by its data (inside lists and tuples too)."""
    if isinstance(x, Tensor):
        return x._data
    if type(x) in (list, tuple):
        return type(x)([_unwrap(v) for v in x])
    return x


def _tensors(args):
    """(i, j, tensor) for each tensor among `args`, and among the items of list/tuple args."""
    found = []
    for i, a in enumerate(args):
        if isinstance(a, Tensor):
            found.append((i, None, a))
        elif type(a) in (list, tuple):
            found.extend((i, j, b) for j, b in enumerate(a) if isinstance(b, Tensor))
    return found


def _wrap(value):
    """An operation's result without history: arrays become tensors, shapes stay tuples."""
    if isinstance(value, (np.ndarray, np.generic)):
        return Tensor(np.asarray(value))
    if type(value) in (list, tuple):
        return type(value)(_wrap(v) for v in value)
    return value


def _describe(fn):
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, np.ufunc):
        return f"np.{owner.__name__}.{fn.__name__}"
    module = getattr(fn, "__module__", None) or ""
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", repr(fn))
    if isinstance(fn, np.ufunc) or module.startswith("numpy"):
        return f"np.{name}" if module in ("numpy", "") else f"{module.replace('numpy', 'np', 1)}.{name}"
    return name if module in ("builtins", "_operator") else f"{module}.{name}"


def _no_rule(fn):
    name = _describe(fn)
    return SrcgradError(
        f"no derivative rule for {name}, which was called on a tensor that requires grad. "
        f"Register one: srcgrad.rules.partial({name}, lambda x: ...) for an elementwise function, "
        f"or @srcgrad.rules.vjp({name}) on def _(g, y, x, ...) (see docs/rules.md); or call it "
        "on t.detach() or under srcgrad.no_grad() if no gradient should flow through it")


def _keywords(primal, args, kwargs):
    """Pass keyword arguments the rule names by position (np.clip(t, a_min=0, a_max=1)),
    so that the rule sees them; unwrap the rest, refusing tensors that require grad there."""
    out = kwargs.get("out")
    if out is not None and _tensors(out if type(out) is tuple else (out,)):
        raise SrcgradError("out= into a tensor is not supported in tape mode: use the result")
    rule, args, kwargs = lookup(primal), list(args), dict(kwargs)
    for name in rule.primal_params[len(args):] if rule else ():
        if name not in kwargs:
            break
        args.append(kwargs.pop(name))
    if is_grad_enabled() and any(t._requires_grad for _, _, t in _tensors(kwargs.values())):
        raise SrcgradError(f"pass the tensors to {_describe(primal)} by position: tape mode does "
                           f"not differentiate the keyword arguments {sorted(kwargs)}")
    return tuple(args), {k: _unwrap(v) for k, v in kwargs.items()}


def _check_call(rule, args, kwargs):
    """Refuse a call the rule cannot differentiate (arguments it lacks or ignores)."""
    params = rule.primal_params
    allowed = _HARMLESS_UFUNC_KEYWORDS if rule.kind == "partial" else set(params)
    refused = sorted(k for k, v in kwargs.items() if k not in allowed | {"out"} or k == "out" and v is not None)
    if refused or len(args) > len(params) or rule.kind == "partial" and len(args) < len(params):
        raise SrcgradError(
            f"tape mode differentiates {rule.name}({', '.join(params)}) with its arguments given "
            f"by position or by those names; this call gave {len(args)} positional argument(s)"
            + (f" and the keywords {refused}" if refused else ""))


def _apply(primal, args, kwargs=None):
    """Run `primal` on the data of `args`; record a Node when a gradient may flow."""
    if kwargs:
        args, kwargs = _keywords(primal, args, kwargs)
    kwargs = kwargs or {}
    found = _tensors(args)
    inputs = tuple([item for item in found if item[2]._requires_grad])
    data = _unwrap(args)
    if not inputs or not is_grad_enabled() or is_nondifferentiable(primal):
        return _wrap(primal(*data, **kwargs))
    rule = lookup(primal)
    if rule is None:
        raise _no_rule(primal)
    if kwargs or len(args) != len(rule.primal_params):
        _check_call(rule, args, kwargs)
    y = primal(*data, **kwargs)
    if not isinstance(y, (np.ndarray, np.generic, float, int)):
        raise SrcgradError(f"tape mode differentiates functions that return one array; "
                           f"{rule.name} returned a {type(y).__name__}")
    y, box = np.asarray(y), [0]
    versions = tuple([(t._version, t._version[0]) for _, _, t in found]) + ((box, 0),)
    return Tensor(y, grad_fn=Node(rule, data, kwargs, y, inputs, versions), _version=box)


def apply(fn, *args, **kwargs):
    """`fn(*args, **kwargs)` on tensors, recorded as one operation with fn's registered rule.

    For functions a tensor cannot reach (`tape.apply(math.sin, x)`) and for your own
    functions with a rule (srcgrad.rules.partial(softplus, ...)): `tape.apply(softplus, x)`
    records one node instead of every numpy call inside softplus.
    """
    return _apply(fn, args, kwargs)


# ---- the tensor


class Tensor:
    """An array that remembers how it was computed, for `backward()`."""
    __slots__ = ("_data", "_requires_grad", "grad_fn", "_grad", "_retains_grad", "_version")

    def __init__(self, data, requires_grad=False, grad_fn=None, _version=None):
        self._data = data if type(data) is np.ndarray else np.asarray(data)
        self.grad_fn = grad_fn
        self._grad = None
        self._retains_grad = False
        self._version = [0] if _version is None else _version  # shared with detach()
        self._requires_grad = grad_fn is not None
        if requires_grad and grad_fn is None:
            self.requires_grad_()

    # -- state
    data = property(lambda self: self._data,
                    lambda self, value: setattr(self, "_data", np.asarray(_unwrap(value))),
                    doc="The numpy array (settable; setting it records nothing).")
    shape = property(lambda self: self._data.shape)
    ndim = property(lambda self: self._data.ndim)
    size = property(lambda self: self._data.size)
    dtype = property(lambda self: self._data.dtype)
    is_leaf = property(lambda self: self.grad_fn is None)

    @property
    def requires_grad(self):
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag):
        self.requires_grad_(flag)

    def requires_grad_(self, flag=True):
        """Start (or stop) recording operations on this leaf; returns self."""
        if self.grad_fn is not None:
            raise SrcgradError("requires_grad can only change on a leaf tensor; use detach() "
                               "for a copy of this result without history")
        if flag and self._data.dtype.kind != "f":
            raise SrcgradError(f"only floating-point tensors can require gradients, not {self.dtype}")
        self._requires_grad = bool(flag)
        return self

    @property
    def grad(self):
        """The gradient `backward()` accumulated here: leaves and retain_grad() tensors only."""
        if self.grad_fn is not None and not self._retains_grad:
            warnings.warn("the .grad of a tensor that is not a leaf is not kept: call "
                          "t.retain_grad() before backward() to keep it", UserWarning, stacklevel=2)
        return self._grad

    @grad.setter
    def grad(self, value):
        self._grad = value

    def retain_grad(self):
        """Keep this intermediate result's gradient in `.grad` at the next backward()."""
        if not self._requires_grad:
            raise SrcgradError("retain_grad() on a tensor that does not require grad")
        self._retains_grad = True

    def detach(self):
        """The same data (shared, not copied) with no history and requires_grad=False."""
        return Tensor(self._data, _version=self._version)

    def item(self):
        return self._data.item()

    def tolist(self):
        return self._data.tolist()

    def numpy(self):
        """The data as a numpy array (shared). Like PyTorch, refused while it requires grad."""
        if self._requires_grad:
            raise SrcgradError("Can't call numpy() on a tensor that requires grad: "
                               "use t.detach().numpy() (or t.data)")
        return self._data

    def __array__(self, dtype=None, copy=None):
        if self._requires_grad:
            raise SrcgradError(
                "numpy is converting a tensor that requires grad to a plain array (np.asarray(t), "
                "np.array([...]), or an ndarray method such as W.dot(t)), which would drop its "
                "gradient: use a numpy function that tape mode records (np.dot(W, t)), or "
                "t.detach() if no gradient should flow")
        return np.array(self._data, dtype=dtype, copy=copy)

    def __float__(self):
        if self._requires_grad and is_grad_enabled():
            raise SrcgradError(
                "float(t), and math functions such as math.exp(t), turn a tensor that requires "
                "grad into a Python float and would drop its gradient: use numpy (np.exp(t)), "
                "tape.apply(math.exp, t), or t.item() for the number")
        return float(self._data.item())

    # -- backward
    def backward(self, gradient=None, retain_graph=False):
        """Accumulate d(self)/d(leaf) into every leaf's `.grad` (seeded by `gradient`)."""
        if not self._requires_grad:
            raise SrcgradError(
                "backward() on a tensor that does not require grad and has no grad_fn (PyTorch: "
                "element 0 of tensors does not require grad). It was computed from tensors without "
                "requires_grad=True, under srcgrad.no_grad(), or from detach() or "
                "requires_grad_(False): nothing recorded how to differentiate it")
        order = _topological_order(self)
        grads = {id(self): self._seed(gradient)}
        # A partial rule returns every argument's partial, the unused ones too: d(a ** 2)/d(2)
        # is y * log(a), which would warn for a < 0 although no gradient flows to the 2.
        with np.errstate(divide="ignore", invalid="ignore"):
            for t in reversed(order):
                g = grads.pop(id(t), None)
                if g is None:
                    continue
                if t.grad_fn is None or t._retains_grad:
                    t._accumulate(g)
                if t.grad_fn is not None:
                    for parent, d in t.grad_fn.adjoints(g):
                        before = grads.get(id(parent))
                        grads[id(parent)] = d if before is None else before + d
        if not retain_graph:
            for t in order:
                if t.grad_fn is not None:
                    t.grad_fn.args = t.grad_fn.y = t.grad_fn.kwargs = None
                    t.grad_fn.inputs = ()

    def _seed(self, gradient):
        if gradient is None:
            if self._data.size != 1:
                raise SrcgradError(
                    f"grad can be implicitly created only for scalar outputs, and this tensor has "
                    f"shape {self.shape}: pass a seed of that shape, y.backward(gradient=v) (the "
                    "vector-Jacobian product), or reduce it first, e.g. y.sum().backward()")
            return np.ones_like(self._data)
        seed = np.asarray(_unwrap(gradient), dtype=self._data.dtype)
        if seed.shape != self.shape:
            raise SrcgradError(f"the gradient passed to backward() has shape {seed.shape} "
                               f"but the tensor has shape {self.shape}")
        return seed

    def _accumulate(self, g):
        if np.iscomplexobj(g):
            raise SrcgradError("the gradient came out complex (a complex constant took part in "
                               "the computation): srcgrad differentiates real-valued functions "
                               "of real arguments")
        if self._grad is None:
            self._grad = Tensor(np.array(g, dtype=self._data.dtype))  # a copy this tensor owns
        else:
            self._grad._data += g

    # -- in place: `t += x` changes t's own data, which its aliases and views share
    def _inplace(self, primal, other):
        recording = is_grad_enabled() and (self._requires_grad or _requires_grad(other))
        if not recording:
            np.copyto(self._data, primal(self._data, _unwrap(other)))
        elif self.grad_fn is None and self._requires_grad:
            raise SrcgradError(
                "a leaf tensor that requires grad cannot change in place while gradients are "
                "recorded: update it under `with srcgrad.no_grad():`, or write x = x - ...")
        else:  # as in PyTorch: t records the operation, and its old value moves to a new tensor
            old = Tensor(self._data.copy(), grad_fn=self.grad_fn)
            if self.grad_fn is not None:
                self.grad_fn.output_moved(self, old)
            new = _apply(primal, (old, old if other is self else other))
            np.copyto(self._data, new._data)
            self.grad_fn, self._requires_grad = new.grad_fn, True
        self._version[0] += 1  # nodes that saved the old value will refuse to use it
        return self

    def __setitem__(self, index, value):
        if is_grad_enabled() and (self._requires_grad or _requires_grad(value)):
            raise SrcgradError("writing into a tensor that takes part in a gradient is not "
                               "supported: build the value with np.where or np.concatenate")
        self._data[_unwrap(index)] = _unwrap(value)
        self._version[0] += 1

    def zero_(self):
        """Set every element to 0 in place (e.g. `w.grad.zero_()`); returns self."""
        self[...] = 0
        return self

    __iadd__ = lambda self, other: self._inplace(operator.add, other)
    __isub__ = lambda self, other: self._inplace(operator.sub, other)
    __imul__ = lambda self, other: self._inplace(operator.mul, other)
    __itruediv__ = lambda self, other: self._inplace(operator.truediv, other)
    __ipow__ = lambda self, other: self._inplace(operator.pow, other)

    # -- operators: the registry's rules for the `operator` module and builtins
    __add__ = lambda self, other: _apply(operator.add, (self, other))
    __radd__ = lambda self, other: _apply(operator.add, (other, self))
    __sub__ = lambda self, other: _apply(operator.sub, (self, other))
    __rsub__ = lambda self, other: _apply(operator.sub, (other, self))
    __mul__ = lambda self, other: _apply(operator.mul, (self, other))
    __rmul__ = lambda self, other: _apply(operator.mul, (other, self))
    __truediv__ = lambda self, other: _apply(operator.truediv, (self, other))
    __rtruediv__ = lambda self, other: _apply(operator.truediv, (other, self))
    __floordiv__ = lambda self, other: _apply(operator.floordiv, (self, other))
    __rfloordiv__ = lambda self, other: _apply(operator.floordiv, (other, self))
    __mod__ = lambda self, other: _apply(operator.mod, (self, other))
    __rmod__ = lambda self, other: _apply(operator.mod, (other, self))
    __pow__ = lambda self, other: _apply(operator.pow, (self, other))
    __rpow__ = lambda self, other: _apply(operator.pow, (other, self))
    __matmul__ = lambda self, other: _apply(operator.matmul, (self, other))
    __rmatmul__ = lambda self, other: _apply(operator.matmul, (other, self))
    __neg__ = lambda self: _apply(operator.neg, (self,))
    __pos__ = lambda self: _apply(operator.pos, (self,))
    __abs__ = lambda self: _apply(abs, (self,))
    __getitem__ = lambda self, index: _apply(operator.getitem, (self, index))
    # comparisons give boolean tensors without history (the rules declare them nondifferentiable)
    __lt__ = lambda self, other: _apply(operator.lt, (self, other))
    __le__ = lambda self, other: _apply(operator.le, (self, other))
    __gt__ = lambda self, other: _apply(operator.gt, (self, other))
    __ge__ = lambda self, other: _apply(operator.ge, (self, other))
    __eq__ = lambda self, other: _apply(operator.eq, (self, other))
    __ne__ = lambda self, other: _apply(operator.ne, (self, other))
    __hash__ = object.__hash__

    # -- numpy functions on tensors: np.sin(t), np.sum(t, axis=0), np.where(m, t, 0) ...
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        primal = ufunc if method == "__call__" else getattr(ufunc, method)  # .reduce: no rule
        return _apply(primal, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        if not all(issubclass(t, (Tensor, np.ndarray)) for t in types):
            return NotImplemented
        return _apply(func, args, kwargs)

    # -- array methods: t.sum(axis=0) means np.sum(t, axis=0) (srcgrad.rules.method_primal)
    def __getattr__(self, name):
        found = None if name.startswith("_") else _method(_METHOD_ALIASES.get(name, name))
        if found is None:
            raise AttributeError(f"'Tensor' object has no attribute {name!r}")
        primal, pack_varargs = found

        def call(*args, **kwargs):
            if pack_varargs and len(args) > 1:
                args = (args,)  # t.reshape(2, 3) means np.reshape(t, (2, 3))
            return _apply(primal, (self,) + args, kwargs)
        call.__name__ = name
        return call

    T = property(lambda self: _apply(method_primal("T")[0], (self,)))

    # -- Python protocols
    __len__ = lambda self: len(self._data)
    __iter__ = lambda self: (self[i] for i in range(len(self)))
    __bool__ = lambda self: bool(self._data)
    __int__ = lambda self: int(self._data.item())
    __index__ = lambda self: operator.index(self._data.item())

    def __format__(self, spec):
        return format(self._data.item(), spec) if self._data.ndim == 0 else format(repr(self), spec)

    def __repr__(self):
        if self.grad_fn is not None:
            suffix = f", grad_fn={self.grad_fn!r}"
        else:
            suffix = ", requires_grad=True" if self._requires_grad else ""
        return tensor_repr(self._data, suffix)


def _requires_grad(value):
    return any(t._requires_grad for _, _, t in _tensors((value,)))


def _method(name):
    """(primal, pack_varargs) for `t.name(...)`: a registry method, or a numpy ufunc (t.exp())."""
    found = method_primal(name)
    if found is not None:
        return found
    ufunc = getattr(np, name, None)
    if isinstance(ufunc, np.ufunc) and (lookup(ufunc) or is_nondifferentiable(ufunc)):
        return ufunc, False
    return None
