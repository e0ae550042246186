"""Tape mode: PyTorch-style operator overloading over the same rule registry as the compiler.

    from srcgrad import tape
    x = tape.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = np.mean(x ** 2)
    y.backward()
    x.grad          # tensor([0.6667, 1.3333, 2.0000])

See docs/tape.md.
"""
from ..api import is_grad_enabled, no_grad
from .tensor import Node, Tensor, apply, tensor

__all__ = ["tensor", "Tensor", "Node", "apply", "no_grad", "is_grad_enabled"]
