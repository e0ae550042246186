"""The persistent cache: reuse across processes, signatures, invalidation, the switch."""
import json
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest

import srcgrad
from srcgrad import diskcache
from srcgrad.compiler import compile_gradient
from srcgrad.compiler.shapes import SCALAR

ROOT = Path(__file__).resolve().parent.parent
KINDS = {"w": SCALAR, "b": SCALAR, "x": SCALAR, "y": SCALAR}


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SRCGRAD_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("SRCGRAD_CACHE", raising=False)
    return tmp_path


def write_module(folder, body):
    path = folder / "model_for_cache.py"
    path.write_text(textwrap.dedent(body))
    return path


def load_module(path):
    import importlib.util
    spec = importlib.util.spec_from_file_location(f"cache_mod_{abs(hash(path.read_text()))}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_a_second_compilation_comes_from_disk(cache_dir):
    from srcgrad.demo import bce_loss
    first = compile_gradient(bce_loss, ("w", "b"), "grad", KINDS)
    second = compile_gradient(bce_loss, ("w", "b"), "grad", KINDS)
    assert not first.from_disk and second.from_disk
    assert second.source == first.source
    assert second.function(1.0, 0.0, 6.7, 0.0) == first.function(1.0, 0.0, 6.7, 0.0)
    assert len(list(cache_dir.glob("*.json"))) == 1


def test_a_new_process_reuses_the_gradient(cache_dir):
    script = ("import srcgrad\nfrom srcgrad.demo import bce_loss\n"
              "df = srcgrad.grad(bce_loss, wrt=('w', 'b'))\n"
              "print(df(1.0, 0.0, 6.7, 0.0), df.last.from_disk)\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    runs = [subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           env=env, check=True).stdout.split() for _ in range(2)]
    assert runs[0][-1] == "False" and runs[1][-1] == "True"
    assert runs[0][:-1] == runs[1][:-1]


def test_a_tampered_entry_is_never_executed(cache_dir):
    from srcgrad.demo import bce_loss
    compile_gradient(bce_loss, ("w", "b"), "grad", KINDS)
    (entry,) = cache_dir.glob("*.json")
    data = json.loads(entry.read_text())
    payload = json.loads(data["payload"])
    payload["source"] = payload["source"].replace("d_w = d_z * x", "d_w = 42.0")
    data["payload"] = json.dumps(payload, sort_keys=True)
    entry.write_text(json.dumps(data))
    again = compile_gradient(bce_loss, ("w", "b"), "grad", KINDS)
    assert not again.from_disk and "d_w = 42.0" not in again.source


def test_an_entry_signed_with_another_key_is_rejected(cache_dir):
    from srcgrad.demo import bce_loss
    compile_gradient(bce_loss, ("w", "b"), "grad", KINDS)
    (cache_dir / "key").write_bytes(os.urandom(32))
    assert not compile_gradient(bce_loss, ("w", "b"), "grad", KINDS).from_disk


def test_the_signing_key_is_private(cache_dir):
    from srcgrad.demo import bce_loss
    compile_gradient(bce_loss, ("w", "b"), "grad", KINDS)
    assert (cache_dir / "key").stat().st_mode & 0o077 == 0


def test_switched_off(cache_dir, monkeypatch):
    monkeypatch.setenv("SRCGRAD_CACHE", "0")
    from srcgrad.demo import bce_loss
    compile_gradient(bce_loss, ("w", "b"), "grad", KINDS)
    assert not compile_gradient(bce_loss, ("w", "b"), "grad", KINDS).from_disk
    assert not list(cache_dir.glob("*.json"))


def test_clear_removes_entries(cache_dir):
    from srcgrad.demo import bce_loss
    compile_gradient(bce_loss, ("w", "b"), "grad", KINDS)
    assert diskcache.clear() == 1
    assert not compile_gradient(bce_loss, ("w", "b"), "grad", KINDS).from_disk


def test_an_edited_function_or_helper_is_compiled_again(cache_dir):
    path = write_module(cache_dir, """
        import numpy as np

        def helper(z):
            return np.tanh(z)

        def f(x):
            return np.sum(helper(x) * 2.0)
    """)
    module = load_module(path)
    kinds = {"x": ("array", 0, 1)}
    compile_gradient(module.f, ("x",), "grad", kinds)
    assert compile_gradient(module.f, ("x",), "grad", kinds).from_disk
    path.write_text(path.read_text().replace("np.tanh(z)", "np.sin(z)"))
    edited = load_module(path)
    again = compile_gradient(edited.f, ("x",), "grad", kinds)
    assert not again.from_disk and "np.cos" in again.source
    x = np.array([0.3, -0.2])
    np.testing.assert_allclose(again.function(x)[0], 2 * np.cos(x))


def test_different_argument_kinds_have_different_entries(cache_dir):
    def_kinds = [{"x": SCALAR}, {"x": ("array", 0, 1)}]
    from srcgrad.demo import sigmoid
    sources = {compile_gradient(sigmoid, ("z",), "grad", {"z": k["x"]}).source for k in def_kinds}
    assert len(list(cache_dir.glob("*.json"))) == 2 and len(sources) == 2


def test_several_processes_share_the_directory(cache_dir):
    script = ("import srcgrad, numpy as np\nfrom srcgrad.demo import bce_loss\n"
              "for i in range(5):\n"
              "    srcgrad.diskcache.clear() if i == 2 else None\n"
              "    print(srcgrad.grad(bce_loss, wrt=('w', 'b'))(1.0, 0.0, 6.7, 0.0))\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for _ in range(4)]
    outputs = [p.communicate() for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    assert len({out for out, _ in outputs}) == 1
    assert not list(cache_dir.glob(".tmp-*"))


# ---- staleness across processes (attribute chains, edited files)

def run_python(script, cwd, **env_extra):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(cwd)]), **env_extra)
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True,
                          text=True, env=env, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


@pytest.fixture
def modules(cache_dir, tmp_path_factory):
    """A folder with `act_module` (act = np.tanh, helper = cube) and `uses_act` whose
    functions call through them."""
    folder = tmp_path_factory.mktemp("mods")
    (folder / "act_module.py").write_text(textwrap.dedent("""
        import numpy as np
        act = np.tanh

        def cube(z):
            return z ** 3

        def square(z):
            return z * z

        helper = cube
    """))
    (folder / "uses_act.py").write_text(textwrap.dedent("""
        import numpy as np
        import act_module

        def f(x):
            return np.sum(act_module.act(x))

        def h(x):
            return np.sum(act_module.helper(x))
    """))
    return folder


SCRIPT = """
    import numpy as np, srcgrad, act_module, uses_act
    {rebind}
    df = srcgrad.grad(uses_act.{fn})
    print(repr(float(df(np.array([0.5]))[0])), df.last.from_disk)
"""


def test_a_new_process_that_rebinds_a_module_attribute_compiles_again(modules):
    first = run_python(SCRIPT.format(rebind="", fn="f"), modules)
    assert first == [repr(float(1 - np.tanh(0.5) ** 2)), "False"]
    assert run_python(SCRIPT.format(rebind="", fn="f"), modules)[1] == "True"   # cached
    rebound = run_python(SCRIPT.format(rebind="act_module.act = np.sin", fn="f"), modules)
    assert rebound == [repr(float(np.cos(0.5))), "False"]


def test_a_new_process_that_rebinds_an_inlined_helper_compiles_again(modules):
    assert run_python(SCRIPT.format(rebind="", fn="h"), modules) == [repr(0.75), "False"]
    assert run_python(SCRIPT.format(rebind="", fn="h"), modules) == [repr(0.75), "True"]
    rebound = run_python(SCRIPT.format(rebind="act_module.helper = act_module.square", fn="h"),
                         modules)
    assert rebound == [repr(1.0), "False"]


def test_an_entry_of_the_edited_text_is_not_used_for_the_code_that_runs(modules):
    """Process 1 runs the edited file and caches it; process 2 imported the file before the
    edit: the entry keyed on the new text is not its gradient."""
    path = modules / "edited_model.py"
    old = "import numpy as np\n\ndef f(x):\n    return np.sum(np.tanh(x))\n"
    new = old.replace("np.tanh", "np.sin")
    path.write_text(new)
    assert run_python("""
        import numpy as np, srcgrad, edited_model
        print(srcgrad.grad(edited_model.f)(np.array([0.5]))[0])
    """, modules) == [str(np.cos(0.5))]
    path.write_text(old)
    out = run_python(f"""
        import numpy as np, srcgrad, pathlib, importlib, edited_model
        pathlib.Path({str(path)!r}).write_text({new!r})
        try:
            print(srcgrad.grad(edited_model.f)(np.array([0.5]))[0])
        except srcgrad.errors.StaleSourceError:
            print("refused")
    """, modules, PYTHONDONTWRITEBYTECODE="1")
    assert out == ["refused"]


# ---- entries bound to their key

def two_functions(folder):
    path = folder / "two_for_cache.py"
    path.write_text("import numpy as np\n\ndef f(x):\n    return np.sum(np.sin(x))\n\n"
                    "def g(x):\n    return np.sum(np.cos(x))\n")
    return load_module(path)


def test_an_entry_moved_to_another_key_is_rejected(cache_dir, tmp_path_factory):
    module = two_functions(tmp_path_factory.mktemp("two"))
    kinds = {"x": ("array", 0, 1)}
    compile_gradient(module.f, ("x",), "grad", kinds)
    before = set(cache_dir.glob("*.json"))
    compile_gradient(module.g, ("x",), "grad", kinds)
    (f_entry,) = before
    (g_entry,) = set(cache_dir.glob("*.json")) - before
    f_data, g_data = f_entry.read_bytes(), g_entry.read_bytes()
    f_entry.write_bytes(g_data)                  # swapped: f's file holds g's entry
    g_entry.write_bytes(f_data)
    again = compile_gradient(module.f, ("x",), "grad", kinds)
    assert not again.from_disk
    x = np.array([0.2, 0.9])
    np.testing.assert_allclose(again.function(x)[0], np.cos(x))
    np.testing.assert_allclose(srcgrad.grad(module.g)(x), -np.sin(x))


# ---- untrusted and unusable locations: warned once, compiled without the cache

@pytest.fixture
def fresh_warnings(monkeypatch):
    monkeypatch.setattr(diskcache, "_warned", set())


def grad_without_cache(cache_dir, match):
    """grad works, warns once (`match`), and leaves no entry nor temporary file."""
    from srcgrad.demo import bce_loss
    with pytest.warns(diskcache.CacheWarning, match=match) as record:
        for _ in range(2):                        # a new function object: compiled again
            fresh = types.FunctionType(bce_loss.__code__, bce_loss.__globals__, "bce_loss")
            df = srcgrad.grad(fresh, wrt=("w", "b"))
            dw, db = df(1.0, 0.0, 6.7, 0.0)
            assert not df.last.from_disk
    assert len([w for w in record if issubclass(w.category, diskcache.CacheWarning)]) == 1
    assert (dw, db) == pytest.approx((6.6918, 0.9988), abs=1e-4)
    if cache_dir.is_dir():
        assert not list(cache_dir.glob("*.json")) and not list(cache_dir.glob(".tmp-*"))


def test_a_new_directory_is_private(cache_dir, monkeypatch):
    folder = cache_dir / "made" / "srcgrad"
    monkeypatch.setenv("SRCGRAD_CACHE_DIR", str(folder))
    from srcgrad.demo import bce_loss
    compile_gradient(bce_loss, ("w", "b"), "grad", KINDS)
    assert folder.stat().st_mode & 0o777 == 0o700
    assert (folder / "key").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o777])
