"""srcgrad benchmarks: µs per gradient call against a hand-written gradient and peers.

    python benchmarks/run.py                      # every workload, printed as tables
    python benchmarks/run.py --quick              # tiny sizes, one repetition (the smoke test)
    python benchmarks/run.py --only mlp           # one workload (a comma-separated list works too)
    python benchmarks/run.py --markdown docs/benchmarks.md --plot docs/benchmarks.png
    python benchmarks/run.py --only rnn_scalar --profile   # where the time goes
    (also --repeat N, --threads N (default 1), --no-peers, --cold-malloc; see --help)

Every workload defines its function once, as a user would write it (numpy or
`math` code), and a gradient written by hand with explicit numpy/math. The
methods timed are:

    forward     the plain function itself (for the "x forward" column)
    hand        the hand-written gradient (the reference: "x hand" = 1.00)
    srcgrad     srcgrad.grad(f, wrt=...)(*args), the public call
    srcgrad.fn  the generated function it runs (df.last.function), without
                the wrapper in srcgrad/api.py: the difference is the wrapper
    tape        srcgrad.tape: leaves made once, then per call forward +
                backward() (math-based workloads run an equivalent numpy version)
    autograd    HIPS autograd.grad (np rebound to autograd.numpy)
    torch       PyTorch CPU, float64 leaves made once, per call forward + backward()
    jax         jax.jit(jax.grad(f)) with x64 enabled (np rebound to jax.numpy)

Peers that are not importable are skipped. Before timing, every method's
gradients are compared with the hand-written ones (|g - hand| <= 1e-6 * (|hand|
+ 1e-3 * max|hand|), float64); a method that disagrees is reported and not
timed. Times are loops of about 0.05 s (timeit's autorange / 4), best of
4 * --repeat repeats, the methods of a workload timed in turns. Before timing,
BLAS, torch and XLA are held to one thread and glibc's allocator is warmed
(see warm_allocator); docs/benchmarks.md explains both.
"""
import argparse
import cProfile
import io
import math
import os
import platform
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import timeit
import tracemalloc
import types


def _threads_from_argv(argv):
    """--threads N (default 1), applied before numpy, torch or jax start their thread pools."""
    for i, arg in enumerate(argv):
        if arg == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--threads="):
            return arg.split("=", 1)[1]
    return "1"


THREADS = _threads_from_argv(sys.argv)
if THREADS != "0":  # 0: leave every library's own default
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = THREADS
    if THREADS == "1":
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   " --xla_cpu_multi_thread_eigen=false")

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, ROOT)

import srcgrad  # noqa: E402
from srcgrad import tape  # noqa: E402
from srcgrad.demo import bce_loss  # noqa: E402

RTOL = 1e-6
BEGIN, END = "<!-- benchmarks:begin -->", "<!-- benchmarks:end -->"
METHODS = ("forward", "hand", "srcgrad", "srcgrad.fn", "tape", "autograd", "torch", "jax")


# ---------------------------------------------------------------------------
# Workloads: the plain function (once), its hand-written gradient, and the
# versions peers need where they cannot run the plain function.
# ---------------------------------------------------------------------------

# 1. scalar BCE with `math`: the logistic neuron of srcgrad/demo.py (bce_loss, imported)
def bce_loss_hand(w, b, x, y):               # the tutorial's derivation (README.md)
    z = w * x + b
    y_pred = 1 / (1 + math.exp(-z))
    p = min(max(y_pred, 1e-8), 1 - 1e-8)
    dloss_dp = (p - y) / (p * (1 - p))
    dp_dy_pred = 1.0 if 1e-8 < y_pred < 1 - 1e-8 else 0.0     # the clamp
    dy_pred_dz = y_pred * (1 - y_pred)
    d_z = dloss_dp * dp_dy_pred * dy_pred_dz
    return d_z * x, d_z


def bce_loss_np(w, b, x, y):                  # the same, in numpy: for tape mode and the peers
    z = w * x + b
    y_pred = 1 / (1 + np.exp(-z))
    p = np.clip(y_pred, 1e-8, 1 - 1e-8)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def bce_loss_torch(w, b, x, y):
    z = w * x + b
    y_pred = 1 / (1 + torch.exp(-z))
    p = torch.clamp(y_pred, 1e-8, 1 - 1e-8)
    return -(y * torch.log(p) + (1 - y) * torch.log(1 - p))


# 2. mean(x**2)
def mean_square(x):
    return np.mean(x ** 2)


def mean_square_hand(x):
    return (x * (2.0 / x.size),)


def mean_square_torch(x):
    return torch.mean(x ** 2)


# 3. MLP: x (64, 256) @ W1 (256, 256) + b1 -> tanh -> @ W2 (256, 10) + b2, softmax cross-entropy
def mlp_loss(W1, b1, W2, b2, x, y):
    h = np.tanh(x @ W1 + b1)
    z = h @ W2 + b2
    z = z - np.max(z, axis=1, keepdims=True)
    log_p = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.sum(y * log_p) / x.shape[0]


def mlp_loss_hand(W1, b1, W2, b2, x, y):
    h = np.tanh(x @ W1 + b1)
    z = h @ W2 + b2
    e = np.exp(z - z.max(axis=1, keepdims=True))
    d_z = (e / e.sum(axis=1, keepdims=True) - y) / x.shape[0]    # softmax - one-hot
    d_pre = (d_z @ W2.T) * (1 - h * h)
    return x.T @ d_pre, d_pre.sum(axis=0), h.T @ d_z, d_z.sum(axis=0)


