"""The public API: grad, value_and_grad, vjp, source, no_grad, stop_gradient.

A gradient is compiled once per function, `wrt` and mode, and specialised on
which arguments are Python scalars and which arrays share a shape (so the
generated code leaves out broadcasting helpers that cannot be needed). Every
later call with arguments of the same kinds is a dictionary lookup away from
the generated function.
"""
import builtins as builtins_module
import functools
import inspect
import linecache
import sys
import threading
import types
import weakref

import numpy as np

from .compiler.shapes import SCALAR
from .compiler.parse import input_label, input_steps, source_text
from .errors import (ArgumentError, NonScalarOutputError, NoSourceError, RecursionDepthError,
                     SrcgradError, UnsupportedError)

__all__ = ["grad", "value_and_grad", "vjp", "source", "no_grad", "stop_gradient"]

class _State(threading.local):
    depth = 0                   # how many `no_grad` blocks this thread is inside


_state = _State()


class no_grad:
    """`with srcgrad.no_grad():` marks a block whose values carry no gradient.

    In a function that srcgrad differentiates, everything computed inside the
    block is a constant. Tape mode stops recording inside it.
    """

    def __enter__(self):
        _state.depth += 1
        return self

    def __exit__(self, *exc):
        _state.depth -= 1
        return False


def is_grad_enabled():
    return _state.depth == 0


def stop_gradient(x):
    """Return `x` unchanged; inside a differentiated function no gradient flows through it."""
    return x


def _params(fn):
    code = fn.__code__
    return list(code.co_varnames[:code.co_argcount + code.co_kwonlyargcount])


def _normal_wrt(wrt):
    """`wrt` as grad keeps it: a list is read as the tuple it lists; each item is an index
    or a name, and there is at least one."""
    if isinstance(wrt, list):
        wrt = tuple(wrt)
    for item in wrt if isinstance(wrt, tuple) else (wrt,):
        if isinstance(item, bool) or not isinstance(item, (int, str)):
            raise ArgumentError(f"wrt must name a parameter by index or name, not {item!r}")
    if wrt == ():
        raise ArgumentError("wrt=() names no argument to differentiate with respect to: pass an "
                            "index or a name (wrt=0, wrt='w') or a tuple of them (wrt=('w', 'b'))")
    return wrt


def _wrt_names(fn, wrt):
    params = _params(fn)
    items = wrt if isinstance(wrt, tuple) else (wrt,)
    names = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (int, str)):
            raise SrcgradError(f"wrt must name a parameter by index or name, not {item!r}")
        if isinstance(item, int):
            if not -len(params) <= item < len(params):
                raise SrcgradError(f"wrt={item} is out of range: {fn.__name__} has "
                                   f"{len(params)} parameters {tuple(params)}")
            item = params[item]
        elif "." in item:                        # "self.w": an attribute of an argument
            root, *attrs = item.split(".")
            if root not in params or not all(a.isidentifier() for a in attrs):
                raise SrcgradError(f"wrt={item!r} is not an attribute path of a parameter of "
                                   f"{fn.__name__}{tuple(params)} (write it as 'param.attr')")
        elif item not in params:
            raise SrcgradError(f"wrt={item!r} is not a parameter of {fn.__name__}{tuple(params)}")
        names.append(item)
    if len(set(names)) != len(names):
        raise SrcgradError(f"wrt names a parameter twice: {wrt!r}")
    return tuple(names), not isinstance(wrt, tuple)


# The kind of a numpy scalar or 0-d array argument: a scalar to the compiler (see
# _kinds), but its gradient takes its dtype, where a Python number's is a float.
NUMPY_SCALAR = ("scalar", "numpy")
NUMPY_0D = ("scalar", "0-d array")     # a number to the compiler, but it changes in place


def _key(args, kwargs=None, extra=None):
    """What the compiled code depends on in the arguments: which are Python numbers or
    other scalars, and which arrays share a shape (their number of dimensions included).
    Keyword arguments add an entry ((name, kind), ...), and `extra` values (wrt
    attribute paths) one of their kinds, all with the same dimension symbols."""
    key, shapes, dims = [], {}, {}
    for value in args:
        key.append(_kind(value, shapes, dims))
    if kwargs:
        key.append(tuple((name, _kind(kwargs[name], shapes, dims)) for name in sorted(kwargs)))
    if extra is not None:
        key.append(tuple(_kind(value, shapes, dims) for value in extra))
    return tuple(key)


def _kind(value, shapes, dims):
    """SCALAR, NUMPY_SCALAR, None (not a number or an array), or for an array
    ("array", ("dims", symbols), ndim): one symbol per dimension, equal sizes sharing
    one (numbered in order of appearance) and size 1 written 1, so that the compiler
    can follow broadcasting and matrix products, and sizes that change keep the key."""
    kind = type(value)
    if kind is float or kind is int:
        return SCALAR
    if kind is np.ndarray and value.ndim:
        found = shapes.get(value.shape)
        if found is None:
            symbols = tuple(1 if n == 1 else dims.setdefault(n, len(dims) + 2) for n in value.shape)
            found = shapes[value.shape] = ("array", ("dims", symbols), value.ndim)
        return found
    if kind is np.ndarray:
        return NUMPY_0D
    if isinstance(value, (float, int, np.generic)):
        return NUMPY_SCALAR
    if kind is list or kind is tuple:
        return _sequence_kind(value, shapes, dims)
    return None


