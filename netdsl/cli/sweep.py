"""``netdsl sweep SPEC key=a,b key2=range(16,64,16)``: every point of a design-space grid,
screened statically (parameters, MACs, peak activation memory, receptive field, depth) with
budgets and the Pareto front, without importing torch.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys

from ..render.numbers import human, human_bytes
from . import Command, budget, parse_sweep, whole_number

EXAMPLE = "netdsl sweep specs/resnet18.net depths=[1,1,1,1],[2,2,2,2] num_classes=10,100 --max-macs 2e9"


def _setup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="a .net file")
    parser.add_argument("axes", nargs="*", metavar="key=a,b",
                        help="network parameters to sweep, in Hydra's sweep syntax "
                             "(width=16,32 depth=range(1,4) unit=basic,bottleneck)")
    for figure, what in (("params", "parameters"), ("macs", "multiply-accumulates"),
                         ("activations", "peak inference activation bytes")):
        parser.add_argument(f"--max-{figure}", type=budget, metavar="N",
                            help=f"mark points with more {what} than N")
    parser.add_argument("--pareto", default="macs,params", metavar="A,B",
                        help="the two figures the Pareto front trades off (default macs,params)")
    parser.add_argument("--batch", type=whole_number(1, 10**9), default=1,
                        help="batch size for memory")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table")
    parser.epilog = f"example: {EXAMPLE}"


def _budgets(args: argparse.Namespace) -> dict[str, int]:
    given = {"params": args.max_params, "macs": args.max_macs,
             "activation_bytes": args.max_activations}
    return {k: int(v) for k, v in given.items() if v is not None}


def _run(args: argparse.Namespace) -> int:
    from ..lower import lower_spec, spec_path
    from ..passes.check import check
    from ..passes.explore import FIGURES, explore, grid

    pareto = tuple(args.pareto.replace("activations", "activation_bytes").split(","))
    if len(pareto) != 2 or not set(pareto) <= set(FIGURES) or args.batch < 1:
        print(f"netdsl sweep: error: --pareto takes two of {', '.join(FIGURES)}; --batch >= 1",
              file=sys.stderr)
        return 2
    path = spec_path(args.spec)
    points = explore(lambda params: check(lower_spec(path, params)),
                     grid(parse_sweep(args.axes)), _budgets(args), pareto, args.batch)
    print({"table": _table, "csv": _csv, "json": _json}[args.format](points), end="")
    return 0


def _cells(point) -> dict[str, str]:
    f = point.figures
    if point.error is not None:
        status = f"error {point.error.code}: {point.error.message}"
    else:
        status = "over " + ", ".join(point.over) if point.over else "fits"
    return {**{k: _show(v) for k, v in point.params.items()},
            "params": f"{f['params']:,}" if f else "", "MACs": human(f["macs"]) if f else "",
            "memory": human_bytes(f["activation_bytes"]) if f else "",
            "RF": str(f["receptive_field"]) if f else "", "depth": str(f["depth"]) if f else "",
            "pareto": "*" if point.pareto else "", "status": status}


def _show(value: object) -> str:
    if isinstance(value, tuple):
        return "[" + ",".join(_show(v) for v in value) + "]"
    return str(value)


def _table(points) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="design space (* = Pareto front among the points that fit)")
    rows = [_cells(p) for p in points]
    for column in rows[0] if rows else []:
        table.add_column(column, justify="right" if column not in ("status",) else "left")
    for row in rows:
        table.add_row(*row.values())
    buffer = io.StringIO()
    Console(file=buffer, width=160, color_system=None).print(table)
    return buffer.getvalue()


def _csv(points) -> str:
    buffer = io.StringIO()
    rows = [_cells(p) for p in points]
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else [])
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _json(points) -> str:
    return json.dumps([{"params": {k: _show(v) for k, v in p.params.items()},
                        "figures": dict(p.figures), "over": list(p.over), "pareto": p.pareto,
                        "error": None if p.error is None else
                        {"code": p.error.code, "message": p.error.message}}
                       for p in points], indent=1) + "\n"


COMMANDS: list[Command] = [
    ("sweep", "screen a grid of network parameters statically: figures, budgets, Pareto front",
     _setup, _run),
]
