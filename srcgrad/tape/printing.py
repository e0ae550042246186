"""How a tape tensor prints: the way PyTorch prints it.

    tensor(25., grad_fn=<PowBackward>)
    tensor([0.6667, 1.3333, 2.0000])
    tensor([[1., 2.],
            [3., 4.]], requires_grad=True)

Floats whose finite values are all whole print as `25.`; others with 4
decimals, or in scientific notation when their magnitudes span more than
1000x (or pass 1e8, or fall below 1e-4). All elements share one width.
Tensors of more than 1000 elements show 3 items at each edge of each axis.
"""
import math

import numpy as np

__all__ = ["tensor_repr"]

PRECISION = 4
LINE_WIDTH = 80
THRESHOLD = 1000
EDGE_ITEMS = 3


def _number_format(data):
    """A function formatting one element, chosen from all of `data` as torch does."""
    if data.dtype.kind not in "fc":
        return str
    values = np.abs(data[np.isfinite(data) & (data != 0)].real.astype(float))
    if values.size == 0 or np.all(values == np.floor(values)):
        if values.size and (values.max() / values.min() > 1000 or values.max() > 1e8):
            return lambda v: f"{v:.{PRECISION}e}"
        return lambda v: f"{v:.0f}" + ("" if math.isinf(v) or math.isnan(v) else ".")
    if values.max() / values.min() > 1000 or values.max() > 1e8 or values.min() < 1e-4:
        return lambda v: f"{v:.{PRECISION}e}"
    return lambda v: f"{v:.{PRECISION}f}"


def _edges(n, summarize):
    """Indices to show along an axis of length n, with None where '...' goes."""
    if summarize and n > 2 * EDGE_ITEMS:
        return list(range(EDGE_ITEMS)) + [None] + list(range(n - EDGE_ITEMS, n))
    return list(range(n))


def _block(data, cell, width, indent, summarize):
    """The bracketed text of `data` (ndim >= 1), its rows indented under the first."""
    if data.ndim == 1:
        items = [" ..." if i is None else cell(data[i]).rjust(width) for i in _edges(len(data), summarize)]
        per_line = max(1, (LINE_WIDTH - indent) // (width + 2))
        lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
        return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"
    rows = ["..." if i is None else _block(data[i], cell, width, indent + 1, summarize)
            for i in _edges(len(data), summarize)]
    return "[" + ("," + "\n" * (data.ndim - 1) + " " * (indent + 1)).join(rows) + "]"


def tensor_repr(data, suffix=""):
    """`tensor(...)` text for the ndarray `data`, with `suffix` (e.g. ', requires_grad=True')."""
    prefix = "tensor("
    summarize = data.size > THRESHOLD
    fmt = _number_format(data)
    cell = lambda v: fmt(v.item())
    if data.ndim == 0:
        return f"{prefix}{cell(data)}{suffix})"
    if data.size == 0:
        return f"{prefix}[]{suffix}, shape={data.shape})" if data.ndim > 1 else f"{prefix}[]{suffix})"
    shown = data
    if summarize:  # only the edges decide the width, as in torch
        for axis in range(data.ndim):
            keep = [i for i in _edges(data.shape[axis], True) if i is not None]
            shown = np.take(shown, keep, axis=axis)
    if data.dtype.kind in "fc":  # torch sizes the columns by the finite nonzero values
        shown = shown[np.isfinite(shown) & (shown != 0)]
    width = max([len(cell(v)) for v in shown.reshape(-1)], default=1)
    return f"{prefix}{_block(data, cell, width, len(prefix), summarize)}{suffix})"
