"""The `srcgrad` command (also `python -m srcgrad`): demo, show, compare. See `srcgrad --help`."""
import argparse
import ast
import importlib.util
import inspect
import keyword
import math
import os
import re
import sys
import traceback
from pathlib import Path

import numpy as np

DESCRIPTION = "Readable reverse-mode gradients of Python and numpy code."
EPILOG = """\
FILE.py:FUNCTION names a function in a Python file, e.g. model.py:loss.
The file is imported as a module (its `if __name__ == "__main__":` block does not run).

--wrt names the arguments to differentiate with respect to: parameter names
or positions, separated by commas (--wrt w,b or --wrt 0,1). Default: the first.

--args is what you would write between the parentheses of a call to FUNCTION,
evaluated as Python with numpy as `np`, `math`, and the file's own names:
    --args "np.ones(3), 2.0"        --args "1.0, 0.0, x=6.7, y=0.0"
Without --args, srcgrad calls FUNCTION_args(), or else example_args() (used for
every function of the file it fits), if the file defines one; it returns the
arguments as a tuple, or as a pair (args, kwargs):
    def example_args():
        return 1.0, 0.0, 6.7, 0.0

examples:
    srcgrad demo
    srcgrad show srcgrad/demo.py:bce_loss --wrt w,b
    srcgrad compare srcgrad/demo.py:bce_loss --wrt w,b --args "1.0, 0.0, 6.7, 0.0"

Exit status: 0 on success; 1 when compare finds methods that disagree or the
function raises; 2 for a usage error (missing file or function, bad --args,
code srcgrad cannot differentiate)."""


class UsageError(Exception):
    """A mistake in the command line: printed as one message, exit status 2."""


# ---- commands


def demo(options):
    from .demo import main as run_demo
    run_demo()
    return 0


def cache(options):
    from . import diskcache
    if options.action == "clear":
        removed = diskcache.clear()
        print(f"removed {removed} cached gradient{'s' if removed != 1 else ''} from "
              f"{diskcache.directory()}")
    else:
        entries = list(diskcache.directory().glob("*.json")) if diskcache.directory().is_dir() else []
        state = "on" if diskcache.enabled() else "off (SRCGRAD_CACHE=0)"
        print(f"cache {state}: {diskcache.directory()} holds {len(entries)} gradient"
              f"{'s' if len(entries) != 1 else ''}")
    return 0


def show(options):
    import srcgrad
    fn, module = load_function(options.target)
    wrt = parse_wrt(options.wrt)
    call = call_arguments(options, fn, module, required=False)
    if call is None:
        text = srcgrad.source(srcgrad.grad(fn, wrt=wrt))
    else:
        args, kwargs = call
        value = fn(*args, **kwargs)
        if isinstance(value, tuple) or np.size(value) != 1:  # the vector-Jacobian product form
            text = srcgrad.source(srcgrad.vjp(fn, *args, wrt=wrt, **kwargs)[1])
        else:
            text = srcgrad.source(srcgrad.grad(fn, wrt=wrt), *args)
    print(highlight(text) if use_color(options) else text)
    return 0


def compare(options):
    import srcgrad
    fn, module = load_function(options.target)
    args, kwargs = call_arguments(options, fn, module, required=True)
    report = srcgrad.compare(fn, *args, wrt=parse_wrt(options.wrt), **kwargs)
    print(report)
    return 0 if report.ok else 1


# ---- reading the command line


def load_function(target):
    """The function `target` ("path/to/file.py:name") names, and its module."""
    path_text, colon, name = target.rpartition(":")
    if not colon or not path_text or not name:
        raise UsageError(f"expected FILE.py:FUNCTION (e.g. model.py:loss), not {target!r}")
    path = Path(path_text)
    if not path.is_file():
        raise UsageError(f"{path_text}: no such file")
    module = import_file(path)
    found = module
    for part in name.split("."):
        found = getattr(found, part, None)
    if not callable(found):
        defined = sorted(k for k, v in vars(module).items()
                         if callable(v) and getattr(v, "__module__", None) == module.__name__)
        raise UsageError(f"{path_text} defines no function {name!r}"
                         + (f"; it defines {', '.join(defined)}" if defined else ""))
    return found, module


