"""``netdsl sweep SPEC key=a,b key2=range(16,64,16)``: every point of a design-space grid,
screened statically (parameters, MACs, peak activation memory, receptive field, depth) with
budgets and the Pareto front, without importing torch. ``--results DIR`` joins what trials
measured (the ``metrics.json`` files examples/train.py writes) and ``--plot`` draws accuracy
against MACs.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import sys
from pathlib import Path

from ..errors import NetDSLError, printable
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
                        help="the two figures the Pareto front trades off (default macs,params; "
                             "with --results also accuracy or train_seconds)")
    parser.add_argument("--results", metavar="DIR",
                        help="a sweep's output folder: join the accuracy and training time of "
                             "its trials (every metrics.json under DIR) to their points")
    parser.add_argument("--plot", metavar="OUT.png",
                        help="draw measured accuracy against MACs (needs --results, matplotlib)")
    parser.add_argument("--batch", type=whole_number(1, 10**9), default=1,
                        help="batch size for memory")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table")
    parser.epilog = f"example: {EXAMPLE}"


def _budgets(args: argparse.Namespace) -> dict[str, int]:
    given = {"params": args.max_params, "macs": args.max_macs,
             "activation_bytes": args.max_activations}
    return {k: int(v) for k, v in given.items() if v is not None}


def _run(args: argparse.Namespace) -> int:
    from ..api import MEASURED, SWEEP_FIGURES, link, spec_file, sweep
    from ..render.plot import check_plot, plot_sweep

    pareto = tuple(args.pareto.replace("activations", "activation_bytes").split(","))
    known = SWEEP_FIGURES + (MEASURED if args.results else ())
    problem = (f"--pareto takes two of {', '.join(known)}; --batch >= 1"
               if len(pareto) != 2 or not set(pareto) <= set(known) or args.batch < 1 else
               "--plot needs --results DIR" if args.plot and not args.results else
               f"--results: '{args.results}' is not a folder"
               if args.results and not os.path.isdir(args.results) else None)
    if problem:
        print(f"netdsl sweep: error: {printable(problem)}", file=sys.stderr)
        return 2
    if args.plot:
        check_plot(Path(args.plot))
    path = spec_file(args.spec)
    link(path)  # a spec that cannot be read is the error, whatever else is wrong
    axes = parse_sweep(args.axes)
    trials = load_trials(Path(args.results), path) if args.results else None
    points = sweep(path, axes, budgets=_budgets(args), batch=args.batch, pareto=pareto,
                   trials=trials)
    print({"table": _table, "csv": _csv, "json": _json}[args.format](points), end="")
    if args.plot:
        plot_sweep(points, [_label(p) for p in points], Path(args.plot))
        print(f"wrote {args.plot}", file=sys.stderr)
    return 1 if points and all(p.error is not None for p in points) else 0  # nothing screened


def load_trials(folder: Path, spec: Path) -> list[dict]:
    """Every readable metrics.json under ``folder`` that a trial of ``spec`` wrote; the others
    are named on stderr and left out (a half-finished sweep still shows what has finished)."""
    from .. import limits

    trials = []
    for i, file in enumerate(sorted(folder.rglob("metrics.json"))):
        if i >= limits.MAX_TRIALS:
            print(f"netdsl sweep: read the first {limits.MAX_TRIALS:,} metrics.json only",
                  file=sys.stderr)
            break
        try:
            trial = _trial(file)
        except (OSError, ValueError, NetDSLError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else \
                getattr(error, "message", error)
            print(printable(f"netdsl sweep: skipped {file}: {reason}"), file=sys.stderr)
            continue
        if "spec" not in trial or _same_file(trial["spec"], spec):
            trials.append(trial)
    return trials


def _trial(file: Path) -> dict:
    from .. import limits
    from ..api import MEASURED

    # a regular file only (a FIFO named metrics.json would block), measured before it is read
    trial = json.loads(limits.read_text(file, limits.MAX_TRIAL_CHARACTERS))
    if not isinstance(trial, dict) or not isinstance(trial.get("model"), dict):
        raise ValueError("no 'model' object (the network parameters the trial built)")
    for key in MEASURED:
        value = trial.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"'{key}' is not a finite number")
    return trial


def _same_file(recorded: object, spec: Path) -> bool:
    try:
        return isinstance(recorded, str) and os.path.samefile(recorded, spec)
    except OSError:
        return False


def _label(point) -> str:
    return " ".join(f"{k}={_show(v)}" for k, v in point.params.items())


def _cells(point, measured_columns: bool = False) -> dict[str, str]:
    f = point.figures
    if point.error is not None:
        status = f"error {point.error.code}: {point.error.message}"
    else:
        status = "over " + ", ".join(point.over) if point.over else "fits"
    figures = {"params": f"{f['params']:,}" if f else "", "MACs": human(f["macs"]) if f else "",
               "memory": human_bytes(f["activation_bytes"]) if f else "",
               "RF": str(f["receptive_field"]) if f else "", "depth": str(f["depth"]) if f else ""}
    m = point.measured
    measured = {"accuracy": f"{m['accuracy']:.4f}" if "accuracy" in m else "",
                "train s": f"{m['train_seconds']:.1f}" if "accuracy" in m else "",
                "runs": str(m.get("runs", 0))} if measured_columns else {}
    # a network parameter named like a figure column (depth, params) keeps its own column
    return {**{k: _show(v) for k, v in point.params.items()},
            **{(k if k not in point.params else f"{k} (net)"): v for k, v in figures.items()},
            **measured, "pareto": "*" if point.pareto else "", "status": status}


def _rows(points) -> list[dict[str, str]]:
    joined = any(p.measured for p in points)  # measured columns once there are results
    return [_cells(p, joined) for p in points]


def _show(value: object) -> str:
    if isinstance(value, tuple):
        return "[" + ",".join(_show(v) for v in value) + "]"
    return str(value)


def _table(points) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="design space (* = Pareto front among the points that fit)")
    rows = _rows(points)
    for column in rows[0] if rows else []:
        table.add_column(column, justify="right" if column not in ("status",) else "left")
    for row in rows:
        table.add_row(*row.values())
    buffer = io.StringIO()
    Console(file=buffer, width=160, color_system=None).print(table)
    return buffer.getvalue()


def _csv(points) -> str:
    buffer = io.StringIO()
    rows = _rows(points)
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else [])
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _json(points) -> str:
    return json.dumps([{"params": {k: _show(v) for k, v in p.params.items()},
                        "figures": dict(p.figures), "over": list(p.over), "pareto": p.pareto,
                        **({"measured": dict(p.measured)} if p.measured else {}),
                        "error": None if p.error is None else
                        {"code": p.error.code, "message": p.error.message}}
                       for p in points], indent=1) + "\n"


COMMANDS: list[Command] = [
    ("sweep", "screen a grid of network parameters statically: figures, budgets, Pareto front",
     _setup, _run),
]
