"""The persistent cache: gradients generated in one process, reused by the next.

A cache entry holds the generated source, its compiled code (marshal, so a new
process skips compiling it), and how to rebuild what it reads (modules, functions and
the runtime's helpers, by import path). It is keyed by a hash of the function's source
and bytecode, its name and file, `wrt`, the mode, the argument kinds, srcgrad's own files
and the derivative rules registered; an entry is also checked against the current source
and bytecode of every helper it inlined and the objects its global names and attribute
chains resolve to.

Entries are signed, together with the key they are stored under, with a key only this
user can read (HMAC-SHA256), so a file someone else put in the cache directory, or an
entry moved to another key's file, is never executed (nor unmarshalled). The directory is
private (mode 700); one that another user owns or others can write is not used, nor is a
key file that is not a private regular file of this user's. Files are written to a
temporary file and renamed, so several processes can share the directory.

The cache never makes a gradient fail: where it cannot be used (no home directory, a path
that is a file, a read-only or full disk, an untrusted directory) srcgrad warns once
(`CacheWarning`) and compiles without it.

Switch: `SRCGRAD_CACHE=0` turns it off. Location: `SRCGRAD_CACHE_DIR`, else
`$XDG_CACHE_HOME/srcgrad`, else `~/.cache/srcgrad`. `srcgrad cache clear` (or
`srcgrad.diskcache.clear()`) empties it.
"""
import base64
import errno
import hashlib
import hmac
import importlib
import json
import marshal
import os
import stat
import sys
import tempfile
import types
import warnings
from pathlib import Path

from .compiler.parse import code_fingerprint, source_text
from .errors import SrcgradError

__all__ = ["enabled", "directory", "clear", "load", "store", "CacheWarning"]

_FORMAT = 3                # 3: the signature covers the key; keys and helpers carry bytecode
_KEY_BYTES = 32            # a signing key shorter than this is never used
_fingerprint = None
_warned = set()


class CacheWarning(UserWarning):
    """The disk cache cannot be used where it is: srcgrad compiles without it."""


def enabled():
    return os.environ.get("SRCGRAD_CACHE", "1").lower() not in ("0", "off", "false", "no")


def directory():
    if os.environ.get("SRCGRAD_CACHE_DIR"):
        return Path(os.environ["SRCGRAD_CACHE_DIR"])
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):               # a relative one is ignored (XDG spec)
        return Path(xdg) / "srcgrad"
    return Path(os.path.expanduser("~")) / ".cache" / "srcgrad"   # "~/..." without a home


def clear():
    """Remove every cache entry (the signing key stays). Returns how many were removed."""
    removed = 0
    folder = directory()
    try:
        if folder.is_dir():
            for path in folder.glob("*.json"):
                path.unlink(missing_ok=True)
                removed += 1
    except OSError:
        pass
    return removed


# ---- where: a private directory and its signing key, or nothing (warned once)

def _warn(folder, reason):
    message = (f"srcgrad is not using its disk cache at {folder}: {reason}. Gradients are "
               "compiled anew in each process; set SRCGRAD_CACHE_DIR to a private directory, "
               "or SRCGRAD_CACHE=0 to turn the cache off")
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, CacheWarning, stacklevel=3)
    return None


def _untrusted(info, private):
    """Why a file or directory with this stat is not this user's alone, or None."""
    if os.name == "nt":                          # no POSIX owners and modes to check
        return None
    if info.st_uid != os.geteuid():
        return "belongs to another user"
    if info.st_mode & (0o077 if private else 0o022):
        return "can be " + ("read or written" if private else "written") + " by other users"
    return None


def _location(create):
    """(the cache directory, its signing key), or None: absent (when not `create`), or not
    usable (warned once)."""
    folder = directory()
    if str(folder).startswith("~"):
        return _warn(folder, "there is no home directory (HOME is not set)")
    try:
        info = os.stat(folder)
    except FileNotFoundError:
        if not create:
            return None
        try:
            folder.parent.mkdir(parents=True, exist_ok=True)
            os.mkdir(folder, 0o700)
        except FileExistsError:
            pass                                 # made by another process meanwhile
        except OSError as exc:
            return _warn(folder, f"it cannot be created ({exc.strerror or exc})")
        try:
            info = os.stat(folder)
        except OSError as exc:
            return _warn(folder, f"it cannot be read ({exc.strerror or exc})")
    except OSError as exc:                       # below a file, no permission, ...
        return _warn(folder, f"it cannot be read ({exc.strerror or exc})")
    if not stat.S_ISDIR(info.st_mode):
        return _warn(folder, "it is not a directory")
    why = _untrusted(info, private=False)
    if why is not None:
        return _warn(folder, f"the directory {why}")
    key, why = _secret(folder, create)
    if why is not None:
        return _warn(folder, why)
    return (folder, key) if key is not None else None