def _sequence_kind(value, shapes, dims):
    """A short tuple's kind: ("tuple", (kind of each element, ...)); a list's or a longer
    tuple's: ("seq", the kind all its elements share, or None). Numbers of any Python or
    numpy type share SCALAR; arrays share a kind only with one shape (one pass, in C)."""
    if type(value) is tuple and len(value) <= 8:
        return ("tuple", tuple(_kind(v, shapes, dims) for v in value))
    types = set(map(type, value))
    if types and types <= _NUMBERS:
        return ("seq", SCALAR)
    if types == {np.ndarray} and len({v.shape for v in value}) == 1:
        return ("seq", _kind(value[0], shapes, dims))
    return ("seq", None)


_NUMBERS = frozenset((float, int, np.float64, np.float32, np.float16, np.longdouble))


def _compiler_kind(kind):
    """A key's kind as the compiler takes it: every number SCALAR."""
    if kind in (NUMPY_SCALAR, NUMPY_0D):
        return SCALAR
    if type(kind) is tuple and kind[0] == "seq":
        return ("seq", _compiler_kind(kind[1]))
    if type(kind) is tuple and kind[0] == "tuple":
        return ("tuple", tuple(_compiler_kind(k) for k in kind[1]))
    return kind


def _is_value(kind):
    """Whether a key's kind is a number's or an array's (a value a gradient is taken of)."""
    return kind is not None and not (type(kind) is tuple and kind[0] in ("seq", "tuple"))


# ndarray subclasses whose operators mean something else than a plain array's
_SUBCLASS_MEANING = {np.matrix: "its * and ** are matrix products and powers",
                     np.ma.MaskedArray: "its operations skip masked entries",
                     np.recarray: "its fields are read as attributes"}


def _refusal(value, label, wrt):
    """Why the argument `label` (a wrt argument when `wrt`) cannot be differentiated
    with, as a message; None when it can. Complex numbers and ndarray subclasses are
    refused everywhere (their arithmetic is not the real, elementwise arithmetic the
    derivative rules state); integers, booleans and other non-float dtypes as wrt."""
    kind = type(value)
    if kind is float or kind is int:
        return None
    if isinstance(value, np.ndarray):
        if kind is not np.ndarray and (wrt or kind is not np.memmap):
            name = f"{kind.__module__}.{kind.__qualname__}"
            why = next((m for cls, m in _SUBCLASS_MEANING.items() if isinstance(value, cls)),
                       "srcgrad knows the operators of plain numpy arrays only")
            return (f"{label} is a {name}, a subclass of numpy.ndarray ({why}): srcgrad "
                    f"differentiates with plain arrays; pass np.asarray({label})")
        dtype_kind = value.dtype.kind
    elif isinstance(value, np.generic):
        dtype_kind = value.dtype.kind
    elif kind is complex or kind is bool:
        dtype_kind = "c" if kind is complex else "b"
    else:
        return None
    if dtype_kind == "f" or dtype_kind != "c" and not wrt:
        return None
    if kind is complex or kind is bool:
        what, fix = f"a {kind.__name__}" if kind is bool else "a complex number", f"float({label})"
    elif kind is np.ndarray or isinstance(value, np.ndarray):
        article = "an" if value.dtype.name[0] in "aeio" else "a"
        what, fix = f"{article} {value.dtype} array", f"{label}.astype(float)"
    else:
        what, fix = f"a numpy {value.dtype} scalar", f"float({label})"
    if dtype_kind == "c":
        return (f"{label} is {what}: srcgrad differentiates real-valued functions of real "
                "arguments; pass the real and imaginary parts as separate float arguments")
    return f"{label} is {what}: gradients are defined for float arguments; pass {fix}"


def _kinds(params, key, keywords=False):
    """The compiler's kind of each parameter (every scalar is SCALAR), from a key made with
    `keywords` (the key's last entry then holds the keyword arguments' kinds)."""
    pairs = list(zip(params, key[:-1] if keywords else key))
    if keywords:
        pairs += list(key[-1])
    kinds = {p: _compiler_kind(k) for p, k in pairs if k is not None}
    kinds.update({f"0d({p})": True for p, k in pairs if k == NUMPY_0D})
    return kinds


# the types of gradients of Python numbers that float() would not take as they are
_MAYBE_COMPLEX = frozenset((complex, np.complex64, np.complex128, np.clongdouble, np.ndarray))


def _float(d, label=None):
    """float(d), for the gradient of a Python number; an error when it is complex."""
    if type(d) is not np.float64 and np.iscomplexobj(d):
        raise _complex_gradient(label)
    return float(d)


def _complex_gradient(label):
    of = f" with respect to {label}" if label else ""
    return UnsupportedError(f"the gradient{of} came out complex: the function computes with "
                            "complex numbers (a complex constant, or a fractional power of a "
                            "negative number); srcgrad differentiates real-valued functions only")


def _like(d, x, label=None):
    """The gradient `d` given the type, dtype and shape of its argument `x` (named
    `label` in errors, for a value read out of an argument)."""
    if type(x) is float:
        return d if type(d) is float else _float(d, label)
    if isinstance(x, np.generic):
        if np.ndim(d) != 0:
            raise SrcgradError(f"internal error: a gradient of shape {np.shape(d)} for a scalar "
                               "argument; please report this")
        if np.iscomplexobj(d):
            raise _complex_gradient(label)
        return x.dtype.type(d) if np.issubdtype(x.dtype, np.inexact) else np.float64(d)
    if isinstance(x, (float, int)) and not isinstance(x, bool):
        return _float(d, label)
    if isinstance(x, np.ndarray):
        dtype = x.dtype if np.issubdtype(x.dtype, np.inexact) else np.dtype(np.float64)
        d = np.asarray(d)
        if d.dtype.kind == "c":
            raise _complex_gradient(label)
        if d.shape != x.shape:
            raise SrcgradError(f"internal error: a gradient of shape {d.shape} for an argument "
                               f"of shape {x.shape}; please report this")
        if d.dtype != dtype or not d.flags.writeable:
            d = np.array(d, dtype=dtype)
        return d
    where = f" ({label})" if label else ""
    raise SrcgradError(f"cannot differentiate with respect to a {type(x).__name__}{where}: "
                       "wrt arguments must be floats or numpy arrays")


