"""The spelling corpus: one workload written the many ways people write it.

The same computation, spelled with literals or module constants, default
arguments or closures, `range(len(x))` or direct iteration over an array, a
list or a tuple, `zip`/`enumerate`/`reversed`, tuple state, a dict or an object
of parameters, `math.*` or `np.*`, builtin `sum`/`min`/`max`/`abs` or numpy's,
float32 arrays, should get a gradient from srcgrad about as fast as its best
spelling, and close to the one gradient written by hand for the workload.
This script measures how far each spelling is from both.

    python benchmarks/spellings.py                     # every workload (a few minutes)
    python benchmarks/spellings.py --quick             # small sizes, one repeat: correctness + table
    python benchmarks/spellings.py --only rnn,spring   # some workloads
    python benchmarks/spellings.py --markdown FILE     # also write the table as markdown
    python benchmarks/spellings.py --source rnn:iter_list   # the generated gradient of one spelling
    (also --repeat N; see --help)

For each spelling, `srcgrad.grad(f, wrt=...)` is called and its gradient is
compared with the hand-written one (relative 1e-6, float32 spellings 2e-3). A
refusal (any exception) is recorded as "refused: <first line>" and the run goes
on; a gradient that disagrees is recorded as WRONG and printed loudly. Before
anything is differentiated, every spelling's value is checked against the
workload's baseline spelling (so a spelling that is not the same function is a
bug in this file, and stops the run).

Timing follows benchmarks/run.py: BLAS held to one thread (environment
variables set before numpy is imported); per workload the hand gradient and,
for every spelling, srcgrad's public call, the generated function alone
(`df.last.function`, without the wrapper) and the plain forward function are
timed in interleaved turns, loops of about 25 ms, best of 4 * --repeat
repeats. Columns: "× hand" is the spelling's srcgrad call over the hand
gradient (float32 spellings: over the hand gradient run on float32 arrays);
"× best spelling" is over the fastest srcgrad spelling of the same workload
(and precision); "fn × hand" is the generated function alone over the hand
gradient; "× forward" is the srcgrad call over the spelling's own plain
function (a spelling whose forward is slow cannot have a fast gradient).

Importable: tests/test_spellings.py checks every (workload, spelling) pair
against KNOWN_REFUSALS (a refusal not listed there fails the test).
"""
import argparse
import math
import os
import statistics
import sys
import tempfile
import time
import timeit
import types

if __name__ == "__main__":  # before numpy starts its thread pool (as in benchmarks/run.py)
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = "1"

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, ROOT)

import srcgrad  # noqa: E402

RTOL = 1e-6            # gradients, float64 spellings
RTOL_F32 = 2e-3        # gradients, float32 spellings (against the float64 hand gradient)
VALUE_RTOL = 1e-9      # function values against the baseline spelling
VALUE_RTOL_F32 = 1e-4

# Spellings srcgrad refuses today ("workload:spelling"). A refusal that is not
# listed fails tests/test_spellings.py; an entry srcgrad now accepts is only
# reported (the summary lists it, to be dropped from here).
KNOWN_REFUSALS = {
    "pendulum:trajectory_list",
    "horner:polyval",
    "sum_squares:norm",
    "ridge:norm",
    "gauss_nll:gen_sum",
    "gauss_nll:listcomp_sum",
    "linefit:gen_sum",
    "linefit:listcomp_sum",
}


# ---------------------------------------------------------------------------
# The framework: a workload, its spellings, and how arguments are adapted
# ---------------------------------------------------------------------------

class Spelling:
    """One way of writing a workload's function.

    `adapt` turns the workload's arguments into this spelling's (a list instead
    of an array, a dict of parameters, ...); `grads` turns srcgrad's result
    back into a tuple in the workload's `wrt` order; `method` says that the first
    adapted argument is the object whose method `f` is (srcgrad then gets the
    bound method)."""

    def __init__(self, name, f, wrt=None, adapt=None, grads=None, method=False, float32=False):
        self.name, self.f, self.wrt = name, f, wrt
        self.adapt = adapt or (lambda args: args)
        self.grads = grads or as_tuple
        self.method, self.float32 = method, float32

    def bind(self, args):
        """(the function handed to srcgrad.grad, the arguments it is called with)."""
        call_args = tuple(self.adapt(tuple(args)))
        if self.method:
            return types.MethodType(self.f, call_args[0]), call_args[1:]
        return self.f, call_args


class Workload:
    """`make_args(quick)` returns the arguments of the baseline spelling (the
    first); `hand(*args)` returns the gradient with respect to `wrt` as a tuple."""

    def __init__(self, name, title, make_args, wrt, hand, spellings):
        self.name, self.title, self.make_args = name, title, make_args
        self.wrt, self.hand, self.spellings = wrt, hand, spellings
        names = [s.name for s in spellings]
        assert names[0] == "baseline" and len(set(names)) == len(names), names

    def spelling(self, name):
        for s in self.spellings:
            if s.name == name:
                return s
        raise KeyError(f"{self.name} has no spelling {name!r}; it has {[s.name for s in self.spellings]}")


def as_tuple(grads):
    return grads if isinstance(grads, tuple) else (grads,)


def replace(i, convert):
    """Adapt: argument i converted."""
    return lambda args: args[:i] + (convert(args[i]),) + args[i + 1:]


def to_list(i):
    return replace(i, lambda a: np.asarray(a).tolist())


def to_tuple(i):
    return replace(i, lambda a: tuple(np.asarray(a).tolist()))


def to_array(i):
    return replace(i, np.asarray)


def float32(args):
    """Adapt: every array argument as float32 (Python numbers stay as they are)."""
    return tuple(a.astype(np.float32) if isinstance(a, np.ndarray) else a for a in args)


def drop(*positions):
    """Adapt: the arguments at `positions` left out (the spelling has them built in)."""
    return lambda args: tuple(a for i, a in enumerate(args) if i not in positions)


def into_dict(keys):
    """Adapt: the first len(keys) arguments packed into a dict (first), the rest after it."""
    return lambda args: (dict(zip(keys, args)),) + args[len(keys):]


def from_dict(keys):
    """Grads: srcgrad's dict of gradients as a tuple in `keys` order."""
    return lambda grads: tuple(grads[k] for k in keys)


def into_object(cls, count):
    """Adapt: the first `count` arguments made into cls(*them) (first), the rest after it."""
    return lambda args: (cls(*args[:count]),) + args[count:]


def _rng(seed=0):
    return np.random.default_rng(seed)


# ---------------------------------------------------------------------------
# 1. bce_scalar: a logistic neuron with a clamped binary cross-entropy, `math`
# ---------------------------------------------------------------------------

LO, HI = 1e-8, 1 - 1e-8


def bce_baseline(w, b, x, y):
    z = w * x + b
    y_pred = 1 / (1 + math.exp(-z))
    p = min(max(y_pred, 1e-8), 1 - 1e-8)
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def bce_module_consts(w, b, x, y):
    z = w * x + b
    y_pred = 1 / (1 + math.exp(-z))
    p = min(max(y_pred, LO), HI)
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def bce_default_args(w, b, x, y, lo=1e-8, hi=1 - 1e-8):
    z = w * x + b
    y_pred = 1 / (1 + math.exp(-z))
    p = min(max(y_pred, lo), hi)
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def make_bce(lo, hi):
    def bce_closure(w, b, x, y):
        z = w * x + b
        y_pred = 1 / (1 + math.exp(-z))
        p = min(max(y_pred, lo), hi)
        return -(y * math.log(p) + (1 - y) * math.log(1 - p))
    return bce_closure


bce_closure = make_bce(1e-8, 1 - 1e-8)


def sigmoid(z):
    return 1 / (1 + math.exp(-z))


def clamp(v, lo, hi):
    return min(max(v, lo), hi)


def bce_helpers(w, b, x, y):
    p = clamp(sigmoid(w * x + b), LO, HI)
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def bce_numpy(w, b, x, y):
    z = w * x + b
    y_pred = 1 / (1 + np.exp(-z))
    p = np.clip(y_pred, 1e-8, 1 - 1e-8)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def bce_np_minmax(w, b, x, y):
    z = w * x + b
    y_pred = 1 / (1 + math.exp(-z))
    p = np.minimum(np.maximum(y_pred, LO), HI)
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def bce_dict(params, x, y):
    z = params["w"] * x + params["b"]
    y_pred = 1 / (1 + math.exp(-z))
    p = min(max(y_pred, LO), HI)
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


