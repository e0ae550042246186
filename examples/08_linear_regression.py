"""Acceptance case 8: one linear-regression step, then gradient descent.

x = 1.0, y = 2.0, w = 1.0 give loss = 1.0 and dL/dw = -2.0.

    python examples/08_linear_regression.py
"""
import srcgrad


def squared_error(w, x, y):
    y_hat = w * x
    loss = (y_hat - y) ** 2
    return loss


step = srcgrad.value_and_grad(squared_error, wrt="w")
x, y, w = 1.0, 2.0, 1.0
loss, dw = step(w, x, y)
print(f"loss = {loss:.4f}, dL/dw = {dw:.4f}")

learning_rate = 0.1
for iteration in range(1000):
    loss, dw = step(w, x, y)
    print(f"step {iteration:3}: w = {w:.6f}, loss = {loss:.3e}")
    if loss < 1e-6:
        break
    w -= learning_rate * dw
print(f"converged: w = {w:.4f} after {iteration} steps")

print("\nThe generated gradient:\n")
print(srcgrad.source(step))
