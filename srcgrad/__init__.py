"""srcgrad: readable reverse-mode gradients of Python and numpy code, by source transformation."""
import importlib

from . import rules
from .api import grad, no_grad, source, stop_gradient, value_and_grad, vjp
from .errors import SrcgradError

__version__ = "0.1.0"
__all__ = ["grad", "value_and_grad", "vjp", "source", "no_grad", "stop_gradient",
           "compare", "SrcgradError", "rules", "tape", "testing"]

_LAZY = {"tape": "srcgrad.tape", "testing": "srcgrad.testing", "diskcache": "srcgrad.diskcache"}


def __getattr__(name):
    """`srcgrad.tape`, `srcgrad.testing`, `srcgrad.compare`: imported on first use."""
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        globals()[name] = module
        return module
    if name == "compare":
        compare = importlib.import_module("srcgrad.comparison").compare
        globals()["compare"] = compare
        return compare
    raise AttributeError(f"module 'srcgrad' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY) + ["compare"])
