"""Derivative rules, grouped by the library they differentiate.

Importing this package registers every built-in rule. Users add their own with
the same public calls: :func:`partial`, :func:`vjp`, :func:`nondifferentiable`.
"""
from . import math, numpy, operators  # noqa: F401  (registers the built-in rules)
from .registry import (Rule, all_rules, is_nondifferentiable, lookup, method_primal,
                       nondifferentiable, partial, vjp)

__all__ = ["Rule", "all_rules", "is_nondifferentiable", "lookup", "method_primal",
           "nondifferentiable", "partial", "vjp"]
