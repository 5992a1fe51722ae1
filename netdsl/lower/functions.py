"""Functions of numbers a value may call: ``int``, ``round``, ``ceil``, ``floor``, ``min``,
``max``, ``abs``, ``sqrt``, ``log2`` and ``make_divisible``.

Each is a pure function of numbers with Python's semantics (``round`` rounds half to even,
``ceil``/``floor``/``int`` of a float give an int), so a spec stays data and a channel
formula copied from a reference implementation gives the reference's number. Arguments and
results obey the number limit every literal obeys (:data:`netdsl.limits.MAX_NUMBER`): a
result beyond it is a coded error, never an ``OverflowError``.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Callable

from .. import limits
from ..errors import Span, SpecArgumentError, SpecLimitError, SpecTypeError
from ..ir.ops import describe
from ..syntax import tree as ast
from .binder import bind_names, keywords
from .evaluate import evaluate
from .values import CONSTANTS, Env, Function

Number = int | float
Args = dict[str, tuple[object, Span]]
NDIGITS = 400  # round's ndigits beyond +-400 give what +-400 give (Python's own cut-offs are
# about +-323 for floats, and an int below 10^15 rounds to 0 at -16), so clamping is exact
# and round(x, -10**15) never builds 10^(10^15)


def call(fn: Function, node: ast.Call, env: Env) -> Number:
    """``fn``'s call: arguments bound by name like any call's, then checked and computed."""
    args = [(evaluate(a, env), a.span) for a in node.args]
    bound = bind_names(fn.name, [n for n, _ in fn.params], args, keywords(node, env), node)
    for name, default in fn.params:
        if default is None and name not in bound:
            raise SpecArgumentError(f"{fn.name} needs a value for '{name}'", node.span,
                                    notes=(fn.text(),))
    return _bounded(fn.name, fn.compute(fn, bound, node), node.span)


def number(fn: str, value: object, span: Span) -> Number:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecTypeError(f"{fn}: expected a number, found {describe(value)}", span)
    if not abs(value) <= limits.MAX_NUMBER:  # only a Python caller can hand these over
        raise SpecLimitError(f"{fn}: the argument is beyond {limits.MAX_NUMBER:.0e}", span)
    return value


def whole(fn: str, what: str, value: object, span: Span, least: int | None = None) -> int:
    value = number(fn, value, span)
    if not isinstance(value, int) or (least is not None and value < least):
        at_least = f" of at least {least}" if least is not None else ""
        raise SpecTypeError(f"{fn}: {what} must be a whole number{at_least}, found "
                            f"{describe(value)}", span)
    return value


def _bounded(fn: str, result: Number, span: Span) -> Number:
    if not abs(result) <= limits.MAX_NUMBER:  # also NaN
        raise SpecLimitError(f"{fn} gives a number beyond {limits.MAX_NUMBER:.0e}", span)
    return result


def _given(bound: Args, name: str) -> object:
    """An optional argument's value, or None where it is absent or ``none``."""
    value = bound.get(name, (None,))[0]
    return None if value is None or value == CONSTANTS["none"] else value


def _one(apply: Callable[[Number], Number]):
    def handler(fn: Function, bound: Args, node: ast.Call) -> Number:
        return apply(number(fn.name, *bound["x"]))
    return handler


def _round(fn: Function, bound: Args, node: ast.Call) -> Number:
    x = number(fn.name, *bound["x"])
    ndigits = _given(bound, "ndigits")
    if ndigits is None:
        return round(x)
    n = whole(fn.name, "ndigits", ndigits, bound["ndigits"][1])
    return round(x, max(-NDIGITS, min(NDIGITS, n)))


def _sqrt(fn: Function, bound: Args, node: ast.Call) -> float:
    x = number(fn.name, *bound["x"])
    if x < 0:
        raise SpecTypeError(f"sqrt of a negative number ({x}) has no real value", node.span,
                            notes=("sqrt takes a number of at least 0",))
    return math.sqrt(x)