def _star_parameters(fn):
    """The error for a function with *args or **kwargs, at its def (at the decorator's
    wrapper, named as such, for a function a decorator wrapped)."""
    code = fn.__code__
    star = "*args" if code.co_flags & inspect.CO_VARARGS else "**kwargs"
    where = (code.co_filename, code.co_firstlineno, 0, linecache.getline(code.co_filename,
                                                                          code.co_firstlineno))
    try:
        from .compiler.parse import parse_function
        parsed = parse_function(fn)
        where = parsed.where(parsed.node)
    except SrcgradError:
        pass
    message = f"srcgrad cannot differentiate with respect to {star} parameters; name the parameters"
    wrapped = getattr(fn, "__wrapped__", None)
    if wrapped is not None and getattr(wrapped, "__code__", None) is not code:
        params = inspect.signature(fn, follow_wrapped=False)
        message = (f"{fn.__qualname__} is a wrapper a decorator made (`{code.co_name}{params}`, "
                   f"defined here): {message}. If the decorator does not change what "
                   f"{fn.__name__} computes, differentiate the undecorated function, "
                   f"srcgrad.grad({fn.__name__}.__wrapped__); else give the wrapper the "
                   "parameters of the function it wraps")
    return UnsupportedError(message, *where)


class _Differentiated:
    """What grad / value_and_grad / vjp return: compiles on first call, then caches."""

    def __init__(self, fn, wrt, mode):
        self.receiver = ()
        if inspect.ismethod(fn):             # model.loss: differentiate loss with self bound
            fn, self.receiver = fn.__func__, (fn.__self__,)
            if not isinstance(wrt, tuple):
                wrt = wrt + 1 if isinstance(wrt, int) and wrt >= 0 else wrt
            else:
                wrt = tuple(w + 1 if isinstance(w, int) and w >= 0 else w for w in wrt)
        text = source_text(fn)  # fail now, not at the first call, when there is no source
        if inspect.iscoroutinefunction(fn):
            raise UnsupportedError("cannot differentiate an async function", fn.__code__.co_filename,
                                   fn.__code__.co_firstlineno, 0, text.splitlines()[0] if text else None)
        if fn.__code__.co_flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS):
            raise _star_parameters(fn)
        self.fn = fn
        self.wrt, self.single = _wrt_names(fn, wrt)
        self.mode = mode
        self.params = _params(fn)
        self.wrt_index = [self.params.index(input_steps(name)[0]) for name in self.wrt]
        # wrt attribute paths: (label, root index, steps), steps (("attr", name), ...)
        self.paths = [(name, i, input_steps(name)[1])
                      for name, i in zip(self.wrt, self.wrt_index) if "." in name]
        self.direct = {i for name, i in zip(self.wrt, self.wrt_index) if "." not in name}
        self._compiled = {}                  # key -> _entry
        self._by_signature = {}              # args' types (arrays: shapes) -> _entry
        self._dict_inputs = {}               # (wrt name, the dict's keys) -> its inputs
        self.last = None
        functools.update_wrapper(self, fn)

    def compiled(self, args, kwargs=None):
        return self._entry(self.key(args, kwargs), args, kwargs)[0]

    def stages(self, args):
        """Each pass's output for arguments like `args`, as text (compiled afresh)."""
        from .compiler.pipeline import compile_gradient
        if not args and self.last is None:
            raise SrcgradError("pass example arguments to see the stages of a gradient not "
                               "called yet")
        compiled = self.compiled(args) if args else self.last
        kinds = compiled.kinds
        printed = compile_gradient(self.fn, compiled.wrt, self.mode, kinds,
                                   compiled.single_pack, stages=True).stages["printed"]
        return "".join(f"# ==== {title}\n{text}\n" for title, text in printed.items())

    def root(self, args, kwargs, i):
        return args[i] if i < len(args) else (kwargs or {}).get(self.params[i])

    def inputs(self, args, kwargs):
        """[(label, root index, steps)]: the values this call differentiates with respect to
        that are read out of an argument: attribute paths ("self.w") and the entries of a
        dict passed for a wrt parameter ("params['w']", steps (("item", "w"),))."""
        found = list(self.paths)
        for name, i in zip(self.wrt, self.wrt_index):
            value = self.root(args, kwargs, i)
            if "." not in name and type(value) is dict:
                keys = tuple(value)
                entries = self._dict_inputs.get((name, keys))
                if entries is None:
                    for k in keys:
                        if not isinstance(k, str):
                            raise SrcgradError(f"wrt={name!r}: a dict differentiated with respect "
                                               f"to needs string keys, not {k!r}")
                    entries = [(input_label(name, (("item", k),)), i, (("item", k),)) for k in keys]
                    if len(self._dict_inputs) > 64:
                        self._dict_inputs.clear()
                    self._dict_inputs[(name, keys)] = entries
                found += entries
        return found

    def input_values(self, args, kwargs, inputs):
        values = []
        for label, i, steps in inputs:
            value = self.root(args, kwargs, i)
            for kind, part in steps:
                if kind == "item":
                    value = value[part]
                    continue
                try:
                    value = getattr(value, part)
                except AttributeError:
                    raise SrcgradError(f"wrt={label!r}: the argument has no attribute "
                                       f"{part!r}") from None
            values.append(value)
        return values

    def check(self, args, kwargs, inputs=(), values=()):
        """ArgumentError for an argument srcgrad cannot differentiate with (_refusal): the
        compiled code depends on the arguments' kinds, not their dtypes or classes, so this
        runs wherever a key is made, and a call reuses a key only for the same dtypes."""
        direct = self.direct
        named = [(self.params[i] if i < len(self.params) else f"argument {i}", i in direct, value)
                 for i, value in enumerate(args) if type(value) is not float]
        for name, value in (kwargs or {}).items():
            named.append((name, name in self.params and self.params.index(name) in direct, value))
        named += [(label, True, value) for (label, _, _), value in zip(inputs, values)]
        for label, wrt, value in named:
            why = _refusal(value, label, wrt)
            if why is not None:
                raise ArgumentError(f"{self.fn.__name__}'s argument {why}")

    def check_one_path(self, args, kwargs, inputs):
        """Refuse a wrt value (or an object holding it) that the function can also reach by
        another argument or another attribute (`f(m, m)`, tied weights `o.a is o.b`,
        `self.me = self`): srcgrad would differentiate one path and take the other for a
        constant. (Labels are made only for the error: this runs at every call.)"""
        objects = {}                        # id -> (root index, steps to it), the first path
        for _, i, steps in inputs:
            obj = self.root(args, kwargs, i)
            if _shareable(obj):
                objects.setdefault(id(obj), (i, ()))
            for k, (kind, part) in enumerate(steps):
                obj = getattr(obj, part, None) if kind == "attr" else obj.get(part) \
                    if type(obj) is dict else None
                if _shareable(obj):
                    objects.setdefault(id(obj), (i, steps[:k + 1]))
        if not objects:
            return

        def label(where):
            return input_label(self.params[where[0]], where[1])

        roots = {i for _, i, _ in inputs}
        for j, value in enumerate(args):
            if j not in roots and id(value) in objects and _shareable(value):
                name = self.params[j] if j < len(self.params) else f"argument {j}"
                raise ArgumentError(f"{self.fn.__name__}'s argument {name} is "
                                    f"{label(objects[id(value)])}: srcgrad would differentiate "
                                    "one and hold the other constant; pass the object once")
        for name, value in (kwargs or {}).items():
            if (name not in self.params or self.params.index(name) not in roots) \
                    and id(value) in objects and _shareable(value):
                raise ArgumentError(f"{self.fn.__name__}'s argument {name} is "
                                    f"{label(objects[id(value)])}: srcgrad would differentiate "
                                    "one and hold the other constant; pass the object once")
        for i, steps in list(objects.values()):
            obj = self.root(args, kwargs, i)
            for kind, part in steps:
                obj = getattr(obj, part, None) if kind == "attr" else obj.get(part)
            is_dict = type(obj) is dict
            fields = obj if is_dict else getattr(obj, "__dict__", None)
            if type(fields) is not dict:
                continue
            for k, v in fields.items():
                found = objects.get(id(v))
                inner = steps + ((("item" if is_dict else "attr"), k),)
                if found is not None and found != (i, inner) and _shareable(v):
                    raise ArgumentError(f"{label((i, inner))} is {label(found)}: one object "
                                        "reached by two paths (tied weights, an object holding "
                                        "itself); srcgrad would differentiate one path and "
                                        "hold the other constant")

    def key(self, args, kwargs):
        """_key(args, kwargs), and for values read out of arguments (inputs) their labels,
        kinds and the classes of objects whose attributes they are."""
        inputs = self.inputs(args, kwargs) if self.paths or dict in map(type, args) or kwargs else ()
        if not inputs:
            self.check(args, kwargs)
            return _key(args, kwargs)
        values = self.input_values(args, kwargs, inputs)
        self._read = (args, kwargs, inputs, values)    # for finish(), in the same call
        self.check(args, kwargs, inputs, values)
        self.check_one_path(args, kwargs, inputs)
        key = _key(args, kwargs, values)
        classes = tuple(_class_of(self.root(args, kwargs, i)) for label, i, steps in inputs
                        if steps[0][0] == "attr")
        return key[:-1] + (("inputs", tuple(label for label, _, _ in inputs), key[-1], classes),)

    def _entry(self, key, args, kwargs=None):
        """(the compiled code for arguments of this key, whether every gradient is a float,
        the function that checks the code's guards, how gradients are packed)."""
        found = self._compiled.get(key)
        if found is None or not found[2]():
            found = self._compile(key, args, kwargs)
        self.last = found[0]
        return found

    def _compile(self, key, args, kwargs=None):
        labels, input_kinds, classes = (), (), ()
        if key and isinstance(key[-1], tuple) and key[-1][:1] == ("inputs",):
            key, (_, labels, input_kinds, classes) = key[:-1], key[-1]
        inputs = self.inputs(args, kwargs) if labels else []
        for (label, _, _), value, kind in zip(inputs, self.input_values(args, kwargs, inputs),
                                              input_kinds):
            if kind is None:
                _like(0.0, value, label)     # raises: this value cannot take a gradient
        dicts = {input_steps(label)[0] for label in labels if "[" in label}
        for name, i in zip(self.wrt, self.wrt_index):
            if "." not in name and name not in dicts and i < len(args) and not _is_value(key[i]):
                _like(0.0, args[i])  # raises the error for an argument that cannot take a gradient
        kinds = _kinds(self.params, key, bool(kwargs))
        kinds.update(_kinds(labels, input_kinds))
        kinds.update(self.default_kinds(len(args), kwargs))
        roots = [self.params[i] for _, i, steps in inputs if steps[0][0] == "attr"]
        for root, (cls, shadowed) in zip(roots, classes):
            kinds[f"type({root})"] = cls
            kinds[f"shadowed({root})"] = shadowed
        # what is compiled: each wrt name, a dict one as its entries; how to pack them back
        wrt, layout = [], []
        for name in self.wrt:
            if name in dicts:
                entries = [label for label in labels if input_steps(label)[0] == name and "[" in label]
                layout.append((name, [(input_steps(label)[1][0][1], len(wrt) + k)
                                      for k, label in enumerate(entries)]))
                wrt += entries
            else:
                layout.append((name, len(wrt)))
                wrt.append(name)
        single = self.single and not dicts
        from .compiler.pipeline import compile_gradient   # the compiler loads on first use
        compiled = compile_gradient(self.fn, tuple(wrt), self.mode, kinds, single)
        # Python numbers in every wrt position: each gradient is float(d), nothing else to check
        raw = dict(zip(self.params[:len(args)], key))
        floats = not labels and all(raw.get(name) == SCALAR for name in self.wrt)
        if labels:
            key = key + (("inputs", labels, input_kinds, classes),)
        packing = (layout, single) if labels else None     # values read out of arguments
        found = self._compiled[key] = (compiled, floats, compiled.checker(), packing)
        return found

    def default_kinds(self, passed, kwargs):
        """The kinds of the parameters left to their defaults (a guard recompiles when the
        defaults change)."""
        from .compiler.shapes import constant_kind
        found = {}
        for p, parameter in list(inspect.signature(self.fn).parameters.items())[passed:]:
            if parameter.default is not parameter.empty and p not in (kwargs or ()):
                kind = constant_kind(parameter.default, p)
                if kind is not None:
                    found[p] = kind
        return found

    def wrt_values(self, args, kwargs):
        values = []
        for name, i in zip(self.wrt, self.wrt_index):
            if i < len(args):
                values.append(args[i])
            elif name in kwargs:
                values.append(kwargs[name])
            else:
                values.append(inspect.signature(self.fn).parameters[name].default)
        return values

    def finish(self, grads, args, kwargs, packing=None):
        if packing is not None:
            layout, single = packing
            read = self.__dict__.pop("_read", None)
            if read is not None and read[0] is args and read[1] is kwargs:
                inputs, values = read[2], read[3]
            else:
                inputs = self.inputs(args, kwargs)
                values = self.input_values(args, kwargs, inputs)
            values = dict(zip([label for label, _, _ in inputs], values))
            flat = (grads,) if single else grads
            out = []
            for name, where in layout:
                if isinstance(where, int):
                    value = values[name] if name in values else self.wrt_values(args, kwargs)[
                        self.wrt.index(name)]
                    out.append(_like(flat[where], value, name))
                else:
                    labels = {k: input_label(name, (("item", k),)) for k, _ in where}
                    out.append({k: _like(flat[j], values[labels[k]], labels[k]) for k, j in where})
            return out[0] if self.single else tuple(out)
        if kwargs or max(self.wrt_index) >= len(args):
            values = self.wrt_values(args, kwargs)
        else:
            values = [args[i] for i in self.wrt_index]
        if self.single:
            return _like(grads, values[0], self.wrt[0])
        return tuple([_like(g, x, name) for g, x, name in zip(grads, values, self.wrt)])

    def __call__(self, *args, **kwargs):
        if self.receiver:
            args = self.receiver + args
        # the key follows from the types alone, or from the types and the arrays' shapes
        # (and dtypes, which decide whether check() refuses them)
        signature = tuple(map(type, args))
        if np.ndarray in signature:
            signature = tuple([(a.shape, a.dtype) if type(a) is np.ndarray else type(a)
                               for a in args])
        plain = not kwargs and not self.paths and dict not in signature \
            and list not in signature and tuple not in signature   # (their elements' kinds)
        found = self._by_signature.get(signature) if plain else None
        if found is None or not found[2]():
            found = self._entry(self.key(args, kwargs), args, kwargs)
            if plain:
                if len(self._by_signature) > 64:          # many sizes: do not keep them all
                    self._by_signature.clear()
                self._by_signature[signature] = found
        compiled, floats, _, packing = found
        self.last = compiled
        if plain and floats and not self.receiver and self.mode != "vjp" \
                and _NUMBER_TYPES.issuperset(signature):
            _install_fast_call(self, signature, found)
        try:
            if self.mode == "grad":
                grads = compiled.function(*args, **kwargs)
            else:
                value, grads = compiled.function(*args, **kwargs)
        except Exception as exc:
            error = _users_error(exc, self.fn, compiled)
            if error is None:
                raise
            raise error from None
        if floats:
            if self.single:
                kind = type(grads)
                grads = grads if kind is float else float(grads) if kind is np.float64 else \
                    _float(grads, self.wrt[0])
            elif _MAYBE_COMPLEX.isdisjoint(map(type, grads)):
                grads = tuple(map(float, grads))
            else:
                grads = tuple([_float(g, name) for g, name in zip(grads, self.wrt)])
        else:
            grads = self.finish(grads, args, kwargs, packing)
        return grads if self.mode == "grad" else (value, grads)

    def __repr__(self):
        return f"<srcgrad.{self.mode} of {self.fn.__qualname__} wrt {', '.join(self.wrt)}>"


