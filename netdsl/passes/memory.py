"""Training in a memory budget: which units of a network to recompute (activation
checkpointing) so that one training step fits, planned on the IR alone (no torch).

What the budget covers: the parameters, their gradients and the activations of one
training step (forward, loss, backward) at ``batch``, the input batch included, as for
plain SGD. An optimizer's state is not in it (SGD with momentum keeps one more copy of the
parameters, Adam two): leave room for it.

The model of a step (bytes, at the plan's batch):

- forward: every tensor a node writes is kept for backward (conv and batch norm keep their
  input, an in-place ReLU its output), plus what backward needs besides (a max pool's int64
  indices; dropout's mask, and its output, which is new memory in training);
- a recomputed unit keeps only its input: inside, each tensor is freed after its last
  reader, as in inference; in backward the unit's forward runs again, keeping everything,
  just before its own backward;
- backward, node by node in reverse: the gradient of each tensor is alive from the first of
  its readers' backward to its own (a sum's and a concatenation's inputs share their
  output's gradient, as views do); a node's backward frees what it kept and allocates its
  parameters' gradients (which start as None, as ``optimizer.zero_grad()`` leaves them).

Units are the stretches between cut points: places in the forward where one tensor alone is
alive (between ResNet's bottlenecks, between Inception modules) and nothing later writes
into it in place. The planner recomputes the units that free the most bytes per recomputed
multiply-accumulate until the predicted peak fits, then drops any it no longer needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from math import prod

from ..errors import BuildError
from ..ir.dataflow import reader_counts, runs_in_place, value_holders
from ..ir.graph import Graph
from ..ir.ops import OPS
from .analyse import activation_counts, containers, node_params

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


@dataclass(frozen=True)
class Unit:
    """Nodes ``start + 1 .. end``: ``start``'s tensor goes in, ``end``'s comes out."""

    start: int
    end: int
    name: str  # the block the unit's nodes share (``layer3.5``), or first..last
    saved: int  # bytes its forward keeps for backward when it is not recomputed
    macs: int  # multiply-accumulates per batch its recomputation costs
    checkpointable: bool  # no auxiliary output inside (those must stay in the forward)


@dataclass(frozen=True)
class MemoryPlan:
    """Which stretches of the network a training step recomputes, and the predicted peaks
    (bytes, the parameters and gradients included)."""

    network: str
    batch: int
    budget: int | None
    units: tuple[Unit, ...]  # where the network can be cut, in forward order
    recomputed: tuple[Unit, ...]  # the recomputed segments (runs of units), in forward order
    peak: int  # predicted peak of a training step with this plan
    eager_peak: int  # ... and without checkpointing
    params: int  # bytes of parameters (gradients are as many)

    def segments(self) -> tuple[tuple[int, int], ...]:
        """(start, end) node ids of each recomputed segment: nodes start + 1 .. end."""
        return tuple((u.start, u.end) for u in self.recomputed)

    @property
    def recompute_fraction(self) -> float:
        """Recomputed MACs as a fraction of the forward's."""
        return sum(u.macs for u in self.recomputed) / (sum(u.macs for u in self.units) or 1)

    def lines(self) -> list[str]:
        names = [u.name for u in self.recomputed]
        shown = ", ".join(names) if len(names) <= 12 else \
            ", ".join(names[:6]) + f", ... ({len(names) - 12} more), " + ", ".join(names[-6:])
        budget = "none" if self.budget is None else fmt_bytes(self.budget)
        return [f"memory plan for {self.network} at batch {self.batch}, budget {budget}:",
                f"  predicted peak of a training step {fmt_bytes(self.peak)} (without "
                f"checkpointing {fmt_bytes(self.eager_peak)}; parameters and gradients "
                f"{fmt_bytes(2 * self.params)})",
                f"  recomputed in backward: {len(names)} segments "
                f"({self.recompute_fraction:.0%} of the forward's MACs): {shown or 'none'}"]

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def to_json(self) -> dict:
        return {"network": self.network, "batch": self.batch, "budget": self.budget,
                "predicted_peak": self.peak, "eager_peak": self.eager_peak,
                "params_bytes": self.params, "recomputed": [u.name for u in self.recomputed],
                "recompute_fraction": round(self.recompute_fraction, 4)}


