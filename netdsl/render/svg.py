"""``netdsl graph -o x.svg`` without Graphviz: a :class:`~netdsl.render.graph.Picture` laid
out by grandalf (a pure-Python Sugiyama layout, ``pip install 'netdsl[graph]'``) and written
as SVG by this module. Labels come from specs: every text and attribute is XML-escaped."""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from ..errors import NetDSLError
from .graph import Picture

CHAR_W, LINE_H, PAD, GAP = 6.6, 14.0, 8.0, 56.0  # 11px Helvetica, roughly


class _View:
    """What grandalf reads (w, h) and writes (xy: the centre) for each box."""

    def __init__(self, w: float, h: float):
        self.w, self.h, self.xy = w, h, (0.0, 0.0)


class _Route:
    def __init__(self):
        self.points: list[tuple[float, float]] = []

    def setpath(self, points):
        self.points = [tuple(p) for p in points]


def _layout(pic: Picture):
    """Each box's centre and size, and each edge's route (a list of points)."""
    try:
        from grandalf.graphs import Edge, Graph, Vertex
        from grandalf.layouts import SugiyamaLayout
    except ImportError:
        raise NetDSLError("drawing .svg without Graphviz needs grandalf",
                          notes=("pip install 'netdsl[graph]' (pure Python), install Graphviz, "
                                 "or write .mmd (Mermaid) or .dot",)) from None
    vertices = {}
    for box in pic.boxes:
        v = Vertex(box.id)
        width = max(len(line) for line in box.lines) * CHAR_W + 2 * PAD
        v.view = _View(width, len(box.lines) * LINE_H + PAD)
        vertices[box.id] = v
    edges = []
    for edge in pic.edges:
        e = Edge(vertices[edge.src], vertices[edge.dst])
        e.view = _Route()
        edges.append(e)
    graph = Graph(list(vertices.values()), edges)
    offset = 0.0
    for component in graph.C:  # each connected part laid out on its own, side by side
        layout = SugiyamaLayout(component)
        layout.yspace, layout.xspace = GAP, 20.0
        layout.init_all()
        layout.draw()
        xs = [v.view.xy[0] - v.view.w / 2 for v in component.sV]
        shift = offset - min(xs)
        for v in component.sV:
            v.view.xy = (v.view.xy[0] + shift, v.view.xy[1])
        for e in component.sE:
            e.view.points = [(x + shift, y) for x, y in e.view.points]
        offset = max(v.view.xy[0] + v.view.w / 2 for v in component.sV) + 2 * GAP
    return vertices, edges


def to_svg(pic: Picture) -> str:
    vertices, edges = _layout(pic)
    boxes = {b.id: b for b in pic.boxes}
    left = min(v.view.xy[0] - v.view.w / 2 for v in vertices.values()) - 4 * PAD
    top = min(v.view.xy[1] - v.view.h / 2 for v in vertices.values()) - 4 * PAD - 2 * LINE_H

    def at(x: float, y: float) -> str:
        return f"{x - left:.1f},{y - top:.1f}"

    body = _clusters(pic, vertices, left, top)
    for edge, e in zip(pic.edges, edges, strict=True):
        points = _clip(e.view.points or [vertices[edge.src].view.xy, vertices[edge.dst].view.xy],
                       vertices[edge.src].view, vertices[edge.dst].view)
        dash = ' stroke-dasharray="4 3"' if edge.dashed else ""
        body.append(f'<polyline points="{" ".join(at(x, y) for x, y in points)}" fill="none" '
                    f'stroke="#555555" marker-end="url(#arrow)"{dash}/>')
        (x0, y0), (x1, y1) = points[len(points) // 2 - 1], points[len(points) // 2]
        body.append(f'<text x="{(x0 + x1) / 2 - left + 4:.1f}" y="{(y0 + y1) / 2 - top:.1f}" '
                    f'font-size="9">{escape(edge.label)}</text>')
    for box_id, v in vertices.items():
        body += _box(boxes[box_id], v.view, left, top)
    width = max(v.view.xy[0] + v.view.w / 2 for v in vertices.values()) - left + 4 * PAD
    height = max(v.view.xy[1] + v.view.h / 2 for v in vertices.values()) - top + 4 * PAD
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="Helvetica, Arial, sans-serif" '
        'font-size="11">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555555"/></marker>'
        '</defs>',
        f'<text x="{width / 2:.1f}" y="{LINE_H + 4:.1f}" text-anchor="middle" font-size="13">'
        f'{escape(pic.title)}</text>', *body, "</svg>"]) + "\n"


def _clip(points, src, dst) -> list[tuple[float, float]]:
    """The route from border to border (grandalf routes centre to centre), so that the arrow
    head shows at the destination box's edge."""
    points = [tuple(p) for p in points]
    points[0] = _border(src, points[1])
    points[-1] = _border(dst, points[-2])
    return points


def _border(view, toward) -> tuple[float, float]:
    """Where the line from ``view``'s centre toward a point leaves its rectangle."""
    (cx, cy), (x, y) = view.xy, toward
    dx, dy = x - cx, y - cy
    if dx == 0 and dy == 0:
        return cx, cy
    scale = min(view.w / 2 / abs(dx) if dx else float("inf"),
                view.h / 2 / abs(dy) if dy else float("inf"))
    return cx + dx * min(scale, 1.0), cy + dy * min(scale, 1.0)


def _box(box, view, left: float, top: float) -> list[str]:
    x, y = view.xy[0] - view.w / 2 - left, view.xy[1] - view.h / 2 - top
    dash = ' stroke-dasharray="4 3"' if box.dashed else ""
    out = [f'<rect x="{x:.1f}" y="{y:.1f}" width="{view.w:.1f}" height="{view.h:.1f}" rx="6" '
           f'fill={quoteattr(box.fill)} stroke="#555555"{dash}/>']
    for k, line in enumerate(box.lines):
        out.append(f'<text x="{view.xy[0] - left:.1f}" y="{y + PAD / 2 + (k + 0.8) * LINE_H:.1f}" '
                   f'text-anchor="middle">{escape(line)}</text>')
    return out


def _clusters(pic: Picture, vertices, left: float, top: float) -> list[str]:
    """A rounded frame around each block's boxes, labelled with the block's path; outer
    blocks first, so inner frames are drawn over them."""
    out = []
    paths = pic.clusters()
    for path in paths:
        inside = [vertices[b.id].view for b in pic.boxes
                  if b.cluster == path or b.cluster.startswith(path + ".")]
        # levels of clusters inside this one: each outer frame leaves room above the inner
        # frames' labels for its own
        below = max((p.count(".") - path.count(".") for p in paths if p.startswith(path + ".")),
                    default=0)
        pad = PAD * (1 + below)
        x0 = min(v.xy[0] - v.w / 2 for v in inside) - pad - left
        y0 = min(v.xy[1] - v.h / 2 for v in inside) - PAD / 2 - LINE_H * (1 + below) - top
        x1 = max(v.xy[0] + v.w / 2 for v in inside) + pad - left
        y1 = max(v.xy[1] + v.h / 2 for v in inside) + PAD / 2 - top  # within the gap
        out += [f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{x1 - x0:.1f}" height="{y1 - y0:.1f}" '
                'rx="8" fill="none" stroke="#999999"/>',
                f'<text x="{x0 + 4:.1f}" y="{y0 + LINE_H - 2:.1f}" font-size="10" '
                f'fill="#555555">{escape(path)}</text>']
    return out