_NUMBER_TYPES = frozenset((float, int))


def _install_fast_call(d, signature, found):
    """Give `d` a `__call__` generated for calls whose arguments are all Python numbers of
    these types (the common scalar case): the type tests, the guards, the gradient and its
    conversion to floats inline, about 0.3 µs beyond the gradient itself. Anything else
    goes the general way (`_Differentiated.__call__`)."""
    compiled, _, check, _ = found
    names = [f"a{i}" for i in range(len(signature))]
    tests = " and ".join(f"type({n}) is _t{i}" for i, n in enumerate(names)) or "True"
    count = 1 if d.single else len(d.wrt)
    parts = [f"g{i}" for i in range(count)]
    convert = [f"        {p} = {p} if type({p}) is float else _float({p}, {d.wrt[i]!r})"
               for i, p in enumerate(parts)]
    grads = "grads" if d.mode == "grad" else "value, grads"
    unpack = f"        {parts[0]} = grads" if d.single else f"        {', '.join(parts)}, = grads"
    result = parts[0] if d.single else f"({', '.join(parts)},)"
    result = result if d.mode == "grad" else f"(value, {result})"
    source = "\n".join([
        "def __call__(self, *args, **kwargs):",
        f"    if not kwargs and len(args) == {len(names)}:",
        f"        {', '.join(names)}{',' if names else ''} = args",
        f"        if {tests} and _check():",
        "            self.last = _compiled",
        "            try:",
        f"                {grads} = _fn(*args)",
        "            except Exception as exc:",
        "                _fail(exc, self.fn, _compiled)",
        unpack.replace("        ", "            ", 1)] +
        [line.replace("        ", "            ", 1) for line in convert] + [
        f"            return {result}",
        "    return _general(self, *args, **kwargs)", ""])
    env = {f"_t{i}": t for i, t in enumerate(signature)}
    env.update(_check=check, _compiled=compiled, _fn=compiled.function, _float=_float,
               _fail=_fail, _general=_Differentiated.__call__)
    exec(compile(source, f"<srcgrad call of {d.fn.__qualname__}>", "exec"), env)
    d.__class__ = type(_Differentiated.__name__, (_Differentiated,), {
        "__call__": env["__call__"], "__module__": _Differentiated.__module__,
        "__qualname__": _Differentiated.__qualname__})


