"""A gradient is never derived from something other than what runs.

- An attribute chain the function calls through (`actmod.act`, `cfg.fn`, `mymod.helper`)
  that is rebound after the gradient was compiled compiles it again.
- A source file edited after its functions were defined is refused (StaleSourceError),
  not differentiated as the new text while the old code runs.
"""
import importlib.util
import linecache
import sys
import textwrap
import types

import numpy as np
import pytest

import srcgrad
from srcgrad.errors import SrcgradError, StaleSourceError

X = np.array([0.3, -0.7, 1.1])


# ---- A: rebound attribute chains

ACTMOD = types.ModuleType("actmod_for_staleness")
ACTMOD.act = np.tanh


def act_sum(x):
    return np.sum(ACTMOD.act(x))


class _Config:
    pass


CFG = _Config()
CFG.fn = np.tanh


def cfg_sum(x):
    return np.sum(CFG.fn(x))


def _cube(z):
    return z ** 3


def _square(z):
    return z * z


MYMOD = types.ModuleType("mymod_for_staleness")
MYMOD.helper = _cube


def via_helper(x):
    return np.sum(MYMOD.helper(x))


@pytest.fixture
def restore():
    yield
    ACTMOD.act = np.tanh
    CFG.fn = np.tanh
    MYMOD.helper = _cube


def test_a_rebound_module_attribute_compiles_again(restore):
    df = srcgrad.grad(act_sum)
    np.testing.assert_allclose(df(X), 1 - np.tanh(X) ** 2)
    ACTMOD.act = np.sin
    np.testing.assert_allclose(df(X), np.cos(X))
    ACTMOD.act = np.tanh
    np.testing.assert_allclose(df(X), 1 - np.tanh(X) ** 2)


def test_a_rebound_attribute_of_a_global_object_compiles_again(restore):
    df = srcgrad.grad(cfg_sum)
    np.testing.assert_allclose(df(X), 1 - np.tanh(X) ** 2)
    CFG.fn = np.sin
    np.testing.assert_allclose(df(X), np.cos(X))


def test_a_rebound_inlined_helper_reached_through_a_module_compiles_again(restore):
    df = srcgrad.grad(via_helper)
    np.testing.assert_allclose(df(X), 3 * X ** 2)
    MYMOD.helper = _square
    np.testing.assert_allclose(df(X), 2 * X)


def test_a_rebound_attribute_through_a_closure_variable_compiles_again():
    mod = types.ModuleType("closure_actmod")
    mod.act = np.tanh

    def f(x):
        return np.sum(mod.act(x))

    df = srcgrad.grad(f)
    np.testing.assert_allclose(df(X), 1 - np.tanh(X) ** 2)
    mod.act = np.sin
    np.testing.assert_allclose(df(X), np.cos(X))


