"""Source mode vs tape mode vs finite differences, on one call.

    report = srcgrad.compare(bce_numpy, 1.0, 0.0, 6.7, 0.0, wrt=("w", "b"))
    print(report)            # a fixed-width table; in Jupyter, an HTML table
    assert report.ok         # every pair of methods agrees within tolerance

`compare` runs the same unmodified function three ways: the generated
gradient (srcgrad.value_and_grad, or srcgrad.vjp with a random seed when the
output is not a scalar), tape mode (the wrt arguments wrapped in
`tape.tensor(..., requires_grad=True)`, then `backward()`), and central finite
differences (srcgrad.testing.numerical_grad). The report holds each method's
gradients, the largest absolute and relative difference between each pair of
methods, and the time per call of each method. A function tape mode cannot
run (`math.exp(t)` on a tensor) gets a report that says why in the tape
column; the other two methods are still compared.
"""
import copy
import html
import inspect
import math
import textwrap
import time

import numpy as np

from . import tape
from .api import _wrt_names, value_and_grad, vjp
from .compiler.parse import input_label, input_steps
from .testing import numerical_grad

__all__ = ["compare", "Report"]

METHODS = ("source", "tape", "fd")
LABELS = {"source": "source", "tape": "tape", "fd": "finite differences"}
PAIRS = (("source", "tape"), ("source", "fd"), ("tape", "fd"))
TIMED = {"function": "{name} itself", "source": "source gradient",
         "tape": "tape forward + backward", "fd": "finite differences"}
RTOL, ATOL = 1e-5, 1e-6   # what central differences with eps=1e-6 reach on smooth functions
TIME_PER_METHOD = 0.2     # seconds each timing loop aims at


def compare(f, *args, wrt=0, **kwargs):
    """Differentiate `f(*args, **kwargs)` with respect to `wrt` three ways; return a Report.

    `wrt` names what srcgrad.grad accepts: parameters, attribute paths ("model.w"), and
    parameters passed a dict (each entry is compared: "params['w']")."""
    from .api import _python_function
    f = _python_function(f)                  # np.sin: the Python function grad differentiates
    names, _ = _wrt_names(f, wrt)
    call = inspect.signature(f).bind(*args, **kwargs)
    call.apply_defaults()
    value = f(*args, **kwargs)
    seed = _seed(value)
    leaves = _leaves(call, names)
    report = Report(f, tuple(label for label, _ in leaves), dict(call.arguments), value, seed)

    if seed is None:
        value_and_gradient = value_and_grad(f, wrt=names)
        source = lambda: value_and_gradient(*args, **kwargs)[1]  # noqa: E731
    else:
        source = lambda: vjp(f, *args, wrt=names, **kwargs)[1](seed)  # noqa: E731
    report.gradients["source"] = _flat(names, source())

    try:
        report.gradients["tape"] = _tape_gradients(f, call, leaves, seed)
    except Exception as error:  # noqa: BLE001 -- the report shows why tape mode cannot run f
        report.errors["tape"] = f"{type(error).__name__}: {error}"

    started = time.perf_counter()
    report.gradients["fd"] = _fd_gradients(f, call, leaves, seed)
    fd_seconds = time.perf_counter() - started

    report.times["function"] = _time_per_call(lambda: f(*args, **kwargs))
    report.times["source"] = _time_per_call(source)
    if "tape" in report.gradients:
        report.times["tape"] = _time_per_call(lambda: _tape_gradients(f, call, leaves, seed))
    report.times["fd"] = _time_per_call(lambda: _fd_gradients(f, call, leaves, seed), fd_seconds)
    return report


def _leaves(call, names):
    """[(label, value)]: each value differentiated with respect to; a dict argument's
    entries are values of their own ("params['w']")."""
    found = []
    for name in names:
        root, steps = input_steps(name)
        value = call.arguments[root]
        for _, attr in steps:
            value = getattr(value, attr)
        if type(value) is dict and not steps:
            found += [(input_label(name, (("item", k),)), v) for k, v in value.items()]
        else:
            found.append((name, value))
    return found