class Neuron:
    def __init__(self, w, b):
        self.w, self.b = w, b

    def loss(self, x, y):
        z = self.w * x + self.b
        y_pred = 1 / (1 + math.exp(-z))
        p = min(max(y_pred, LO), HI)
        return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def bce_attrs(neuron, x, y):
    z = neuron.w * x + neuron.b
    y_pred = 1 / (1 + math.exp(-z))
    p = min(max(y_pred, LO), HI)
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def bce_hand(w, b, x, y):
    z = w * x + b
    y_pred = 1 / (1 + math.exp(-z))
    p = min(max(y_pred, 1e-8), 1 - 1e-8)
    d_p = (p - y) / (p * (1 - p))
    d_z = d_p * y_pred * (1 - y_pred) if 1e-8 < y_pred < 1 - 1e-8 else 0.0
    return d_z * x, d_z


def bce_args(quick):
    return (1.0, 0.0, 6.7, 0.0)


BCE = Workload("bce_scalar", "scalar BCE with a clamp min(max(p, LO), HI), `math`", bce_args,
               ("w", "b"), bce_hand, [
                   Spelling("baseline", bce_baseline),
                   Spelling("module_consts", bce_module_consts),
                   Spelling("default_args", bce_default_args),
                   Spelling("closure", bce_closure),
                   Spelling("helpers", bce_helpers),
                   Spelling("numpy", bce_numpy),
                   Spelling("np_minmax", bce_np_minmax),
                   Spelling("dict", bce_dict, wrt="params", adapt=into_dict(("w", "b")),
                            grads=from_dict(("w", "b"))),
                   Spelling("attrs", bce_attrs, wrt=("neuron.w", "neuron.b"),
                            adapt=into_object(Neuron, 2)),
                   Spelling("method", Neuron.loss, wrt=("self.w", "self.b"),
                            adapt=into_object(Neuron, 2), method=True),
               ])


# ---------------------------------------------------------------------------
# 2. rnn: h = tanh(a * h + b * x[t]) over a sequence
# ---------------------------------------------------------------------------

H0 = 0.0


def rnn_baseline(a, b, x):
    h = 0.0
    for t in range(len(x)):
        h = math.tanh(a * h + b * x[t])
    return h


def rnn_iterate(a, b, x):
    h = 0.0
    for xt in x:
        h = math.tanh(a * h + b * xt)
    return h


def rnn_enumerate(a, b, x):
    h = 0.0
    for t, xt in enumerate(x):
        h = math.tanh(a * h + b * xt)
    return h


def rnn_reversed(a, b, x_backwards):
    h = 0.0
    for xt in reversed(x_backwards):
        h = math.tanh(a * h + b * xt)
    return h


def rnn_while(a, b, x):
    h = 0.0
    t = 0
    while t < len(x):
        h = math.tanh(a * h + b * x[t])
        t += 1
    return h


def rnn_module_const(a, b, x):
    h = H0
    for t in range(len(x)):
        h = math.tanh(a * h + b * x[t])
    return h


def rnn_default_arg(a, b, x, h0=0.0):
    h = h0
    for t in range(len(x)):
        h = math.tanh(a * h + b * x[t])
    return h


def make_rnn(h0):
    def rnn_closure(a, b, x):
        h = h0
        for t in range(len(x)):
            h = math.tanh(a * h + b * x[t])
        return h
    return rnn_closure


rnn_closure = make_rnn(0.0)


def rnn_numpy(a, b, x):
    h = 0.0
    for t in range(len(x)):
        h = np.tanh(a * h + b * x[t])
    return h


def rnn_dict(params, x):
    h = 0.0
    for xt in x:
        h = math.tanh(params["a"] * h + params["b"] * xt)
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


def rnn_args(quick):
    return (0.7, 0.4, _rng().normal(size=10 if quick else 100))


RNN = Workload("rnn", "scalar RNN h = tanh(a*h + b*x[t]), 100 steps", rnn_args, ("a", "b"),
               rnn_hand, [
                   Spelling("baseline", rnn_baseline),
                   Spelling("index_list", rnn_baseline, adapt=to_list(2)),
                   Spelling("iter_array", rnn_iterate),
                   Spelling("iter_list", rnn_iterate, adapt=to_list(2)),
                   Spelling("iter_tuple", rnn_iterate, adapt=to_tuple(2)),
                   Spelling("enumerate", rnn_enumerate),
                   Spelling("reversed", rnn_reversed, adapt=replace(2, lambda x: x[::-1].copy())),
                   Spelling("while", rnn_while),
                   Spelling("module_const", rnn_module_const),
                   Spelling("default_arg", rnn_default_arg),
                   Spelling("closure", rnn_closure),
                   Spelling("np_tanh", rnn_numpy),
                   Spelling("dict", rnn_dict, wrt="params", adapt=into_dict(("a", "b")),
                            grads=from_dict(("a", "b"))),
               ])


# ---------------------------------------------------------------------------
# 3. spring: a damped spring, explicit Euler, loss = time integral of |x|
# ---------------------------------------------------------------------------

DT = 0.01
T_END = 1.0
STEPS = round(T_END / DT)


def spring_baseline(k, c, x0, v0):
    x = x0
    v = v0
    loss = 0.0
    for _ in range(100):
        a = -k * x - c * v
        x = x + 0.01 * v
        v = v + 0.01 * a
        loss = loss + 0.01 * abs(x)
    return loss


def spring_module_consts(k, c, x0, v0):
    x = x0
    v = v0
    loss = 0.0
    for _ in range(round(T_END / DT)):
        a = -k * x - c * v
        x = x + DT * v
        v = v + DT * a
        loss = loss + DT * abs(x)
    return loss


def spring_default_args(k, c, x0, v0, dt=0.01, steps=100):
    x = x0
    v = v0
    loss = 0.0
    for _ in range(steps):
        a = -k * x - c * v
        x = x + dt * v
        v = v + dt * a
        loss = loss + dt * abs(x)
    return loss


def make_spring(dt, steps):
    def spring_closure(k, c, x0, v0):
        x = x0
        v = v0
        loss = 0.0
        for _ in range(steps):
            a = -k * x - c * v
            x = x + dt * v
            v = v + dt * a
            loss = loss + dt * abs(x)
        return loss
    return spring_closure


spring_closure = make_spring(0.01, 100)


def spring_augmented(k, c, x0, v0):
    x, v = x0, v0
    loss = 0.0
    for _ in range(STEPS):
        a = -k * x - c * v
        x += DT * v
        v += DT * a
        loss += DT * abs(x)
    return loss


def euler_step(state, k, c, dt):
    x, v = state
    a = -k * x - c * v
    return x + dt * v, v + dt * a


def spring_tuple_state(k, c, x0, v0):
    state = (x0, v0)
    loss = 0.0
    for _ in range(STEPS):
        state = euler_step(state, k, c, DT)
        loss = loss + DT * abs(state[0])
    return loss


def spring_while_time(k, c, x0, v0):
    x = x0
    v = v0
    loss = 0.0
    t = 0.0
    while t < T_END - DT / 2:
        a = -k * x - c * v
        x = x + DT * v
        v = v + DT * a
        loss = loss + DT * abs(x)
        t += DT
    return loss


def spring_math_fabs(k, c, x0, v0):
    x = x0
    v = v0
    loss = 0.0
    for _ in range(STEPS):
        a = -k * x - c * v
        x = x + DT * v
        v = v + DT * a
        loss = loss + DT * math.fabs(x)
    return loss


def spring_np_abs(k, c, x0, v0):
    x = x0
    v = v0
    loss = 0.0
    for _ in range(STEPS):
        a = -k * x - c * v
        x = x + DT * v
        v = v + DT * a
        loss = loss + DT * np.abs(x)
    return loss


def spring_dict(params, x0, v0):
    x = x0
    v = v0
    loss = 0.0
    for _ in range(STEPS):
        a = -params["k"] * x - params["c"] * v
        x = x + DT * v
        v = v + DT * a
        loss = loss + DT * abs(x)
    return loss