def test_value_and_grad_and_vjp_see_a_rebound_attribute_too(restore):
    vg = srcgrad.value_and_grad(act_sum)
    value, g = vg(X)
    np.testing.assert_allclose(g, 1 - np.tanh(X) ** 2)
    ACTMOD.act = np.sin
    value, g = vg(X)
    assert value == pytest.approx(np.sum(np.sin(X)))
    np.testing.assert_allclose(g, np.cos(X))
    _, pullback = srcgrad.vjp(act_sum, X)
    np.testing.assert_allclose(pullback(1.0), np.cos(X))


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_a_rebound_attribute_of_a_module_imported_inside_the_function(tmp_path, monkeypatch):
    (tmp_path / "inner_actmod_staleness.py").write_text("import numpy as np\nact = np.tanh\n")
    (tmp_path / "uses_local_import_staleness.py").write_text(textwrap.dedent("""
        import numpy as np

        def f(x):
            import inner_actmod_staleness
            return np.sum(inner_actmod_staleness.act(x))
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "inner_actmod_staleness", raising=False)
    user = _load(tmp_path / "uses_local_import_staleness.py", "uses_local_import_staleness")
    import inner_actmod_staleness
    df = srcgrad.grad(user.f)
    np.testing.assert_allclose(df(X), 1 - np.tanh(X) ** 2)
    inner_actmod_staleness.act = np.sin
    np.testing.assert_allclose(df(X), np.cos(X))


# ---- B: a source file edited after import

MODULE = """\
import numpy as np


def helper(z):
    return np.tanh(z)


def f(x):
    return np.sum(np.tanh(x))


def g(x):
    return np.sum(helper(x) * 2.0)
"""


@pytest.fixture
def imported(tmp_path):
    """A module written to tmp_path and imported; its path. The file is edited afterwards."""
    path = tmp_path / "edited_after_import.py"
    path.write_text(MODULE)
    name = f"edited_after_import_{abs(hash(str(tmp_path)))}"
    module = _load(path, name)
    yield module, path
    sys.modules.pop(name, None)
    linecache.checkcache(str(path))


def _edit(path, text):
    path.write_text(text)


def test_same_lines_with_a_new_body_is_refused(imported):
    module, path = imported
    _edit(path, MODULE.replace("np.sum(np.tanh(x))", "np.sum(np.sin(x))"))
    with pytest.raises(StaleSourceError) as info:
        srcgrad.grad(module.f)(X)
    err = info.value
    assert err.filename == str(path) and err.lineno == 8
    assert "edited after `f` was defined" in str(err) and "reload" in str(err).lower()


def test_a_moved_def_is_refused(imported):
    module, path = imported
    _edit(path, "# a comment\n\n\n" + MODULE)
    with pytest.raises(StaleSourceError, match="edited after `f` was defined"):
        srcgrad.grad(module.f)(X)


def test_an_edited_inlined_helper_is_refused(imported):
    module, path = imported
    _edit(path, MODULE.replace("return np.tanh(z)", "return np.sin(z)"))
    with pytest.raises(StaleSourceError) as info:
        srcgrad.grad(module.g)(X)
    assert info.value.lineno == 4 and "`helper`" in str(info.value)


def test_an_edit_after_the_function_leaves_it_differentiable(imported):
    module, path = imported
    _edit(path, MODULE + "\n\ndef added_later(x):\n    return x\n")
    np.testing.assert_allclose(srcgrad.grad(module.f)(X), 1 - np.tanh(X) ** 2)


def test_a_reloaded_module_is_differentiated_as_edited(imported, tmp_path):
    module, path = imported
    _edit(path, MODULE.replace("np.sum(np.tanh(x))", "np.sum(np.sin(x))"))
    with pytest.raises(StaleSourceError):
        srcgrad.grad(module.f)(X)
    again = _load(path, f"edited_again_{abs(hash(str(tmp_path)))}")
    np.testing.assert_allclose(srcgrad.grad(again.f)(X), np.cos(X))


def test_a_gradient_compiled_before_the_edit_keeps_matching_the_running_code(imported):
    module, path = imported
    df = srcgrad.grad(module.f)
    np.testing.assert_allclose(df(X), 1 - np.tanh(X) ** 2)
    _edit(path, MODULE.replace("np.sum(np.tanh(x))", "np.sum(np.sin(x))"))
    np.testing.assert_allclose(df(X), 1 - np.tanh(X) ** 2)     # the code that runs: tanh


def test_the_error_is_a_srcgrad_error():
    assert issubclass(StaleSourceError, SrcgradError)


# ---- what must keep working: sources that are not a plain file, and instrumented code

def with_assert(x):
    assert x.shape == (3,)           # pytest rewrote this module's asserts
    return np.sum(x ** 2)


def test_a_function_whose_asserts_pytest_rewrote(rng):
    x = rng.normal(size=3)
    np.testing.assert_allclose(srcgrad.grad(with_assert)(x), 2 * x)


class _Base:
    def scale(self):
        return 2.0


class _Model(_Base):
    def __init__(self):
        self.w = np.array([0.5, -1.0, 2.0])

    def loss(self, x):
        return np.sum(self.w * x) * super().scale()


def test_a_method_with_super_and_a_lambda_and_a_closure(rng):
    model = _Model()
    np.testing.assert_allclose(srcgrad.grad(model.loss, wrt="self.w")(X), 2 * X)
    k = 3.0
    square = lambda x: np.sum(k * x ** 2)      # noqa: E731
    np.testing.assert_allclose(srcgrad.grad(square)(X), 6 * X)

    def outer(c):
        def inner(x):
            return np.sum(np.sin(c * x))
        return inner

    np.testing.assert_allclose(srcgrad.grad(outer(2.0))(X), 2 * np.cos(2 * X))


def test_a_function_from_a_notebook_cell():
    src = "import numpy as np\n\ndef cell_loss(x):\n    return np.sum(np.exp(x) * 2.0)\n"
    fname = "<ipython-input-staleness-1>"
    linecache.cache[fname] = (len(src), None, src.splitlines(True), fname)
    try:
        ns = {}
        exec(compile(src, fname, "exec"), ns)
        np.testing.assert_allclose(srcgrad.grad(ns["cell_loss"])(X), 2 * np.exp(X))
    finally:
        linecache.cache.pop(fname, None)


def test_a_cell_whose_text_does_not_match_its_code_is_refused():
    src = "import numpy as np\n\ndef cell_loss(x):\n    return np.sum(np.exp(x) * 2.0)\n"
    fname = "<ipython-input-staleness-2>"
    ns = {}
    exec(compile(src, fname, "exec"), ns)
    shown = src.replace("np.exp(x) * 2.0", "np.exp(x) * 3.0")
    linecache.cache[fname] = (len(shown), None, shown.splitlines(True), fname)
    try:
        with pytest.raises(StaleSourceError):
            srcgrad.grad(ns["cell_loss"])(X)
    finally:
        linecache.cache.pop(fname, None)


# ------------------------------------------------------------ found by review
def _scaled_by_default(x, k=2.0):
    return x * k


def _calls_a_helper_with_a_default(x):
    return _helper_with_default(x)


def _helper_with_default(x, k=3.0):
    return x * k


def test_changed_defaults_compile_again():
    df, dg = srcgrad.grad(_scaled_by_default), srcgrad.grad(_calls_a_helper_with_a_default)
    assert (df(1.0), dg(1.0)) == (2.0, 3.0)
    old = _scaled_by_default.__defaults__, _helper_with_default.__defaults__
    try:
        _scaled_by_default.__defaults__, _helper_with_default.__defaults__ = (7.0,), (5.0,)
        assert (df(1.0), dg(1.0)) == (7.0, 5.0)
    finally:
        _scaled_by_default.__defaults__, _helper_with_default.__defaults__ = old


def _user_function(x):
    return x * 2.0


def test_a_rule_registered_again_is_used():
    from srcgrad.rules import registry
    try:
        srcgrad.rules.partial(_user_function, lambda x: 3.0)
        df = srcgrad.grad(lambda x: _user_function(x) * 1.0)
        assert df(1.0) == 3.0
        srcgrad.rules.partial(_user_function, lambda x: 2.0)
        assert df(1.0) == 2.0
    finally:
        registry._RULES.pop(id(_user_function), None)


class _Layer:
    def __init__(self):
        self.w = 0.7

    def forward(self, x):
        return self.w * x

    def loss(self, x):
        return self.forward(x) ** 2


def test_a_method_hidden_by_the_instances_own_attribute_is_refused():
    layer = _Layer()
    df = srcgrad.grad(layer.loss, wrt="self.w")
    assert df(0.7) == pytest.approx(2 * 0.7 * 0.7 * 0.7)
    layer.forward = lambda x: 100.0 * x
    with pytest.raises(srcgrad.SrcgradError, match="hides the method"):
        df(0.7)
    del layer.forward
    assert df(0.7) == pytest.approx(2 * 0.7 * 0.7 * 0.7)
