"""Commands that analyse specs without building them: summary, compare, graph, list.

None of them imports torch: the figures come from :func:`netdsl.summary` over the checked IR.
``netdsl check --sizes`` (in core.py) calls :func:`print_sweep` from here.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from ..errors import NetDSLError, printable
from ..render.dot import check_picture, write_picture
from ..render.numbers import human, human_bytes, ranges
from ..render.numbers import side as _side
from ..render.plot import check_plot, plot
from ..render.tables import conventions as _conventions
from ..render.tables import format_csv, format_json, format_markdown, format_table
from . import Command, compile_spec, fmt_shape, spec_arguments, whole_number

FORMATS = ("table", "json", "csv", "markdown")


# --- argument types ------------------------------------------------------------------------

def parse_shape(text: str) -> tuple[int, ...]:
    """``64x56x56`` -> (64, 56, 56); an argparse type (a bad value is a usage error)."""
    parts = text.lower().split("x")
    if not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"expected a shape like 3x224x224, found '{text}'")
    return tuple(int(p) for p in parts)


def parse_sizes(text: str) -> Sequence[int]:
    """``32:512`` (inclusive), ``32:512:32`` (with a step) or ``224,299`` -> sizes (a range
    stays a range: its length is checked against the sweep budget before any work)."""
    try:
        if ":" in text:
            parts = [int(p) for p in text.split(":")]
            if len(parts) not in (2, 3) or parts[0] > parts[1] or min(parts) < 1:
                raise ValueError
            step = parts[2] if len(parts) == 3 else 1
            return range(parts[0], parts[1] + 1, step)
        sizes = [int(p) for p in text.split(",")]
        if min(sizes) < 1:
            raise ValueError
        return sizes
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 32:512, 32:512:32 or 224,299, "
                                         f"found '{text}'") from None


def _memory_arguments(parser: argparse.ArgumentParser) -> None:
    from ..api import DTYPES

    parser.add_argument("--batch", type=whole_number(1, 10**9), default=1,
                        help="batch size for memory (default 1)")
    parser.add_argument("--dtype", choices=DTYPES, default="float32",
                        help="activation dtype for memory (default float32)")


# --- number formatting ---------------------------------------------------------------------

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


def _graph_for(args: argparse.Namespace):
    from ..api import SpecText, compile

    if args.expression is None:
        return compile_spec(args, args.input)
    text = expression_spec(args.expression, args.input or (3, 224, 224))
    return compile(SpecText(text), filename="<expression>")


def _spec(name: str, overrides: tuple[str, ...] = ()) -> argparse.Namespace:
    """Arguments as a SPEC and its overrides give them, for :func:`compile_spec`."""
    return argparse.Namespace(spec=name, overrides=list(overrides))


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
    parser.add_argument("--memory-budget", metavar="SIZE",
                        help="plan activation checkpointing so a training step at --batch fits "
                             "SIZE (2GB, 512MiB): the recomputed blocks and predicted peak")
    parser.add_argument("--plot", metavar="OUT.png",
                        help="bar chart of activation memory against parameters per layer "
                             "(needs matplotlib)")


def _usage(command: str, message: str) -> int:
    print(f"netdsl {command}: error: {printable(message)}", file=sys.stderr)
    return 2


def _run_summary(args: argparse.Namespace) -> int:
    """Formats what :func:`netdsl.summary` returns: the figures are the API's."""
    from ..api import summary as figures_of

    if (args.spec is None) == (args.expression is None):
        return _usage("summary", "give a SPEC or -e EXPR (one of them)")
    if args.expression is not None and args.overrides:
        return _usage("summary", "key=value overrides need a SPEC, not -e")
    if args.depth is not None and args.depth < 1 or args.batch < 1:
        return _usage("summary", "--depth and --batch must be at least 1")
    if args.plot:
        check_plot(Path(args.plot))
    summary = figures_of(_graph_for(args), batch=args.batch, dtype=args.dtype, depth=args.depth,
                         memory_budget=args.memory_budget)
    source = args.spec or f'-e "{args.expression}"'
    text = {"table": format_table, "json": format_json, "csv": format_csv,
            "markdown": format_markdown}[args.format](summary, source)
    if summary.memory_plan is not None and args.format == "csv":
        print(summary.memory_plan, file=sys.stderr)  # CSV has no place for it
    elif summary.memory_plan is not None and args.format != "json":  # the JSON has its key
        text += "\n" + str(summary.memory_plan) + "\n"
    print(text, end="")
    if args.plot:
        plot(summary, Path(args.plot))
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


