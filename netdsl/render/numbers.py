"""Numbers as tables print them: ``15.47G``, ``58.1 MiB``, ``3x7``, ``12.5%``."""

from __future__ import annotations

from collections.abc import Iterable

from ..ir.params import fmt_shape, fmt_side  # noqa: F401 - the CLI formats shapes through here


def human(n: float, unit: str = "") -> str:
    """15470264320 -> '15.47G'."""
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{suffix}{unit}"
    return f"{n:g}{unit}"


def human_bytes(n: float) -> str:
    """60950432 -> '58.1 MiB'."""
    for scale, suffix in ((2 ** 30, "GiB"), (2 ** 20, "MiB"), (2 ** 10, "KiB")):
        if n >= scale:
            return f"{n / scale:.1f} {suffix}"
    return f"{int(n)} B"


# a pair as tables write it: the IR's own rule (the CLI imports it from here too)
side = fmt_side


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def ranges(values: Iterable[int]) -> str:
    """``32, 33, 34, 40`` as ``32-34, 40`` (the valid input sizes of ``netdsl check --sizes``)."""
    spans: list[list[int]] = []
    for v in values:
        if spans and v == spans[-1][1] + 1:
            spans[-1][1] = v
        else:
            spans.append([v, v])
    return ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in spans) or "none"
