"""srcgrad: readable reverse-mode gradients of Python and numpy code, by source transformation."""
from . import rules
from .api import grad, no_grad, source, stop_gradient, value_and_grad, vjp
from .errors import SrcgradError

__version__ = "0.1.0"
__all__ = ["grad", "value_and_grad", "vjp", "source", "no_grad", "stop_gradient",
           "SrcgradError", "rules", "testing"]


def __getattr__(name):
    if name == "testing":
        from . import testing
        return testing
    raise AttributeError(f"module 'srcgrad' has no attribute {name!r}")
