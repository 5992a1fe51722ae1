"""The values an op's parameters take, and how a spec value is checked against a parameter.

Shapes exclude the batch: ``(C, H, W)`` for feature maps, ``(F,)`` for flat vectors.
"""

from __future__ import annotations

from dataclasses import dataclass

Shape = tuple[int, ...]
Attrs = dict[str, object]

REQUIRED = object()  # marks a parameter without default


class ShapeProblem(Exception):
    """A shape rule's complaint; the checker adds the span and turns it into a SpecShapeError.
    ``argument`` names the parameter at fault where the arguments refuse each other whatever
    the input (``output_pad`` not below ``stride``): the caret goes under its value."""

    def __init__(self, message: str, expected: str | None = None, found: str | None = None,
                 argument: str | None = None):
        super().__init__(message)
        self.message, self.expected, self.found = message, expected, found
        self.argument = argument


class Size(tuple):
    """A size literal such as ``7x7`` or ``3x224x224``."""

    def __repr__(self) -> str:
        return "x".join(str(d) for d in self)


class Symbol(str):
    """A named constant of the language: ``same``, ``project``, ``identity``, ``none``."""


class ValueProblem(Exception):
    """A value of the wrong kind for a parameter; lowering adds the span."""


def describe(value: object) -> str:
    """A spec value as a message names it: ``the number 2.5``, ``a list of 4``, ``'same'``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Size):
        return f"the size {value!r}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, Symbol):
        return f"'{value}'"
    if isinstance(value, str):
        return f'the string "{value}"'
    if isinstance(value, tuple):
        return f"a list of {len(value)}"
    return getattr(value, "description", type(value).__name__)


def _pair(name: str, value: object, minimum: int) -> tuple[int, int]:
    given = value
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if isinstance(value, Size) and len(value) == 2 and all(v >= minimum for v in value):
        return (value[0], value[1])
    if isinstance(value, tuple) and len(value) == 2 and all(
            isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in value):
        return (value[0], value[1])
    raise ValueProblem(f"{name} must be a number or a size like 3x3 (each at least {minimum}), "
                       f"found {describe(given)}")


def normalize(param: Param, value: object) -> object:
    """Checks a spec value against a parameter's kind and returns its canonical form."""
    kind, name = param.kind, param.name
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if kind == "count":
        if is_int and value >= 1:
            return value
        raise ValueProblem(f"{name} must be a whole number of at least 1, found {describe(value)}")
    if kind in ("float", "prob", "optfloat"):
        if kind == "optfloat" and (value is None or value == Symbol("none")):
            return None
        if not (is_int or isinstance(value, float)):
            raise ValueProblem(f"{name} must be a number, found {describe(value)}")
        if kind == "prob" and not 0 <= value <= 1:
            raise ValueProblem(f"{name} must be between 0 and 1, found {value}")
        return float(value)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise ValueProblem(f"{name} must be true or false, found {describe(value)}")
    if kind == "size":
        return _pair(name, value, 1)
    if kind == "optsize":
        return None if value is None or value == Symbol("none") else _pair(name, value, 1)
    if kind == "pad":
        return "same" if value == Symbol("same") else _pair(name, value, 0)
    if kind == "int":
        if is_int and value >= 0:
            return value
        raise ValueProblem(f"{name} must be a whole number of at least 0, found {describe(value)}")
    if kind == "perm":
        return _permutation(name, value)
    if kind == "choice":
        if isinstance(value, str) and not isinstance(value, Symbol) and value in param.choices:
            return str(value)
        raise ValueProblem(f"{name} must be one of {', '.join(map(repr, param.choices))}, "
                           f"found {describe(value)}")
    raise AssertionError(f"unknown parameter kind {kind}")


def _permutation(name: str, value: object) -> tuple[int, ...]:
    """An order of the non-batch axes: ``[1, 2, 0]`` takes CxHxW to HxWxC."""
    if isinstance(value, tuple) and not isinstance(value, Size) and \
            sorted(v for v in value if isinstance(v, int) and not isinstance(v, bool)) \
            == list(range(len(value))):
        return tuple(value)
    raise ValueProblem(f"{name} must list the axes 0, 1, ... in a new order, like [1, 2, 0], "
                       f"found {describe(value)}")


def fmt_shape(shape: Shape | None) -> str:
    """``(3, 224, 224)`` as ``3x224x224``; no shape (None, or empty) as ``?``."""
    return "x".join(str(d) for d in shape) if shape else "?"


def fmt_side(pair: tuple[int, int]) -> str:
    """A window's side: ``(3, 3)`` as ``3``, ``(1, 7)`` as ``1x7``."""
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"


def spec_literal(value: object) -> str:
    """A value as a spec writes it: ``true``, ``none``, ``3x3``, ``0.5``."""
    if value is None or isinstance(value, bool):
        return {None: "none", True: "true", False: "false"}[value]
    return "x".join(map(str, value)) if isinstance(value, tuple) else str(value)


@dataclass(frozen=True)
class Param:
    """One parameter of an op. ``kind`` decides how a spec value is checked and normalised:
    count (int >= 1), int (>= 0), float, optfloat (or none), prob (0..1), bool, size (int or
    AxB -> pair), optsize (like size, or none), pad (int, AxB or ``same``), perm (a list
    ordering the axes), choice (one of ``choices``, written as a string: ``"bilinear"``)."""

    name: str
    kind: str
    default: object = REQUIRED
    choices: tuple[str, ...] = ()