def spring_hand(k, c, x0, v0):
    dt, steps = 0.01, 100
    xs, vs = [x0], [v0]
    x, v = x0, v0
    for _ in range(steps):
        a = -k * x - c * v
        x, v = x + dt * v, v + dt * a
        xs.append(x)
        vs.append(v)
    d_k = d_c = 0.0
    d_x = d_v = 0.0
    for t in range(steps - 1, -1, -1):
        d_x += dt if xs[t + 1] > 0 else -dt        # the loss term dt * |x[t+1]|
        d_a = dt * d_v
        d_k -= d_a * xs[t]
        d_c -= d_a * vs[t]
        d_x, d_v = d_x - k * d_a, dt * d_x + d_v - c * d_a
    return d_k, d_c


def spring_args(quick):
    return (4.0, 0.3, 1.0, 0.0)


SPRING = Workload("spring", "spring/mass, explicit Euler, DT=0.01 to T_END=1 (100 steps), sum DT*|x|",
                  spring_args, ("k", "c"), spring_hand, [
                      Spelling("baseline", spring_baseline),
                      Spelling("module_consts", spring_module_consts),
                      Spelling("default_args", spring_default_args),
                      Spelling("closure", spring_closure),
                      Spelling("augmented", spring_augmented),
                      Spelling("tuple_state", spring_tuple_state),
                      Spelling("while_time", spring_while_time),
                      Spelling("math_fabs", spring_math_fabs),
                      Spelling("np_abs", spring_np_abs),
                      Spelling("dict", spring_dict, wrt="params", adapt=into_dict(("k", "c")),
                               grads=from_dict(("k", "c"))),
                  ])


# ---------------------------------------------------------------------------
# 4. pendulum: theta'' = -G sin(theta) - damping * omega, explicit Euler,
#    tuple state (theta, omega); gradient with respect to the start and damping
# ---------------------------------------------------------------------------

G = 9.81
PENDULUM_STEPS = 200


def pendulum_baseline(theta0, omega0, damping):
    theta = theta0
    omega = omega0
    for _ in range(200):
        alpha = -9.81 * math.sin(theta) - damping * omega
        theta = theta + 0.01 * omega
        omega = omega + 0.01 * alpha
    return theta * theta + 0.1 * omega * omega


def pendulum_module_consts(theta0, omega0, damping):
    theta = theta0
    omega = omega0
    for _ in range(PENDULUM_STEPS):
        alpha = -G * math.sin(theta) - damping * omega
        theta = theta + DT * omega
        omega = omega + DT * alpha
    return theta * theta + 0.1 * omega * omega


def pendulum_default_args(theta0, omega0, damping, g=9.81, dt=0.01, steps=200):
    theta = theta0
    omega = omega0
    for _ in range(steps):
        alpha = -g * math.sin(theta) - damping * omega
        theta = theta + dt * omega
        omega = omega + dt * alpha
    return theta * theta + 0.1 * omega * omega


def make_pendulum(g, dt, steps):
    def pendulum_closure(theta0, omega0, damping):
        theta = theta0
        omega = omega0
        for _ in range(steps):
            alpha = -g * math.sin(theta) - damping * omega
            theta = theta + dt * omega
            omega = omega + dt * alpha
        return theta * theta + 0.1 * omega * omega
    return pendulum_closure


pendulum_closure = make_pendulum(9.81, 0.01, 200)


def pendulum_simultaneous(theta0, omega0, damping):
    theta, omega = theta0, omega0
    for _ in range(PENDULUM_STEPS):
        theta, omega = theta + DT * omega, omega + DT * (-G * math.sin(theta) - damping * omega)
    return theta * theta + 0.1 * omega * omega


def pendulum_step(state, damping, dt):
    theta, omega = state
    alpha = -G * math.sin(theta) - damping * omega
    return (theta + dt * omega, omega + dt * alpha)


def pendulum_tuple_state(theta0, omega0, damping):
    state = (theta0, omega0)
    for _ in range(PENDULUM_STEPS):
        state = pendulum_step(state, damping, DT)
    theta, omega = state
    return theta * theta + 0.1 * omega * omega


def pendulum_trajectory(theta0, omega0, damping):
    trajectory = [(theta0, omega0)]
    for _ in range(PENDULUM_STEPS):
        theta, omega = trajectory[-1]
        alpha = -G * math.sin(theta) - damping * omega
        trajectory.append((theta + DT * omega, omega + DT * alpha))
    theta, omega = trajectory[-1]
    return theta * theta + 0.1 * omega * omega


def pendulum_np_sin(theta0, omega0, damping):
    theta = theta0
    omega = omega0
    for _ in range(PENDULUM_STEPS):
        alpha = -G * np.sin(theta) - damping * omega
        theta = theta + DT * omega
        omega = omega + DT * alpha
    return theta * theta + 0.1 * omega * omega


def pendulum_dict(params):
    theta = params["theta0"]
    omega = params["omega0"]
    for _ in range(PENDULUM_STEPS):
        alpha = -G * math.sin(theta) - params["damping"] * omega
        theta = theta + DT * omega
        omega = omega + DT * alpha
    return theta * theta + 0.1 * omega * omega


class Pendulum:
    def __init__(self, damping):
        self.damping = damping


def pendulum_attrs(theta0, omega0, pend):
    theta = theta0
    omega = omega0
    for _ in range(PENDULUM_STEPS):
        alpha = -G * math.sin(theta) - pend.damping * omega
        theta = theta + DT * omega
        omega = omega + DT * alpha
    return theta * theta + 0.1 * omega * omega


def pendulum_hand(theta0, omega0, damping):
    g, dt, steps = 9.81, 0.01, 200
    thetas, omegas = [theta0], [omega0]
    theta, omega = theta0, omega0
    for _ in range(steps):
        alpha = -g * math.sin(theta) - damping * omega
        theta, omega = theta + dt * omega, omega + dt * alpha
        thetas.append(theta)
        omegas.append(omega)
    d_theta, d_omega, d_damping = 2 * theta, 0.2 * omega, 0.0
    for t in range(steps - 1, -1, -1):
        d_alpha = dt * d_omega
        d_damping -= d_alpha * omegas[t]
        d_theta, d_omega = (d_theta - d_alpha * g * math.cos(thetas[t]),
                            dt * d_theta + d_omega - d_alpha * damping)
    return d_theta, d_omega, d_damping


def pendulum_args(quick):
    return (1.0, 0.0, 0.2)


PENDULUM_KEYS = ("theta0", "omega0", "damping")
PENDULUM = Workload("pendulum", "damped pendulum, explicit Euler, 200 steps, state (theta, omega)",
                    pendulum_args, PENDULUM_KEYS, pendulum_hand, [
                        Spelling("baseline", pendulum_baseline),
                        Spelling("module_consts", pendulum_module_consts),
                        Spelling("default_args", pendulum_default_args),
                        Spelling("closure", pendulum_closure),
                        Spelling("simultaneous", pendulum_simultaneous),
                        Spelling("tuple_state", pendulum_tuple_state),
                        Spelling("trajectory_list", pendulum_trajectory),
                        Spelling("np_sin", pendulum_np_sin),
                        Spelling("dict", pendulum_dict, wrt="params", adapt=into_dict(PENDULUM_KEYS),
                                 grads=from_dict(PENDULUM_KEYS)),
                        Spelling("attrs", pendulum_attrs, wrt=("theta0", "omega0", "pend.damping"),
                                 adapt=lambda a: (a[0], a[1], Pendulum(a[2]))),
                    ])


# ---------------------------------------------------------------------------
# 5. mlp: 2-layer tanh MLP, batch 64, width 32, mean squared error
# ---------------------------------------------------------------------------

def mlp_baseline(W1, b1, W2, b2, x, y):
    h = np.tanh(x @ W1 + b1)
    out = h @ W2 + b2
    return np.mean((out - y) ** 2)


def dense(x, W, b):
    return x @ W + b


def mlp_helpers(W1, b1, W2, b2, x, y):
    h = np.tanh(dense(x, W1, b1))
    return np.mean((dense(h, W2, b2) - y) ** 2)