def mlp_loss_torch(W1, b1, W2, b2, x, y):
    h = torch.tanh(x @ W1 + b1)
    z = h @ W2 + b2
    z = z - torch.max(z, dim=1, keepdim=True).values
    log_p = z - torch.log(torch.sum(torch.exp(z), dim=1, keepdim=True))
    return -torch.sum(y * log_p) / x.shape[0]


# 4. RNN h = tanh(a*h + b*x[t]) with `math`
def rnn(a, b, x):
    h = 0.0
    for t in range(len(x)):
        h = math.tanh(a * h + b * x[t])
    return h


def rnn_hand(a, b, x):
    hs = [0.0]
    h = 0.0
    for t in range(len(x)):
        h = math.tanh(a * h + b * x[t])
        hs.append(h)
    d_a = d_b = 0.0
    d_h = 1.0
    for t in range(len(x) - 1, -1, -1):
        h = hs[t + 1]
        d_pre = d_h * (1 - h * h)
        d_a += d_pre * hs[t]
        d_b += d_pre * x[t]
        d_h = d_pre * a
    return d_a, d_b


def rnn_np(a, b, x):
    h = 0.0
    for t in range(len(x)):
        h = np.tanh(a * h + b * x[t])
    return h


def rnn_torch(a, b, x):
    h = 0.0
    for t in range(len(x)):
        h = torch.tanh(a * h + b * x[t])
    return h


# 5. logistic layer: x (1024, 512) @ W (512, 256) + b, BCE with logits
def bce_with_logits(z, y):
    return np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))


def logistic_layer(W, b, x, y):
    z = x @ W + b
    return bce_with_logits(z, y)


def logistic_layer_hand(W, b, x, y):
    z = x @ W + b
    d_z = (1 / (1 + np.exp(-z)) - y) / z.size          # sigmoid(z) - y, over the mean
    return x.T @ d_z, d_z.sum(axis=0)


def logistic_layer_torch(W, b, x, y):
    z = x @ W + b
    return torch.mean(torch.clamp(z, min=0) - z * y + torch.log1p(torch.exp(-torch.abs(z))))


# 6. (weak) a loop that fills an array element by element: exponential smoothing
def smooth(x, a):
    y = np.zeros(len(x))
    y[0] = x[0]
    for i in range(1, len(x)):
        y[i] = a * y[i - 1] + (1 - a) * x[i]
    return np.sum(y * y)


def smooth_hand(x, a):
    n = len(x)
    y = np.zeros(n)
    y[0] = x[0]
    for i in range(1, n):
        y[i] = a * y[i - 1] + (1 - a) * x[i]
    d_y = 2 * y
    d_x = np.zeros(n)
    d_a = 0.0
    for i in range(n - 1, 0, -1):
        g = d_y[i]
        d_y[i - 1] += a * g
        d_a += g * (y[i - 1] - x[i])
        d_x[i] = (1 - a) * g
    d_x[0] = d_y[0]
    return d_x, d_a


def smooth_list(x, a):                # no item assignment: for tape mode, autograd and jax
    ys = [x[0]]
    for i in range(1, len(x)):
        ys.append(a * ys[i - 1] + (1 - a) * x[i])
    y = np.stack(ys)
    return np.sum(y * y)


def smooth_torch(x, a):
    ys = [x[0]]
    for i in range(1, len(x)):
        ys.append(a * ys[i - 1] + (1 - a) * x[i])
    y = torch.stack(ys)
    return torch.sum(y * y)


# 7. (weak) a while loop with a data-dependent exit: Newton's square root
def newton_sqrt(c):
    y = c
    while abs(y * y - c) > 1e-12 * c:
        y = 0.5 * (y + c / y)
    return y


def newton_sqrt_hand(c):              # forward mode through the same iterations
    y, d_y = c, 1.0
    while abs(y * y - c) > 1e-12 * c:
        y, d_y = 0.5 * (y + c / y), 0.5 * (d_y + 1 / y - c * d_y / (y * y))
    return (d_y,)


# The 50-line function for the compile-time measurement: a small residual
# model with layer norm and a softmax cross-entropy, all numpy ops.
def small_model(W1, b1, W2, b2, g, x, y):
    h = x @ W1 + b1
    mu = np.mean(h, axis=1, keepdims=True)
    hc = h - mu
    var = np.mean(hc * hc, axis=1, keepdims=True)
    hn = hc / np.sqrt(var + 1e-5)
    hn = hn * g
    a = np.tanh(hn)
    s = 1 / (1 + np.exp(-hn))
    h2 = a * s + 0.1 * hn
    r = h2 @ W1.T
    r = r + x
    r2 = r * r
    r = r / np.sqrt(np.mean(r2, axis=1, keepdims=True) + 1e-5)
    z = r @ W1 + b1
    z = np.maximum(z, 0.0) + 0.01 * np.minimum(z, 0.0)
    logits = z @ W2 + b2
    m = np.max(logits, axis=1, keepdims=True)
    sh = logits - m
    ex = np.exp(sh)
    den = np.sum(ex, axis=1, keepdims=True)
    log_p = sh - np.log(den)
    ce = -np.sum(y * log_p, axis=1)
    loss = np.mean(ce)
    p = ex / den
    ent = -np.sum(p * log_p, axis=1)
    loss = loss - 0.01 * np.mean(ent)
    w_pen = np.sum(W1 * W1) + np.sum(W2 * W2)
    loss = loss + 1e-4 * w_pen
    b_pen = np.sum(np.abs(b1)) + np.sum(np.abs(b2))
    loss = loss + 1e-5 * b_pen
    g_pen = np.sum((g - 1.0) ** 2)
    loss = loss + 1e-3 * g_pen
    act = np.mean(np.abs(a), axis=0)
    sparsity = np.sum(act * np.log(act + 1e-8))
    loss = loss + 1e-4 * sparsity
    cos = np.sum(h * r, axis=1) / (np.sqrt(np.sum(h * h, axis=1)) * np.sqrt(np.sum(r * r, axis=1)) + 1e-8)
    loss = loss + 0.001 * np.mean(1.0 - cos)
    q = np.clip(p, 1e-6, 1.0 - 1e-6)
    brier = np.mean(np.sum((q - y) ** 2, axis=1))
    loss = loss + 0.1 * brier
    hinge = np.maximum(0.0, 1.0 - np.sum(y * logits, axis=1) + np.max(logits - 1e9 * y, axis=1))
    loss = loss + 0.05 * np.mean(hinge)
    center = np.mean(z, axis=0)
    loss = loss + 1e-4 * np.sum(center * center)
    spread = np.std(logits, axis=1)
    loss = loss + 1e-4 * np.mean(spread)
    tail = np.sum(np.exp(-np.abs(hn)) * 1e-3)
    loss = loss + tail / x.shape[0]
    return loss


