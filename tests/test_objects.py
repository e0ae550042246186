"""Differentiating with respect to values inside an argument: attributes of an
object (`srcgrad.grad(model.loss, wrt=("self.w", "self.b"))`) and the entries of
a dict of parameters (`srcgrad.grad(loss, wrt="params")` gives a dict). The
generated code reads each one once (`self_w = self.w`, `params_w = params['w']`);
functions the object is passed to and the object's own methods are inlined (its
class is part of the compile key); other attributes are constants."""
import numpy as np
import pytest

import srcgrad


def tanh_layer(m, x):
    return np.tanh(x @ m.w + m.b)


class Model:
    def __init__(self, w, b, scale=2.0):
        self.w, self.b, self.scale = w, b, scale
        self.frozen = np.array([0.5, -0.5])

    def predict(self, x):
        return tanh_layer(self, x) * self.frozen

    def loss(self, x, y):
        return np.mean((self.predict(x) - y) ** 2) * self.scale


class Linear(Model):
    def predict(self, x):
        return x @ self.w + self.b


def make(cls=Model, seed=0):
    rng = np.random.default_rng(seed)
    return cls(rng.uniform(-1, 1, (3, 2)), rng.uniform(-1, 1, 2))


X = np.array([[0.3, -0.5, 0.8], [0.1, 0.2, -0.3], [0.7, 0.1, 0.4]])
Y = np.array([[0.1, 0.2], [0.0, -0.1], [0.3, 0.3]])


def differences(get, put, fn, eps=1e-6):
    """d fn() / d v by central differences, v = get() (a float changed with put, or an
    array changed in place)."""
    value = get()
    if isinstance(value, float):
        put(value + eps)
        up = fn()
        put(value - eps)
        down = fn()
        put(value)
        return (up - down) / (2 * eps)
    out = np.zeros_like(value)
    for i in np.ndindex(value.shape):
        old = value[i]
        value[i] = old + eps
        up = fn()
        value[i] = old - eps
        down = fn()
        value[i] = old
        out[i] = (up - down) / (2 * eps)
    return out


def central(obj, path, fn):
    """d fn() / d obj.<path> ("m.w": the first name stands for obj)."""
    *owner_path, attr = path.split(".")[1:]
    owner = obj
    for a in owner_path:
        owner = getattr(owner, a)
    return differences(lambda: getattr(owner, attr), lambda v: setattr(owner, attr, v), fn)


@pytest.mark.parametrize("cls", [Model, Linear])
def test_attributes_methods_and_helpers(cls):
    m = make(cls)
    paths = ("self.w", "self.b", "self.scale")
    grads = srcgrad.grad(m.loss, wrt=paths)(X, Y)
    for path, g in zip(paths, grads):
        np.testing.assert_allclose(g, central(m, path, lambda: m.loss(X, Y)), rtol=1e-6, atol=1e-9)
    assert isinstance(grads[2], float)
    source = srcgrad.source(srcgrad.grad(m.loss, wrt=paths))
    assert "self_w = self.w" in source and "in predict" in source


def test_a_function_of_the_object_with_a_path_and_an_argument():
    m = make()

    def loss(model, x):
        return np.sum(tanh_layer(model, x) ** 2)
    dw, dx = srcgrad.grad(loss, wrt=("model.w", "x"))(m, X)
    np.testing.assert_allclose(dw, central(m, "m.w", lambda: loss(m, X)), rtol=1e-6, atol=1e-9)
    eps, i = 1e-6, (1, 2)
    up, down = X.copy(), X.copy()
    up[i] += eps
    down[i] -= eps
    assert dx[i] == pytest.approx((loss(m, up) - loss(m, down)) / (2 * eps), rel=1e-6)