def mlp_np_dot(W1, b1, W2, b2, x, y):
    h = np.tanh(np.dot(x, W1) + b1)
    out = np.dot(h, W2) + b2
    return np.mean((out - y) ** 2)


def mlp_methods(W1, b1, W2, b2, x, y):
    h = np.tanh(x.dot(W1) + b1)
    r = h.dot(W2) + b2 - y
    return (r * r).sum() / r.size


def mlp_dict(params, x, y):
    h = np.tanh(x @ params["W1"] + params["b1"])
    out = h @ params["W2"] + params["b2"]
    return np.mean((out - y) ** 2)


class MLP:
    def __init__(self, W1, b1, W2, b2):
        self.W1, self.b1, self.W2, self.b2 = W1, b1, W2, b2

    def predict(self, x):
        return np.tanh(x @ self.W1 + self.b1) @ self.W2 + self.b2

    def loss(self, x, y):
        return np.mean((self.predict(x) - y) ** 2)


def mlp_attrs(model, x, y):
    h = np.tanh(x @ model.W1 + model.b1)
    out = h @ model.W2 + model.b2
    return np.mean((out - y) ** 2)


def mlp_hand(W1, b1, W2, b2, x, y):
    h = np.tanh(x @ W1 + b1)
    r = h @ W2 + b2 - y
    d_out = r * (2.0 / r.size)
    d_pre = (d_out @ W2.T) * (1 - h * h)
    return x.T @ d_pre, d_pre.sum(axis=0), h.T @ d_out, d_out.sum(axis=0)


def mlp_args(quick):
    n, d, k, c = (8, 4, 6, 2) if quick else (64, 16, 32, 4)
    r = _rng()
    return (r.normal(size=(d, k)) / np.sqrt(d), 0.1 * r.normal(size=k),
            r.normal(size=(k, c)) / np.sqrt(k), 0.1 * r.normal(size=c),
            r.normal(size=(n, d)), r.normal(size=(n, c)))


MLP_KEYS = ("W1", "b1", "W2", "b2")
MLP_WORKLOAD = Workload("mlp", "MLP 64x16 @ 16x32, tanh, @ 32x4, mean squared error", mlp_args,
                        MLP_KEYS, mlp_hand, [
                            Spelling("baseline", mlp_baseline),
                            Spelling("helpers", mlp_helpers),
                            Spelling("np_dot", mlp_np_dot),
                            Spelling("methods", mlp_methods),
                            Spelling("dict", mlp_dict, wrt="params", adapt=into_dict(MLP_KEYS),
                                     grads=from_dict(MLP_KEYS)),
                            Spelling("attrs", mlp_attrs, wrt=tuple("model." + k for k in MLP_KEYS),
                                     adapt=into_object(MLP, 4)),
                            Spelling("method", MLP.loss, wrt=tuple("self." + k for k in MLP_KEYS),
                                     adapt=into_object(MLP, 4), method=True),
                            Spelling("float32", mlp_baseline, adapt=float32, float32=True),
                        ])


# ---------------------------------------------------------------------------
# 6. logistic: logistic regression on arrays, clipped binary cross-entropy
# ---------------------------------------------------------------------------

EPS = 1e-8


def logistic_baseline(w, b, X, y):
    p = 1 / (1 + np.exp(-(X @ w + b)))
    p = np.clip(p, 1e-8, 1 - 1e-8)
    return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))


def logistic_module_consts(w, b, X, y):
    p = 1 / (1 + np.exp(-(X @ w + b)))
    p = np.clip(p, EPS, 1 - EPS)
    return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))


def logistic_default_args(w, b, X, y, eps=1e-8):
    p = 1 / (1 + np.exp(-(X @ w + b)))
    p = np.clip(p, eps, 1 - eps)
    return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))


def make_logistic(eps):
    def logistic_closure(w, b, X, y):
        p = 1 / (1 + np.exp(-(X @ w + b)))
        p = np.clip(p, eps, 1 - eps)
        return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    return logistic_closure


logistic_closure = make_logistic(1e-8)


def logistic_np_minmax(w, b, X, y):
    p = 1 / (1 + np.exp(-(X @ w + b)))
    p = np.minimum(np.maximum(p, LO), HI)
    return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))


def logistic_sum_len(w, b, X, y):
    p = 1 / (1 + np.exp(-(X @ w + b)))
    p = np.clip(p, EPS, 1 - EPS)
    return -np.sum(y * np.log(p) + (1 - y) * np.log(1 - p)) / len(y)


def logistic_builtin_sum(w, b, X, y):
    p = 1 / (1 + np.exp(-(X @ w + b)))
    p = np.clip(p, EPS, 1 - EPS)
    return -sum(y * np.log(p) + (1 - y) * np.log(1 - p)) / len(y)


def sigmoid_np(z):
    return 1 / (1 + np.exp(-z))


def logistic_helper(w, b, X, y):
    p = np.clip(sigmoid_np(X @ w + b), EPS, 1 - EPS)
    return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))


def logistic_dict(params, X, y):
    p = 1 / (1 + np.exp(-(X @ params["w"] + params["b"])))
    p = np.clip(p, EPS, 1 - EPS)
    return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))


class Linear:
    def __init__(self, w, b):
        self.w, self.b = w, b


def logistic_attrs(model, X, y):
    p = 1 / (1 + np.exp(-(X @ model.w + model.b)))
    p = np.clip(p, EPS, 1 - EPS)
    return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))


def logistic_hand(w, b, X, y):
    p = 1 / (1 + np.exp(-(X @ w + b)))
    inside = (p > 1e-8) & (p < 1 - 1e-8)        # where the clip passes p through
    d_z = np.where(inside, p - y, 0.0) / len(y)
    return X.T @ d_z, float(np.sum(d_z))


def logistic_args(quick):
    n, d = (20, 3) if quick else (2000, 20)
    r = _rng()
    X = r.normal(size=(n, d))
    y = (r.random(size=n) < 0.5).astype(float)
    return (0.3 * r.normal(size=d), 0.1, X, y)


LOGISTIC = Workload("logistic", "logistic regression, X 2000x20, np.clip'd BCE", logistic_args,
                    ("w", "b"), logistic_hand, [
                        Spelling("baseline", logistic_baseline),
                        Spelling("module_consts", logistic_module_consts),
                        Spelling("default_args", logistic_default_args),
                        Spelling("closure", logistic_closure),
                        Spelling("np_minmax", logistic_np_minmax),
                        Spelling("sum_len", logistic_sum_len),
                        Spelling("builtin_sum", logistic_builtin_sum),
                        Spelling("helper", logistic_helper),
                        Spelling("dict", logistic_dict, wrt="params", adapt=into_dict(("w", "b")),
                                 grads=from_dict(("w", "b"))),
                        Spelling("attrs", logistic_attrs, wrt=("model.w", "model.b"),
                                 adapt=into_object(Linear, 2)),
                        Spelling("float32", logistic_baseline, adapt=float32, float32=True),
                    ])


# ---------------------------------------------------------------------------
# 7. sum_squares: sum(x**2) over a large vector
# ---------------------------------------------------------------------------

def sumsq_baseline(x):
    return np.sum(x ** 2)


def sumsq_times(x):
    return np.sum(x * x)


def sumsq_matmul(x):
    return x @ x


def sumsq_np_dot(x):
    return np.dot(x, x)


def sumsq_method(x):
    return (x ** 2).sum()


def sumsq_np_square(x):
    return np.sum(np.square(x))


def sumsq_builtin_sum(x):
    return sum(x ** 2)


def sumsq_builtin_sum_times(x):
    return sum(x * x)


def sumsq_norm(x):
    return np.linalg.norm(x) ** 2


def sumsq_mean_size(x):
    return np.mean(x ** 2) * len(x)


def sumsq_hand(x):
    return (2 * x,)


def sumsq_args(quick):
    return (_rng().normal(size=1_000 if quick else 1_000_000),)


