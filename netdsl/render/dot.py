"""``netdsl graph -o x.dot``: a :class:`~netdsl.render.graph.Picture` as Graphviz source, and
writing pictures in every format (``.dot``, ``.mmd``; ``.svg`` through Graphviz's ``dot`` when
installed, else netdsl's own layout; ``.png``/``.pdf`` through ``dot``)."""

from __future__ import annotations

from pathlib import Path

from ..errors import NetDSLError
from .graph import Picture, picture

FORMATS = ("dot", "gv", "mmd", "svg", "png", "pdf")


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _label(lines) -> str:
    return "\\n".join(_escape(x) for x in lines)


def to_dot(graph, depth: int | None = None) -> str:
    """Graphviz source: one box per chain of layers (or per block below ``depth``), blocks
    as nested clusters, each edge labelled with the shape it carries; auxiliary classifiers
    dashed (training only), identity shortcuts dashed."""
    return picture_to_dot(picture(graph, depth), graph.name)


def picture_to_dot(pic: Picture, name: str) -> str:
    lines = [f'digraph "{_escape(name)}" {{', "  rankdir=TB; newrank=true; ordering=out;",
             '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11];',
             '  edge [fontname="Helvetica", fontsize=9, color="#555555"];',
             f'  label="{_escape(pic.title)}"; labelloc=t; fontname="Helvetica";']
    members: dict[str, list[str]] = {}
    for box in pic.boxes:
        style = ', style="rounded,filled,dashed"' if box.dashed else ""
        members.setdefault(box.cluster, []).append(
            f'n{box.id} [label="{_label(box.lines)}", fillcolor="{box.fill}"{style}];')
    lines += _cluster_lines(members, "", 1)
    for edge in pic.edges:
        style = 'style=dashed, label=" identity"' if edge.dashed else \
            f'label=" {_escape(edge.label)}"'
        lines.append(f"  n{edge.src} -> n{edge.dst} [{style}];")
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


def check_picture(path: Path) -> None:
    """Fails before any work for a picture that cannot be written (format, folder)."""
    from ..files import check_writable

    suffix = path.suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise NetDSLError(f"cannot write '{path}': unknown picture format '.{suffix}'",
                          notes=("known formats: " + ", ".join(f".{f}" for f in FORMATS),))
    check_writable(path)


def write_picture(graph, path: Path, depth: int | None = None) -> str:
    """Writes ``graph`` as the suffix of ``path`` says, atomically; returns how it was drawn.
    ``.svg`` uses Graphviz's layout when ``dot`` is installed, else netdsl's own (grandalf)."""
    import shutil

    from ..files import atomic_write

    check_picture(path)
    suffix = path.suffix.lower().lstrip(".")
    pic = picture(graph, depth)
    if suffix in ("dot", "gv", "mmd"):
        if suffix == "mmd":
            from .mermaid import to_mermaid

            text = to_mermaid(pic)
        else:
            text = picture_to_dot(pic, graph.name)
        atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
        return "text"
    exe = shutil.which("dot")
    if exe is None and suffix == "svg":
        from .svg import to_svg

        text = to_svg(pic)
        atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
        return "laid out by netdsl: Graphviz's dot is not installed"
    if exe is None:
        raise NetDSLError(f"writing .{suffix} needs Graphviz's 'dot' program, which is not "
                          "installed", notes=("write .svg (drawn without Graphviz) or .mmd "
                                              "(Mermaid), or install Graphviz",))
    _run_dot(exe, picture_to_dot(pic, graph.name), suffix, path)
    return "Graphviz"


def _run_dot(exe: str, dot: str, suffix: str, path: Path) -> None:
    import subprocess

    from ..files import atomic_write

    def render(tmp: str) -> None:
        done = subprocess.run([exe, f"-T{suffix}", "-o", tmp], input=dot, text=True,
                              capture_output=True, timeout=120, check=False)
        if done.returncode != 0:
            raise NetDSLError(f"Graphviz's dot failed on '{path}': {done.stderr.strip()[:500]}")
    atomic_write(path, render)
