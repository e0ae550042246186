"""srcgrad: readable reverse-mode gradients of Python and numpy code, by source transformation."""
from . import rules, tape, testing
from .api import grad, no_grad, source, stop_gradient, value_and_grad, vjp
from .compare import compare
from .errors import SrcgradError

__version__ = "0.1.0"
__all__ = ["grad", "value_and_grad", "vjp", "source", "no_grad", "stop_gradient",
           "compare", "SrcgradError", "rules", "tape", "testing"]
