"""Shape inference for one node, with the diagnostic a misfit gets.

Both the expander (which computes every node's shape as it adds it, so that blocks can read
their input's channels and ``shortcut=project`` is decided once) and the checker (which
re-derives the shapes of a finished graph, for another input size or a graph read from JSON)
call :func:`infer_shape`, so the two can never disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..errors import PRELUDE, Span, SpecShapeError, call_note
from .ops import OPS, Shape, ShapeProblem, fmt_shape


def infer_shape(op: str, attrs: Mapping[str, object], ins: list[Shape], span: Span | None,
                trace: tuple[Span, ...] = (),
                where: Callable[[str], Span | None] | None = None) -> Shape:
    """The output shape of ``op`` on inputs of shapes ``ins``; a SpecShapeError at ``span``
    (with a note for each block call in ``trace``) when they do not fit, or at the value of
    the argument at fault, where ``where`` finds it written in the user's text."""
    try:
        return OPS[op].infer(dict(attrs), ins)
    except ShapeProblem as problem:
        at = where(problem.argument) if where is not None and problem.argument else None
        if at is None or at.source.filename == PRELUDE:
            at = span
        raise shape_error(op, attrs, problem, ins, at, trace) from None


def shape_error(op: str, attrs: Mapping[str, object], problem: ShapeProblem, ins: list[Shape],
                span: Span | None, trace: tuple[Span, ...]) -> SpecShapeError:
    message, expected, found = problem.message, problem.expected, problem.found
    notes = []
    if op == "add" and attrs.get("residual"):
        body, shortcut = ins
        message = (f"residual body gives {fmt_shape(body)} but its shortcut gives "
                   f"{fmt_shape(shortcut)}")
        expected, found = fmt_shape(shortcut), fmt_shape(body)
        notes.append("the body must keep its input's shape, or use shortcut=project")
    notes += [call_note(s) for s in reversed(trace) if s.source.filename != PRELUDE]
    return SpecShapeError(message, span, expected=expected, found=found, notes=tuple(notes))