def _flat(names, grads):
    """srcgrad's gradients (one per name: wrt was a tuple) by leaf label (a dict of
    gradients for a dict argument)."""
    out = {}
    for name, g in zip(names, grads):
        if isinstance(g, dict):
            out.update({input_label(name, (("item", k),)): v for k, v in g.items()})
        else:
            out[name] = g
    return out


def _seed(value):
    """None for a scalar output; else a random normal seed shaped like the output."""
    rng = np.random.default_rng(0)
    if isinstance(value, tuple):
        return tuple(rng.normal(size=np.shape(v)) for v in value)
    return None if np.size(value) == 1 else rng.normal(size=np.shape(value))


def _call_with(call, values):
    """`call`'s (args, kwargs) with the leaves named in `values` replaced: a parameter, an
    entry of a dict argument (in a copy of the dict), or an attribute (in a shallow copy
    of each object on the path)."""
    replaced = {}
    for label, new in values.items():
        root, steps = input_steps(label)
        if not steps:
            replaced[label] = new
        elif steps[0][0] == "item":                        # params['w']
            table = replaced[root] if root in replaced else dict(call.arguments[root])
            table[steps[0][1]] = new
            replaced[root] = table
        else:                                              # model.w
            holder = replaced[root] if root in replaced else copy.copy(call.arguments[root])
            replaced[root] = holder
            for _, attr in steps[:-1]:
                inner = copy.copy(getattr(holder, attr))
                setattr(holder, attr, inner)
                holder = inner
            setattr(holder, steps[-1][1], new)
    args, kwargs = list(call.args), dict(call.kwargs)
    for i, name in enumerate(call.signature.parameters):
        if name in replaced:
            if name in kwargs:
                kwargs[name] = replaced[name]
            else:
                args[i] = replaced[name]
    return args, kwargs


def _tape_gradients(f, call, leaves, seed):
    """Run f on tape tensors and backpropagate; one gradient (numpy) per leaf."""
    tensors = {label: tape.tensor(value, requires_grad=True) for label, value in leaves}
    args, kwargs = _call_with(call, tensors)
    outputs, seeds = f(*args, **kwargs), seed
    if not isinstance(outputs, tuple):
        outputs, seeds = (outputs,), (seed,)
    recorded = [(o, s) for o, s in zip(outputs, seeds)
                if isinstance(o, tape.Tensor) and o.requires_grad]
    for i, (output, s) in enumerate(recorded):
        output.backward(s, retain_graph=i < len(recorded) - 1)
    grads = {}
    for label, x in leaves:
        g = tensors[label].grad
        g = np.zeros(np.shape(x)) if g is None else g.data  # no gradient reached x
        grads[label] = g if isinstance(x, np.ndarray) else float(g)
    return grads


def _fd_gradients(f, call, leaves, seed):
    def varying(label):
        def f_of(x):
            args, kwargs = _call_with(call, {label: x})
            return f(*args, **kwargs)
        return f_of
    return {label: numerical_grad(varying(label), (value,), 0, seed) for label, value in leaves}


def _time_per_call(fn, first=None):
    """Seconds per call of fn, from a loop sized to take about TIME_PER_METHOD.

    Each try sizes the next from its own rate (at most 10x more calls), until
    one takes at least half the budget; `first` is a single call already timed.
    """
    number, seconds = 1, first if first is not None else _timed(fn, 1)
    while seconds < TIME_PER_METHOD / 2:
        number = min(10 * number, math.ceil(number * TIME_PER_METHOD / max(seconds, 1e-9)))
        seconds = _timed(fn, number)
    return seconds / number


def _timed(fn, number):
    started = time.perf_counter()
    for _ in range(number):
        fn()
    return time.perf_counter() - started


