"""A design space, statically: the figures of every point of a grid of network parameters,
which points fit the budgets, and which are Pareto-optimal — all from the IR, before anything
is built or trained (torch is never imported).

>>> points = grid({"depth": [1, 2], "width": [8, 16]})
>>> [sorted(p.items()) for p in points][:2]
[[('depth', 1), ('width', 8)], [('depth', 1), ('width', 16)]]
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from .. import limits
from ..errors import NetDSLError, SpecLimitError
from .analyse import summarize

FIGURES = ("params", "macs", "activation_bytes", "receptive_field", "depth")
# What trials measure (examples/train.py's metrics.json); accuracy is the one higher is better.
MEASURED = ("accuracy", "train_seconds")


@dataclass(frozen=True)
class Point:
    """One point of the grid: its parameters and figures, or the diagnostic it failed with."""

    params: Mapping[str, object]
    figures: Mapping[str, int] = field(default_factory=dict)
    error: NetDSLError | None = None
    over: tuple[str, ...] = ()  # the budgets it exceeds
    pareto: bool = False
    measured: Mapping[str, float] = field(default_factory=dict)  # means over its trials, "runs"

    @property
    def fits(self) -> bool:
        return self.error is None and not self.over


def grid(axes: Mapping[str, list]) -> list[dict[str, object]]:
    """Every combination of the axes' values, the first axis slowest."""
    names = list(axes)
    return [dict(zip(names, values, strict=True))
            for values in itertools.product(*(axes[n] for n in names))]


def figures(graph, batch: int = 1, dtype: str = "float32") -> dict[str, int]:
    """The static figures of one checked graph (inference: auxiliary heads off)."""
    summary = summarize(graph, batch, dtype)
    inference = summary.inference()
    return {"params": inference["params"], "macs": inference["macs"],
            "activation_bytes": summary.forward_bytes(),
            "receptive_field": max(summary.feature_rf), "depth": summary.depth}


def explore(compile_point: Callable[[dict], object], points: list[dict],
            budgets: Mapping[str, int] | None = None, pareto: tuple[str, str] = ("macs", "params"),
            batch: int = 1, dtype: str = "float32") -> list[Point]:
    """Compiles each point with ``compile_point(params)`` (a checked graph, or a NetDSLError),
    measures it, marks the budgets each exceeds, and the Pareto front over ``pareto`` (lower is
    better in both) among the points that fit."""
    budgets = dict(budgets or {})
    unknown = set(budgets) - set(FIGURES)
    if unknown:
        raise ValueError(f"unknown budget {sorted(unknown)[0]!r}; budgets: {', '.join(FIGURES)}")
    out: list[Point] = []
    compiled = 0  # layers compiled so far (limits.MAX_SWEEP_LAYERS)
    for params in points:
        try:
            graph = compile_point(params)
        except NetDSLError as error:
            out.append(Point(params, error=error))
            continue
        compiled += len(graph.nodes)
        _within_budget(compiled, len(graph.nodes), len(points) - len(out) - 1, len(points), graph)
        try:
            measured = figures(graph, batch, dtype)
        except NetDSLError as error:
            out.append(Point(params, error=error))
            continue
        over = tuple(k for k, limit in budgets.items() if measured[k] > limit)
        out.append(Point(params, measured, over=over))
    return mark_pareto(out, pareto)


def _within_budget(compiled: int, layers: int, left: int, points: int, graph) -> None:
    """Refuses a sweep whose points, at this point's size, would compile more layers than
    :data:`netdsl.limits.MAX_SWEEP_LAYERS`: known after its first point, not hours later."""
    if compiled + layers * left > limits.MAX_SWEEP_LAYERS:
        raise SpecLimitError(f"a sweep of {points:,} points of {layers:,} layers; at most "
                             f"{limits.MAX_SWEEP_LAYERS:,} layers are compiled in one sweep",
                             graph.input.span,
                             notes=("sweep fewer values, or screen a coarser grid first",))


def mark_pareto(points: list[Point], axes: tuple[str, str]) -> list[Point]:
    """Marks the points no other fitting point beats on both axes (ties are kept): lower is
    better, except accuracy. A measured axis leaves out the points with no trial."""
    def value(p: Point, axis: str) -> float:
        return -p.measured[axis] if axis == "accuracy" else {**p.figures, **p.measured}[axis]

    fitting = [p for p in points if p.fits and all(a in p.figures or a in p.measured for a in axes)]
    scores = {id(p): tuple(value(p, a) for a in axes) for p in fitting}

    def dominated(p: Point) -> bool:
        mine = scores[id(p)]
        return any(all(t <= m for t, m in zip(theirs, mine, strict=True)) and theirs != mine
                   for theirs in scores.values())
    return [replace(p, pareto=id(p) in scores and not dominated(p)) for p in points]


def same_value(a: object, b: object) -> bool:
    """A swept value against one a trial recorded in JSON (lists for tuples, str for names)."""
    def plain(v: object) -> object:
        return tuple(plain(x) for x in v) if isinstance(v, list | tuple) else v
    a, b = plain(a), plain(b)
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (a, b))
    return a == b if numbers or isinstance(a, tuple) or isinstance(b, tuple) else str(a) == str(b)


def join_results(points: list[Point], trials: list[Mapping]) -> list[Point]:
    """Each point with the mean of what its trials measured: a trial belongs to a point when
    every parameter the point names has the same value in the trial's ``model`` (the network
    parameters it was built with)."""
    out = []
    for p in points:
        mine = [t for t in trials
                if all(k in t["model"] and same_value(v, t["model"][k]) for k, v in p.params.items())]
        measured = {k: sum(t[k] for t in mine) / len(mine) for k in MEASURED} if mine else {}
        out.append(replace(p, measured={**measured, "runs": len(mine)}))
    return out
