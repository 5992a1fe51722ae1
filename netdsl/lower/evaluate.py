"""Evaluating value expressions: arithmetic, comparisons, conditions, lists and names.

A call of a function of numbers (``round``, ``make_divisible``; netdsl/lower/functions.py)
is evaluated to its number. Layer expressions are not evaluated here: a call of a layer,
block or builtin, a chain or a label evaluates to a :class:`~netdsl.lower.values.Thunk`,
expanded where it is used.
"""

from __future__ import annotations

import difflib
import math
import operator

from .. import limits
from ..errors import SpecLimitError, SpecNameError, SpecTypeError, TensorNameError
from ..ir.ops import OpRecord, Size, describe
from ..syntax import tree as ast
from .values import BlockValue, Builtin, Env, Function, ReduceCount, Thunk, Unbound


def evaluate(node: ast.Node, env: Env) -> object:
    kind = type(node)  # the common cases first, by exact class (no node class is subclassed)
    if kind is ast.Ref:
        return resolve(node, env)
    if kind is ast.Int or kind is ast.Str or kind is ast.Float:
        return node.value
    if isinstance(node, ast.Dims):
        return Size(node.value)
    if isinstance(node, ast.Reduce):
        return ReduceCount(node.value)
    if isinstance(node, ast.ListExpr):
        return tuple(evaluate(i, env) for i in node.items)
    if isinstance(node, ast.Neg):
        return -number(node.operand, env)
    if isinstance(node, ast.BinOp):
        return arithmetic(node, env)
    if isinstance(node, ast.Compare):
        return compare(node, env)
    if isinstance(node, ast.Logic):  # short-circuit: `d > 0 and c // d > 1` is safe
        left = truth(node.left, env)
        if left == (node.op == "or"):
            return left
        return truth(node.right, env)
    if isinstance(node, ast.Not):
        return not truth(node.operand, env)
    if isinstance(node, ast.Cond):
        branch = node.then if truth(node.test, env) else node.otherwise
        return evaluate(branch, env)
    if isinstance(node, ast.Index):
        return index(node, env)
    if isinstance(node, ast.Call):
        callee = evaluate(node.func, env)
        if isinstance(callee, Function):  # round(c * 0.75): a number now
            return callee.call(callee, node, env)
        if isinstance(callee, OpRecord | BlockValue | Builtin):
            return Thunk(node, env)
        raise SpecTypeError(f"{describe(callee)} cannot be called", node.func.span)
    return Thunk(node, env)  # chains, labels and keyed branches are layers


def resolve(ref: ast.Ref, env: Env) -> object:
    value = env.lookup(ref.name)
    if isinstance(value, Unbound):
        at = value.span
        raise TensorNameError(f"tensor '{ref.name}' is used before the line that computes it",
                              ref.span, notes=(f"it is computed at {at.source.filename}:"
                                               f"{at.line}:{at.column}", "a line can read only "
                                               "tensors named on the lines before it"))
    if value is None:
        hidden = _hidden(env, ref.name)
        if hidden:
            raise SpecNameError(hidden[0], ref.span, notes=hidden[1:])
        close = difflib.get_close_matches(ref.name, sorted(env.all_names()), n=1)
        hint = (f"did you mean '{close[0]}'?",) if close else ()
        raise SpecNameError(f"unknown name '{ref.name}'", ref.span, notes=hint)
    return value


def _hidden(env: Env | None, name: str) -> tuple[str, ...]:
    """Why ``name`` is not visible although an import of an import defines it (or ())."""
    while env is not None:
        if name in env.hidden:
            return env.hidden[name]
        env = env.parent
    return ()


def number(node: ast.Node, env: Env) -> int | float:
    value = evaluate(node, env)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecTypeError(f"expected a number, found {describe(value)}", node.span)
    return value


def finite(value: object) -> bool:
    """Whether every number in ``value`` (a number or a list) is finite."""
    if isinstance(value, float):
        return math.isfinite(value)
    return all(map(finite, value)) if isinstance(value, tuple) else True


def truth(node: ast.Node, env: Env) -> bool:
    value = evaluate(node, env)
    if not isinstance(value, bool):
        raise SpecTypeError(f"expected true or false, found {describe(value)}", node.span)
    return value


_ARITHMETIC = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
               "//": operator.floordiv, "%": operator.mod, "**": operator.pow}


def arithmetic(node: ast.BinOp, env: Env) -> int | float:
    a, b = number(node.left, env), number(node.right, env)
    op = node.op
    if op in ("/", "//", "%") and b == 0:
        raise SpecTypeError("division by zero", node.right.span)
    if op == "**" and (abs(b) > 64 or abs(a) > limits.MAX_NUMBER):
        raise SpecLimitError("exponent too large", node.span)
    try:
        result = _ARITHMETIC[op](a, b)
    except ZeroDivisionError:  # 0 ** -1
        raise SpecTypeError("division by zero", node.span) from None
    except OverflowError:  # float ** float
        raise SpecLimitError(f"{node.op} gives a number beyond {limits.MAX_NUMBER:.0e}",
                             node.span) from None
    if isinstance(result, complex):
        raise SpecTypeError("a negative number to a fractional power has no real value",
                            node.span)
    if not abs(result) <= limits.MAX_NUMBER:  # also NaN, which compares false
        raise SpecLimitError(f"{node.op} gives a number beyond {limits.MAX_NUMBER:.0e}", node.span)
    return result


def compare(node: ast.Compare, env: Env) -> bool:
    a, b = evaluate(node.left, env), evaluate(node.right, env)
    if node.op in ("==", "!="):
        return (a == b) == (node.op == "==")
    a, b = number(node.left, env), number(node.right, env)
    return {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[node.op]


def index(node: ast.Index, env: Env) -> object:
    target = evaluate(node.target, env)
    if not isinstance(target, tuple):
        raise SpecTypeError(f"only lists can be indexed, found {describe(target)}",
                            node.target.span)
    i = number(node.index, env)
    if not isinstance(i, int) or not -len(target) <= i < len(target):
        raise SpecTypeError(f"index {i} is out of range for a list of {len(target)}",
                            node.index.span)
    return target[i]