def _fail(exc, fn, compiled):
    """Raise the user's error for an exception the generated code raised."""
    error = _users_error(exc, fn, compiled)
    if error is None:
        raise exc
    raise error from None


def _shareable(value):
    """Whether a value can be reached by two paths as one object that matters (numbers and
    strings cannot)."""
    return not isinstance(value, (int, float, complex, str, bytes, bool, np.number, type(None)))


def _class_of(obj):
    """An object's class, and the names its own attributes take from the class's functions
    (`model.forward = ...` set on the instance: its methods are not the class's then)."""
    cls = type(obj)
    own = getattr(obj, "__dict__", None)
    if not own:
        return cls, ()
    return cls, tuple(sorted(k for k in own if isinstance(getattr(cls, k, None), types.FunctionType)))


def _users_error(exc, fn, compiled):
    """The error the user sees for an exception from generated code: named after the user's
    function and located at the user's line, not srcgrad's; None to let `exc` through."""
    if isinstance(exc, NonScalarOutputError):
        return NonScalarOutputError(exc.message, *compiled.return_where)
    if isinstance(exc, TypeError):
        return _bad_call(exc, fn, compiled)
    if isinstance(exc, RecursionError):
        return _too_deep(exc, fn)
    if isinstance(exc, SrcgradError):
        return _at_users_line(exc, fn, compiled)
    return None