def test_a_directory_others_can_write_is_not_used(cache_dir, fresh_warnings, mode):
    cache_dir.chmod(mode)
    grad_without_cache(cache_dir, "can be written by other users")


def test_a_directory_of_another_user_is_not_used(cache_dir, fresh_warnings, monkeypatch):
    real = os.geteuid()
    monkeypatch.setattr(os, "geteuid", lambda: real + 1)
    grad_without_cache(cache_dir, "belongs to another user")


@pytest.mark.parametrize("mode", [0o620, 0o602, 0o640])
def test_a_key_others_can_read_or_write_is_not_used(cache_dir, fresh_warnings, mode):
    from srcgrad.demo import bce_loss
    compile_gradient(bce_loss, ("w", "b"), "grad", KINDS)
    for entry in cache_dir.glob("*.json"):
        entry.unlink()
    (cache_dir / "key").chmod(mode)
    grad_without_cache(cache_dir, "key file can be read or written by other users")


def test_a_key_of_another_user_is_not_used(cache_dir, fresh_warnings, monkeypatch):
    (cache_dir / "key").write_bytes(os.urandom(32))
    (cache_dir / "key").chmod(0o600)
    real_fstat = os.fstat

    def fstat(fd):                                # the key (only file opened) is someone else's
        info = real_fstat(fd)
        return os.stat_result((info.st_mode, info.st_ino, info.st_dev, info.st_nlink,
                               info.st_uid + 1) + tuple(info)[5:])
    monkeypatch.setattr(os, "fstat", fstat)
    grad_without_cache(cache_dir, "key file belongs to another user")