def _rng():
    return np.random.default_rng(0)


def setup_bce(quick):
    return (1.0, 0.0, 6.7, 0.0)


def setup_mean_square(quick):
    return (_rng().normal(size=1_000 if quick else 1_000_000),)


def setup_mlp(quick):
    n, d, k, c = (4, 8, 8, 3) if quick else (64, 256, 256, 10)
    r = _rng()
    x = r.normal(size=(n, d))
    y = np.eye(c)[r.integers(0, c, size=n)]
    return (r.normal(size=(d, k)) / np.sqrt(d), 0.1 * r.normal(size=k),
            r.normal(size=(k, c)) / np.sqrt(k), 0.1 * r.normal(size=c), x, y)


def setup_rnn(quick):
    return (0.7, 0.4, _rng().normal(size=10 if quick else 100))


def setup_logistic(quick):
    n, d, k = (8, 6, 4) if quick else (1024, 512, 256)
    r = _rng()
    return (r.normal(size=(d, k)) / np.sqrt(d), 0.1 * r.normal(size=k),
            r.normal(size=(n, d)), (r.random(size=(n, k)) < 0.5).astype(float))


def setup_smooth(quick):
    return (_rng().normal(size=10 if quick else 256), 0.9)


def setup_newton(quick):
    return (10.0 if quick else 1e6,)


class Workload:
    def __init__(self, name, title, f, hand, wrt, setup, target=None, tape_f=None,
                 peer_f=None, torch_f=None, arrays=False, jax_jit=True, notes=None):
        self.name, self.title, self.f, self.hand, self.wrt = name, title, f, hand, wrt
        self.setup, self.target, self.arrays, self.jax_jit = setup, target, arrays, jax_jit
        self.notes = notes or {}             # method -> what it runs instead of f
        self.tape_f = tape_f or f            # what tape mode runs
        self.peer_f = peer_f or self.tape_f  # what autograd and jax run, with np rebound
        self.torch_f = torch_f


WORKLOADS = [
    Workload("bce_scalar", "scalar BCE, `math` (demo.py's logistic neuron)", bce_loss,
             bce_loss_hand, ("w", "b"), setup_bce, target=2.0, tape_f=bce_loss_np,
             torch_f=bce_loss_torch, notes=dict.fromkeys(("tape", "autograd", "jax"),
                                                  "runs bce_loss_np (np.exp, np.clip)")),
    Workload("mean_square", "mean(x**2), x of 1e6", mean_square, mean_square_hand, ("x",),
             setup_mean_square, target=1.1, torch_f=mean_square_torch, arrays=True),
    Workload("mlp", "MLP 64x256 @ 256x256, tanh, @ 256x10, softmax CE", mlp_loss, mlp_loss_hand,
             ("W1", "b1", "W2", "b2"), setup_mlp, target=1.05, torch_f=mlp_loss_torch, arrays=True),
    Workload("rnn_scalar", "RNN h = tanh(a*h + b*x[t]), 100 steps, `math`", rnn, rnn_hand,
             ("a", "b"), setup_rnn, target=2.0, tape_f=rnn_np, torch_f=rnn_torch,
             notes=dict.fromkeys(("tape", "autograd", "jax"), "runs rnn_np (np.tanh)")),
    Workload("logistic_layer", "logistic layer 1024x512 @ 512x256, BCE with logits",
             logistic_layer, logistic_layer_hand, ("W", "b"), setup_logistic, target=1.05,
             torch_f=logistic_layer_torch, arrays=True),
    Workload("fill_loop", "(weak) y[i] = a*y[i-1] + (1-a)*x[i], 256 elements, sum(y*y)", smooth,
             smooth_hand, ("x", "a"), setup_smooth, tape_f=smooth_list, torch_f=smooth_torch,
             arrays=True, notes=dict.fromkeys(("tape", "autograd", "jax", "torch"),
                                              "builds a list and stacks it (no item assignment)")),
    Workload("while_newton", "(weak) while loop: Newton sqrt(1e6) to 1e-12", newton_sqrt,
             newton_sqrt_hand, ("c",), setup_newton, torch_f=newton_sqrt, jax_jit=False,
             notes={"jax": "jax.grad, not jitted: a data-dependent while loop cannot be jitted "
                           "and reverse-differentiated"}),
]


# ---------------------------------------------------------------------------
# Peers
# ---------------------------------------------------------------------------

