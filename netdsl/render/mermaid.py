"""``netdsl graph -o x.mmd``: a :class:`~netdsl.render.graph.Picture` as a Mermaid flowchart
(GitHub and most Markdown viewers draw it; nothing to install). Labels come from specs, so
every character outside a small safe set is written as a Mermaid entity code (``#35;``)."""

from __future__ import annotations

import json
import re

from .graph import Picture

_SAFE = re.compile(r"[A-Za-z0-9 .,:_/+=()-]")


def _text(text: str) -> str:
    return "".join(c if _SAFE.fullmatch(c) else f"#{ord(c)};" for c in text)


def to_mermaid(pic: Picture) -> str:
    ids = {path: f"c{k}" for k, path in enumerate(pic.clusters())}
    lines = ["---", f"title: {json.dumps(pic.title)}", "---", "flowchart TB"]  # JSON is YAML
    members: dict[str, list[str]] = {}
    for box in pic.boxes:
        label = "<br/>".join(_text(x) for x in box.lines)
        members.setdefault(box.cluster, []).append(f'n{box.id}["{label}"]')
    lines += _nest(members, ids, "", 1)
    for edge in pic.edges:
        arrow = "-.->" if edge.dashed else "-->"
        lines.append(f'  n{edge.src} {arrow}|"{_text(edge.label)}"| n{edge.dst}')
    for box in pic.boxes:
        dash = ",stroke-dasharray:4 3" if box.dashed else ""
        lines.append(f"  style n{box.id} fill:{box.fill},stroke:#555555{dash}")
    return "\n".join(lines) + "\n"


def _nest(members: dict[str, list[str]], ids: dict[str, str], path: str, depth: int) -> list[str]:
    pad = "  " * depth
    lines = [pad + m for m in members.get(path, [])]
    for child in ids:
        parent = child.rsplit(".", 1)[0] if "." in child else ""
        if parent == path and child != path:
            name = child.rsplit(".", 1)[-1]
            lines += [f'{pad}subgraph {ids[child]}["{_text(name)}"]',
                      *_nest(members, ids, child, depth + 1), f"{pad}end"]
    return lines