def import_file(path):
    """Import `path` as a module under its own file name, so srcgrad can read its source."""
    path = path.resolve()
    name = path.stem if path.stem.isidentifier() else "srcgrad_target"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))  # as `python FILE.py` would: it may import its neighbours
    if name not in sys.modules:
        sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as error:
        raise UsageError(f"{error.filename}:{error.lineno}:{error.offset}: {error.msg}") from None
    return module


def parse_wrt(text):
    """"w,b" -> ("w", "b"); "0" -> 0: parameter names or positions."""
    if text is None:
        return 0
    items = [int(item) if re.fullmatch(r"-?\d+", item) else item
             for item in (part.strip() for part in text.split(",")) if item]
    if not items:
        raise UsageError(f"--wrt {text!r} names no argument")
    return items[0] if len(items) == 1 else tuple(items)


def call_arguments(options, fn, module, required):
    """(args, kwargs) from --args, else FUNCTION_args(), else example_args() if they fit, else None."""
    if options.args is not None:
        return fitting(eval_arguments(options.args, module), fn, "--args")
    name, unfit = fn.__name__, ""
    if callable(getattr(module, f"{name}_args", None)):
        return fitting(split_arguments(getattr(module, f"{name}_args")()), fn, f"{name}_args()")
    if callable(getattr(module, "example_args", None)):
        try:  # example_args() serves any function of the file that takes its arguments
            return fitting(split_arguments(module.example_args()), fn, "example_args()")
        except UsageError as error:
            unfit = f" ({error})"
    if required:
        raise UsageError(f"{options.target}: no arguments to call {name} with: pass --args "
                         f"\"...\" or define {name}_args() or example_args() in the file{unfit}")
    return None


def eval_arguments(text, module):
    """The arguments of one call, written as between its parentheses: "np.ones(3), y=2.0"."""
    try:
        tree = ast.parse(f"__srcgrad_call__({text})", mode="eval")
    except SyntaxError as error:
        raise UsageError(f"--args {text!r} is not valid Python: {error.msg}") from None
    call = tree.body
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
            and call.func.id == "__srcgrad_call__"):
        raise UsageError(f"--args {text!r} is not a list of arguments: write what goes between "
                         "the parentheses of a call, e.g. --args \"np.ones(3), 2.0\"")
    namespace = {**vars(module), "np": np, "math": math,
                 "__srcgrad_call__": lambda *args, **kwargs: (args, kwargs)}
    try:
        return eval(compile(tree, "--args", "eval"), namespace)  # noqa: S307 -- the user's own input
    except Exception as error:  # noqa: BLE001 -- any failure is a bad --args
        raise UsageError(f"--args {text!r} failed: {type(error).__name__}: {error}") from None


def fitting(call, fn, origin):
    """`call` if fn accepts these arguments; else a UsageError naming where they came from."""
    try:
        inspect.signature(fn).bind(*call[0], **call[1])
    except TypeError as error:
        raise UsageError(f"the arguments from {origin} do not fit {fn.__name__}"
                         f"{inspect.signature(fn)}: {error}") from None
    return call


def split_arguments(result):
    """What an example_args() returns -> (args, kwargs): a tuple, a pair (args, kwargs), or one value."""
    if isinstance(result, tuple) and len(result) == 2 \
            and isinstance(result[0], (tuple, list)) and isinstance(result[1], dict):
        return tuple(result[0]), dict(result[1])
    if isinstance(result, tuple):
        return result, {}
    return (result,), {}


# ---- colour