SUM_SQUARES = Workload("sum_squares", "sum of squares of x, 1e6 elements", sumsq_args, "x",
                       sumsq_hand, [
                           Spelling("baseline", sumsq_baseline),
                           Spelling("times", sumsq_times),
                           Spelling("matmul", sumsq_matmul),
                           Spelling("np_dot", sumsq_np_dot),
                           Spelling("method", sumsq_method),
                           Spelling("np_square", sumsq_np_square),
                           Spelling("builtin_sum", sumsq_builtin_sum),
                           Spelling("builtin_sum_times", sumsq_builtin_sum_times),
                           Spelling("norm", sumsq_norm),
                           Spelling("mean_size", sumsq_mean_size),
                           Spelling("float32", sumsq_baseline, adapt=float32, float32=True),
                       ])


# ---------------------------------------------------------------------------
# 8. ridge: ridge least squares, X 100000x10
# ---------------------------------------------------------------------------

LAM = 0.1


def ridge_baseline(w, X, y):
    r = X @ w - y
    return np.sum(r ** 2) / len(y) + 0.1 * np.sum(w ** 2)


def ridge_module_const(w, X, y):
    r = X @ w - y
    return np.sum(r ** 2) / len(y) + LAM * np.sum(w ** 2)


def ridge_default_arg(w, X, y, lam=0.1):
    r = X @ w - y
    return np.sum(r ** 2) / len(y) + lam * np.sum(w ** 2)


def make_ridge(lam):
    def ridge_closure(w, X, y):
        r = X @ w - y
        return np.sum(r ** 2) / len(y) + lam * np.sum(w ** 2)
    return ridge_closure


ridge_closure = make_ridge(0.1)


def ridge_matmul(w, X, y):
    r = X @ w - y
    return r @ r / len(y) + LAM * (w @ w)


def ridge_mean(w, X, y):
    return np.mean((X @ w - y) ** 2) + LAM * np.sum(w * w)


def ridge_builtin_sum(w, X, y):
    r = X @ w - y
    return sum(r ** 2) / len(y) + LAM * sum(w ** 2)


def ridge_norm(w, X, y):
    return np.linalg.norm(X @ w - y) ** 2 / len(y) + LAM * np.linalg.norm(w) ** 2


def ridge_dict(params, X, y):
    r = X @ params["w"] - y
    return np.sum(r ** 2) / len(y) + LAM * np.sum(params["w"] ** 2)


def ridge_hand(w, X, y):
    r = X @ w - y
    return (X.T @ r * (2.0 / len(y)) + 2 * 0.1 * w,)


def ridge_args(quick):
    n, d = (50, 4) if quick else (100_000, 10)
    r = _rng()
    X = r.normal(size=(n, d))
    return (r.normal(size=d), X, X @ r.normal(size=d) + 0.5 * r.normal(size=n))


RIDGE = Workload("ridge", "ridge least squares, X 100000x10", ridge_args, "w", ridge_hand, [
    Spelling("baseline", ridge_baseline),
    Spelling("module_const", ridge_module_const),
    Spelling("default_arg", ridge_default_arg),
    Spelling("closure", ridge_closure),
    Spelling("matmul", ridge_matmul),
    Spelling("mean", ridge_mean),
    Spelling("builtin_sum", ridge_builtin_sum),
    Spelling("norm", ridge_norm),
    Spelling("dict", ridge_dict, wrt="params", adapt=into_dict(("w",)), grads=from_dict(("w",))),
    Spelling("float32", ridge_baseline, adapt=float32, float32=True),
])


# ---------------------------------------------------------------------------
# 9. horner: a degree-7 polynomial by Horner's rule at 1000 points, sum of p(x)^2
# ---------------------------------------------------------------------------

COEFFS = (0.5, -1.25, 2.0, 0.75, -0.3, 1.1, -2.2, 0.05)     # highest degree first


def horner_baseline(x):
    p = ((((((0.5 * x - 1.25) * x + 2.0) * x + 0.75) * x - 0.3) * x + 1.1) * x - 2.2) * x + 0.05
    return np.sum(p * p)


def horner_index(x, c):
    p = c[0]
    for k in range(1, len(c)):
        p = p * x + c[k]
    return np.sum(p * p)


def horner_iterate(x, c):
    p = 0.0
    for ck in c:
        p = p * x + ck
    return np.sum(p * p)


def horner_module_const(x):
    p = 0.0
    for ck in COEFFS:
        p = p * x + ck
    return np.sum(p * p)


def horner_default_arg(x, coeffs=COEFFS):
    p = 0.0
    for ck in coeffs:
        p = p * x + ck
    return np.sum(p * p)


def make_horner(coeffs):
    def horner_closure(x):
        p = 0.0
        for ck in coeffs:
            p = p * x + ck
        return np.sum(p * p)
    return horner_closure


horner_closure = make_horner(list(COEFFS))


def horner_reversed(x, c_lowest_first):
    p = 0.0
    for ck in reversed(c_lowest_first):
        p = p * x + ck
    return np.sum(p * p)


def horner_powers(x, c_lowest_first):
    p = 0.0
    for k, ck in enumerate(c_lowest_first):
        p = p + ck * x ** k
    return np.sum(p * p)


def horner_polyval(x, c):
    p = np.polyval(c, x)
    return np.sum(p * p)


def horner_hand(x, c):
    p = np.full_like(x, c[0])
    dp = np.zeros_like(x)
    for ck in c[1:]:
        dp = dp * x + p
        p = p * x + ck
    return (2 * p * dp,)


def horner_args(quick):
    return (_rng().uniform(-1.2, 1.2, size=20 if quick else 1000), np.array(COEFFS))


def lowest_first_list(args):
    return (args[0], list(COEFFS[::-1]))


HORNER = Workload("horner", "Horner's rule, 8 coefficients, at 1000 points, sum p(x)^2",
                  horner_args, "x", horner_hand, [
                      Spelling("baseline", horner_baseline, adapt=drop(1)),
                      Spelling("index_array", horner_index),
                      Spelling("iter_array", horner_iterate),
                      Spelling("iter_list", horner_iterate, adapt=to_list(1)),
                      Spelling("iter_tuple", horner_iterate, adapt=to_tuple(1)),
                      Spelling("module_const", horner_module_const, adapt=drop(1)),
                      Spelling("default_arg", horner_default_arg, adapt=drop(1)),
                      Spelling("closure", horner_closure, adapt=drop(1)),
                      Spelling("reversed", horner_reversed, adapt=lowest_first_list),
                      Spelling("powers", horner_powers, adapt=lowest_first_list),
                      Spelling("polyval", horner_polyval),
                      Spelling("float32", horner_baseline, adapt=lambda a: float32(a[:1]),
                               float32=True),
                  ])


# ---------------------------------------------------------------------------
# 10. softmax_ce: a linear layer with a softmax cross-entropy, batch 64, 10 classes
# ---------------------------------------------------------------------------

def softmax_baseline(W, b, X, Y):
    z = X @ W + b
    z = z - np.max(z, axis=1, keepdims=True)
    log_p = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.sum(Y * log_p) / X.shape[0]


def softmax_no_shift(W, b, X, Y):
    z = X @ W + b
    log_p = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.sum(Y * log_p) / X.shape[0]


def softmax_probs(W, b, X, Y):
    e = np.exp(X @ W + b)
    p = e / np.sum(e, axis=1, keepdims=True)
    return -np.mean(np.sum(Y * np.log(p), axis=1))


def softmax_int_labels(W, b, X, labels):
    z = X @ W + b
    z = z - np.max(z, axis=1, keepdims=True)
    log_p = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.mean(log_p[np.arange(len(labels)), labels])


def log_softmax(z):
    z = z - np.max(z, axis=1, keepdims=True)
    return z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))


def softmax_helper(W, b, X, Y):
    return -np.sum(Y * log_softmax(X @ W + b)) / X.shape[0]


def softmax_methods(W, b, X, Y):
    z = X.dot(W) + b
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -(Y * log_p).sum(axis=1).mean()


def softmax_dict(params, X, Y):
    z = X @ params["W"] + params["b"]
    z = z - np.max(z, axis=1, keepdims=True)
    log_p = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.sum(Y * log_p) / X.shape[0]


def softmax_hand(W, b, X, Y):
    z = X @ W + b
    e = np.exp(z - z.max(axis=1, keepdims=True))
    d_z = (e / e.sum(axis=1, keepdims=True) - Y) / X.shape[0]    # softmax - one-hot
    return X.T @ d_z, d_z.sum(axis=0)