def _secret(folder, create):
    """(this user's signing key, None), (None, why it cannot be used), or (None, None) when
    there is none and `create` is false. A key cut short (a full disk) is replaced."""
    path = folder / "key"
    for _ in range(3):
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
                         | getattr(os, "O_NONBLOCK", 0))
        except FileNotFoundError:
            if not create:
                return None, None
            why = _write_key(path, replace=False)
            if why is not None:
                return None, why
            continue
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return None, "its key file is a symbolic link"
            return None, f"its key file cannot be read ({exc.strerror or exc})"
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                return None, "its key file is not a regular file"
            why = _untrusted(info, private=True)
            if why is not None:
                return None, f"its key file {why}"
            data = b""
            while len(data) < 4096:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                data += chunk
        except OSError as exc:
            return None, f"its key file cannot be read ({exc.strerror or exc})"
        finally:
            os.close(fd)
        if len(data) >= _KEY_BYTES:
            return data, None
        if not create:
            return None, None
        why = _write_key(path, replace=True)     # empty or short: never used, made anew
        if why is not None:
            return None, why
    return None, "its key file keeps changing"


def _write_key(path, replace):
    """Write a new key to `path` whole or not at all (temporary file, fsync, then a link
    that never replaces a key another process made, or with `replace` a rename).
    None, or why it failed."""
    temp = None
    try:
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-key-")
        try:
            data = os.urandom(_KEY_BYTES)
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
            os.fsync(fd)
        finally:
            os.close(fd)
        if replace:
            os.replace(temp, path)
        else:
            try:
                os.link(temp, path)
            except FileExistsError:
                pass                             # another process's key: that one is read
            except OSError:                      # no hard links here
                if not os.path.lexists(path):
                    os.replace(temp, path)
        _sync_directory(path.parent)
        return None
    except OSError as exc:
        return f"its key file cannot be written ({exc.strerror or exc})"
    finally:
        _remove(temp)


def _remove(temp):
    """Delete a temporary file left by a write that did not finish (None: nothing left)."""
    if temp is not None:
        try:
            os.unlink(temp)
        except OSError:
            pass


def _sync_directory(folder):
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _sign(secret, key, payload):
    """The signature of an entry: its payload and the key it is stored under."""
    return hmac.new(secret, b"srcgrad cache entry " + key.encode() + b"\n" + payload,
                    hashlib.sha256).hexdigest()


# ---- keys

def _package_fingerprint():
    """srcgrad's own files (name, size, modification time): a new compiler, new keys."""
    global _fingerprint
    if _fingerprint is None:
        root = Path(__file__).parent
        digest = hashlib.sha256()
        for path in sorted(root.rglob("*.py")):
            info = path.stat()
            digest.update(f"{path.relative_to(root)}:{info.st_size}:{info.st_mtime_ns};".encode())
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
             fn.__qualname__, fn.__code__.co_filename, source, code_fingerprint(fn.__code__),
             list(wrt), mode, single, sorted((k, repr(v)) for k, v in kinds.items())]
    return hashlib.sha256(json.dumps(parts, default=repr).encode()).hexdigest()


# ---- objects by import path

def _describe(obj):
    """A reference to `obj` another process can resolve, or None."""
    if isinstance(obj, types.ModuleType):
        return ["module", obj.__name__] if sys.modules.get(obj.__name__) is obj else None
    if isinstance(obj, (int, float, str, bool, type(None))):
        return ["const", obj]
    if type(obj) in (tuple, list):              # defaults, the rule registry's version
        parts = [_describe(o) for o in obj]
        return None if any(p is None for p in parts) else [type(obj).__name__, parts]
    module = getattr(obj, "__module__", None)
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None)
    if isinstance(module, str) and isinstance(name, str) and "<" not in name:
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
    if kind == "tuple":
        return tuple(_resolve(part) for part in ref[1])
    if kind == "list":
        return [_resolve(part) for part in ref[1]]
    obj = importlib.import_module(ref[1])
    for part in ref[2].split("."):
        obj = getattr(obj, part)
    return obj


