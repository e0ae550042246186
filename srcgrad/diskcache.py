"""The persistent cache: gradients generated in one process, reused by the next.

A cache entry holds the generated source, its compiled code (marshal, so a new
process skips compiling it), and how to rebuild what it reads (modules, functions and
the runtime's helpers, by import path). It is keyed by a hash of the
function's source, its name and file, `wrt`, the mode, the argument kinds, srcgrad's
own files and the derivative rules registered; an entry is also checked against the
current source of every helper it inlined and the objects its global names resolve to.

Entries are signed with a key only this user can read (HMAC-SHA256), so a file someone
else put in the cache directory is never executed (nor unmarshalled); they are written
to a temporary file and renamed, so several processes can share the directory.

Switch: `SRCGRAD_CACHE=0` turns it off. Location: `SRCGRAD_CACHE_DIR`, else
`$XDG_CACHE_HOME/srcgrad`, else `~/.cache/srcgrad`. `srcgrad cache clear` (or
`srcgrad.diskcache.clear()`) empties it.
"""
import base64
import hashlib
import hmac
import importlib
import json
import marshal
import os
import sys
import tempfile
import types
from pathlib import Path

from .compiler.parse import source_text
from .errors import SrcgradError

__all__ = ["enabled", "directory", "clear", "load", "store"]

_FORMAT = 2                # 2: entries carry the compiled code
_fingerprint = None


def enabled():
    return os.environ.get("SRCGRAD_CACHE", "1").lower() not in ("0", "off", "false", "no")


def directory():
    if os.environ.get("SRCGRAD_CACHE_DIR"):
        return Path(os.environ["SRCGRAD_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "srcgrad"


def clear():
    """Remove every cache entry (the signing key stays). Returns how many were removed."""
    removed = 0
    folder = directory()
    if folder.is_dir():
        for path in folder.glob("*.json"):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


# ---- keys

def _package_fingerprint():
    """srcgrad's own files (name, size, modification time): a new compiler, new keys."""
    global _fingerprint
    if _fingerprint is None:
        root = Path(__file__).parent
        digest = hashlib.sha256()
        for path in sorted(root.rglob("*.py")):
            stat = path.stat()
            digest.update(f"{path.relative_to(root)}:{stat.st_size}:{stat.st_mtime_ns};".encode())
        _fingerprint = digest.hexdigest()
    return _fingerprint


def _rules_fingerprint():
    from .rules.registry import version
    return version()


def _key(fn, wrt, mode, kinds, single):
    try:
        source = source_text(fn)
    except SrcgradError:
        return None
    parts = [_FORMAT, _package_fingerprint(), _rules_fingerprint(), sys.version, fn.__module__,
             fn.__qualname__, fn.__code__.co_filename, source, list(wrt), mode, single,
             sorted((k, repr(v)) for k, v in kinds.items())]
    return hashlib.sha256(json.dumps(parts, default=repr).encode()).hexdigest()


def _secret():
    """This user's signing key, made on first use (readable by the owner only)."""
    folder = directory()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(fd, "wb") as f:
        f.write(os.urandom(32))
    return path.read_bytes()


def _sign(payload):
    return hmac.new(_secret(), payload, hashlib.sha256).hexdigest()


# ---- objects by import path

def _describe(obj):
    """A reference to `obj` another process can resolve, or None."""
    if isinstance(obj, types.ModuleType):
        return ["module", obj.__name__] if sys.modules.get(obj.__name__) is obj else None
    if isinstance(obj, (int, float, str, bool, type(None))):
        return ["const", obj]
    module = getattr(obj, "__module__", None)
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    if module and name and "<" not in name:
        try:
            if _resolve(["attr", module, name]) is obj:
                return ["attr", module, name]
        except Exception:
            return None
    return None


def _resolve(ref):
    kind = ref[0]
    if kind == "module":
        return importlib.import_module(ref[1])
    if kind == "const":
        return ref[1]
    obj = importlib.import_module(ref[1])
    for part in ref[2].split("."):
        obj = getattr(obj, part)
    return obj


# ---- storing and loading

def store(compiled, fn, wrt, mode, kinds, single):
    """Write `compiled` to the cache, if everything it reads can be named by import path."""
    if not enabled():
        return
    key = _key(fn, wrt, mode, kinds, single)
    if key is None:
        return
    cells = {name: _describe(obj) for name, obj in compiled.cells.items()}
    helpers = []
    for helper in compiled.inlined:
        ref = _describe(helper)
        try:
            text = source_text(helper)
        except SrcgradError:
            return
        helpers.append([ref, hashlib.sha256(text.encode()).hexdigest()])
    guards = []
    for owner, name, obj in compiled.guards:
        owner_ref = None if owner is fn else _describe(owner)
        if owner is not fn and owner_ref is None:
            return
        guards.append([owner_ref, name, _describe(obj)])
    if any(ref is None for ref in cells.values()) or any(ref is None for ref, _ in helpers) \
            or any(ref is None for _, _, ref in guards):
        return                                  # something only this process can name
    code = base64.b64encode(marshal.dumps(compiled.function.__code__)).decode()
    entry = {"source": compiled.source, "code": code, "name": compiled.function.__name__, "cells": cells,
             "helpers": helpers, "guards": guards, "return_where": list(compiled.return_where),
             "single_use": compiled.single_use, "wrt": list(wrt), "mode": mode}
    payload = json.dumps(entry, sort_keys=True).encode()
    data = json.dumps({"payload": payload.decode(), "signature": _sign(payload)})
    folder = directory()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            f.write(data)
        os.replace(temp, folder / f"{key}.json")
    except OSError:
        return


def load(fn, wrt, mode, kinds, single):
    """The cached gradient for this call, or None (absent, stale, or not signed by us)."""
    if not enabled():
        return None
    key = _key(fn, wrt, mode, kinds, single)
    if key is None:
        return None
    path = directory() / f"{key}.json"
    try:
        data = json.loads(path.read_text())
        payload = data["payload"].encode()
        if not hmac.compare_digest(_sign(payload), data["signature"]):
            return None
        entry = json.loads(payload)
        return _rebuild(entry, fn, wrt, mode)
    except Exception:      # absent, unreadable, or no longer matching: compile afresh
        return None


def _rebuild(entry, fn, wrt, mode):
    from .compiler.emit import build
    from .compiler.pipeline import Compiled
    from .rules import lookup
    helpers = []
    for ref, digest in entry["helpers"]:
        helper = _resolve(ref)
        if hashlib.sha256(source_text(helper).encode()).hexdigest() != digest:
            return None
        if lookup(helper) is not None:     # a rule registered since: it takes precedence
            return None
        helpers.append(helper)
    guards = [(fn if owner is None else _resolve(owner), name, _resolve(ref))
              for owner, name, ref in entry["guards"]]
    cells = {name: _resolve(ref) for name, ref in entry["cells"].items()}
    compiled = Compiled(None, entry["source"], None, tuple(wrt), mode,
                        tuple(entry["return_where"]), entry["single_use"], guards, None, cells,
                        helpers, from_disk=True)
    if not compiled.still_valid():
        return None
    code = fn.__code__
    where = f"{code.co_filename.rsplit('/', 1)[-1]}:{code.co_firstlineno}"
    code = marshal.loads(base64.b64decode(entry["code"]))   # signed by us: see load()
    compiled.function, compiled.filename = build(fn, cells, entry["source"], entry["name"], where,
                                                 code)
    return compiled
