"""Write examples/tutorial.ipynb: the tutorials' cases (acceptance 1-11) in both modes.

    python examples/make_tutorial_notebook.py

The notebook is committed without outputs; tests/test_notebook.py runs it in a
Jupyter kernel and checks that it prints the tutorials' numbers, and that it is
what this script writes. Edit the cells here, then run the script.
"""
import pathlib

import nbformat

PATH = pathlib.Path(__file__).with_name("tutorial.ipynb")

CELLS = [
    ("markdown", """\
# The autograd tutorials, twice

srcgrad computes gradients two ways, and this notebook walks the cases of the
PyTorch autograd tutorials srcgrad was born from through both:

* **source mode** (`srcgrad.grad`, `value_and_grad`, `vjp`): srcgrad reads a
  function's source, writes a companion function holding the chain rule step by
  step, and runs it. `srcgrad.source(df)` shows that code. Functions defined in
  notebook cells work: srcgrad reads their source the way `inspect` does.
* **tape mode** (`srcgrad.tape`): PyTorch-style tensors record each operation;
  `backward()` replays the chain rule with the same derivative rules.

`srcgrad.compare` runs both, and central finite differences, on one call."""),
    ("code", """\
import math

import numpy as np

import srcgrad
from srcgrad import tape"""),

    ("markdown", "## 1. Scalar derivatives\n\n`y = x**2` and `z = sin(x**2)`: dy/dx = 2x, dz/dx = 2x·cos(x²)."),
    ("code", """\
def square(x):
    y = x ** 2
    return y


def sin_square(x):
    z = np.sin(x ** 2)
    return z


dsquare = srcgrad.grad(square)
for x0 in (5.0, 3.0, 2.0):
    print(f"x = {x0}: dy/dx = {dsquare(x0):.4f}")
dsin_square = srcgrad.value_and_grad(sin_square)
for x0 in (5.0, 3.0):
    z, dz = dsin_square(x0)
    print(f"x = {x0}: z = sin(x**2) = {z:.4f}, dz/dx = {dz:.4f}")"""),
    ("markdown", "The generated gradient of `sin_square`, one line per chain-rule step:"),
    ("code", "print(srcgrad.source(dsin_square))"),
    ("markdown", "Tape mode runs **the same functions** on tensors:"),
    ("code", """\
x = tape.tensor(5.0, requires_grad=True)
y = square(x)
y.backward()
print(f"y = {y!r}, dy/dx = {x.grad!r}")
x = tape.tensor(5.0, requires_grad=True)
z = sin_square(x)
z.backward()
print(f"z = {z!r}, dz/dx = {x.grad!r}")"""),

    ("markdown", """\
## 2. Binary cross-entropy of one logistic neuron

x = 6.7 (feature), y = 0 (label), w = 1, b = 0. The tutorial derived the
gradient by hand: loss = 6.7012, dL/dw = 6.6918, dL/db = 0.9988. First with the
`math` module and a sigmoid helper (which srcgrad inlines):"""),
    ("code", """\
def sigmoid(z):
    return 1 / (1 + math.exp(-z))


def bce_loss(w, b, x, y):
    z = w * x + b
    y_pred = sigmoid(z)
    p = min(max(y_pred, 1e-8), 1 - 1e-8)
    loss = -(y * math.log(p) + (1 - y) * math.log(1 - p))
    return loss


dloss = srcgrad.value_and_grad(bce_loss, wrt=("w", "b"))
loss, (dw, db) = dloss(1.0, 0.0, 6.7, 0.0)
print(f"loss = {loss:.4f}, dL/dw = {dw:.4f}, dL/db = {db:.4f}")"""),
    ("markdown", "Read the generated gradient bottom-up against the hand derivation:"),
    ("code", "print(srcgrad.source(dloss))"),
    ("markdown", """\
Tape mode cannot run `bce_loss`: `math.exp` turns a tensor into a Python
float, which would drop its gradient (tape mode refuses rather than give a
wrong answer). Written with numpy, one function serves both engines:"""),
    ("code", """\
def bce_numpy(w, b, x, y):
    z = w * x + b
    y_pred = 1 / (1 + np.exp(-z))
    p = np.clip(y_pred, 1e-8, 1 - 1e-8)
    loss = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    return loss


loss, (dw, db) = srcgrad.value_and_grad(bce_numpy, wrt=("w", "b"))(1.0, 0.0, 6.7, 0.0)
print(f"source mode: loss = {loss:.4f}, dL/dw = {dw:.4f}, dL/db = {db:.4f}")

w = tape.tensor(1.0, requires_grad=True)
b = tape.tensor(0.0, requires_grad=True)
loss = bce_numpy(w, b, 6.7, 0.0)
loss.backward()
print(f"tape mode:   loss = {loss!r}, dL/dw = {w.grad!r}, dL/db = {b.grad!r}")"""),
    ("markdown", """\
`srcgrad.compare` runs source mode, tape mode and finite differences on the
same call, and reports the gradients, the largest differences between each
pair of methods, and the time per call (`report.ok` says they agree):"""),
    ("code", """\
report = srcgrad.compare(bce_numpy, 1.0, 0.0, 6.7, 0.0, wrt=("w", "b"))
assert report.ok
report"""),
    ("markdown", "For `bce_loss`, the report says why tape mode could not run it:"),
    ("code", "srcgrad.compare(bce_loss, 1.0, 0.0, 6.7, 0.0, wrt=(\"w\", \"b\"))"),

    ("markdown", "## 3. Vector input\n\n`y = mean(x**2)` at x = [1, 2, 3]."),
    ("code", """\
def mean_of_squares(x):
    return np.mean(x ** 2)


x0 = np.array([1.0, 2.0, 3.0])
y, dy = srcgrad.value_and_grad(mean_of_squares)(x0)
print(f"source mode: y = {y:.4f}, dy/dx = {np.array2string(dy, precision=4)}")
x = tape.tensor(x0, requires_grad=True)
y = mean_of_squares(x)
y.backward()
print(f"tape mode:   y = {y!r}, dy/dx = {x.grad!r}")"""),

    ("markdown", "## 4. Chain through an intermediate vector\n\n`y = x + 2; z = y * y * 2; out = mean(z)`: the gradient is 4 (x + 2) / n."),
    ("code", """\
def chain_mean(x):
    y = x + 2
    z = y * y * 2
    out = np.mean(z)
    return out


for x0 in (np.array([1.1131, -0.1259, 1.2902]), np.array([-1.2882, -0.1838])):
    g = srcgrad.grad(chain_mean)(x0)
    x = tape.tensor(x0, requires_grad=True)
    chain_mean(x).backward()
    print(f"source mode: {np.array2string(g, precision=4)}   tape mode: {x.grad!r}")"""),

    ("markdown", """\
## 5. A non-scalar output needs a seed

`grad` of a function whose output is a vector is an error that says what to
do: `srcgrad.vjp` with a seed v gives the gradient of `sum(v * f(x))`."""),
    ("code", """\
def chain(x):
    y = x + 2
    z = y * y * 2
    return z


x0 = np.array([1.1131, -0.1259, 1.2902])
v = np.array([0.1, 1.0, 0.001])
try:
    srcgrad.grad(chain)(x0)
except srcgrad.SrcgradError as error:
    print(f"{type(error).__name__}: {error}\\n")
z, pullback = srcgrad.vjp(chain, x0)
print(f"source mode: pullback(v) = {np.array2string(pullback(v), precision=4)}")
x = tape.tensor(x0, requires_grad=True)
chain(x).backward(gradient=v)
print(f"tape mode:   x.grad = {x.grad!r}")
print(f"v * 4 * (x + 2)     = {np.array2string(v * 4 * (x0 + 2), precision=4)}")"""),
    ("code", "print(srcgrad.source(pullback))"),

    ("markdown", "## 6. A small graph with four leaves\n\na = 2, b = −4, c = −2, d = 2; `e = a + b; f = c * d; g = e * f`."),
    ("code", """\
def graph(a, b, c, d):
    e = a + b
    f = c * d
    g = e * f
    return g


leaves = [np.array([2.0]), np.array([-4.0]), np.array([-2.0]), np.array([2.0])]
da, db, dc, dd = srcgrad.grad(graph, wrt=(0, 1, 2, 3))(*leaves)
print(f"source mode: dg/da = {da}, dg/db = {db}, dg/dc = {dc}, dg/dd = {dd}")
a, b, c, d = (tape.tensor(value, requires_grad=True) for value in leaves)
graph(a, b, c, d).backward()
print(f"tape mode:   dg/da = {a.grad!r}, dg/db = {b.grad!r}, dg/dc = {c.grad!r}, dg/dd = {d.grad!r}")"""),

    ("markdown", """\
## 7. Logistic layer with a matrix product

`z = x @ w + b`, then the binary cross-entropy with logits, averaged over the
3 outputs: every row of dL/dw equals dL/db = sigmoid(z) / 3. We choose b so
that z is the tutorial's (it printed dL/db = [0.0785, 0.0115, 0.0034])."""),
    ("code", """\
def binary_cross_entropy_with_logits(z, y):
    return np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))


def logistic_layer(w, b, x, y):
    z = x @ w + b
    return binary_cross_entropy_with_logits(z, y)


rng = np.random.default_rng(0)
x, y = np.ones(5), np.zeros(3)
w0 = rng.normal(size=(5, 3))
printed = np.array([0.0785, 0.0115, 0.0034])
b0 = np.log(3 * printed / (1 - 3 * printed)) - x @ w0

dw, db = srcgrad.grad(logistic_layer, wrt=("w", "b"))(w0, b0, x, y)
print(f"source mode: dL/db = {np.array2string(db, precision=4)}; "
      f"rows of dL/dw equal it: {np.allclose(dw, db)}")
w = tape.tensor(w0, requires_grad=True)
b = tape.tensor(b0, requires_grad=True)
logistic_layer(w, b, x, y).backward()
print(f"tape mode:   dL/db = {b.grad!r}")"""),
    ("code", "srcgrad.compare(logistic_layer, w0, b0, x, y, wrt=(\"w\", \"b\"))"),

    ("markdown", "## 8. Linear regression\n\n`loss = (w * x - y)**2` at x = 1, y = 2, w = 1: loss = 1, dL/dw = −2. Then gradient descent on w."),
    ("code", """\
def squared_error(w, x, y):
    y_hat = w * x
    loss = (y_hat - y) ** 2
    return loss


dloss = srcgrad.value_and_grad(squared_error)
loss, dw = dloss(1.0, 1.0, 2.0)
print(f"source mode: loss = {loss:.4f}, dL/dw = {dw:.4f}")
w_value = 1.0
for step in range(100):
    loss, dw = dloss(w_value, 1.0, 2.0)
    if loss < 1e-6:
        break
    w_value -= 0.1 * dw
print(f"source mode: converged to w = {w_value:.4f} after {step} steps")

w = tape.tensor(1.0, requires_grad=True)
for step in range(100):
    loss = squared_error(w, 1.0, 2.0)
    if loss.item() < 1e-6:
        break
    loss.backward()
    with srcgrad.no_grad():  # the update is not part of the graph
        w -= 0.1 * w.grad
    w.grad.zero_()
print(f"tape mode:   converged to w = {w.item():.4f} after {step} steps")"""),

    ("markdown", """\
## 9. Stopping gradients

x = 2; y = x**2 computed as a constant; z = x * y gives dz/dx = 4 (not 12).
In source mode, `with srcgrad.no_grad():` inside the function marks the block
constant; `srcgrad.stop_gradient(e)` does it for one expression."""),
    ("code", """\
def with_no_grad(x):
    with srcgrad.no_grad():
        y = x ** 2
    z = x * y
    return z


def with_stop_gradient(x):
    y = srcgrad.stop_gradient(x ** 2)
    return x * y


for fn in (with_no_grad, with_stop_gradient):
    print(f"source mode, {fn.__name__}: dz/dx = {srcgrad.grad(fn)(2.0):.4f}")
print(srcgrad.source(srcgrad.grad(with_no_grad)))"""),
    ("code", """\
x = tape.tensor(2.0, requires_grad=True)
with srcgrad.no_grad():
    y = x ** 2
z = x * y
z.backward()
print(f"tape mode: y = {y!r}, dz/dx = {x.grad!r}")
d = x.detach()
print(f"x.detach() = {d!r} shares data with x: {d.data is x.data}")
try:
    (d * 3).backward()
except srcgrad.SrcgradError as error:
    print(f"backward() after detach: {str(error)[:60]}...")"""),

    ("markdown", "## 10. Gradients accumulate (tape mode)\n\nUntil you clear them with `.grad.zero_()`."),
    ("code", """\
weights = tape.tensor(np.ones(4), requires_grad=True)
for epoch in range(10):
    (weights * 10).sum().backward()
print(f"after 10 steps without clearing: {weights.grad!r}")
for epoch in range(3):
    weights.grad.zero_()
    (weights * 10).sum().backward()
    print(f"cleared each step: {weights.grad!r}")"""),

    ("markdown", "## 11. What tape mode prints and keeps\n\nTensors print as PyTorch prints them; `grad_fn` names the operation that made a tensor; an intermediate's gradient is kept only after `retain_grad()`."),
    ("code", """\
x = tape.tensor([1.0, 2.0, 3.0], requires_grad=True)
y = x * 2
y.retain_grad()
z = (y ** 2).sum()
z.backward()
print(f"x = {x!r}")
print(f"z = {z!r}")
print(f"y.grad_fn = {y.grad_fn!r}, x.is_leaf = {x.is_leaf}, y.is_leaf = {y.is_leaf}")
print(f"y.grad = {y.grad!r}")
print(f"x.grad = {x.grad!r}")"""),
]


def build():
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.metadata["language_info"] = {"name": "python"}
    make = {"markdown": nbformat.v4.new_markdown_cell, "code": nbformat.v4.new_code_cell}
    notebook.cells = [make[kind](text) for kind, text in CELLS]
    for i, cell in enumerate(notebook.cells):
        cell["id"] = f"cell-{i:02d}"  # stable ids: rewriting the notebook changes nothing
    return notebook


if __name__ == "__main__":
    nbformat.write(build(), PATH)
    print(f"wrote {PATH}")