def test_value_and_grad_and_vjp_with_paths():
    m = make()
    value, (dw,) = srcgrad.value_and_grad(m.loss, wrt=("self.w",))(X, Y)
    assert value == pytest.approx(m.loss(X, Y))
    out, pullback = srcgrad.vjp(m.predict, X, wrt="self.b")
    np.testing.assert_allclose(out, m.predict(X))
    seed = np.ones_like(out)
    np.testing.assert_allclose(pullback(seed), central(m, "m.b", lambda: np.sum(m.predict(X))),
                               rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(dw, central(m, "m.w", lambda: m.loss(X, Y)), rtol=1e-6, atol=1e-9)


def test_other_attributes_are_constants_and_new_classes_compile_again():
    m = make()
    df = srcgrad.grad(m.loss, wrt="self.w")
    before = df(X, Y)
    m.frozen = m.frozen * 3.0                     # read live, as a constant
    np.testing.assert_allclose(df(X, Y), central(m, "m.w", lambda: m.loss(X, Y)), rtol=1e-6, atol=1e-9)
    assert not np.allclose(before, df(X, Y))


def test_rebinding_a_method_compiles_again():
    class Local(Model):
        pass
    m = make(Local)
    df = srcgrad.grad(m.loss, wrt="self.w")
    df(X, Y)
    Local.predict = lambda self, x: x @ self.w
    np.testing.assert_allclose(df(X, Y), central(m, "m.w", lambda: m.loss(X, Y)), rtol=1e-6, atol=1e-9)


def test_refusals():
    m = make()
    with pytest.raises(srcgrad.SrcgradError, match="not an attribute path"):
        srcgrad.grad(m.loss, wrt="other.w")
    with pytest.raises(srcgrad.SrcgradError, match="no attribute 'v'"):
        srcgrad.grad(m.loss, wrt="self.v")(X, Y)
    m.label = "name"
    with pytest.raises(srcgrad.SrcgradError, match="cannot differentiate with respect to a str"):
        srcgrad.grad(m.loss, wrt=("self.w", "self.label"))(X, Y)

    class Builtin(Model):
        predict = staticmethod(lambda x: x)        # not a function of the object

    b = make(Builtin)
    with pytest.raises(srcgrad.SrcgradError, match="method call `self.predict") as info:
        srcgrad.grad(b.loss, wrt="self.w")(X, Y)
    assert "test_objects.py" in str(info.value)


# ------------------------------------------------------------ dicts of parameters
def dict_layer(p, x):
    return np.tanh(x @ p["w"] + p["b"])


def dict_loss(params, x, y):
    return np.mean((dict_layer(params, x) * params["scale"] - y) ** 2)


def make_params(seed=0):
    rng = np.random.default_rng(seed)
    return {"w": rng.uniform(-1, 1, (3, 2)), "b": rng.uniform(-1, 1, 2), "scale": 1.5}


def entry_central(params, key, fn):
    """d fn() / d params[key]."""
    return differences(lambda: params[key], lambda v: params.__setitem__(key, v), fn)


def test_a_dict_of_parameters_gives_a_dict_of_gradients():
    params = make_params()
    g = srcgrad.grad(dict_loss, wrt="params")(params, X, Y)
    assert list(g) == ["w", "b", "scale"] and isinstance(g["scale"], float)
    for key in params:
        np.testing.assert_allclose(g[key], entry_central(params, key, lambda: dict_loss(params, X, Y)),
                                   rtol=1e-6, atol=1e-9)
    source = srcgrad.source(srcgrad.grad(dict_loss, wrt="params"), params, X, Y)
    assert "params_w = params['w']" in source and source.count("params['w']") == 2   # docstring, read


def test_dict_with_other_wrt_and_value_and_grad_and_vjp():
    params = make_params(1)
    value, (dx, dp) = srcgrad.value_and_grad(dict_loss, wrt=("x", "params"))(params, X, Y)
    assert value == pytest.approx(dict_loss(params, X, Y))
    assert dx.shape == X.shape and set(dp) == {"w", "b", "scale"}
    out, pullback = srcgrad.vjp(dict_layer, params, X, wrt=0)
    grads = pullback(np.ones_like(out))
    np.testing.assert_allclose(grads["b"], entry_central(params, "b", lambda: np.sum(dict_layer(params, X))),
                               rtol=1e-6, atol=1e-9)


def test_a_new_set_of_keys_compiles_again():
    df = srcgrad.grad(dict_loss, wrt="params")
    params = make_params()
    df(params, X, Y)
    params["extra"] = 0.5                 # not read by the function: a zero gradient
    g = df(params, X, Y)
    assert g["extra"] == 0.0 and len(df._compiled) == 2


def test_dict_refusals():
    params = make_params()

    def by_variable_key(params, x):
        total = 0.0
        for k in ["w"]:
            total = total + np.sum(x @ params[k])
        return total
    with pytest.raises(srcgrad.SrcgradError, match="constant string keys") as info:
        srcgrad.grad(by_variable_key, wrt="params")(params, X)
    assert "test_objects.py" in str(info.value)

    def writes(params, x):
        params["w"] = params["w"] * 2.0
        return np.sum(x @ params["w"])
    with pytest.raises(srcgrad.SrcgradError, match="cannot write into `params`"):
        srcgrad.grad(writes, wrt="params")(params, X)
    with pytest.raises(srcgrad.SrcgradError, match=r"cannot differentiate with respect to a str \(params\['name'\]\)"):
        srcgrad.grad(dict_loss, wrt="params")({**params, "name": "x"}, X, Y)
    with pytest.raises(srcgrad.SrcgradError, match="string keys"):
        srcgrad.grad(dict_loss, wrt="params")({**params, 3: 1.0}, X, Y)


def test_dict_keys_that_need_quoting():
    def loss(params, x):
        return np.sum(x * params["it's"]) + params["a\nb"] * 2.0
    g = srcgrad.grad(loss, wrt="params")({"it's": np.ones(2), "a\nb": 3.0}, np.array([1.0, 2.0]))
    np.testing.assert_allclose(g["it's"], [1.0, 2.0])
    assert g["a\nb"] == 2.0
