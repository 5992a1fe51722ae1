"""Commands that analyse specs without building them: summary, compare, graph, list.

None of them imports torch: the figures come from :mod:`netdsl.passes.analyse` over the checked IR.
``netdsl check --sizes`` (in core.py) calls :func:`print_sweep` from here.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

from ..errors import NetDSLError
from . import Command, fmt_shape, parse_overrides, spec_arguments

FORMATS = ("table", "json", "csv", "markdown")


# --- argument types ------------------------------------------------------------------------

def parse_shape(text: str) -> tuple[int, ...]:
    """``64x56x56`` -> (64, 56, 56); an argparse type (a bad value is a usage error)."""
    parts = text.lower().split("x")
    if not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"expected a shape like 3x224x224, found '{text}'")
    return tuple(int(p) for p in parts)


def parse_sizes(text: str) -> list[int]:
    """``32:512`` (inclusive), ``32:512:32`` (with a step) or ``224,299`` -> sizes."""
    try:
        if ":" in text:
            parts = [int(p) for p in text.split(":")]
            if len(parts) not in (2, 3) or parts[0] > parts[1] or min(parts) < 1:
                raise ValueError
            step = parts[2] if len(parts) == 3 else 1
            return list(range(parts[0], parts[1] + 1, step))
        sizes = [int(p) for p in text.split(",")]
        if min(sizes) < 1:
            raise ValueError
        return sizes
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 32:512, 32:512:32 or 224,299, "
                                         f"found '{text}'") from None


def _memory_arguments(parser: argparse.ArgumentParser) -> None:
    from ..passes.analyse import DTYPE_BYTES

    parser.add_argument("--batch", type=int, default=1, help="batch size for memory (default 1)")
    parser.add_argument("--dtype", choices=list(DTYPE_BYTES), default="float32",
                        help="activation dtype for memory (default float32)")


# --- number formatting ---------------------------------------------------------------------

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


def _side(pair) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


# --- compiling -----------------------------------------------------------------------------

def expression_spec(expression: str, input_shape: tuple[int, ...]) -> str:
    """A tiny network around one expression, for ``summary -e``.

    >>> print(expression_spec("stack(conv3x3(64) -> relu, 3)", (64, 56, 56)))
    network expression:
        input 64x56x56
        stack(conv3x3(64) -> relu, 3)
    <BLANKLINE>
    """
    body = "\n".join("    " + line for line in expression.strip().splitlines())
    return f"network expression:\n    input {fmt_shape(input_shape)}\n{body}\n"


def _compile(spec: str, overrides: list[str], input_shape=None):
    from ..lower import lower_spec, spec_path
    from ..passes.check import check

    params = parse_overrides(overrides)
    if input_shape is not None:
        params["input"] = input_shape
    return check(lower_spec(spec_path(spec), params))


def _graph_for(args: argparse.Namespace):
    if args.expression is None:
        return _compile(args.spec, args.overrides, args.input)
    from ..lower import lower_spec
    from ..passes.check import check

    text = expression_spec(args.expression, args.input or (3, 224, 224))
    return check(lower_spec(text, {}, filename="<expression>"))


# --- summary -------------------------------------------------------------------------------

def _setup_summary(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", nargs="?", help="a .net file (or give -e EXPR)")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="network parameters, in Hydra's override syntax (num_classes=10)")
    parser.add_argument("-e", "--expression", metavar="EXPR",
                        help='summarise one expression, e.g. -e "stack(conv3x3(64) -> relu, 3)"')
    parser.add_argument("--input", type=parse_shape, metavar="CxHxW",
                        help="input shape (for -e; default 3x224x224), or to override a spec's")
    parser.add_argument("--depth", type=int, metavar="N", help="collapse blocks below depth N")
    parser.add_argument("--format", choices=FORMATS, default="table")
    _memory_arguments(parser)
    parser.add_argument("--plot", metavar="OUT.png",
                        help="bar chart of activation memory against parameters per layer "
                             "(needs matplotlib)")


def _usage(command: str, message: str) -> int:
    print(f"netdsl {command}: error: {message}", file=sys.stderr)
    return 2


def _run_summary(args: argparse.Namespace) -> int:
    from ..passes.analyse import summarize

    if (args.spec is None) == (args.expression is None):
        return _usage("summary", "give a SPEC or -e EXPR (one of them)")
    if args.expression is not None and args.overrides:
        return _usage("summary", "key=value overrides need a SPEC, not -e")
    if args.depth is not None and args.depth < 1 or args.batch < 1:
        return _usage("summary", "--depth and --batch must be at least 1")
    summary = summarize(_graph_for(args), args.batch, args.dtype, args.depth)
    source = args.spec or f'-e "{args.expression}"'
    print({"table": format_table, "json": format_json, "csv": format_csv,
           "markdown": format_markdown}[args.format](summary, source), end="")
    if args.plot:
        plot(summary, Path(args.plot))
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


_COLUMNS = ("name", "op", "output", "params", "%params", "MACs", "activations", "%act", "memory",
            "RF", "jump")


def _rows(summary) -> list[list[str]]:
    per = summary.batch * summary.bytes_per_value
    params, acts = summary.total_params, summary.total_activations
    rows = []
    for x in summary.layers:
        op = f"{x.op}({x.count})" if x.count > 1 else x.op
        name = x.name + (" (aux)" if x.aux else "")
        rows.append([name, op, fmt_shape(x.shape), f"{x.params:,}", _percent(x.params, params),
                     human(x.macs), f"{x.activations:,}", _percent(x.activations, acts),
                     human_bytes(x.activations * per), _side(x.rf), _side(x.jump)])
    return rows


def _totals(summary) -> list[str]:
    """The lines under the table: totals, memory, where the parameters and values sit."""
    lines = [f"total       params {summary.total_params:,}, MACs {human(summary.total_macs)}, "
             f"activations {summary.total_activations:,} values per image"]
    inference = summary.inference()
    if inference["params"] != summary.total_params:
        lines.append(f"inference   params {inference['params']:,}, MACs "
                     f"{human(inference['macs'])}, activations {inference['activations']:,} "
                     "(auxiliary classifiers off)")
    lines.append(f"depth       {summary.depth} weight layers; final features see "
                 f"{_side(summary.feature_rf)} input pixels")
    lines.append(f"memory      batch {summary.batch}, {summary.dtype}: forward "
                 f"{human_bytes(summary.forward_bytes())} (peak), forward+backward "
                 f"{human_bytes(summary.training_bytes())}")
    for key, label in (("params", "params by op"), ("activations", "values by op")):
        total = getattr(summary, f"total_{key}")
        parts = sorted(((v[key], op) for op, v in summary.by_op().items() if v[key]), reverse=True)
        lines.append(f"{label:<14}" + ", ".join(f"{op} {n:,} ({_percent(n, total)})"
                                                 for n, op in parts))
    return lines


def _conventions() -> list[str]:
    from ..passes.analyse import CONVENTIONS

    return ["conventions:", *(f"  - {c}" for c in CONVENTIONS)]


def format_table(summary, source: str) -> str:
    """The per-layer table, then totals and the conventions."""
    rows = [list(_COLUMNS), *_rows(summary)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS))]
    lines = [f"{summary.network} ({source}): {fmt_shape(summary.input)} -> "
             f"{fmt_shape(summary.output)}"]
    for k, row in enumerate(rows):
        cells = [c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths,
                                                                                   strict=True))]
        lines.append("  ".join(cells).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join([*lines, "", *_totals(summary), *_conventions()]) + "\n"


def format_markdown(summary, source: str) -> str:
    lines = [f"**{summary.network}** (`{source}`): {fmt_shape(summary.input)} -> "
             f"{fmt_shape(summary.output)}", "", "| " + " | ".join(_COLUMNS) + " |",
             "|" + "|".join("---" if i < 3 else "---:" for i in range(len(_COLUMNS))) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in _rows(summary)]
    return "\n".join([*lines, "", "```", *_totals(summary), *_conventions(), "```"]) + "\n"


def format_json(summary, source: str) -> str:
    return json.dumps({"spec": source, **summary.to_json()}, indent=2) + "\n"


def format_csv(summary, source: str) -> str:
    """One row per layer (raw numbers), then a ``total`` row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["name", "op", "shape", "params", "macs", "activations", "bytes",
                     "receptive_field", "jump", "aux"])
    per = summary.batch * summary.bytes_per_value
    for x in summary.layers:
        writer.writerow([x.name, x.op, fmt_shape(x.shape), x.params, x.macs, x.activations,
                         x.activations * per, fmt_shape(x.rf), fmt_shape(x.jump), int(x.aux)])
    writer.writerow(["total", "", fmt_shape(summary.output), summary.total_params,
                     summary.total_macs, summary.total_activations,
                     summary.total_activations * per, fmt_shape(summary.feature_rf), "", ""])
    return out.getvalue()