def _resolve_same(ref):
    """The object `ref` names now, provided its own import path is still `ref` (a function
    rebound in its module to another one is not taken for the one stored)."""
    obj = _resolve(ref)
    if _describe(obj) != ref:
        raise LookupError(ref)
    return obj


# ---- storing and loading

def store(compiled, fn, wrt, mode, kinds, single):
    """Write `compiled` to the cache, if everything it reads can be named by import path.
    Never raises: a cache that cannot be written is warned about once and left alone."""
    if not enabled():
        return
    try:
        key = _key(fn, wrt, mode, kinds, single)
        entry = _entry(compiled, fn, wrt, mode) if key is not None else None
    except Exception:
        return                                  # something only this process can name
    if entry is None:
        return
    location = _location(create=True)
    if location is None:
        return
    folder, secret = location
    payload = json.dumps(entry, sort_keys=True).encode()
    data = json.dumps({"payload": payload.decode(), "signature": _sign(secret, key, payload)})
    temp = None
    try:
        fd, temp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            f.write(data)
        os.replace(temp, folder / f"{key}.json")
        temp = None
    except OSError as exc:                      # a full disk, a directory made read-only
        _warn(folder, f"an entry cannot be written ({exc.strerror or exc})")
    finally:
        _remove(temp)


def _entry(compiled, fn, wrt, mode):
    cells = {name: _describe(obj) for name, obj in compiled.cells.items()}
    helpers = []
    for helper in compiled.inlined:
        ref = _describe(helper)
        try:
            text = source_text(helper)
        except SrcgradError:
            return None
        helpers.append([ref, hashlib.sha256(text.encode()).hexdigest(),
                        code_fingerprint(helper.__code__)])
    guards = []
    for owner, name, obj in compiled.guards:
        owner_ref = None if owner is fn else _describe(owner)
        if owner is not fn and owner_ref is None:
            return None
        guards.append([owner_ref, name, _describe(obj)])
    if any(ref is None for ref in cells.values()) or any(h[0] is None for h in helpers) \
            or any(ref is None for _, _, ref in guards):
        return None                             # something only this process can name
    code = base64.b64encode(marshal.dumps(compiled.function.__code__)).decode()
    return {"source": compiled.source, "code": code, "name": compiled.function.__name__,
            "cells": cells, "helpers": helpers, "guards": guards,
            "return_where": list(compiled.return_where), "single_use": compiled.single_use,
            "wrt": list(wrt), "mode": mode}


def load(fn, wrt, mode, kinds, single):
    """The cached gradient for this call, or None (absent, stale, not signed by us for this
    key, or no usable cache here)."""
    if not enabled():
        return None
    try:
        key = _key(fn, wrt, mode, kinds, single)
        if key is None:
            return None
        location = _location(create=False)
        if location is None:
            return None
        folder, secret = location
        data = json.loads((folder / f"{key}.json").read_text())
        payload = data["payload"].encode()
        if not hmac.compare_digest(_sign(secret, key, payload), data["signature"]):
            return None
        entry = json.loads(payload)
        return _rebuild(entry, fn, wrt, mode)
    except Exception:      # absent, unreadable, or no longer matching: compile afresh
        return None


def _rebuild(entry, fn, wrt, mode):
    from .compiler.emit import build
    from .compiler.pipeline import Compiled
    from .rules import lookup
    if list(wrt) != entry["wrt"] or mode != entry["mode"]:
        return None
    helpers = []
    for ref, digest, fingerprint in entry["helpers"]:
        helper = _resolve_same(ref)
        if hashlib.sha256(source_text(helper).encode()).hexdigest() != digest \
                or code_fingerprint(helper.__code__) != fingerprint:
            return None
        if lookup(helper) is not None:     # a rule registered since: it takes precedence
            return None
        helpers.append(helper)
    guards = [(fn if owner is None else _resolve_same(owner), name, _resolve_same(ref))
              for owner, name, ref in entry["guards"]]
    cells = {name: _resolve_same(ref) for name, ref in entry["cells"].items()}
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