# --- compare -------------------------------------------------------------------------------

def _setup_compare(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("specs", nargs="+", metavar="SPEC", help=".net files to compare")
    parser.add_argument("--format", choices=("table", "json", "markdown"), default="table")
    _memory_arguments(parser)


_COMPARE = ("network", "params", "vs first", "MACs", "activations", "forward", "fwd+bwd", "depth",
            "RF")


def _run_compare(args: argparse.Namespace) -> int:
    from ..api import summary

    if args.batch < 1:
        return _usage("compare", "--batch must be at least 1")
    summaries = [summary(compile_spec(_spec(spec)), batch=args.batch, dtype=args.dtype)
                 for spec in args.specs]
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
             *_aux_notes(summaries), *_conventions()]
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


def _aux_notes(summaries) -> list[str]:
    """Which parameter count is shown, for each network with auxiliary classifiers."""
    return [f"{s.network}: params shown without its auxiliary classifiers, "
            f"{s.inference()['params']:,}; with them (training) {s.total_params:,}"
            for s in summaries if s.total_params != s.inference()["params"]]


def _compare_record(s, spec: str) -> dict:
    return {"spec": spec, "network": s.network, **s.inference(), "params_all": s.total_params,
            "forward_bytes": s.forward_bytes(), "forward_backward_bytes": s.training_bytes(),
            "depth": s.depth, "receptive_field": list(s.feature_rf)}


# --- list ----------------------------------------------------------------------------------

def _setup_list(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", nargs="?", default=None, help="a folder of .net files "
                        "(default: the bundled zoo)")


def _run_list(args: argparse.Namespace) -> int:
    """Every spec with its input, parameters and depth; families (networks that need
    parameters, such as resnet_family.net) say what they need."""
    from ..api import BUNDLED_SPECS, summary
    from ..errors import OverrideError

    folder = Path(args.dir) if args.dir is not None else BUNDLED_SPECS
    if not folder.is_dir():
        raise NetDSLError(f"no folder '{folder}'")
    rows, failed = [["spec", "network", "input", "params", "depth"]], False
    for path in sorted(folder.glob("*.net")):
        try:
            figures = summary(compile_spec(_spec(str(path))))
        except NetDSLError as error:
            failed |= not isinstance(error, OverrideError)
            rows.append([path.name, "-", "-", "-", f"({error.message})"])
            continue
        rows.append([path.name, figures.network, fmt_shape(figures.input),
                     f"{figures.total_params:,}", str(figures.depth)])
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join([*(c.ljust(w) if i != 3 else c.rjust(w)
                           for i, (c, w) in enumerate(zip(row, widths, strict=False))), row[4]]))
    return 1 if failed else 0


# --- graph ---------------------------------------------------------------------------------

def _setup_graph(parser: argparse.ArgumentParser) -> None:
    spec_arguments(parser)
    parser.add_argument("-o", "--output", required=True, metavar="OUT",
                        help="out.mmd (Mermaid), out.dot, out.svg (Graphviz's layout when "
                        "installed, else netdsl's own), out.png or out.pdf (through Graphviz)")
    parser.add_argument("--depth", type=int, metavar="N", help="collapse blocks below depth N")


def _run_graph(args: argparse.Namespace) -> int:
    if args.depth is not None and args.depth < 1:
        return _usage("graph", "--depth must be at least 1")
    check_picture(Path(args.output))
    graph = compile_spec(args)
    how = write_picture(graph, Path(args.output), args.depth)
    print(f"wrote {args.output}" + (f" ({how})" if how != "text" else ""), file=sys.stderr)
    return 0


# fill colours by an op record's drawing style; a collapsed block gets its own
# --- check --sizes -------------------------------------------------------------------------

def print_sweep(args: argparse.Namespace) -> None:
    """``netdsl check SPEC --sizes A:B``: valid sizes, and for each invalid one the first
    node that fails and why (runs of sizes that fail alike share a line)."""
    from ..api import input_sizes

    graph = compile_spec(args)
    results = input_sizes(graph, args.sizes)
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
    ("graph", "draw a spec: Mermaid, SVG, Graphviz (blocks as clusters, shapes on edges)", _setup_graph,
     _run_graph),
    ("list", "every spec in a folder with its input, parameters and depth", _setup_list,
     _run_list),
]