def _at_users_line(exc, fn, compiled):
    """A SrcgradError a runtime helper raised without a location, located at the user's line
    the generated code was running (the `# line N` comment above it); None if it has one."""
    if exc.lineno is not None or not compiled.filename:
        return None
    tb, line = exc.__traceback__, None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == compiled.filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    if line is None:
        return None
    lines = linecache.getlines(compiled.filename) or ["\n"] + compiled.source.splitlines()
    for text in reversed(lines[:line]):         # (the first line holds the factory's def)
        text = text.strip()
        if text.startswith("# line "):
            number, _, rest = text[len("# line "):].partition(":")
            number, _, owner = number.partition(" in ")
            where = next((h for h in compiled.inlined if getattr(h, "__name__", None) == owner),
                         fn) if owner else fn
            filename = getattr(getattr(where, "__code__", None), "co_filename", None)
            if not number.isdigit() or filename is None:
                return None
            lineno = int(number)
            source = linecache.getline(filename, lineno)
            col = len(source) - len(source.lstrip()) if source else 0
            return type(exc)(exc.message, filename, lineno, col, source or None)
    return None


def _bad_call(exc, fn, compiled):
    """A TypeError from binding the arguments to the generated function (too few, too
    many, an unknown keyword) as the user's function raises it, naming that function;
    None for a TypeError raised inside."""
    tb = exc.__traceback__
    generated = compiled.function.__qualname__ + "()"
    message = str(exc)
    if tb is None or tb.tb_next is not None or not message.startswith(generated):
        return None
    return ArgumentError(fn.__qualname__ + "()" + message[len(generated):])