def warm_allocator():
    """Free one 31 MiB block first. glibc then raises its mmap threshold to 31 MiB and its trim
    threshold to 62 MiB (it does so the first time a process frees a large block), so that the
    temporaries of every method come from memory the process keeps, instead of fresh pages the
    kernel maps and zeroes on every call. Without it, which method pays page faults depends on
    what the process freed before (see docs/benchmarks.md); --cold-malloc skips this."""
    block = np.ones(31 * 2**20 // 8)
    del block


def _import_peers():
    peers = {}
    try:
        import autograd
        import autograd.numpy as anp
        peers["autograd"] = (autograd, anp)
    except ImportError:
        pass
    try:
        global torch
        import torch
        if THREADS != "0":
            torch.set_num_threads(int(THREADS))
        peers["torch"] = torch
    except ImportError:
        pass
    try:
        import jax
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
        peers["jax"] = (jax, jnp)
    except ImportError:
        pass
    return peers


def rebind(fn, **names):
    """`fn` and the module's other functions, reading `names` instead of their globals."""
    module = fn.__globals__
    g = dict(module)
    g.update(names)
    for key, value in module.items():
        if isinstance(value, types.FunctionType) and value.__globals__ is module:
            g[key] = types.FunctionType(value.__code__, g, value.__name__, value.__defaults__,
                                        value.__closure__)
    return g[fn.__name__]


def _index(w, name):
    return w.f.__code__.co_varnames.index(name)


def make_methods(w, args, peers):
    """{method: callable returning a tuple of gradients (numpy)}, or a string saying why not."""
    idx = [_index(w, name) for name in w.wrt]
    methods = {}
    methods["forward"] = (lambda: w.f(*args)), None
    methods["hand"] = (lambda: w.hand(*args)), tuple

    df = srcgrad.grad(w.f, wrt=w.wrt)
    df(*args)  # compile
    methods["srcgrad"] = (lambda: df(*args)), tuple
    generated = df.last.function
    methods["srcgrad.fn"] = (lambda: generated(*args)), lambda out: tuple(out) if isinstance(out, tuple) else (out,)

    leaves = {i: tape.tensor(args[i], requires_grad=True) for i in idx}
    targs = [leaves.get(i, a) for i, a in enumerate(args)]

    def tape_grad():
        for t in leaves.values():
            t.grad = None
        w.tape_f(*targs).backward()
        return [leaves[i].grad for i in idx]
    methods["tape"] = tape_grad, lambda out: tuple(g.data for g in out)

    if "autograd" in peers:
        autograd, anp = peers["autograd"]
        gf = autograd.grad(rebind(w.peer_f, np=anp), argnum=tuple(idx))
        methods["autograd"] = (lambda: gf(*args)), tuple
    if "torch" in peers:
        if w.torch_f is None:
            methods["torch"] = "no torch version"
        else:
            tl = {i: torch.tensor(args[i], dtype=torch.float64, requires_grad=True) for i in idx}
            tx = [tl[i] if i in tl else torch.from_numpy(a) if isinstance(a, np.ndarray) else a
                  for i, a in enumerate(args)]

            def torch_grad():
                for t in tl.values():
                    t.grad = None
                w.torch_f(*tx).backward()
                return [tl[i].grad for i in idx]
            methods["torch"] = torch_grad, lambda out: tuple(g.numpy() for g in out)
    if "jax" in peers:
        jax, jnp = peers["jax"]
        g = jax.grad(rebind(w.peer_f, np=jnp), argnums=tuple(idx))
        jf = jax.jit(g) if w.jax_jit else g
        jargs = [jnp.asarray(a, dtype=jnp.float64) for a in args]

        def jax_grad():
            return jax.block_until_ready(jf(*jargs))
        methods["jax"] = jax_grad, lambda out: tuple(np.asarray(o) for o in out)
    return methods


# ---------------------------------------------------------------------------
# Checking and timing
# ---------------------------------------------------------------------------

def agrees(got, want):
    """(ok, worst relative difference) of two tuples of gradients."""
    if len(got) != len(want):
        return False, math.inf
    worst = 0.0
    for g, h in zip(got, want):
        g, h = np.asarray(g, dtype=float), np.asarray(h, dtype=float)
        if g.shape != h.shape:
            return False, math.inf
        scale = max(float(np.max(np.abs(h))) if h.size else 0.0, 1e-300)
        err = np.abs(g - h) / (np.abs(h) + 1e-3 * scale)
        worst = max(worst, float(np.max(err)) if err.size else 0.0)
    return worst <= RTOL, worst


def best_time(fn, quick, repeat):
    """Seconds per call: timeit's auto-sized loop count, best of `repeat` repeats."""
    timer = timeit.Timer(fn)
    if quick:
        number = 1
        while True:
            t = timer.timeit(number)
            if t >= 0.002 or number >= 64:
                return t / number
            number *= 4
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=repeat, number=number)) / number