def test_an_empty_key_is_replaced(cache_dir, fresh_warnings):
    key = cache_dir / "key"
    key.write_bytes(b"")                          # what a full disk left
    key.chmod(0o600)
    from srcgrad.demo import bce_loss
    compile_gradient(bce_loss, ("w", "b"), "grad", KINDS)
    assert len(key.read_bytes()) == 32 and key.stat().st_mode & 0o777 == 0o600
    assert compile_gradient(bce_loss, ("w", "b"), "grad", KINDS).from_disk
    assert not list(cache_dir.glob(".tmp-*"))


def test_a_short_key_that_cannot_be_replaced_is_never_used(cache_dir, fresh_warnings,
                                                           monkeypatch):
    key = cache_dir / "key"
    key.write_bytes(b"short")
    key.chmod(0o600)

    def full(*args):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", full)
    grad_without_cache(cache_dir, "key file cannot be written .No space left on device")
    assert key.read_bytes() == b"short"


def test_a_key_is_written_whole_or_not_at_all(cache_dir, fresh_warnings, monkeypatch):
    real_write = os.write

    def full(fd, data):                           # the disk fills after 3 bytes
        real_write(fd, data[:3])
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "write", full)
    grad_without_cache(cache_dir, "No space left on device")
    assert not (cache_dir / "key").exists()
    monkeypatch.setattr(os, "write", real_write)  # space again: a whole key is made
    from srcgrad.demo import bce_loss
    compile_gradient(bce_loss, ("w", "b"), "grad", KINDS)
    assert len((cache_dir / "key").read_bytes()) == 32


