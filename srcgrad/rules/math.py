"""The `math` module. Each line is a row of a calculus table: d/dx of f(x)."""
import math

from ..runtime import times_power, xlogy
from .registry import nondifferentiable, partial

# Where a ** b is differentiable at the edge a = 0 of its domain (the rules' `boundary`):
# a ** 0 is constant and a ** 1 is a; for b > 1 both partials are 0 there. A "const:"
# exponent is a literal in the call, not differentiated.
POWER_AT_ZERO = ((0.0, "const:0.0"), (0.0, "const:0"), (0.0, "const:1.0"), (0.0, "const:2"),
                 (0.0, 2.0), (0.0, 2.5), (0.0, 1.0))

partial(math.exp,   lambda x, y: y)
partial(math.expm1, lambda x, y: y + 1)
partial(math.log,   lambda x: 1 / x, domain=("positive",))
partial(math.log1p, lambda x: 1 / (1 + x), domain=("positive",), boundary=((0.0,),))
partial(math.log2,  lambda x: 1 / (x * math.log(2)), domain=("positive",))
partial(math.log10, lambda x: 1 / (x * math.log(10)), domain=("positive",))
partial(math.sqrt,  lambda x, y: 0.5 / y, domain=("positive",))
partial(math.pow,   lambda a, b, y: (times_power(b, a, b - 1), xlogy(y, a)),
        domain=("positive", "real"), boundary=POWER_AT_ZERO)
partial(math.sin,   lambda x: math.cos(x))
partial(math.cos,   lambda x: -math.sin(x))
partial(math.tan,   lambda x, y: 1 + y * y, domain=("unit",), boundary=((-1.0,), (1.0,)))
partial(math.asin,  lambda x: 1 / math.sqrt(1 - x * x), domain=("unit",))
partial(math.acos,  lambda x: -1 / math.sqrt(1 - x * x), domain=("unit",))
partial(math.atan,  lambda x: 1 / (1 + x * x))
partial(math.atan2, lambda a, b: (b / (a * a + b * b), -a / (a * a + b * b)),
        domain=("positive", "positive"), boundary=((0.0, 1.5), (1.5, 0.0)))
partial(math.sinh,  lambda x: math.cosh(x))
partial(math.cosh,  lambda x: math.sinh(x))
partial(math.tanh,  lambda x, y: 1 - y * y)
partial(math.asinh, lambda x: 1 / math.sqrt(x * x + 1))
partial(math.acosh, lambda x: 1 / math.sqrt(x * x - 1), domain=("above1",))
partial(math.atanh, lambda x: 1 / (1 - x * x), domain=("unit",))
partial(math.hypot, lambda a, b, y: (a / y, b / y), domain=("positive", "positive"),
        boundary=((0.0, 1.5), (1.5, 0.0)))
partial(math.erf,   lambda x: 2 / math.sqrt(math.pi) * math.exp(-x * x))
partial(math.erfc,  lambda x: -2 / math.sqrt(math.pi) * math.exp(-x * x))
partial(math.fabs,  lambda x: math.copysign(1.0, x), domain=("nonzero",))
partial(math.degrees, lambda x: 180 / math.pi)
partial(math.radians, lambda x: math.pi / 180)

nondifferentiable(math.floor, math.ceil, math.trunc, math.isnan, math.isinf, math.isfinite)