def _difference(a, b):
    """Per element: |a - b|, that relative to max(|a|, |b|), and max(|a|, |b|); NaN in both is no difference."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    both_nan = np.isnan(a) & np.isnan(b)
    absolute = np.where(both_nan, 0.0, np.abs(a - b))
    absolute = np.where(np.isnan(absolute), np.inf, absolute)
    scale = np.maximum(np.abs(a), np.abs(b))
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = np.where(absolute == 0, 0.0, absolute / scale)
    relative = np.where(np.isnan(relative), np.inf, relative)
    return absolute, relative, scale


class Report:
    """What `srcgrad.compare` found: gradients, differences and timings per method.

    `gradients[method][name]` is each method's gradient ("source", "tape", "fd")
    per wrt parameter; a method that could not run has none, and its reason in
    `errors[method]`. `times[mode]` is seconds per call ("function", "source",
    "tape", "fd"). `difference(m1, m2)` is the largest absolute and relative
    difference over all wrt arguments; `ok` says every pair of methods that ran
    agrees within rtol=1e-5, atol=1e-6 (`within(rtol, atol)` for others).
    """

    def __init__(self, function, wrt, arguments, value, seed):
        self.function = function
        self.wrt = wrt
        self.arguments = arguments
        self.value = value
        self.seed = seed
        self.gradients = {}
        self.errors = {}
        self.times = {}

    @property
    def name(self):
        return self.function.__name__

    def difference(self, m1, m2):
        """(largest absolute, largest relative) difference between two methods, or None."""
        if m1 not in self.gradients or m2 not in self.gradients:
            return None
        worst_abs = worst_rel = 0.0
        for name in self.wrt:
            absolute, relative, _ = _difference(self.gradients[m1][name], self.gradients[m2][name])
            worst_abs = max(worst_abs, float(np.max(absolute, initial=0.0)))
            worst_rel = max(worst_rel, float(np.max(relative, initial=0.0)))
        return worst_abs, worst_rel

    def agree(self, m1, m2, rtol=RTOL, atol=ATOL):
        """Whether |g1 - g2| <= atol + rtol * max(|g1|, |g2|) everywhere (None if one did not run)."""
        if m1 not in self.gradients or m2 not in self.gradients:
            return None
        for name in self.wrt:
            absolute, _, scale = _difference(self.gradients[m1][name], self.gradients[m2][name])
            if not np.all(absolute <= atol + rtol * scale):
                return False
        return True

    def within(self, rtol=RTOL, atol=ATOL):
        """Whether every pair of methods that ran agrees within the tolerance."""
        return all(self.agree(m1, m2, rtol, atol) is not False for m1, m2 in PAIRS)

    @property
    def ok(self):
        return self.within()

    # ---- presentation: the same rows as a fixed-width table (str) and as HTML (Jupyter)

    def _header(self):
        shown = ", ".join(f"{k}={_brief(v)}" for k, v in self.arguments.items())
        if self.seed is None:
            output = f"value {_brief(self.value, digits=6)}"
        else:
            output = (f"output {_brief(self.value)}: gradients of sum(seed * output), "
                      "seed random normal (report.seed)")
        return f"{self.name}({shown}) with respect to {', '.join(self.wrt)}", output

    def _gradient_rows(self):
        for name in self.wrt:
            for method in METHODS:
                text = (_array_text(self.gradients[method][name]) if method in self.gradients
                        else "— (did not run: see below)")
                yield f"d/d{name}" if method == METHODS[0] else "", LABELS[method], text

    def _difference_rows(self):
        for m1, m2 in PAIRS:
            found, agree = self.difference(m1, m2), self.agree(m1, m2)
            label = f"{LABELS[m1]} vs {LABELS[m2]}"
            if found is None:
                yield label, "—", "—", "—"
            else:
                yield label, f"{found[0]:.2g}", f"{found[1]:.2g}", "yes" if agree else "NO"

    def _time_rows(self):
        base = self.times.get("function")
        for mode, label in TIMED.items():
            seconds = self.times.get(mode)
            ratio = "" if mode == "function" or not base or seconds is None \
                else f"{seconds / base:.3g}x {self.name}"
            yield label.format(name=self.name), "—" if seconds is None else _seconds(seconds), ratio

    def _sections(self):
        """(title, header row, rows, numeric columns) of the three tables."""
        tolerance = f"within rtol={RTOL:g}, atol={ATOL:g}"
        return [("gradient", None, list(self._gradient_rows()), ()),
                ("largest difference", ("", "absolute", "relative", tolerance),
                 list(self._difference_rows()), (1, 2)),
                ("time per call", None, list(self._time_rows()), (1,))]

    def _verdict(self):
        ran = [LABELS[m] for m in METHODS if m in self.gradients]
        tolerance = f"rtol={RTOL:g}, atol={ATOL:g}"
        if self.ok:
            missing = [LABELS[m] for m in METHODS if m not in self.gradients]
            note = f" ({', '.join(missing)} did not run)" if missing else ""
            who = " and ".join(ran) if len(ran) < 3 else "all three methods"
            return f"ok: {who} agree within {tolerance}{note}"
        bad = [f"{LABELS[a]} vs {LABELS[b]}" for a, b in PAIRS if self.agree(a, b) is False]
        return f"NOT OK: {'; '.join(bad)} differ by more than {tolerance}"

    def __str__(self):
        title, output = self._header()
        lines = [title, f"  {output}"]
        for heading, header, rows, numeric in self._sections():
            lines += ["", heading] + _table(([header] if header else []) + rows, numeric)
        for method, message in self.errors.items():
            lines += ["", f"{LABELS[method]} mode could not run {self.name}:"]
            lines += [textwrap.indent(textwrap.fill(line, 86), "  ") for line in message.splitlines()]
        lines += ["", self._verdict()]
        return "\n".join(line.rstrip() for line in lines)

    __repr__ = __str__

    def _repr_html_(self):
        e = html.escape
        title, output = self._header()
        parts = [f"<p><b>{e(title)}</b><br>{e(output)}</p>"]
        parts += [_html_table(*section) for section in self._sections()]
        parts += [f"<p><b>{e(LABELS[m])} mode could not run {e(self.name)}:</b><br>"
                  f"<code>{e(message)}</code></p>" for m, message in self.errors.items()]
        parts.append(f"<p><b>{e(self._verdict())}</b></p>")
        return "<div>" + "".join(parts) + "</div>"


# ---- formatting helpers


def _brief(x, digits=4):
    """A short description of an argument or a value: the number, or dtype and shape."""
    if isinstance(x, (tuple, list)):
        return "(" + ", ".join(_brief(v, digits) for v in x) + ")"
    if isinstance(x, np.ndarray) and x.ndim > 0:
        return f"<{x.dtype} array {x.shape}>"
    if isinstance(x, (int, np.integer)):
        return str(x)
    if isinstance(x, (float, np.floating, np.ndarray)):
        text = f"{float(x):.{digits}g}"
        return text if any(c in text for c in ".enai") else text + ".0"  # 5.0, not 5
    return repr(x) if len(repr(x)) <= 30 else f"<{type(x).__name__}>"


def _array_text(g):
    if np.ndim(g) == 0:
        return _brief(float(g), digits=7)
    return np.array2string(np.asarray(g), precision=6, threshold=24, edgeitems=3, max_line_width=72)


def _seconds(s):
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if s >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s * 1e9:.3g} ns"


def _table(rows, numeric=(), indent=2):
    """Fixed-width lines of `rows` (tuples of strings); the last cell may span several lines."""
    widths = [max(len(row[i].split("\n")[0]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        first, *more = row[-1].split("\n")
        prefix = " " * indent + "  ".join(cells[:-1]) + "  "
        lines.append(prefix + (cells[-1] if len(row) - 1 in numeric else first))
        lines += [" " * len(prefix) + line for line in more]
    return lines


def _html_table(caption, header, rows, numeric):
    e = html.escape

    def cell(text, i, tag="td"):
        align = "right" if i in numeric else "left"
        body = f"<pre style='margin:0'>{e(text)}</pre>" if "\n" in text else e(text)
        return f"<{tag} style='text-align:{align}'>{body}</{tag}>"
    head = "<tr>" + "".join(cell(h, i, "th") for i, h in enumerate(header)) + "</tr>" if header else ""
    body = "".join("<tr>" + "".join(cell(c, i) for i, c in enumerate(row)) + "</tr>" for row in rows)
    return (f"<table><caption style='text-align:left'><b>{e(caption)}</b></caption>"
            f"{head}{body}</table>")
