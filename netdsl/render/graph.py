"""A network as a picture, before any output format: one box per chain of layers (or per
block collapsed below a depth), blocks as nested clusters, edges labelled with the shape they
carry. dot.py, mermaid.py and svg.py write this same :class:`Picture`; every box's text and
colour come from the op records (``display``, ``style``, ``trailing``). Labels are plain text
here (they come from specs): each writer escapes them for its format."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..ir.params import fmt_shape
from .numbers import human

_FILL = {"weight": "#dbe9f6", "pool": "#fbe3c9", "merge": "#eeeeee", "io": "#ffffff",
         "block": "#e8e0f4"}


def _record(node):
    from ..ir.ops import OPS

    return OPS[node.op]


def layer_text(node) -> str:
    """A layer as a slide would write it: ``conv 3x3/2, 128``, ``maxpool 3x3/2``, ``fc 4096``
    (its op record's ``display``)."""
    return _record(node).display(dict(node.attrs), node.shape or ())




@dataclass(frozen=True)
class Box:
    id: int
    lines: tuple[str, ...]   # plain text, one entry per line
    fill: str                # a colour, #rrggbb
    dashed: bool             # an auxiliary classifier (training only)
    cluster: str             # the dotted block path of the enclosing cluster ("" for none)


@dataclass(frozen=True)
class Edge:
    src: int
    dst: int
    label: str
    dashed: bool             # an identity shortcut


@dataclass
class Picture:
    title: str
    boxes: list[Box] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)

    def clusters(self) -> list[str]:
        """Every cluster path, parents before children, in order of first appearance."""
        seen: dict[str, None] = {}
        for box in self.boxes:
            parts = box.cluster.split(".") if box.cluster else []
            for k in range(1, len(parts) + 1):
                seen.setdefault(".".join(parts[:k]))
        return list(seen)


def picture(graph, depth: int | None = None) -> Picture:
    """The boxes, clusters and edges of ``graph`` (blocks below ``depth`` collapsed)."""
    boxes, box_of, holder, _ = _boxes(graph, depth)
    where = _clusters(boxes)
    from ..passes.analyse import node_params

    params = node_params(graph)  # once: a collapsed box sums its nodes' share
    out = Picture(f"{graph.name}: {fmt_shape(graph.input.shape)} -> {graph.output_text()}")
    for head, box in boxes.items():
        op = "block" if "group" in box else _record(box["nodes"][0]).style
        out.boxes.append(Box(head, tuple(_box_lines(box, params, where[head][1])),
                             _FILL.get(op, "#ffffff"), bool(box["aux"]), where[head][0]))
    seen: set[tuple[int, int]] = set()
    for node in graph.nodes:
        if holder[node.id] != node.id:
            continue
        for i in node.inputs:
            src, dst = box_of[holder[i]], box_of[node.id]
            if src == dst or (src, dst) in seen:
                continue
            seen.add((src, dst))
            identity = holder[i] != i
            label = "identity" if identity else fmt_shape(graph.nodes[holder[i]].shape)
            out.edges.append(Edge(src, dst, label, identity))
    return out


def _boxes(graph, depth: int | None):
    """Groups nodes into boxes: a block below ``depth``, or a chain of layers that nothing
    else reads (conv -> bn -> relu), broken after each pooling layer as the VGG stages are."""
    from ..ir.dataflow import reader_counts, value_holders
    from ..passes.analyse import aux_only, containers, row_names

    names, scope, aux = row_names(graph), containers(graph), aux_only(graph)
    holder = value_holders(graph)
    readers = reader_counts(graph, holder)
    box_of: dict[int, int] = {}
    boxes: dict[int, dict] = {}
    run: tuple[str, int] | None = None  # the block box the previous node went into
    for node in graph.nodes:
        if holder[node.id] != node.id:
            continue
        parts = names[node.id].split(".")
        if depth is not None and len(parts) > depth:
            key = ".".join(parts[:depth])
            # a block box holds one run of consecutive nodes: a block whose nodes other ones
            # interleave (FPN's "fpn.inner_blocks.2", then a top-level add, then
            # "fpn.layer_blocks.0") is drawn as several boxes, never as a box that feeds
            # the add which feeds it back (a cycle)
            head = run[1] if run is not None and run[0] == key else None
            if head is None:
                head = node.id
                boxes[head] = {"group": key, "nodes": [], "scope": ".".join(parts[:depth - 1]),
                               "aux": node.id in aux}
        else:
            source = holder[node.inputs[0]] if len(node.inputs) == 1 else None
            head = box_of.get(source) if source is not None else None
            if head is None or not _fuses(graph, source, node, readers, scope, boxes[head]):
                head = node.id
                boxes[head] = {"nodes": [], "scope": scope[node.id], "aux": node.id in aux}
            else:
                boxes[head]["scope"] = _common(boxes[head]["scope"], scope[node.id])
        boxes[head]["nodes"].append(node)
        box_of[node.id] = head
        run = (boxes[head]["group"], head) if "group" in boxes[head] else None
    return boxes, box_of, holder, names


def _common(a: str, b: str) -> str:
    common = []
    for x, y in zip(a.split("."), b.split("."), strict=False):
        if x != y:
            break
        common.append(x)
    return ".".join(common)


def _fuses(graph, source: int, node, readers, scope, box) -> bool:
    prev = graph.nodes[source]
    if "group" in box or prev.op == "input" or readers[source] != 1:
        return False
    shrinks = _record(prev).style == "pool" \
        and prev.shape[1:] != graph.nodes[prev.inputs[0]].shape[1:]
    if shrinks and not _record(node).trailing:  # a new box at each resolution, as VGG's stages
        return False
    a, b = scope[source], scope[node.id]
    if a == b or (_record(node).trailing and b == ""):
        return True
    # within one block: units of one branch (inception3a.branch2.0 -> .1), or nested ones
    nested = bool(a) and bool(b) and (b.startswith(a + ".") or a.startswith(b + "."))
    siblings = "." in a and "." in b and a.rsplit(".", 1)[0] == b.rsplit(".", 1)[0]
    return nested or siblings


def _box_lines(box: dict, params: list[int], prefix: str) -> list[str]:
    if "group" in box:
        total = sum(params[n.id] for n in box["nodes"])
        return [box["group"], f"{len(box['nodes'])} layers, {human(total)} params"]
    lines: list[str] = []
    for node in box["nodes"]:
        text = layer_text(node)
        if lines and _record(node).trailing:
            lines[-1] += " · " + text
        else:
            lines.append(text)
    if prefix:
        lines[0] = f"{prefix}: {lines[0]}"
    return lines


def _clusters(boxes: dict) -> dict[int, tuple[str, str]]:
    """Each box's cluster (the deepest enclosing block holding two boxes or more) and the
    rest of its block path, written before its label (``branch1: conv 1x1, 64 ...``)."""
    count: dict[str, int] = {}
    for box in boxes.values():
        parts = box["scope"].split(".") if box["scope"] else []
        for k in range(len(parts) + 1):
            count[".".join(parts[:k])] = count.get(".".join(parts[:k]), 0) + 1
    out = {}
    for head, box in boxes.items():
        parts = box["scope"].split(".") if box["scope"] else []
        k = len(parts)
        while k > 0 and count[".".join(parts[:k])] < 2:
            k -= 1
        rest = ".".join(parts[k:])
        out[head] = (".".join(parts[:k]), "" if rest.isdigit() else rest)
    return out