def time_all(fns, quick, repeat):
    """Seconds per call of each of `fns`, the repeats taken in turns (method after method), so
    that a slow spell of the machine falls on every method alike; the best repeat is kept."""
    if quick:
        return {m: best_time(fn, True, 1) for m, fn in fns.items()}
    timers = {m: timeit.Timer(fn) for m, fn in fns.items()}
    # loops of about 0.05 s (a quarter of timeit's autorange) and four times as many repeats:
    # the same total time, more chances to catch the machine quiet
    numbers = {m: max(1, t.autorange()[0] // 4) for m, t in timers.items()}
    best = dict.fromkeys(fns, math.inf)
    for _ in range(4 * repeat):
        for m, t in timers.items():
            best[m] = min(best[m], t.timeit(numbers[m]) / numbers[m])
    return best


def page_faults(fn, calls=20):
    """Minor page faults per call: fresh memory the kernel had to map (and zero) for `fn`."""
    import resource
    fn()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(calls):
        fn()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / calls


def peak_memory(fn):
    fn()  # warm
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak


def run_workload(w, peers, quick, repeat, memory):
    args = w.setup(quick)
    methods = make_methods(w, args, peers)
    want = tuple(methods["hand"][0]())
    rows, timed = {}, {}
    for method in METHODS:
        if method not in methods:
            continue
        entry = methods[method]
        row = rows[method] = {"us": None, "note": "", "err": None}
        if isinstance(entry, str):
            row["note"] = entry
            continue
        fn, convert = entry
        try:
            out = fn()
            if convert is not None:
                ok, err = agrees(convert(out), want)
                row["err"] = err
                if not ok:
                    row["note"] = f"DISAGREES with hand (max rel diff {err:.2g}): not timed"
                    continue
            timed[method] = fn
        except Exception as exc:  # noqa: BLE001 -- a peer that cannot run this workload
            row["note"] = f"fails: {type(exc).__name__}: {str(exc).splitlines()[0][:80]}"
    for method, seconds in time_all(timed, quick, repeat).items():
        rows[method]["us"] = 1e6 * seconds
    for m, note in w.notes.items():
        if m in rows and not rows[m]["note"]:
            rows[m]["note"] = note
    mem = None
    if memory and w.arrays:
        mem = {m: peak_memory(methods[m][0]) for m in ("hand", "srcgrad", "tape")}
        mem.update({f"{m} faults": page_faults(methods[m][0], 3 if quick else 20)
                    for m in ("hand", "srcgrad", "tape")})
    return rows, mem


# ---------------------------------------------------------------------------
# Compile time, import time, machine
# ---------------------------------------------------------------------------

def small_model_args(quick):
    n, d, k, c = (4, 6, 6, 3) if quick else (32, 64, 64, 10)
    r = _rng()
    return (r.normal(size=(d, k)) / np.sqrt(d), 0.1 * r.normal(size=k), r.normal(size=(k, c)) / np.sqrt(k),
            0.1 * r.normal(size=c), 1 + 0.1 * r.normal(size=k), r.normal(size=(n, d)),
            np.eye(c)[r.integers(0, c, size=n)])


def compile_time(quick):
    """The first call of srcgrad.grad(small_model): parse, transform and compile (disk cache off);
    and the same with srcgrad's disk cache, once storing and then loading (in a temporary folder)."""
    args = small_model_args(quick)
    wrt = ("W1", "b1", "W2", "b2", "g")
    n = 1 if quick else 5

    def first_call():
        fresh = types.FunctionType(small_model.__code__, small_model.__globals__, "small_model")
        started = time.perf_counter()
        df = srcgrad.grad(fresh, wrt=wrt)
        df(*args)
        return time.perf_counter() - started, df

    saved = {k: os.environ.get(k) for k in ("SRCGRAD_CACHE", "SRCGRAD_CACHE_DIR")}
    try:
        os.environ["SRCGRAD_CACHE"] = "0"
        cold = [first_call()[0] for _ in range(n)]
        with tempfile.TemporaryDirectory() as folder:
            os.environ["SRCGRAD_CACHE"] = "1"
            os.environ["SRCGRAD_CACHE_DIR"] = folder
            store, _ = first_call()
            loads = [first_call() for _ in range(n)]
            from_disk = getattr(loads[-1][1].last, "from_disk", None)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    df = loads[-1][1]
    call = best_time(lambda: df(*args), quick, 3)
    forward = best_time(lambda: small_model(*args), quick, 3)
    lines = len(textwrap.dedent(__import__("inspect").getsource(small_model)).splitlines())
    generated = len(srcgrad.source(df).splitlines())
    return {"first": cold[0], "best": min(cold), "store": store, "load": min(t for t, _ in loads),
            "from_disk": from_disk, "call": call, "forward": forward, "lines": lines,
            "generated_lines": generated, "n": n}


def import_time(quick):
    code = "import time; t = time.perf_counter(); import {}; print(time.perf_counter() - t)"
    out = {}
    for module in ("numpy", "srcgrad"):
        best = math.inf
        for _ in range(1 if quick else 5):
            res = subprocess.run([sys.executable, "-c", code.format(module)], capture_output=True,
                                 text=True, cwd=ROOT, check=True)
            best = min(best, float(res.stdout.strip()))
        out[module] = best
    out["n"] = 1 if quick else 5
    return out


def machine(peers):
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            found = re.search(r"model name\s*:\s*(.*)", f.read())
            cpu = found.group(1).strip() if found else cpu
    except OSError:
        pass
    blas = "?"
    try:
        info = np.show_config(mode="dicts")
        blas = info["Build Dependencies"]["blas"]["name"]
    except Exception:  # noqa: BLE001 -- numpy < 1.25
        pass
    commit = ""
    try:
        res = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10)
        commit = f" at {res.stdout.strip()}" if res.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        pass
    versions = [f"numpy {np.__version__} ({blas})", f"srcgrad {srcgrad.__version__}{commit}"]
    if "autograd" in peers:
        versions.append(f"autograd {_version('autograd')}")
    if "torch" in peers:
        versions.append(f"torch {torch.__version__} (threads={torch.get_num_threads()})")
    if "jax" in peers:
        versions.append(f"jax {peers['jax'][0].__version__}")
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"load": "?" if load is None else f"{load[0]:.2f}",
            "platform": platform.platform(), "python": platform.python_version(), "cpu": cpu,
            "cores": os.cpu_count(), "versions": ", ".join(versions),
            "threads": "each library's default" if THREADS == "0" else THREADS}


def _version(name):
    from importlib.metadata import version
    try:
        return version(name)
    except Exception:  # noqa: BLE001
        return "?"


# ---------------------------------------------------------------------------
# Reports
# ---------------------------------------------------------------------------

def fmt_us(us):
    if us is None:
        return "n/a"
    return f"{us:,.0f}" if us >= 100 else f"{us:.3g}"


def ratio(a, b):
    return None if a is None or b is None else a / b


