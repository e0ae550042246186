"""Errors srcgrad raises on purpose.

Every error about the user's code carries the user's file, line and column,
so the message reads like a compiler diagnostic::

    model.py:12:8: cannot differentiate a `for` loop yet
        for i in range(n):
        ^
"""


class SrcgradError(Exception):
    """Base of every error srcgrad raises on purpose."""

    def __init__(self, message, filename=None, lineno=None, col=None, line_text=None):
        self.message = message
        self.filename = filename
        self.lineno = lineno
        self.col = col
        self.line_text = line_text
        super().__init__(self._format())

    def _format(self):
        if self.filename is None or self.lineno is None:
            return self.message
        col = self.col or 0
        text = f"{self.filename}:{self.lineno}:{col + 1}: {self.message}"
        if self.line_text:
            stripped = self.line_text.rstrip()
            indent = len(stripped) - len(stripped.lstrip())
            text += f"\n    {stripped.lstrip()}\n    {' ' * max(col - indent, 0)}^"
        return text


class UnsupportedError(SrcgradError):
    """A construct the compiler refuses to differentiate."""


class NoSourceError(SrcgradError):
    """The function's source code cannot be found."""


class NonScalarOutputError(SrcgradError):
    """`grad` was asked for the gradient of a non-scalar output."""


class ArgumentError(SrcgradError, TypeError):
    """What was handed to srcgrad cannot be differentiated: not a Python function, a wrt
    that names nothing, or arguments of a type gradients are not defined for."""


class RecursionDepthError(SrcgradError, RecursionError):
    """A recursive function's gradient ran past Python's recursion limit."""


class StaleSourceError(SrcgradError):
    """The function's source file was edited after the function was defined: the text
    srcgrad would differentiate is not the code that runs."""