def fmt_bytes(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def parse_bytes(value: int | str) -> int:
    """``2GB`` (10^9), ``1.5GiB`` (2^30), ``512MB``, or a whole number of bytes."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?\s*", str(value), re.IGNORECASE)
    if isinstance(value, str) and match:
        n = int(float(match[1]) * _UNITS[(match[2] or "").lower()])
        if n > 0:
            return n
    raise BuildError(f"memory_budget must be a size such as '2GB', '512MiB' or a number of "
                     f"bytes, not {str(value)[:40]!r}")


# --- the model of a training step ----------------------------------------------------------

class _Step:
    """Per-node facts of the training model at one batch (bytes)."""

    def __init__(self, graph: Graph, batch: int, dtype_bytes: int = 4):
        counts = activation_counts(graph)
        self.graph = graph
        self.size = [prod(n.shape) * batch * dtype_bytes for n in graph.nodes]
        self.alloc, self.owner = [], []
        # a record's memory facts (backward's extra bytes, a training mask): see OpRecord
        records = [OPS[n.op] for n in graph.nodes]
        masked = [r.training_mask_bytes > 0 for r in records]
        for n, record in zip(graph.nodes, records, strict=True):
            values = prod(n.shape) * batch
            owns = counts[n.id] > 0 or masked[n.id] or not n.inputs
            own = values * (dtype_bytes + record.training_mask_bytes) if masked[n.id] else \
                counts[n.id] * batch * dtype_bytes
            self.alloc.append(own + values * record.backward_extra_bytes if owns else 0)
            self.owner.append(n.id if owns else self.owner[n.inputs[0]])
        self.passes = [r.gradient_passes_through for r in records]
        self.params = [p * dtype_bytes for p in node_params(graph)]
        self.last = list(range(len(graph.nodes)))  # each storage's last reader
        for n in graph.nodes:
            for i in n.inputs:
                self.last[self.owner[i]] = max(self.last[self.owner[i]], n.id)
        self.kept = {self.owner[i] for i in (0, *graph.kept())}
        # a view's gradient is a view of its output's: no new memory
        self.view = [bool(n.inputs) and counts[n.id] == 0 and not masked[n.id]
                     and OPS[n.op].writes_nothing(dict(n.attrs), [graph.nodes[i].shape
                                                                  for i in n.inputs], n.shape)
                     for n in graph.nodes]


def simulate(step: _Step, recomputed: tuple[Unit, ...]) -> int:
    """The predicted peak (bytes) of a training step that recomputes these segments."""
    graph = step.graph
    inner: dict[int, Unit] = {}  # node -> the recomputed segment it is inside
    for unit in recomputed:
        for node in range(unit.start + 1, unit.end + 1):
            inner[node] = unit
    held = {step.owner[u.start] for u in recomputed}  # checkpoint keeps its input
    alive: dict[object, int] = {}
    live = peak = 0
    for n in graph.nodes:  # forward
        if step.owner[n.id] == n.id:
            alive[n.id] = step.alloc[n.id]
            live += step.alloc[n.id]
        peak = max(peak, live)
        for i in {step.owner[i] for i in n.inputs} | {step.owner[n.id]}:
            if i in inner and step.last[i] <= n.id and i not in step.kept and i not in held \
                    and i in alive and i != inner[i].end:
                live -= alive.pop(i)
    grads, frontier = 0, {i: step.size[i] for i in graph.kept()}
    for n in reversed(graph.nodes[1:]):  # backward
        unit = inner.get(n.id)
        if unit is not None and unit.end == n.id:  # recomputed just before its backward
            for m in range(unit.start + 1, unit.end + 1):
                if step.owner[m] == m:
                    alive[("again", m)] = step.alloc[m]
                    live += step.alloc[m]
        out = frontier.get(n.id, 0)
        passes = step.view[n.id] or step.passes[n.id]
        for i in set(n.inputs) - {0}:
            if i not in frontier:
                frontier[i] = 0 if passes else step.size[i]
        grads += step.params[n.id]
        peak = max(peak, live + sum(frontier.values()) + grads)
        frontier.pop(n.id, None)
        if passes and set(n.inputs) - {0}:  # the gradient lives on as (part of) its inputs'
            last = min(set(n.inputs) - {0})  # the input whose backward comes last
            frontier[last] += out
        for key in (n.id, ("again", n.id)):
            if key in alive and key not in step.kept:
                live -= alive.pop(key)
    return peak + sum(step.params)


# --- units and the plan --------------------------------------------------------------------

def units(graph: Graph, step: _Step, batch: int) -> tuple[Unit, ...]:
    """The network cut where one tensor alone crosses (see the module docstring)."""
    holder = value_holders(graph)
    readers = reader_counts(graph, holder)
    written_in_place = set()
    for n in graph.nodes:
        if n.inputs and runs_in_place(graph, n, holder, readers):
            source = n.inputs[0]
            while True:  # through views, to the tensor that is overwritten
                written_in_place.add(source)
                if not step.view[source]:
                    break
                source = graph.nodes[source].inputs[0]
    last_read = [-1] * len(graph.nodes)
    for n in graph.nodes:
        for i in n.inputs:
            last_read[i] = max(last_read[i], n.id)
    kept = set(graph.kept())
    cuts, open_tensors = [0], set()
    for n in graph.nodes[:-1]:
        open_tensors = {i for i in open_tensors | {n.id} if last_read[i] > n.id}
        if open_tensors <= {n.id} and n.id not in written_in_place and n.id > 0:
            cuts.append(n.id)
    cuts.append(len(graph.nodes) - 1)
    scope = containers(graph)
    macs = [OPS[n.op].macs(dict(n.attrs), [graph.nodes[i].shape for i in n.inputs], n.shape)
            for n in graph.nodes]
    out = []
    for start, end in zip(cuts, cuts[1:], strict=False):
        inside = range(start + 1, end + 1)
        # module names (a residual sum's scope is the stage, not its block)
        names = [graph.nodes[i].name for i in inside if graph.nodes[i].name] or \
            [scope[i] for i in inside]
        common = _common(names)
        out.append(Unit(start, end, common or f"{names[0]}..{names[-1]}",
                        sum(step.alloc[i] for i in inside if step.owner[i] == i),
                        sum(macs[i] for i in inside) * batch,
                        not any(i in kept for i in inside if i != end)))
    return tuple(out)


def _common(names: list[str]) -> str:
    parts = [n.split(".") for n in names if n]
    common = []
    for level in zip(*parts, strict=False):
        if any(p != level[0] for p in level):
            break
        common.append(level[0])
    return ".".join(common)


def segments_of(cut: tuple[Unit, ...], chosen: set[int], cap: int) -> list[tuple[int, ...]]:
    """Chosen units that follow each other, joined into segments of at most ``cap`` saved
    bytes (recomputed together: the tensors between them need not be kept); a unit that
    saves nothing and costs nothing (a view) joins a segment on both sides."""
    out: list[list[int]] = []
    previous = -2
    for i, unit in enumerate(cut):
        glue = unit.saved == 0 and unit.macs == 0 and unit.checkpointable and i + 1 in chosen
        if i not in chosen and not glue:
            continue
        total = sum(cut[j].saved for j in out[-1]) if out and previous == i - 1 else None
        if total is not None and total + unit.saved <= cap:
            out[-1].append(i)
        else:
            out.append([i])
        previous = i
    return [tuple(seg) for seg in out]


def _merged(cut: tuple[Unit, ...], segments: list[tuple[int, ...]]) -> tuple[Unit, ...]:
    return tuple(Unit(cut[seg[0]].start, cut[seg[-1]].end,
                      cut[seg[0]].name if len(seg) == 1 else
                      f"{cut[seg[0]].name.split('..')[0]}..{cut[seg[-1]].name.split('..')[-1]}",
                      sum(cut[i].saved for i in seg), sum(cut[i].macs for i in seg), True)
                 for seg in segments)


def plan(graph: Graph, budget: int | str | None, batch: int = 1) -> MemoryPlan:
    """The cheapest plan found whose predicted peak fits ``budget`` (None: no checkpointing,
    only the figures); raises BuildError (E010) when even recomputing every unit does not.

    Units are taken in order of bytes saved per recomputed MAC; for each cap on a segment's
    size (the whole network's activations halved until one unit's), the shortest prefix of
    that order that fits is found by bisection; the cheapest fitting plan over all caps wins.
    """
    budget = None if budget is None else parse_bytes(budget)
    step = _Step(graph, batch)
    cut = units(graph, step, batch)
    eager = simulate(step, ())

    def made(segs: tuple[Unit, ...], peak: int) -> MemoryPlan:
        return MemoryPlan(graph.name, batch, budget, cut, segs, peak, eager, sum(step.params))
    if budget is None or eager <= budget:
        return made((), eager)
    order = sorted((i for i, u in enumerate(cut) if u.checkpointable and u.saved),
                   key=lambda i: -cut[i].saved / (cut[i].macs + 1))
    total = sum(cut[i].saved for i in order)
    caps, cap = [], total
    while cap > max((cut[i].saved for i in order), default=0):
        caps.append(cap)
        cap //= 2
    caps.append(cap)
    best, least = None, eager
    for cap in caps:
        def trial(n: int, cap: int = cap) -> tuple[int, tuple[Unit, ...]]:
            segs = _merged(cut, segments_of(cut, set(order[:n]), cap))
            return simulate(step, segs), segs
        peak, segs = trial(len(order))
        least = min(least, peak)
        if peak > budget:
            continue
        low, high = 0, len(order)  # trial(high) fits, trial(low) does not
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (low, middle) if trial(middle)[0] <= budget else (middle, high)
        peak, segs = trial(high)
        cost = sum(u.macs for u in segs)
        if best is None or (cost, peak) < best[0]:
            best = ((cost, peak), segs)
    if best is None:
        raise BuildError(
            f"a training step of {graph.name} at batch {batch} needs at least "
            f"{fmt_bytes(least)}, more than the memory budget of {fmt_bytes(budget)}",
            notes=(f"parameters and their gradients alone take {fmt_bytes(2 * sum(step.params))}",
                   f"without checkpointing it needs {fmt_bytes(eager)}; recomputing the most "
                   f"it can brings it to {fmt_bytes(least)}",
                   "raise memory_budget, or lower the batch"))
    return made(best[1], best[0][1])