def softmax_args(quick):
    n, d, c = (6, 4, 3) if quick else (64, 32, 10)
    r = _rng()
    return (r.normal(size=(d, c)) / np.sqrt(d), 0.1 * r.normal(size=c), r.normal(size=(n, d)),
            np.eye(c)[r.integers(0, c, size=n)])


SOFTMAX = Workload("softmax_ce", "softmax cross-entropy of X 64x32 @ W 32x10 + b", softmax_args,
                   ("W", "b"), softmax_hand, [
                       Spelling("baseline", softmax_baseline),
                       Spelling("no_shift", softmax_no_shift),
                       Spelling("probs", softmax_probs),
                       Spelling("int_labels", softmax_int_labels,
                                adapt=replace(3, lambda Y: np.argmax(Y, axis=1))),
                       Spelling("helper", softmax_helper),
                       Spelling("methods", softmax_methods),
                       Spelling("dict", softmax_dict, wrt="params", adapt=into_dict(("W", "b")),
                                grads=from_dict(("W", "b"))),
                       Spelling("float32", softmax_baseline, adapt=float32, float32=True),
                   ])


# ---------------------------------------------------------------------------
# 11. gauss_nll: Gaussian negative log-likelihood of a list of 200 points
# ---------------------------------------------------------------------------

LOG_2PI = math.log(2 * math.pi)


def gauss_baseline(mu, log_sigma, points):
    sigma = math.exp(log_sigma)
    loss = 0.0
    for x in points:
        z = (x - mu) / sigma
        loss = loss + 0.5 * z * z + log_sigma + 0.5 * math.log(2 * math.pi)
    return loss


def gauss_module_const(mu, log_sigma, points):
    sigma = math.exp(log_sigma)
    loss = 0.0
    for x in points:
        z = (x - mu) / sigma
        loss = loss + 0.5 * z * z + log_sigma + 0.5 * LOG_2PI
    return loss


def gauss_index(mu, log_sigma, points):
    sigma = math.exp(log_sigma)
    loss = 0.0
    for i in range(len(points)):
        z = (points[i] - mu) / sigma
        loss = loss + 0.5 * z * z + log_sigma + 0.5 * LOG_2PI
    return loss


def gauss_augmented(mu, log_sigma, points):
    sigma = math.exp(log_sigma)
    loss = 0.0
    for x in points:
        loss += 0.5 * ((x - mu) / sigma) ** 2 + log_sigma + 0.5 * LOG_2PI
    return loss


def gauss_gen_sum(mu, log_sigma, points):
    sigma = math.exp(log_sigma)
    return sum(0.5 * ((x - mu) / sigma) ** 2 + log_sigma + 0.5 * LOG_2PI for x in points)


def gauss_listcomp_sum(mu, log_sigma, points):
    sigma = math.exp(log_sigma)
    return sum([0.5 * ((x - mu) / sigma) ** 2 + log_sigma + 0.5 * LOG_2PI for x in points])


def gauss_vectorized(mu, log_sigma, points):
    z = (np.asarray(points) - mu) / np.exp(log_sigma)
    return np.sum(0.5 * z * z + log_sigma + 0.5 * LOG_2PI)


def gauss_numpy_scalars(mu, log_sigma, points):
    sigma = np.exp(log_sigma)
    loss = 0.0
    for x in points:
        z = (x - mu) / sigma
        loss = loss + 0.5 * z * z + log_sigma + 0.5 * np.log(2 * np.pi)
    return loss


def gauss_dict(params, points):
    sigma = math.exp(params["log_sigma"])
    loss = 0.0
    for x in points:
        z = (x - params["mu"]) / sigma
        loss = loss + 0.5 * z * z + params["log_sigma"] + 0.5 * LOG_2PI
    return loss


def gauss_hand(mu, log_sigma, points):
    sigma = math.exp(log_sigma)
    d_mu = d_log_sigma = 0.0
    for x in points:
        z = (x - mu) / sigma
        d_mu -= z / sigma
        d_log_sigma += 1.0 - z * z
    return d_mu, d_log_sigma


def gauss_args(quick):
    return (0.3, -0.2, _rng().normal(0.5, 1.3, size=10 if quick else 200).tolist())


GAUSS = Workload("gauss_nll", "Gaussian NLL of a list of 200 points, wrt (mu, log_sigma)",
                 gauss_args, ("mu", "log_sigma"), gauss_hand, [
                     Spelling("baseline", gauss_baseline),
                     Spelling("module_const", gauss_module_const),
                     Spelling("index", gauss_index),
                     Spelling("augmented", gauss_augmented),
                     Spelling("iter_array", gauss_module_const, adapt=to_array(2)),
                     Spelling("iter_tuple", gauss_module_const, adapt=to_tuple(2)),
                     Spelling("gen_sum", gauss_gen_sum),
                     Spelling("listcomp_sum", gauss_listcomp_sum),
                     Spelling("vectorized", gauss_vectorized),
                     Spelling("numpy_scalars", gauss_numpy_scalars),
                     Spelling("dict", gauss_dict, wrt="params", adapt=into_dict(("mu", "log_sigma")),
                              grads=from_dict(("mu", "log_sigma"))),
                 ])


# ---------------------------------------------------------------------------
# 12. linefit: least-squares line through lists of 200 (x, y) points
# ---------------------------------------------------------------------------

def linefit_baseline(w, b, xs, ys):
    loss = 0.0
    for x, y in zip(xs, ys):
        loss = loss + (w * x + b - y) ** 2
    return loss / len(xs)


def linefit_index(w, b, xs, ys):
    loss = 0.0
    for i in range(len(xs)):
        loss = loss + (w * xs[i] + b - ys[i]) ** 2
    return loss / len(xs)


def linefit_enumerate(w, b, xs, ys):
    loss = 0.0
    for i, x in enumerate(xs):
        r = w * x + b - ys[i]
        loss = loss + r * r
    return loss / len(xs)


def linefit_while(w, b, xs, ys):
    loss = 0.0
    i = 0
    while i < len(xs):
        loss += (w * xs[i] + b - ys[i]) ** 2
        i += 1
    return loss / len(xs)


def linefit_gen_sum(w, b, xs, ys):
    return sum((w * x + b - y) ** 2 for x, y in zip(xs, ys)) / len(xs)


def linefit_listcomp_sum(w, b, xs, ys):
    return sum([(w * x + b - y) ** 2 for x, y in zip(xs, ys)]) / len(xs)


def linefit_vectorized(w, b, xs, ys):
    r = w * np.asarray(xs) + b - np.asarray(ys)
    return np.mean(r ** 2)


def linefit_dict(params, xs, ys):
    loss = 0.0
    for x, y in zip(xs, ys):
        loss = loss + (params["w"] * x + params["b"] - y) ** 2
    return loss / len(xs)


def linefit_hand(w, b, xs, ys):
    d_w = d_b = 0.0
    for x, y in zip(xs, ys):
        r = w * x + b - y
        d_w += r * x
        d_b += r
    n = len(xs)
    return 2 * d_w / n, 2 * d_b / n


def linefit_args(quick):
    r = _rng()
    xs = r.uniform(-2, 2, size=10 if quick else 200)
    return (0.5, 0.1, xs.tolist(), (1.7 * xs - 0.4 + 0.3 * r.normal(size=xs.size)).tolist())


def arrays(args):
    return args[:2] + (np.asarray(args[2]), np.asarray(args[3]))


def tuples(args):
    return args[:2] + (tuple(args[2]), tuple(args[3]))


LINEFIT = Workload("linefit", "least-squares line through lists of 200 points, wrt (w, b)",
                   linefit_args, ("w", "b"), linefit_hand, [
                       Spelling("baseline", linefit_baseline),
                       Spelling("index", linefit_index),
                       Spelling("enumerate", linefit_enumerate),
                       Spelling("while", linefit_while),
                       Spelling("zip_arrays", linefit_baseline, adapt=arrays),
                       Spelling("zip_tuples", linefit_baseline, adapt=tuples),
                       Spelling("gen_sum", linefit_gen_sum),
                       Spelling("listcomp_sum", linefit_listcomp_sum),
                       Spelling("vectorized", linefit_vectorized),
                       Spelling("dict", linefit_dict, wrt="params", adapt=into_dict(("w", "b")),
                                grads=from_dict(("w", "b"))),
                   ])


