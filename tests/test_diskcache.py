"""The persistent cache: reuse across processes, signatures, invalidation, the switch."""
import json
import os
import subprocess
import sys
import textwrap
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