def plot(summary, path: Path) -> None:
    """Per-layer bars: activation memory (left) against parameters (right), the VGG picture."""
    try:
        import matplotlib
    except ImportError:
        raise NetDSLError("--plot needs matplotlib, which is not installed",
                          notes=("pip install 'netdsl[plot]' (or pip install matplotlib)",)) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [x for x in summary.layers if x.params or x.activations]
    per = summary.batch * summary.bytes_per_value
    fig, (left, right) = plt.subplots(1, 2, sharey=True, figsize=(11, 1.5 + 0.22 * len(rows)))
    ys = range(len(rows))
    left.barh(ys, [x.activations * per / 2 ** 20 for x in rows], color="#d9822b")
    right.barh(ys, [x.params / 1e6 for x in rows], color="#2b6cd9")
    left.set_yticks(list(ys), [x.name for x in rows], fontsize=8)
    left.invert_yaxis()
    left.invert_xaxis()
    left.set_xlabel(f"activation memory, MiB (batch {summary.batch}, {summary.dtype})")
    right.set_xlabel("parameters, millions")
    fig.suptitle(f"{summary.network}: where the memory and the parameters sit")
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=120)
    except OSError as error:
        raise NetDSLError(f"cannot write '{path}': {error.strerror or error}") from None
    finally:
        plt.close(fig)


