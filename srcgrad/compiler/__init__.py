"""The source-transformation compiler: see pipeline.py for the passes in order."""
from .pipeline import Compiled, compile_gradient

__all__ = ["Compiled", "compile_gradient"]