def _too_deep(exc, fn):
    """A RecursionError a recursive function's gradient ran into, as a RecursionDepthError
    that says how deep it got and how to raise the limit; None for one that no recursive
    call (runtime.RecursiveCall) led to, or that is a RecursionDepthError already."""
    if isinstance(exc, SrcgradError):
        return None
    from .runtime import RecursiveCall
    forward, backward, name = 0, 0, None
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code is RecursiveCall.__code__:
            forward += 1
            name = getattr(frame.f_locals.get("fn"), "__qualname__", name)
        elif frame.f_code is _PULLBACK_CODE:
            backward += 1
            name = getattr(getattr(frame.f_locals.get("d"), "fn", None), "__qualname__", name)
        tb = tb.tb_next
    depth = max(forward, backward)
    if not depth:
        return None
    limit = sys.getrecursionlimit()
    sweep = "forward sweep" if forward >= backward else "adjoint sweep"
    return RecursionDepthError(
        f"the gradient of {fn.__qualname__} reached Python's recursion limit ({limit}) "
        f"{depth} recursive calls deep (calls of `{name}`, in the {sweep}): each level of a "
        "recursion takes two Python frames in the gradient, where the function takes one. "
        "If the recursion ends, raise the limit before calling the gradient, e.g. "
        f"`import sys; sys.setrecursionlimit({max(10_000, 4 * limit)})`; if it never ends, "
        "neither does the function")


_CACHE = weakref.WeakKeyDictionary()
_PRIMITIVES = {}        # np.sin -> its Python wrapper (see _primitive)


def _python_function(fn):
    """What grad differentiates for `fn`: the function of a staticmethod object; for a
    numpy or builtin function with a derivative rule, a Python function that calls it."""
    if isinstance(fn, staticmethod):
        return fn.__func__
    if isinstance(fn, classmethod):
        f = fn.__func__
        owner = f.__qualname__.rsplit(".", 1)[0]
        raise ArgumentError(f"{f.__qualname__} is a classmethod object (read out of the "
                            "class's __dict__), which has no class to call it with: differentiate "
                            f"the method the class gives, srcgrad.grad({owner}.{f.__name__})")
    if not callable(fn):
        raise ArgumentError(f"{fn!r} is not callable: srcgrad differentiates a Python function "
                            "(a def or a lambda)")
    if hasattr(fn, "__code__") or inspect.ismethod(fn):
        return fn
    numpy = isinstance(fn, (np.ufunc, type(np.sum)))      # a ufunc, or np.sum's kind
    if numpy or isinstance(fn, types.BuiltinFunctionType):
        return _primitive(fn, numpy)
    return fn


def _primitive(fn, numpy):
    """grad(np.sin): a numpy or builtin function has no Python source. When srcgrad has a
    derivative rule for it and knows its required parameters, differentiate the wrapper
    `def sin(x): return np.sin(x)`, whose source is kept in linecache under the name
    "<srcgrad: np.sin as a Python function>"; otherwise refuse, saying how to wrap it."""
    try:
        found = _PRIMITIVES.get(fn)
    except TypeError:                          # unhashable
        found = None
    if found is not None:
        return found
    from .rules import lookup
    module = getattr(fn, "__module__", None) or ""
    name = getattr(fn, "__name__", None)
    root = module.split(".")[0]
    alias = "np" if root == "numpy" else root
    path = None
    if name and module == "builtins" and getattr(builtins_module, name, None) is fn:
        path, namespace = name, {}
    elif name and root and getattr(sys.modules.get(module), name, None) is fn:
        path, namespace = f"{alias}{module[len(root):]}.{name}", {alias: sys.modules[root]}
    params = _required_params(fn)
    label = path or name or repr(fn)
    what = f"{label} is {'a numpy' if numpy else 'a builtin'} function, not Python source"
    if lookup(fn) is None:
        raise NoSourceError(f"{what}, and srcgrad has no derivative rule for it (docs/rules.md "
                            "lists them; srcgrad.rules.partial adds one)")
    if path is None or not params or isinstance(fn, np.ufunc) and fn.nout != 1:
        names = ", ".join(params or ["x"])
        raise NoSourceError(f"{what}: srcgrad differentiates functions written in Python; wrap "
                            f"it: srcgrad.grad(lambda {names}: {label}({names}))")
    filename = f"<srcgrad: {path} as a Python function>"
    text = f"def {name}({', '.join(params)}):\n    return {path}({', '.join(params)})\n"
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    namespace["__name__"] = __name__
    made = {}
    exec(compile(text, filename, "exec"), namespace, made)   # the def stays out of its globals
    wrapper = made[name]
    wrapper.__qualname__ = path
    try:
        _PRIMITIVES[fn] = wrapper
    except TypeError:
        pass
    return wrapper


def _required_params(fn):
    """The names of the parameters a call of a numpy or builtin function must pass (its
    optional ones are left at their defaults), or None when they are not known."""
    if isinstance(fn, np.ufunc):
        return ["x"] if fn.nin == 1 else [f"x{i + 1}" for i in range(fn.nin)]
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    params = []
    for p in signature.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.default is not p.empty:
            continue
        if p.kind is p.KEYWORD_ONLY:
            return None
        params.append(p.name)
    return params


def _differentiated(fn, wrt, mode):
    fn = _python_function(fn)
    wrt = _normal_wrt(wrt)
    if inspect.ismethod(fn):                  # a new bound method object on every access
        return _Differentiated(fn, wrt, mode)
    try:
        per_fn = _CACHE.setdefault(fn, {})
    except TypeError:                         # no weak reference to it: nothing to cache
        return _Differentiated(fn, wrt, mode)
    key = (wrt, mode)
    found = per_fn.get(key)
    if found is None:
        found = per_fn[key] = _Differentiated(fn, wrt, mode)
    return found