# --- compare -------------------------------------------------------------------------------

def _setup_compare(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("specs", nargs="+", metavar="SPEC", help=".net files to compare")
    parser.add_argument("--format", choices=("table", "json", "markdown"), default="table")
    _memory_arguments(parser)


_COMPARE = ("network", "params", "vs first", "MACs", "activations", "forward", "fwd+bwd", "depth",
            "RF")


def _run_compare(args: argparse.Namespace) -> int:
    from ..passes.analyse import summarize

    if args.batch < 1:
        return _usage("compare", "--batch must be at least 1")
    summaries = [summarize(_compile(spec, []), args.batch, args.dtype) for spec in args.specs]
    if args.format == "json":
        print(json.dumps([_compare_record(s, spec) for s, spec in zip(summaries, args.specs,
                                                                      strict=True)], indent=2))
        return 0
    first = summaries[0].inference()["params"]
    rows = [list(_COMPARE)]
    for s in summaries:
        inf = s.inference()
        rows.append([s.network, f"{inf['params']:,}", f"{inf['params'] / first:.2f}x",
                     human(inf["macs"]), f"{inf['activations']:,}", human_bytes(s.forward_bytes()),
                     human_bytes(s.training_bytes()), str(s.depth), _side(s.feature_rf)])
    notes = [f"batch {args.batch}, {args.dtype}; params, MACs and activations at inference "
             "(auxiliary classifiers off); depth in weight layers; RF of the final features",
             *_conventions()]
    if args.format == "markdown":
        lines = ["| " + " | ".join(r) + " |" for r in rows]
        lines.insert(1, "|---" + "|---:" * (len(_COMPARE) - 1) + "|")
        print("\n".join([*lines, "", *notes]))
        return 0
    widths = [max(len(r[i]) for r in rows) for i in range(len(_COMPARE))]
    for k, row in enumerate(rows):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                        for i, (c, w) in enumerate(zip(row, widths, strict=True))))
        if k == 0:
            print("  ".join("-" * w for w in widths))
    print("\n".join(["", *notes]))
    return 0


def _compare_record(s, spec: str) -> dict:
    return {"spec": spec, "network": s.network, **s.inference(), "params_all": s.total_params,
            "forward_bytes": s.forward_bytes(), "forward_backward_bytes": s.training_bytes(),
            "depth": s.depth, "receptive_field": list(s.feature_rf)}


# --- list ----------------------------------------------------------------------------------

def _setup_list(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", nargs="?", default="specs", help="a folder of .net files "
                        "(default specs)")


