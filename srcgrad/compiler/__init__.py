"""The source-transformation compiler: see pipeline.py for the passes in order.

Imported on first use (the first gradient compiled), not by `import srcgrad`."""

__all__ = ["Compiled", "compile_gradient"]


def __getattr__(name):
    if name in __all__:
        from . import pipeline
        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