def _log2(fn: Function, bound: Args, node: ast.Call) -> float:
    x = number(fn.name, *bound["x"])
    if x <= 0:
        raise SpecTypeError(f"log2 of {x} has no value", node.span,
                            notes=("log2 takes a number above 0",))
    return math.log2(x)


def _make_divisible(fn: Function, bound: Args, node: ast.Call) -> int:
    """torchvision's ``_make_divisible`` (torchvision/models/_utils.py, from TensorFlow's
    slim MobileNet) with timm's ``round_limit`` (timm/layers/helpers.py ``make_divisible``):
    ``v`` rounded to the nearest multiple of ``divisor``, at least ``min_value``, and never
    below ``round_limit * v``. ``min_value=none`` means ``divisor``; as in torchvision, an
    explicit 0 stays 0 (timm's ``min_value or divisor`` would read it as ``divisor``)."""
    name = fn.name
    v = number(name, *bound["v"])
    divisor = whole(name, "divisor", *bound["divisor"], least=1)
    min_value = _given(bound, "min_value")
    min_value = divisor if min_value is None else number(name, min_value, bound["min_value"][1])
    limit = _given(bound, "round_limit")
    limit = 0.9 if limit is None else number(name, limit, bound["round_limit"][1])
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < limit * v:  # make sure that rounding down does not go down by more than 10%
        new_v += divisor
    return new_v


def _extreme(fn: Function, node: ast.Call, env: Env) -> Number:
    """``min(a, b, ...)`` or ``min(list)``, as Python's (the first of equal ones wins)."""
    if node.kwargs:
        raise SpecArgumentError(f"{fn.name} takes no keyword arguments", node.kwargs[0].span,
                                notes=(fn.text(),))
    values = [(evaluate(a, env), a.span) for a in node.args]
    if len(values) == 1 and type(values[0][0]) is tuple:  # a list (a size is not one)
        items, span = values[0]
        if not items:
            raise SpecTypeError(f"{fn.name} of an empty list has no value", span)
        values = [(item, span) for item in items]
    elif len(values) < 2:
        raise SpecArgumentError(f"{fn.name} takes two numbers or more, or a list, got "
                                f"{describe(values[0][0]) if values else 'nothing'}",
                                values[0][1] if values else node.span, notes=(fn.text(),))
    return fn.compute(number(fn.name, value, span) for value, span in values)


_X = (("x", None),)
# name: (handler, parameters, doc)
_TABLE: dict[str, tuple[Callable, tuple[tuple[str, str | None], ...], str]] = {
    "int": (_one(int), _X, "int(x): x without its fraction, as a whole number (toward 0)"),
    "round": (_round, (("x", None), ("ndigits", "none")),
              "round(x, ndigits=none): Python's rounding, half to even (round(2.5) is 2); "
              "a whole number without ndigits"),
    "ceil": (_one(math.ceil), _X, "ceil(x): the least whole number at least x"),
    "floor": (_one(math.floor), _X, "floor(x): the greatest whole number at most x"),
    "abs": (_one(abs), _X, "abs(x): x without its sign"),
    "sqrt": (_sqrt, _X, "sqrt(x): the square root of x (at least 0), a float"),
    "log2": (_log2, _X, "log2(x): the base-2 logarithm of x (above 0), a float"),
    "make_divisible": (_make_divisible, (("v", None), ("divisor", None), ("min_value", "none"),
                                         ("round_limit", "0.9")),
                       "make_divisible(v, divisor, min_value=none, round_limit=0.9): v rounded "
                       "to a multiple of divisor, never below round_limit * v (torchvision's "
                       "_make_divisible, timm's make_divisible)"),
}

FUNCTIONS: dict[str, Function] = {
    name: Function(name, call, compute, doc, params) for name, (compute, params, doc) in _TABLE.items()}
FUNCTIONS.update({name: Function(name, _extreme, pick, f"{name}(a, b, ...) or {name}(list): the "
                                 f"{word} of the numbers (Python's {name})", (), variadic=True)
                  for name, pick, word in (("min", builtins.min, "least"),
                                           ("max", builtins.max, "greatest"))})
