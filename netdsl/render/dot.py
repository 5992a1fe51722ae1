"""``netdsl graph``: a network as Graphviz source, one box per chain of layers, blocks as
nested clusters, each edge labelled with the shape it carries; every box's text and colour
come from the op records (``display``, ``style``, ``trailing``)."""

from __future__ import annotations

from pathlib import Path

from ..errors import NetDSLError
from .numbers import human
from .tables import fmt_shape

_FILL = {"weight": "#dbe9f6", "pool": "#fbe3c9", "merge": "#eeeeee", "io": "#ffffff",
         "block": "#e8e0f4"}


def _record(node):
    from ..ir.ops import OPS

    return OPS[node.op]


def layer_text(node) -> str:
    """A layer as a slide would write it: ``conv 3x3/2, 128``, ``maxpool 3x3/2``, ``fc 4096``
    (its op record's ``display``)."""
    return _record(node).display(dict(node.attrs), node.shape or ())


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
    for node in graph.nodes:
        if holder[node.id] != node.id:
            continue
        parts = names[node.id].split(".")
        if depth is not None and len(parts) > depth:
            key = ".".join(parts[:depth])
            head = next((b for b, box in boxes.items() if box.get("group") == key), None)
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


def _box_label(box: dict, graph, prefix: str) -> str:
    if "group" in box:
        from ..passes.analyse import summarize

        params = sum(x.params for x in summarize(graph).layers if x.id in
                     {n.id for n in box["nodes"]})
        lines = [box["group"], f"{len(box['nodes'])} layers, {human(params)} params"]
        return "\\n".join(_escape(x) for x in lines)
    lines: list[str] = []
    for node in box["nodes"]:
        text = layer_text(node)
        if lines and _record(node).trailing:
            lines[-1] += " · " + text
        else:
            lines.append(text)
    if prefix:
        lines[0] = f"{prefix}: {lines[0]}"
    return "\\n".join(_escape(x) for x in lines)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


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


def to_dot(graph, depth: int | None = None) -> str:
    """Graphviz source: one box per chain of layers (or per block below ``depth``), blocks
    as nested clusters, each edge labelled with the shape it carries; auxiliary classifiers
    dashed (training only), identity shortcuts dashed."""
    boxes, box_of, holder, _ = _boxes(graph, depth)
    where = _clusters(boxes)
    lines = [f'digraph "{_escape(graph.name)}" {{', "  rankdir=TB; newrank=true; ordering=out;",
             '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11];',
             '  edge [fontname="Helvetica", fontsize=9, color="#555555"];',
             f'  label="{_escape(graph.name)}: {fmt_shape(graph.input.shape)} -> '
             f'{fmt_shape(graph.output_shape)}"; labelloc=t; fontname="Helvetica";']
    members: dict[str, list[str]] = {}
    for head, box in boxes.items():
        op = "block" if "group" in box else _record(box["nodes"][0]).style
        style = ', style="rounded,filled,dashed"' if box["aux"] else ""
        members.setdefault(where[head][0], []).append(
            f'n{head} [label="{_box_label(box, graph, where[head][1])}", '
            f'fillcolor="{_FILL.get(op, "#ffffff")}"{style}];')
    lines += _cluster_lines(members, "", 1)
    lines += _edge_lines(graph, boxes, box_of, holder)
    return "\n".join([*lines, "}"]) + "\n"


def _cluster_lines(members: dict[str, list[str]], path: str, indent: int) -> list[str]:
    pad = "  " * indent
    lines = [pad + m for m in members.get(path, [])]
    children = sorted({p[len(path) + 1 if path else 0:].split(".")[0] for p in members
                       if p != path and (not path or p.startswith(path + "."))})
    order = {p: k for k, p in enumerate(members)}
    children.sort(key=lambda c: min(order[p] for p in members
                                    if p == (f"{path}.{c}" if path else c)
                                    or p.startswith(f"{path}.{c}." if path else f"{c}.")))
    for child in children:
        full = f"{path}.{child}" if path else child
        lines += [f'{pad}subgraph "cluster_{_escape(full)}" {{',
                  f'{pad}  label="{_escape(full)}"; style="rounded"; color="#999999"; '
                  'fontname="Helvetica"; fontsize=10; labeljust=l;',
                  *_cluster_lines(members, full, indent + 1), f"{pad}}}"]
    return lines


def _edge_lines(graph, boxes, box_of, holder) -> list[str]:
    seen, lines = set(), []
    for node in graph.nodes:
        if holder[node.id] != node.id:
            continue
        for i in node.inputs:
            src, dst = box_of[holder[i]], box_of[node.id]
            if src == dst or (src, dst) in seen:
                continue
            seen.add((src, dst))
            identity = holder[i] != i
            style = ', style=dashed, label=" identity"' if identity else \
                f', label=" {fmt_shape(graph.nodes[holder[i]].shape)}"'
            lines.append(f"  n{src} -> n{dst} [{style[2:]}];")
    return lines


def check_picture(path: Path) -> None:
    """Fails before any work for a picture that cannot be written (format, folder)."""
    from ..files import check_writable

    suffix = path.suffix.lower().lstrip(".")
    if suffix not in ("dot", "gv", "svg", "png", "pdf"):
        raise NetDSLError(f"cannot write '{path}': unknown picture format '.{suffix}'",
                          notes=("known formats: .dot, .svg, .png, .pdf",))
    check_writable(path)


def write_picture(dot: str, path: Path) -> None:
    """Writes ``.dot`` text as is; ``.svg``/``.png``/``.pdf`` through Graphviz's ``dot``
    (atomically, either way)."""
    import shutil
    import subprocess

    from ..files import atomic_write

    check_picture(path)
    suffix = path.suffix.lower().lstrip(".")
    if suffix in ("dot", "gv"):
        atomic_write(path, lambda tmp: Path(tmp).write_text(dot, encoding="utf-8"))
        return
    exe = shutil.which("dot")
    if exe is None:
        raise NetDSLError(f"writing .{suffix} needs Graphviz's 'dot' program, which is not "
                          "installed", notes=("install Graphviz (Debian: apt-get install "
                                              "graphviz), or write .dot and render it elsewhere",))

    def render(tmp: str) -> None:
        done = subprocess.run([exe, f"-T{suffix}", "-o", tmp], input=dot, text=True,
                              capture_output=True, timeout=120, check=False)
        if done.returncode != 0:
            raise NetDSLError(f"Graphviz's dot failed on '{path}': {done.stderr.strip()[:500]}")
    atomic_write(path, render)