def grad(f=None, wrt=0):
    """The gradient of scalar-valued `f` with respect to argument(s) `wrt`.

    `wrt` is an argument index, a parameter name, an attribute path of a parameter
    (`"self.w"`: differentiate with respect to that attribute of the object passed
    in), or a tuple of them (then the gradient is a tuple). A wrt argument that is a
    dict of floats and arrays gets a dict of gradients. Also a decorator: `@grad`
    or `@grad(wrt=("w", "b"))`.
    """
    if f is None:
        return lambda fn: _differentiated(fn, wrt, "grad")
    return _differentiated(f, wrt, "grad")


def value_and_grad(f=None, wrt=0):
    """Like `grad`, but the function returns `(value, gradient)`."""
    if f is None:
        return lambda fn: _differentiated(fn, wrt, "value_and_grad")
    return _differentiated(f, wrt, "value_and_grad")


def vjp(f, *args, wrt=0, **kwargs):
    """Run `f(*args, **kwargs)`; return `(value, pullback)`.

    `pullback(seed)` returns the gradient(s) of `sum(seed * f(...))` with respect
    to `wrt`: the vector-Jacobian product, for functions with non-scalar output.
    """
    return _vjp(_differentiated(f, wrt, "vjp"), args, kwargs)


def _vjp(d, args, kwargs):
    """(value, pullback) of the user's srcgrad.vjp call."""
    compiled, args, packing = _vjp_entry(d, args, kwargs)
    try:
        value, pullback = compiled.function(*args, **kwargs)
    except Exception as exc:
        error = _users_error(exc, d.fn, compiled)
        if error is None:
            raise
        raise error from None
    inner = _pullback(d, compiled, value, pullback, args, kwargs, packing)

    def finished_pullback(seed):
        _check_seed(seed, value)
        try:
            return _unshared(inner(seed), seed)
        except Exception as exc:
            error = _users_error(exc, d.fn, compiled)
            if error is None:
                raise
            raise error from None

    finished_pullback.srcgrad = d
    return value, finished_pullback


def _vjp_entry(d, args, kwargs):
    """(the compiled VJP for these arguments, the arguments with the receiver, packing):
    what a VJP call runs. runtime.RecursiveCall calls the compiled VJP itself, so that
    a level of a recursion takes two Python frames (the VJP and RecursiveCall)."""
    args = d.receiver + args
    compiled, _, _, packing = d._entry(d.key(args, kwargs), args, kwargs)
    return compiled, args, packing


def _pullback(d, compiled, value, pullback, args, kwargs, packing):
    """The pullback of one VJP call, its gradients in the arguments' types (`_like`)."""
    calls = []

    def finished(seed):
        if calls and compiled.single_use:
            raise SrcgradError("this pullback restores values its loops saved, so it can be "
                               "called once: call srcgrad.vjp again for another seed")
        calls.append(1)
        return d.finish(pullback(_spread(seed, value)), args, kwargs, packing)

    return finished


# the frame of a recursive call's pullback, which _too_deep counts
_PULLBACK_CODE = next(c for c in _pullback.__code__.co_consts
                      if getattr(c, "co_name", "") == "finished")


def _unshared(grads, seed):
    """Gradients that share no memory with the seed (so writing into one leaves the other)."""
    seeds = [s for s in (seed if isinstance(seed, (tuple, list)) else (seed,)) if isinstance(s, np.ndarray)]
    if not seeds:
        return grads

    def own(g):
        return g.copy() if isinstance(g, np.ndarray) and any(np.shares_memory(g, s) for s in seeds) else g
    return tuple(own(g) for g in grads) if isinstance(grads, tuple) else own(grads)


def _spread(seed, value):
    """A scalar seed for an array output means that number for every element."""
    if isinstance(value, tuple):
        return tuple(_spread(s, v) for s, v in zip(seed, value))
    if np.ndim(seed) == 0 and np.ndim(value) > 0:
        return np.full(np.shape(value), seed, dtype=np.result_type(seed, float))
    return seed


def _check_seed(seed, value):
    if isinstance(value, tuple):
        if not isinstance(seed, (tuple, list)) or len(seed) != len(value):
            raise SrcgradError(f"the function returned a tuple of {len(value)} values: pass a "
                               "tuple of as many seeds to the pullback")
        for s, v in zip(seed, value):
            _check_seed(s, v)
        return
    if seed is None or isinstance(seed, (str, bytes)) or not np.issubdtype(
            np.asarray(seed).dtype, np.number) or np.iscomplexobj(seed):
        raise SrcgradError(f"the seed must be a real number or array of the output's shape, "
                           f"not {seed!r}")
    if np.ndim(seed) != 0 and np.shape(seed) != np.shape(value):
        raise SrcgradError(f"the seed has shape {np.shape(seed)} but the function's output has "
                           f"shape {np.shape(value)}: pass a seed of the output's shape")


def source(df, *args, stages=False):
    """The generated source of a gradient made by grad, value_and_grad or vjp.

    With example arguments, the source specialised for arguments like them;
    without, the source of the most recent call (or a generic one). With
    `stages=True`, what each pass of the compiler produced, printed in turn: the
    normalized program with every value's kind, the adjoint sweep, the program
    pruned to what the sweep reads (grad only), and the generated source.
    """
    d = getattr(df, "srcgrad", df)
    if not isinstance(d, _Differentiated):
        raise SrcgradError(f"{df!r} was not made by srcgrad.grad, value_and_grad or vjp")
    if stages:
        return d.stages(d.receiver + args)
    if args or d.last is None:
        return d.compiled(d.receiver + args).source
    return d.last.source
