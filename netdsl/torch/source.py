"""How generated source spells values and classes: every spec value reaches generated code
through :func:`literal` (``repr`` of a plain value) and every class through
:func:`class_expression` (a dotted path validated when its op was registered)."""

from __future__ import annotations

import math

from ..errors import BuildError

RUNTIME = "netdsl.torch.layers"  # netdsl's own modules: copied into generated source


def class_expression(cls: str) -> str:
    """``nn.Conv2d`` for ``torch.nn.Conv2d``, the bare name for netdsl's own classes (defined
    in the source), the full dotted path otherwise (its module is imported)."""
    if cls.startswith("torch.nn."):
        return "nn." + cls[len("torch.nn."):]
    if cls.rsplit(".", 1)[0] == RUNTIME:
        return cls.rsplit(".", 1)[1]
    return cls


def literal(value: object) -> str:
    """A constructor argument as source: only plain values, written with ``repr`` (a spec's
    numbers and names reach generated code this way and no other)."""
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return repr(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise BuildError(f"cannot emit the non-finite number {value}")
        return repr(value)
    if isinstance(value, tuple):
        return "(" + ", ".join(literal(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    raise BuildError(f"cannot emit a constructor argument of type {type(value).__name__}")
