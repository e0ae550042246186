"""Training a small model with srcgrad: helpers, a loop over the data, gradient descent.

The loss calls helper functions and loops over mini-batches; srcgrad differentiates all
of it (helpers are inlined, the loop runs backwards in the gradient).
Run: python examples/11_training_loop.py
"""
import numpy as np

import srcgrad


def dense(x, w, b):
    return x @ w + b


def softmax_cross_entropy(logits, labels):
    shifted = logits - np.max(logits, axis=1, keepdims=True)
    log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    return -np.mean(np.sum(labels * log_probs, axis=1))


def loss(w1, b1, w2, b2, xs, ys, batch):
    total = 0.0
    batches = len(xs) // batch
    for k in range(batches):
        x = xs[k * batch:(k + 1) * batch]
        y = ys[k * batch:(k + 1) * batch]
        hidden = np.tanh(dense(x, w1, b1))
        total = total + softmax_cross_entropy(dense(hidden, w2, b2), y)
    return total / batches


def make_data(rng, n=120):
    centres = np.array([[0.0, 2.0], [2.0, -1.0], [-2.0, -1.0]])
    labels = rng.integers(0, 3, size=n)
    xs = centres[labels] + 0.7 * rng.normal(size=(n, 2))
    return xs, np.eye(3)[labels]


def main():
    rng = np.random.default_rng(0)
    xs, ys = make_data(rng)
    params = [0.5 * rng.normal(size=(2, 8)), np.zeros(8), 0.5 * rng.normal(size=(8, 3)), np.zeros(3)]
    step = srcgrad.value_and_grad(loss, wrt=("w1", "b1", "w2", "b2"))
    for epoch in range(30):
        value, grads = step(*params, xs, ys, 20)
        params = [p - 0.5 * g for p, g in zip(params, grads)]
        if epoch % 5 == 0 or epoch == 29:
            print(f"epoch {epoch:2d}: loss = {value:.4f}")
    accuracy = np.mean(np.argmax(dense(np.tanh(dense(xs, params[0], params[1])), params[2], params[3]), 1)
                       == np.argmax(ys, 1))
    print(f"training accuracy = {accuracy:.2f}")


if __name__ == "__main__":
    main()
