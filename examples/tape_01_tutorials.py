"""The tutorials' autograd walk-through, in tape mode (acceptance cases 1-11).

Tape mode is srcgrad's PyTorch-style engine: tensors record each operation,
backward() replays the chain rule with the same derivative rules that the
source transformation inlines. Each section prints what the tutorial printed.

    python examples/tape_01_tutorials.py
"""
import numpy as np

import srcgrad
from srcgrad import tape


def section(title):
    print(f"\n== {title}")


section("1. Scalar derivatives")
for value in (5.0, 3.0, 2.0):
    x = tape.tensor(value, requires_grad=True)
    y = x ** 2
    y.backward()
    print(f"x = {x!r}, y = {y!r}, dy/dx = {x.grad!r}")
for value in (5.0, 3.0):
    x = tape.tensor(value, requires_grad=True)
    z = np.sin(x ** 2)
    z.backward()
    print(f"z = sin(x**2) = {z!r}, dz/dx = {x.grad!r}")

section("2. Binary cross-entropy of one logistic neuron")
x, y = 6.7, 0.0
w = tape.tensor(1.0, requires_grad=True)
b = tape.tensor(0.0, requires_grad=True)
z = w * x + b
y_pred = 1 / (1 + np.exp(-z))
p = np.clip(y_pred, 1e-8, 1 - 1e-8)
loss = -(y * np.log(p) + (1 - y) * np.log(1 - p))
loss.backward()
print(f"loss = {loss!r}")
print(f"dL/dw = {w.grad!r}, dL/db = {b.grad!r}")

section("3. Vector input")
x = tape.tensor([1.0, 2.0, 3.0], requires_grad=True)
y = np.mean(x ** 2)
y.backward()
print(f"x = {x!r}\ny = {y!r}\ndy/dx = {x.grad!r}")

section("4. Chain through an intermediate vector")
x = tape.tensor([1.1131, -0.1259, 1.2902], requires_grad=True)
y = x + 2
z = y * y * 2
out = z.mean()
print(f"y = {y!r}\nz = {z!r}\nout = {out!r}")
out.backward()
print(f"d(out)/dx = {x.grad!r}")

section("5. A non-scalar output needs a seed")
x = tape.tensor([1.1131, -0.1259, 1.2902], requires_grad=True)
z = (x + 2) * (x + 2) * 2
try:
    z.backward()
except srcgrad.SrcgradError as error:
    print(f"{type(error).__name__}: {str(error)[:70]}...")
v = tape.tensor([0.1, 1.0, 0.001])
z.backward(gradient=v)
print(f"x.grad = {x.grad!r}")

section("6. A small graph with four leaves")
a, b, c, d = (tape.tensor([value], requires_grad=True) for value in (2.0, -4.0, -2.0, 2.0))
e = a + b
f = c * d
g = e * f
g.backward()
print(f"g = {g!r}")
print(f"dg/da = {a.grad!r}, dg/db = {b.grad!r}, dg/dc = {c.grad!r}, dg/dd = {d.grad!r}")

section("7. Logistic layer with a matrix product")
x = tape.tensor(np.ones(5))
target = tape.tensor(np.zeros(3))
rng = np.random.default_rng(0)
w0 = rng.normal(size=(5, 3))
printed = np.array([0.0785, 0.0115, 0.0034])  # choose b so sigmoid(z) / 3 matches the tutorial
w = tape.tensor(w0, requires_grad=True)
b = tape.tensor(np.log(3 * printed / (1 - 3 * printed)) - w0.sum(axis=0), requires_grad=True)
z = x @ w + b
loss = np.mean(np.maximum(z, 0) - z * target + np.log1p(np.exp(-np.abs(z))))
loss.backward()
print(f"loss = {loss!r}")
print(f"dL/dw = {w.grad!r}")
print(f"dL/db = {b.grad!r}")

section("8. Linear regression: one step, then gradient descent")
x, y = tape.tensor(1.0), tape.tensor(2.0)
w = tape.tensor(1.0, requires_grad=True)
loss = (w * x - y) ** 2
loss.backward()
print(f"loss = {loss!r}, dL/dw = {w.grad!r}")
w.grad.zero_()
for step in range(100):
    loss = (w * x - y) ** 2
    if loss.item() < 1e-6:
        break
    loss.backward()
    with srcgrad.no_grad():  # the update is not part of the graph
        w -= 0.1 * w.grad
    w.grad.zero_()
    if step % 10 == 0:
        print(f"step {step:2}: w = {w.item():.6f}, loss = {loss.item():.3e}")
print(f"converged: w = {w.item():.4f} after {step} steps")

section("9. Stopping gradients")
x = tape.tensor(2.0, requires_grad=True)
with srcgrad.no_grad():
    y = x ** 2
z = x * y
z.backward()
print(f"y under no_grad = {y!r}; z = x * y = {z!r}; dz/dx = {x.grad!r} (not 12)")
d = x.detach()
print(f"x.detach() = {d!r}, shares data: {d.data is x.data}, grad_fn = {d.grad_fn!r}")
for name, made in [("no_grad", y), ("detach", d * 3), ("requires_grad_(False)",
                   tape.tensor(2.0, requires_grad=True).requires_grad_(False) * 3)]:
    try:
        made.backward()
    except srcgrad.SrcgradError as error:
        print(f"backward() after {name}: {str(error)[:60]}...")

section("10. Gradients accumulate")
weights = tape.tensor(np.ones(4), requires_grad=True)
for epoch in range(10):
    out = (weights * 10).sum()
    out.backward()
    print(f"epoch {epoch}: weights.grad = {weights.grad!r}")
weights = tape.tensor(np.ones(4), requires_grad=True)
for epoch in range(3):
    out = (weights * 10).sum()
    out.backward()
    print(f"epoch {epoch}, cleared each step: weights.grad = {weights.grad!r}")
    weights.grad.zero_()
for clear in (False, True):
    weights = tape.tensor(np.ones(4), requires_grad=True)
    for epoch in range(2):
        (weights * 3).sum().backward()
        print(f"factor 3, epoch {epoch}{', cleared' if clear else ''}: weights.grad = {weights.grad!r}")
        if clear:
            weights.grad.zero_()

section("11. What tape mode keeps")
x = tape.tensor([1.0, 2.0, 3.0], requires_grad=True)
y = x * 2
y.retain_grad()
z = (y ** 2).sum()
z.backward()
print(f"z.grad_fn = {z.grad_fn!r}, y.grad_fn = {y.grad_fn!r}, x.grad_fn = {x.grad_fn!r}")
print(f"x.is_leaf = {x.is_leaf}, y.is_leaf = {y.is_leaf}")
print(f"y.grad (kept by retain_grad) = {y.grad!r}")
print(f"x.grad = {x.grad!r}")