def fmt_ratio(r):
    return "" if r is None else f"{r:.2f}×"


def table_rows(results):
    rows = []
    for w, (res, _) in results:
        hand, fwd = res["hand"]["us"], res["forward"]["us"]
        for m in METHODS:
            if m not in res:
                continue
            r = res[m]
            rows.append([w.name, m, fmt_us(r["us"]),
                         "" if m in ("hand",) else fmt_ratio(ratio(r["us"], hand)),
                         "" if m == "forward" else fmt_ratio(ratio(r["us"], fwd)), r["note"]])
    return rows


def target_rows(results):
    rows = []
    for w, (res, _) in results:
        r = ratio(res["srcgrad"]["us"], res["hand"]["us"])
        r_fn = ratio(res["srcgrad.fn"]["us"], res["hand"]["us"])
        if w.target is None:
            verdict = "(no target)"
        elif r is None:
            verdict = "n/a"
        else:
            verdict = "met" if r <= w.target else "MISSED"
        rows.append([w.name, w.title, "" if w.target is None else f"≤ {w.target:g}×",
                     fmt_ratio(r), fmt_ratio(r_fn), verdict])
    return rows


def memory_rows(results):
    rows = []
    for w, (_, mem) in results:
        if not mem:
            continue
        hand = mem["hand"]
        rows.append([w.name, f"{hand / 2**20:.3g}", f"{mem['srcgrad'] / 2**20:.3g}",
                     fmt_ratio(mem["srcgrad"] / hand), f"{mem['tape'] / 2**20:.3g}",
                     fmt_ratio(mem["tape"] / hand), f"{mem['hand faults']:.0f}",
                     f"{mem['srcgrad faults']:.0f}", f"{mem['tape faults']:.0f}"])
    return rows


MAIN_HEAD = ["workload", "method", "µs/call", "× hand", "× forward", "note"]
TARGET_HEAD = ["workload", "what", "target", "srcgrad × hand", "srcgrad.fn × hand", "verdict"]
MEM_HEAD = ["workload", "hand MiB", "srcgrad MiB", "srcgrad × hand", "tape MiB", "tape × hand",
            "hand faults/call", "srcgrad faults/call", "tape faults/call"]


def text_table(head, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = lambda r: "  ".join(str(x).ljust(n) for x, n in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(head), line(["-" * n for n in widths])] + [line(r) for r in rows])


def md_table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "|".join(" --- " for _ in head) + "|"]
    out += ["| " + " | ".join(str(x).replace("|", "\\|") for x in r) + " |" for r in rows]
    return "\n".join(out)


def extras_lines(info, compiled, imports):
    lines = []
    if compiled:
        lines.append(f"compile time of a {compiled['lines']}-line function (small_model, "
                     f"{compiled['generated_lines']} generated lines), grad(f) + first call, disk "
                     f"cache off: first {compiled['first'] * 1e3:.1f} ms, best of {compiled['n']} fresh copies "
                     f"{compiled['best'] * 1e3:.1f} ms; then {fmt_us(compiled['call'] * 1e6)} µs per "
                     f"gradient call ({compiled['call'] / compiled['forward']:.2f}× its forward of "
                     f"{fmt_us(compiled['forward'] * 1e6)} µs)")
        if compiled["from_disk"] is None:
            lines.append("this srcgrad has no disk cache")
        else:
            lines.append(f"with srcgrad's disk cache: compile + store {compiled['store'] * 1e3:.1f} ms, "
                         f"then a fresh copy of the function loads it back in "
                         f"{compiled['load'] * 1e3:.1f} ms (best of {compiled['n']}; from disk: {compiled['from_disk']})")
    if imports:
        lines.append(f"`import srcgrad` in a fresh interpreter: {imports['srcgrad'] * 1e3:.0f} ms "
                     f"(best of {imports['n']}), of which `import numpy` alone takes {imports['numpy'] * 1e3:.0f} ms")
    return lines


def report_text(info, results, compiled, imports):
    out = [f"machine: {info['platform']}, Python {info['python']}, {info['cpu']}, {info['cores']} cores, "
           f"threads per library: {info['threads']}",
           f"versions: {info['versions']}", f"allocator: {info['malloc']}",
           f"load average (1 min) at start: {info['load']}, at end: {info['load_end']}", "",
           text_table(MAIN_HEAD, table_rows(results)), "",
           text_table(TARGET_HEAD, target_rows(results))]
    mem = memory_rows(results)
    if mem:
        out += ["", "peak memory of one gradient call (tracemalloc) and minor page faults per call "
                "(getrusage):", text_table(MEM_HEAD, mem)]
    out += [""] + extras_lines(info, compiled, imports)
    return "\n".join(out)


def report_markdown(info, results, compiled, imports, args):
    cmd = "python benchmarks/run.py" + "".join(
        f" {flag}" for flag in (["--quick"] if args.quick else []) + ([f"--only {args.only}"] if args.only else []))
    sizes = " Quick sizes: far smaller than the titles say." if args.quick else ""
    out = [f"Generated by `{cmd}` on {time.strftime('%Y-%m-%d')}.{sizes}", "",
           f"- machine: {info['platform']}, Python {info['python']}", f"- CPU: {info['cpu']}, {info['cores']} cores; "
           f"threads per library (BLAS, torch, XLA): {info['threads']}",
           f"- {info['versions']}", f"- allocator: {info['malloc']}",
           f"- load average (1 min) at start: {info['load']}, at end: {info['load_end']} "
           f"(other processes on the machine make times noisy; ratios come from interleaved runs)",
           "", "### Targets (srcgrad source mode vs the hand-written gradient)", "",
           md_table(TARGET_HEAD, target_rows(results)), "",
           "### Every method (µs per gradient call; × hand and × forward are ratios of times)", "",
           md_table(MAIN_HEAD, table_rows(results))]
    mem = memory_rows(results)
    if mem:
        out += ["", "### Peak memory of one gradient call (tracemalloc, inputs excluded) and minor page "
                "faults per call (getrusage: fresh pages the kernel mapped and zeroed)", "",
                md_table(MEM_HEAD, mem)]
    extra = extras_lines(info, compiled, imports)
    if extra:
        out += ["", "### Compile and import time", ""] + [f"- {line}" for line in extra]
    return "\n".join(out) + "\n"