WORKLOADS = [BCE, RNN, SPRING, PENDULUM, MLP_WORKLOAD, LOGISTIC, SUM_SQUARES, RIDGE, HORNER,
             SOFTMAX, GAUSS, LINEFIT]
BY_NAME = {w.name: w for w in WORKLOADS}


# ---------------------------------------------------------------------------
# Checking
# ---------------------------------------------------------------------------

def check_values(workload, args):
    """Assert that every spelling computes the baseline's value on `args`."""
    fn, call_args = workload.spellings[0].bind(args)
    want = float(fn(*call_args))
    for s in workload.spellings[1:]:
        fn, call_args = s.bind(args)
        got = float(fn(*call_args))
        rtol = VALUE_RTOL_F32 if s.float32 else VALUE_RTOL
        assert math.isclose(got, want, rel_tol=rtol, abs_tol=rtol * 1e-3), (
            f"{workload.name}:{s.name} computes {got!r}, the baseline {want!r}: "
            f"not the same function (a bug in benchmarks/spellings.py)")


def compare_grads(got, want, is_float32):
    """None when srcgrad's gradients `got` match the hand-written `want`, else why not.
    Each element's difference is measured against |hand| + 1e-3 * max|hand| (as in run.py)."""
    rtol = RTOL_F32 if is_float32 else RTOL
    if len(got) != len(want):
        return f"{len(got)} gradients, the hand gradient has {len(want)}"
    for i, (g, h) in enumerate(zip(got, want)):
        h = np.asarray(h, dtype=float)
        if np.shape(g) != h.shape:
            return f"gradient {i} has shape {np.shape(g)}, the hand one {h.shape}"
        if is_float32 and np.ndim(g) and np.asarray(g).dtype != np.float32:
            return f"gradient {i} is {np.asarray(g).dtype}, its argument float32"
        g = np.asarray(g, dtype=float)
        scale = float(np.max(np.abs(h))) if h.size else 0.0
        err = np.abs(g - h) / (np.abs(h) + 1e-3 * scale + 1e-300)
        worst = float(np.max(err)) if err.size else 0.0
        if not worst <= rtol:
            return f"gradient {i} differs from the hand gradient by {worst:.3g} (relative)"
    return None


def first_line(exc):
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


class Outcome:
    """What one spelling gave: status 'ok', 'refused' or 'WRONG'; `why` a line of text;
    `df`, `fn` and `call_args` for timing where it is 'ok'."""

    def __init__(self, status, why="", exc=None, df=None, fn=None, call_args=None, compiled=None):
        self.status, self.why, self.exc = status, why, exc
        self.df, self.fn, self.call_args = df, fn, call_args
        self.compiled = compiled

    def label(self):
        if self.status == "ok":
            return "ok"
        return f"{self.status}: {self.why}"


def evaluate(workload, spelling, args, want):
    """Differentiate one spelling with srcgrad and compare with the hand gradient `want`."""
    fn, call_args = spelling.bind(args)
    wrt = spelling.wrt if spelling.wrt is not None else workload.wrt
    try:
        df = srcgrad.grad(fn, wrt=wrt)
        got = df(*call_args)
        # what this call ran (df.last; the same df serves spellings that share a function)
        compiled = getattr(df, "last", None)
    except Exception as exc:  # noqa: BLE001 -- a refusal (or a crash) is a result here
        kind = "" if isinstance(exc, srcgrad.SrcgradError) else f"({type(exc).__name__}) "
        return Outcome("refused", kind + first_line(exc).replace(ROOT + os.sep, ""), exc)
    why = compare_grads(spelling.grads(got), want, spelling.float32)
    if why is not None:
        return Outcome("WRONG", why)
    return Outcome("ok", df=df, fn=fn, call_args=call_args, compiled=compiled)


# ---------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------

LOOP_SECONDS = 0.025


def loop_size(timer):
    """How many calls make a loop of about LOOP_SECONDS."""
    number = 1
    while True:
        t = timer.timeit(number)
        if t >= 0.005 or number >= 1 << 20:
            return max(1, int(number * LOOP_SECONDS / max(t, 1e-9)))
        number *= 4


def time_all(fns, quick, repeat):
    """Seconds per call of each of `fns`, repeats taken in turns (one function after the
    other) so that a slow spell of the machine falls on all alike; the best repeat is kept."""
    timers = {k: timeit.Timer(fn) for k, fn in fns.items()}
    if quick:
        numbers = dict.fromkeys(fns, 1)
        for k, t in timers.items():
            while numbers[k] < 64 and t.timeit(numbers[k]) < 0.001:
                numbers[k] *= 4
        return {k: t.timeit(numbers[k]) / numbers[k] for k, t in timers.items()}
    numbers = {k: loop_size(t) for k, t in timers.items()}
    best = dict.fromkeys(fns, math.inf)
    for _ in range(4 * repeat):
        for k, t in timers.items():
            best[k] = min(best[k], t.timeit(numbers[k]) / numbers[k])
    return best


def generated_call(outcome):
    """A call of the generated function alone (`df.last.function`, as benchmarks/run.py's
    srcgrad.fn), without the wrapper that picks it and converts its results; None where
    this srcgrad does not expose it."""
    try:
        function = outcome.compiled.function
        call_args = tuple(getattr(outcome.df, "receiver", ())) + tuple(outcome.call_args)
        function(*call_args)
    except Exception:  # noqa: BLE001 -- internals the compiler is free to change
        return None
    return lambda: function(*call_args)


def run_workload(workload, quick, repeat):
    """One row per spelling: {workload, spelling, status, us, fwd_us, hand_us, x_hand, x_best, x_fwd}."""
    args = workload.make_args(quick)
    check_values(workload, args)
    want = tuple(workload.hand(*args))
    outcomes = {s.name: evaluate(workload, s, args, want) for s in workload.spellings}
    for name, out in outcomes.items():
        if out.status == "WRONG":
            print(f"!!! WRONG GRADIENT: {workload.name}:{name}: {out.why}", file=sys.stderr, flush=True)

    fns = {("hand", ""): lambda: workload.hand(*args)}
    if any(s.float32 for s in workload.spellings):   # float32 spellings race the hand gradient on float32
        args32 = float32(args)
        fns[("hand", "float32")] = lambda: workload.hand(*args32)
    for name, out in outcomes.items():
        if out.status == "ok":
            fns[("grad", name)] = (lambda df, a: lambda: df(*a))(out.df, out.call_args)
            fns[("fwd", name)] = (lambda fn, a: lambda: fn(*a))(out.fn, out.call_args)
            generated = generated_call(out)
            if generated is not None:
                fns[("gen", name)] = generated
    seconds = time_all(fns, quick, repeat)

    rows = []
    for s in workload.spellings:
        name, out = s.name, outcomes[s.name]
        hand_us = 1e6 * seconds[("hand", "float32" if s.float32 else "")]
        us = 1e6 * seconds[("grad", name)] if out.status == "ok" else None
        fwd = 1e6 * seconds[("fwd", name)] if out.status == "ok" else None
        gen = 1e6 * seconds[("gen", name)] if ("gen", name) in seconds else None
        rows.append({"workload": workload.name, "spelling": name, "status": out.label(),
                     "us": us, "fwd_us": fwd, "hand_us": hand_us, "gen_us": gen,
                     "x_hand": None if us is None else us / hand_us,
                     "gen_x_hand": None if gen is None else gen / hand_us,
                     "x_fwd": None if us is None else us / fwd, "float32": s.float32})
    for r in rows:     # the best of the spellings of the same precision
        timed = [o["us"] for o in rows if o["us"] is not None and o["float32"] == r["float32"]]
        r["x_best"] = None if r["us"] is None else r["us"] / min(timed)
    return rows


# ---------------------------------------------------------------------------
# Reports
# ---------------------------------------------------------------------------

HEAD = ["workload", "spelling", "srcgrad µs", "hand µs", "× hand", "× best spelling",
        "generated fn µs", "fn × hand", "forward µs", "× forward", "status"]