COLORS = {"keyword": "\033[1;35m", "defname": "\033[1;34m", "comment": "\033[90m",
          "string": "\033[32m", "number": "\033[36m"}
RESET = "\033[0m"
TOKEN = re.compile(r"""
    (?P<comment>\#[^\n]*)
  | (?P<string>[rRbBuUfF]{0,2}(?:'''[\s\S]*?'''|\"\"\"[\s\S]*?\"\"\"|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"))
  | (?P<name>[A-Za-z_]\w*)
  | (?P<number>\d[\d_]*(?:\.\d*)?(?:[eE][-+]?\d+)?)
""", re.VERBOSE)


def highlight(source):
    """`source` with ANSI colours: keywords, the defined function's name, comments, strings, numbers."""
    after_def = False

    def paint(match):
        nonlocal after_def
        kind, text = match.lastgroup, match.group()
        if kind == "name":
            kind = "defname" if after_def else "keyword" if keyword.iskeyword(text) else None
            after_def = text in ("def", "class")
        return f"{COLORS[kind]}{text}{RESET}" if kind else text
    return TOKEN.sub(paint, source)


def use_color(options):
    if options.color is not None:
        return options.color
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


# ---- main


def parser():
    top = argparse.ArgumentParser(prog="srcgrad", description=DESCRIPTION, epilog=EPILOG,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = top.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("demo", help="differentiate the tutorial's BCE loss and print the "
                        "generated gradient").set_defaults(run=demo)
    cached = commands.add_parser("cache", help="where generated gradients are kept between "
                                 "runs; `srcgrad cache clear` empties it")
    cached.add_argument("action", choices=["info", "clear"], nargs="?", default="info")
    cached.set_defaults(run=cache)
    for name, run, text in [
            ("show", show, "print the generated gradient source of FILE.py:FUNCTION"),
            ("compare", compare, "compare source mode, tape mode and finite differences "
                                 "on one call: gradients, differences, time per call")]:
        command = commands.add_parser(name, help=text, description=text + ".", epilog=EPILOG,
                                      formatter_class=argparse.RawDescriptionHelpFormatter)
        command.add_argument("target", metavar="FILE.py:FUNCTION")
        command.add_argument("--wrt", metavar="A,B", help="the arguments to differentiate "
                             "with respect to: names or positions (default: the first)")
        command.add_argument("--args", metavar="EXPR", help="the call's arguments, e.g. "
                             "\"np.ones(3), 2.0\" (default: FUNCTION_args() or example_args())")
        if name == "show":
            colors = command.add_mutually_exclusive_group()
            colors.add_argument("--color", action="store_const", const=True, dest="color",
                                help="colour the source even when stdout is not a terminal")
            colors.add_argument("--no-color", action="store_const", const=False, dest="color",
                                help="plain text even on a terminal (so does NO_COLOR=1)")
        command.set_defaults(run=run)
    return top


def main(argv=None):
    from .errors import SrcgradError
    top = parser()
    options = top.parse_args(sys.argv[1:] if argv is None else argv)
    if options.command is None:
        top.print_help()
        return 0
    try:
        return options.run(options)
    except BrokenPipeError:  # `srcgrad show ... | head`: the reader has gone
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (UsageError, SrcgradError) as error:
        print(f"srcgrad: error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 -- the user's code raised: show where, in their code
        print(f"srcgrad: error: {type(error).__name__}: {error}\n{user_traceback(error)}",
              file=sys.stderr, end="")
        return 1


def user_traceback(error):
    """The traceback's frames outside srcgrad and importlib (all of it if none is left)."""
    frames = traceback.extract_tb(error.__traceback__)
    here = str(Path(__file__).resolve().parent)
    user = [f for f in frames if not f.filename.startswith((here, "<frozen"))]
    return "Traceback (most recent call last):\n" + "".join(traceback.format_list(user or frames))


if __name__ == "__main__":
    sys.exit(main())