def write_markdown(path, text):
    """Replace what lies between the marker lines in `path`; a file without them is written whole."""
    old = open(path).read() if os.path.exists(path) else ""
    lines = old.splitlines(keepends=True)
    stripped = [line.strip() for line in lines]
    if BEGIN in stripped and END in stripped[stripped.index(BEGIN):]:
        begin = stripped.index(BEGIN)
        end = stripped.index(END, begin)
        text = "".join(lines[:begin + 1]) + text + "".join(lines[end:])
    else:
        text = f"# srcgrad benchmarks\n\n{BEGIN}\n{text}{END}\n"
    with open(path, "w") as f:
        f.write(text)


def plot(path, results):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    methods = [m for m in METHODS if m != "srcgrad.fn"]
    colors = {"forward": "#bbbbbb", "hand": "#444444", "srcgrad": "#d62728", "tape": "#ff9896",
              "autograd": "#1f77b4", "torch": "#ff7f0e", "jax": "#2ca02c"}
    fig, ax = plt.subplots(figsize=(13, 5.5))
    width = 0.8 / len(methods)
    for j, m in enumerate(methods):
        xs, ys = [], []
        for i, (w, (res, _)) in enumerate(results):
            if m in res and res[m]["us"] is not None:
                xs.append(i + (j - (len(methods) - 1) / 2) * width)
                ys.append(res[m]["us"])
        ax.bar(xs, ys, width, label=m, color=colors[m])
    ax.set_yscale("log")
    ax.set_ylabel("µs per call (log scale, lower is better)")
    ax.set_xticks(range(len(results)))
    ax.set_xticklabels([w.name for w, _ in results], rotation=15)
    ax.legend(ncol=len(methods), fontsize=9, loc="upper left")
    ax.grid(axis="y", which="major", alpha=0.3)
    ax.set_title("gradient call time by workload (forward = the plain function)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# ---------------------------------------------------------------------------
# Profiling: where the time of a srcgrad call goes
# ---------------------------------------------------------------------------

def statement_times(compiled, args, number):
    """[(depth, seconds per call, text)] for every statement of the generated function, loop and
    branch bodies included (a compound statement's time includes its body's). Each statement is
    timed with perf_counter around it and summed per call; the median over `number` calls is
    kept, less the timing's own cost (calibrated on `pass`) times how often it ran."""
    import ast
    fn = compiled.function
    tree = ast.parse(compiled.source)
    fdef = tree.body[0]
    found = []          # (depth, text, indices of all statements nested inside)

    def instrument(stmt, i):
        start = ast.parse(f"__t{i} = __pc()").body
        stop = ast.parse(f"__acc[{i}] += __pc() - __t{i}\n__cnt[{i}] += 1").body
        if isinstance(stmt, ast.Return):
            return start + [ast.Assign([ast.Name("__ret", ast.Store())], stmt.value)] + stop + \
                [ast.Return(ast.Name("__ret", ast.Load()))]
        return start + [stmt] + stop

    def timed(stmts, depth):
        out = []
        for stmt in stmts:
            if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
                continue  # a docstring
            i = len(found)
            found.append([depth, ast.unparse(stmt).splitlines()[0][:90], None])
            for field in ("body", "orelse"):
                if isinstance(stmt, (ast.For, ast.While, ast.If)) and getattr(stmt, field):
                    setattr(stmt, field, timed(getattr(stmt, field), depth + 1))
            found[i][2] = range(i + 1, len(found))
            out += instrument(stmt, i)
        return out

    fdef.body = timed(fdef.body, 0)
    ast.fix_missing_locations(tree)
    ns = dict(fn.__globals__)
    for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
        ns[name] = cell.cell_contents
    acc, cnt = [0.0] * len(found), [0] * len(found)
    ns.update(__pc=time.perf_counter, __acc=acc, __cnt=cnt)
    exec(compile(tree, "<profiled>", "exec"), ns)
    instrumented = ns[fdef.name]
    instrumented(*args)
    samples = [[] for _ in found]
    for _ in range(number):
        acc[:] = [0.0] * len(found)
        cnt[:] = [0] * len(found)
        instrumented(*args)
        for i, a in enumerate(acc):
            samples[i].append(a)
    counts = list(cnt)

    # calibration: what a timed `pass` costs inside its own timer (own) and seen from outside (whole)
    cal = ast.parse("def __cal(__n):\n    for _ in range(__n):\n        pass\n")
    cal.body[0].body[0].body = instrument(ast.Pass(), 0)
    ast.fix_missing_locations(cal)
    cns = {"__pc": time.perf_counter, "__acc": [0.0], "__cnt": [0]}
    exec(compile(cal, "<calibration>", "exec"), cns)
    plain = {}
    exec("def __plain(__n):\n    for _ in range(__n):\n        pass\n", plain)
    n = 5000
    own, whole = [], []
    for _ in range(31):
        cns["__acc"][0] = 0.0
        t0 = time.perf_counter()
        cns["__cal"](n)
        t1 = time.perf_counter()
        plain["__plain"](n)
        t2 = time.perf_counter()
        own.append(cns["__acc"][0] / n)
        whole.append(((t1 - t0) - (t2 - t1)) / n)
    own, whole = float(np.median(own)), float(np.median(whole))
    out = []
    for i, (depth, text, inner) in enumerate(found):
        t = float(np.median(samples[i])) - counts[i] * own - sum(counts[j] for j in inner) * whole
        out.append((depth, max(t, 0.0), text, counts[i]))
    return out


def profile(w, quick):
    args = w.setup(quick)
    df = srcgrad.grad(w.f, wrt=w.wrt)
    df(*args)
    compiled = df.last
    t = time_all({"call": lambda: df(*args), "fn": lambda: compiled.function(*args),
                  "hand": lambda: w.hand(*args), "forward": lambda: w.f(*args)}, quick, 1 if quick else 9)
    t_call, t_fn, t_hand, t_fwd = t["call"], t["fn"], t["hand"], t["forward"]
    print(f"== {w.name}: {w.title}")
    print(f"forward {t_fwd * 1e6:.2f} µs, hand {t_hand * 1e6:.2f} µs, df(...) {t_call * 1e6:.2f} µs, "
          f"df.last.function(...) {t_fn * 1e6:.2f} µs: the wrapper adds {(t_call - t_fn) * 1e6:.2f} µs; "
          f"generated function / hand = {t_fn / t_hand:.2f}")
    print(f"minor page faults per call: df(...) {page_faults(lambda: df(*args)):.0f}, "
          f"hand {page_faults(lambda: w.hand(*args)):.0f}, forward {page_faults(lambda: w.f(*args)):.0f}")
    number = max(5, min(1000, int(0.5 / max(t_fn, 1e-7))))
    parts = statement_times(compiled, args, number)
    total = sum(p for depth, p, _, _ in parts if depth == 0)
    print(f"each statement of the generated function, median of {number} calls, timer cost removed "
          f"(top-level total {total * 1e6:.2f} µs); indented lines are inside the loop above them:")
    for depth, p, text, count in parts:
        runs = f"{count}×" if count != 1 else ""
        print(f"  {p * 1e6:10.2f} µs {100 * p / total:5.1f}% {runs:>6}  {'    ' * depth}{text}")
    import inspect
    hand = types.SimpleNamespace(function=w.hand, source=textwrap.dedent(inspect.getsource(w.hand)))
    parts = statement_times(hand, args, max(5, min(1000, int(0.5 / max(t_hand, 1e-7)))))
    total = sum(p for depth, p, _, _ in parts if depth == 0)
    print(f"the same for the hand-written gradient (top-level total {total * 1e6:.2f} µs):")
    for depth, p, text, count in parts:
        runs = f"{count}×" if count != 1 else ""
        print(f"  {p * 1e6:10.2f} µs {100 * p / total:5.1f}% {runs:>6}  {'    ' * depth}{text}")
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(number):
        df(*args)
    prof.disable()
    s = io.StringIO()
    pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(12)
    print(f"cProfile of {number} df(...) calls (tottime):")
    print("\n".join(line for line in s.getvalue().splitlines()[4:] if line.strip()))
    print("generated source:")
    print(compiled.source)


# ---------------------------------------------------------------------------

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes, one repetition (for tests)")
    p.add_argument("--only", help="run only these workloads (comma-separated names)")
    p.add_argument("--markdown", metavar="PATH", help="write the tables as markdown into PATH")
    p.add_argument("--plot", metavar="PATH", help="write a bar chart (matplotlib, log scale)")
    p.add_argument("--repeat", type=int, default=7, help="timing repeats (best is kept; default 7)")
    p.add_argument("--no-peers", action="store_true", help="skip autograd, torch and jax")
    p.add_argument("--threads", default="1",
                   help="threads for BLAS, torch and XLA (default 1: stable ratios; 0: each "
                        "library's default)")
    p.add_argument("--cold-malloc", action="store_true",
                   help="do not warm glibc's allocator first (see warm_allocator)")
    p.add_argument("--profile", action="store_true",
                   help="profile srcgrad's call on the selected workloads instead of benchmarking")
    args = p.parse_args(argv)

    chosen = WORKLOADS
    if args.only:
        names = args.only.split(",")
        unknown = [n for n in names if n not in {w.name for w in WORKLOADS}]
        if unknown:
            p.error(f"unknown workload(s) {unknown}; choose from {[w.name for w in WORKLOADS]}")
        chosen = [w for w in WORKLOADS if w.name in names]
    if "SRCGRAD_CACHE_DIR" not in os.environ:   # leave the user's disk cache alone
        folder = tempfile.mkdtemp(prefix="srcgrad-bench-cache-")
        os.environ["SRCGRAD_CACHE_DIR"] = folder
        import atexit
        atexit.register(shutil.rmtree, folder, True)
    if not args.cold_malloc:
        warm_allocator()
    if args.profile:
        for w in chosen:
            profile(w, args.quick)
        return 0

    peers = {} if args.no_peers else _import_peers()
    info = machine(peers)
    info["malloc"] = ("as the process left it (--cold-malloc)" if args.cold_malloc else
                      "warmed: one 31 MiB block freed first (glibc keeps up to 62 MiB)")
    repeat = 1 if args.quick else args.repeat
    results = []
    for w in chosen:
        results.append((w, run_workload(w, peers, args.quick, repeat, memory=True)))
        print(f"[{w.name} done]", file=sys.stderr, flush=True)
    compiled = None if args.only else compile_time(args.quick)
    imports = None if args.only else import_time(args.quick)
    info["load_end"] = machine(peers)["load"]
    print(report_text(info, results, compiled, imports))
    if args.markdown:
        write_markdown(args.markdown, report_markdown(info, results, compiled, imports, args))
    if args.plot:
        plot(args.plot, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