def fmt_us(us):
    if us is None:
        return "n/a"
    return f"{us:,.0f}" if us >= 100 else f"{us:.3g}"


def fmt_x(r):
    return "" if r is None else f"{r:.2f}×"


def table_rows(rows, width=None):
    out = []
    for r in rows:
        status = r["status"]
        if width and len(status) > width:
            status = status[:width - 1] + "…"
        out.append([r["workload"], r["spelling"], fmt_us(r["us"]), fmt_us(r["hand_us"]),
                    fmt_x(r["x_hand"]), fmt_x(r["x_best"]), fmt_us(r["gen_us"]),
                    fmt_x(r["gen_x_hand"]), fmt_us(r["fwd_us"]),
                    fmt_x(r["x_fwd"]), status])
    return out


def text_table(head, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    line = lambda r: "  ".join(str(x).ljust(n) for x, n in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(head), line(["-" * n for n in widths])] + [line(r) for r in rows])


def md_table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "|".join(" --- " for _ in head) + "|"]
    out += ["| " + " | ".join(str(x).replace("|", "\\|") for x in r) + " |" for r in rows]
    return "\n".join(out)


WORST_HEAD = ["spelling", "× hand", "× best spelling", "srcgrad µs", "fn × hand", "forward µs",
              "hand µs"]


def worst_rows(rows, worst):
    """The `worst` timed spellings by × hand, as table rows (WORST_HEAD)."""
    timed = sorted((r for r in rows if r["us"] is not None), key=lambda r: -r["x_hand"])
    return [[f"{r['workload']}:{r['spelling']}", fmt_x(r["x_hand"]), fmt_x(r["x_best"]),
             fmt_us(r["us"]), fmt_x(r["gen_x_hand"]), fmt_us(r["fwd_us"]), fmt_us(r["hand_us"])]
            for r in timed[:worst]]


def summary(rows):
    """Lines of text: how close the spellings come to the hand gradient and to their best,
    and what needs attention (WRONG gradients, refusals KNOWN_REFUSALS does not list)."""
    timed = [r for r in rows if r["us"] is not None]
    refused = [r for r in rows if r["status"].startswith("refused")]
    wrong = [r for r in rows if r["status"].startswith("WRONG")]
    ratios = [r["x_hand"] for r in timed]
    key = lambda r: f"{r['workload']}:{r['spelling']}"  # noqa: E731
    ran = {key(r) for r in rows}
    unexpected = [r for r in refused if key(r) not in KNOWN_REFUSALS]
    accepted = sorted(KNOWN_REFUSALS & ran - {key(r) for r in refused})
    lines = [f"spellings: {len(rows)} in {len({r['workload'] for r in rows})} workloads; "
             f"{len(timed)} differentiated and timed, {len(refused)} refused, {len(wrong)} WRONG"]
    if timed:
        lines += [
            f"within 1.2× of hand: {sum(x <= 1.2 for x in ratios)}; within 1.5×: "
            f"{sum(x <= 1.5 for x in ratios)}; over 5×: {sum(x > 5 for x in ratios)} "
            f"(of {len(timed)})",
            f"median × hand: {statistics.median(ratios):.2f}×",
            f"within 1.5× of their workload's best spelling: "
            f"{sum(r['x_best'] <= 1.5 for r in timed)} of {len(timed)}"]
    for r in wrong:
        lines.append(f"WRONG: {key(r)}: {r['status']}")
    for r in unexpected:
        lines.append(f"refused and not in KNOWN_REFUSALS: {key(r)}: {r['status']}")
    if accepted:
        lines.append(f"in KNOWN_REFUSALS but accepted now (drop them): {', '.join(accepted)}")
    return lines


def machine_line():
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    import platform
    return (f"{platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} cores, "
            f"numpy {np.__version__}, srcgrad {srcgrad.__version__}, "
            f"BLAS threads {os.environ.get('OPENBLAS_NUM_THREADS', 'default')}, "
            f"load average {load:.2f}")


def write_markdown(path, rows, command, machine, worst):
    text = ["# srcgrad spelling corpus", "",
            f"Generated by `{command}` on {time.strftime('%Y-%m-%d %H:%M')}.", "",
            f"- machine: {machine}",
            "- × hand: the spelling's `srcgrad.grad(f, wrt=...)(...)` call over the workload's "
            "hand-written gradient (float32 spellings: the hand gradient on float32 arrays); "
            "× best spelling: over the fastest srcgrad spelling of the workload (same precision); "
            "generated fn: `df.last.function` alone, without srcgrad's wrapper; × forward: the "
            "srcgrad call over the spelling's own plain function", "",
            "## Summary", ""]
    text += [f"- {line}" for line in summary(rows)]
    text += ["", f"## The {worst} worst spellings", "", md_table(WORST_HEAD, worst_rows(rows, worst)),
             "", "## Every spelling", "", md_table(HEAD, table_rows(rows))]
    with open(path, "w") as f:
        f.write("\n".join(text) + "\n")


def show_source(spec, quick):
    """Print a spelling's own source and srcgrad's generated gradient for it."""
    import inspect
    try:
        wname, sname = spec.split(":", 1)
        workload = BY_NAME[wname]
        spelling = workload.spelling(sname)
    except (ValueError, KeyError) as exc:
        raise SystemExit(f"--source wants WORKLOAD:SPELLING; {exc}; workloads: {sorted(BY_NAME)}")
    args = workload.make_args(quick)
    fn, call_args = spelling.bind(args)
    print(f"# {workload.name}:{spelling.name} — the spelling")
    print(inspect.getsource(spelling.f))
    wrt = spelling.wrt if spelling.wrt is not None else workload.wrt
    print(f"# srcgrad.grad(..., wrt={wrt!r}) — the generated gradient")
    df = srcgrad.grad(fn, wrt=wrt)
    try:
        df(*call_args)
    except Exception as exc:  # noqa: BLE001 -- a refusal: say why
        print(f"refused: {type(exc).__name__}: {exc}")
        return
    print(srcgrad.source(df))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="small sizes, one repetition: checks correctness, prints the table fast")
    p.add_argument("--only", help="only these workloads (comma-separated names)")
    p.add_argument("--markdown", metavar="FILE", help="also write the table as markdown to FILE")
    p.add_argument("--source", metavar="WORKLOAD:SPELLING",
                   help="print the generated gradient of one spelling and exit")
    p.add_argument("--repeat", type=int, default=5,
                   help="timing: 4 * REPEAT loops of about 25 ms, best kept (default 5)")
    p.add_argument("--worst", type=int, default=15, help="how many worst spellings to list")
    args = p.parse_args(argv)

    if "SRCGRAD_CACHE_DIR" not in os.environ:    # leave the user's disk cache alone
        import atexit
        import shutil
        folder = tempfile.mkdtemp(prefix="srcgrad-spellings-cache-")
        os.environ["SRCGRAD_CACHE_DIR"] = folder
        atexit.register(shutil.rmtree, folder, True)
    if args.source:
        show_source(args.source, args.quick)
        return 0
    chosen = WORKLOADS
    if args.only:
        names = args.only.split(",")
        unknown = [n for n in names if n not in BY_NAME]
        if unknown:
            p.error(f"unknown workload(s) {unknown}; choose from {list(BY_NAME)}")
        chosen = [w for w in WORKLOADS if w.name in names]

    machine = machine_line()
    started = time.perf_counter()
    rows = []
    for w in chosen:
        rows += run_workload(w, args.quick, args.repeat)
        print(f"[{w.name} done, {time.perf_counter() - started:.0f} s]", file=sys.stderr, flush=True)
    print(f"machine: {machine}")
    print(text_table(HEAD, table_rows(rows, width=90)))
    print()
    print("\n".join(summary(rows)))
    print(f"\nworst {args.worst}:")
    print(text_table(WORST_HEAD, worst_rows(rows, args.worst)))
    if args.markdown:
        command = "python benchmarks/spellings.py" + "".join(
            f" {a}" for a in (sys.argv[1:] if argv is None else argv) if a != args.markdown
            and not a.startswith("--markdown"))
        write_markdown(args.markdown, rows, command.strip(), machine, args.worst)
    return 1 if any(r["status"].startswith("WRONG") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