def _run_list(args: argparse.Namespace) -> int:
    """Every spec with its input, parameters and depth; families (networks that need
    parameters, such as resnet_family.net) say what they need."""
    from ..errors import OverrideError
    from ..passes.analyse import summarize, weight_depth

    folder = Path(args.dir)
    if not folder.is_dir():
        raise NetDSLError(f"no folder '{folder}'")
    rows, failed = [["spec", "network", "input", "params", "depth"]], False
    for path in sorted(folder.glob("*.net")):
        try:
            g = _compile(str(path), [])
        except NetDSLError as error:
            failed |= not isinstance(error, OverrideError)
            rows.append([path.name, "-", "-", "-", f"({error.message})"])
            continue
        params = summarize(g).total_params
        rows.append([path.name, g.name, fmt_shape(g.input.shape), f"{params:,}",
                     str(weight_depth(g))])
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join([*(c.ljust(w) if i != 3 else c.rjust(w)
                           for i, (c, w) in enumerate(zip(row, widths, strict=False))), row[4]]))
    return 1 if failed else 0


# --- graph ---------------------------------------------------------------------------------

def _setup_graph(parser: argparse.ArgumentParser) -> None:
    spec_arguments(parser)
    parser.add_argument("-o", "--output", required=True, metavar="OUT",
                        help="out.dot (text), out.svg or out.png (through Graphviz's dot)")
    parser.add_argument("--depth", type=int, metavar="N", help="collapse blocks below depth N")


def _run_graph(args: argparse.Namespace) -> int:
    if args.depth is not None and args.depth < 1:
        return _usage("graph", "--depth must be at least 1")
    graph = _compile(args.spec, args.overrides)
    write_picture(to_dot(graph, args.depth), Path(args.output))
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


# --- pictures (Graphviz) -------------------------------------------------------------------

# fill colours by an op record's drawing style; a collapsed block gets its own
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


def write_picture(dot: str, path: Path) -> None:
    """Writes ``.dot`` text as is; ``.svg``/``.png``/``.pdf`` through Graphviz's ``dot``."""
    import shutil
    import subprocess

    suffix = path.suffix.lower().lstrip(".")
    if suffix not in ("dot", "gv", "svg", "png", "pdf"):
        raise NetDSLError(f"cannot write '{path}': unknown picture format '.{suffix}'",
                          notes=("known formats: .dot, .svg, .png, .pdf",))
    if path.parent != Path("") and not path.parent.is_dir():
        raise NetDSLError(f"cannot write '{path}': no folder '{path.parent}'")
    if suffix in ("dot", "gv"):
        path.write_text(dot, encoding="utf-8")
        return
    exe = shutil.which("dot")
    if exe is None:
        raise NetDSLError(f"writing .{suffix} needs Graphviz's 'dot' program, which is not "
                          "installed", notes=("install Graphviz (Debian: apt-get install "
                                              "graphviz), or write .dot and render it elsewhere",))
    done = subprocess.run([exe, f"-T{suffix}", "-o", str(path)], input=dot, text=True,
                          capture_output=True, timeout=120, check=False)
    if done.returncode != 0:
        raise NetDSLError(f"Graphviz's dot failed on '{path}': {done.stderr.strip()[:500]}")


# --- check --sizes -------------------------------------------------------------------------

def print_sweep(args: argparse.Namespace) -> None:
    """``netdsl check SPEC --sizes A:B``: valid sizes, and for each invalid one the first
    node that fails and why (runs of sizes that fail alike share a line)."""
    from ..lower import lower_spec, spec_path
    from ..passes.sweep import ranges, sweep

    graph = lower_spec(spec_path(args.spec), parse_overrides(args.overrides))
    results = sweep(graph, args.sizes)
    c = graph.input.attrs["shape"][0]
    print(f"{args.spec}: {graph.name} at input {c}xNxN")
    print(f"  valid:   {ranges(r.size for r in results if r.node is None)}")
    runs: list[list] = []
    for r in results:
        if r.node is None:
            continue
        key = (r.node.id, r.message)
        if runs and runs[-1][0] == key and runs[-1][2] == r.size - 1:
            runs[-1][2] = r.size
        else:
            runs.append([key, r, r.size])
    for _, r, last in runs:
        sizes = str(r.size) if last == r.size else f"{r.size}-{last}"
        who = f"{r.node.name or r.node.op} ({r.node.op}" + (f", {r.where})" if r.where else ")")
        print(f"  invalid: {sizes}: {who}: {r.message}")


COMMANDS: list[Command] = [
    ("summary", "per-layer parameters, MACs, activation memory and receptive field",
     _setup_summary, _run_summary),
    ("compare", "totals of several specs side by side", _setup_compare, _run_compare),
    ("graph", "draw a spec with Graphviz (blocks as clusters, shapes on edges)", _setup_graph,
     _run_graph),
    ("list", "every spec in a folder with its input, parameters and depth", _setup_list,
     _run_list),
]