def test_a_read_only_directory_without_a_key(cache_dir, fresh_warnings, monkeypatch):
    def read_only(*args, **kwargs):               # root ignores modes: what EACCES looks like
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(diskcache.tempfile, "mkstemp", read_only)
    grad_without_cache(cache_dir, "key file cannot be written .Permission denied")
    assert not (cache_dir / "key").exists()


def test_a_full_disk_when_writing_an_entry(cache_dir, fresh_warnings, monkeypatch):
    from srcgrad.demo import bce_loss
    compile_gradient(bce_loss, ("w", "b"), "grad", KINDS)   # the key exists
    for entry in cache_dir.glob("*.json"):
        entry.unlink()
    real_fdopen = os.fdopen

    class Full:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: Full(real_fdopen(fd, *a, **k)))
    grad_without_cache(cache_dir, "an entry cannot be written .No space left on device")


def test_no_home_directory(cache_dir, fresh_warnings, monkeypatch, tmp_path_factory):
    work = tmp_path_factory.mktemp("cwd")
    for name in ("SRCGRAD_CACHE_DIR", "XDG_CACHE_HOME", "HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(os.path, "expanduser", lambda path: path)   # no passwd entry either
    monkeypatch.chdir(work)
    grad_without_cache(work, "there is no home directory")
    assert not list(work.iterdir())


def test_a_relative_xdg_cache_home_is_ignored(monkeypatch, tmp_path):
    monkeypatch.delenv("SRCGRAD_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert diskcache.directory() == tmp_path / ".cache" / "srcgrad"


@pytest.mark.parametrize("where", ["a file", "below a file", "/proc"])
def test_a_path_that_cannot_be_a_directory(cache_dir, fresh_warnings, monkeypatch, where):
    (cache_dir / "plain").write_text("not a directory")
    folder = {"a file": cache_dir / "plain", "below a file": cache_dir / "plain" / "cache",
              "/proc": Path("/proc/srcgrad-cache-test")}[where]
    if where == "/proc" and not Path("/proc/self").exists():
        pytest.skip("no /proc here")
    monkeypatch.setenv("SRCGRAD_CACHE_DIR", str(folder))
    grad_without_cache(folder, "not a directory|cannot be created|cannot be read")
    assert (cache_dir / "plain").read_text() == "not a directory"


def test_a_dangling_key_symlink(cache_dir, fresh_warnings):
    (cache_dir / "key").symlink_to(cache_dir / "nowhere")
    grad_without_cache(cache_dir, "key file is a symbolic link")
    assert not (cache_dir / "nowhere").exists()


def test_load_never_raises(cache_dir, fresh_warnings, monkeypatch):
    from srcgrad.demo import bce_loss
    compile_gradient(bce_loss, ("w", "b"), "grad", KINDS)

    def broken(*args, **kwargs):
        raise OSError(5, "Input/output error")
    monkeypatch.setattr(os, "stat", broken)
    with pytest.warns(diskcache.CacheWarning, match="Input/output error"):
        assert diskcache.load(bce_loss, ("w", "b"), "grad", KINDS, False) is None
