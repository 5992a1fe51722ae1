"""Commands that compile specs: build, check, show."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import Command, compile_spec, fmt_shape, spec_arguments, whole_number

MAX_BATCH = 1_000_000  # a smoke run; memory is bounded by the activation budget, not here


def _setup_check(parser: argparse.ArgumentParser) -> None:
    from .analyse import parse_sizes

    spec_arguments(parser)
    parser.add_argument("--sizes", type=parse_sizes, metavar="A:B", help="also sweep square "
                        "input sizes (32:512, 32:512:32 or 224,299): which are valid, and where "
                        "each invalid one fails")


def _run_check(args: argparse.Namespace) -> int:
    if args.sizes:
        from .analyse import print_sweep

        print_sweep(args)
    graph = compile_spec(args)
    print(f"{args.spec}: ok, {graph.name} maps {fmt_shape(graph.input.shape)} to "
          f"{fmt_shape(graph.output_shape)}")
    return 0


def _setup_show(parser: argparse.ArgumentParser) -> None:
    spec_arguments(parser)
    parser.add_argument("--format", choices=["text", "json"], default="text",
                        help="text (one node per line) or json (schema netdsl.ir.graph/2)")


def _run_show(args: argparse.Namespace) -> int:
    graph = compile_spec(args)
    if args.format == "json":
        import json

        from ..api import graph_json

        print(json.dumps(graph_json(graph), indent=1))
    else:
        print(graph)
    return 0


def _setup_build(parser: argparse.ArgumentParser) -> None:
    spec_arguments(parser)
    parser.add_argument("-o", "--output", help="save the module: .pt (state_dict), "
                        ".safetensors, .py (standalone PyTorch source), .pt2 (torch.export), "
                        ".onnx; chosen by the extension")
    parser.add_argument("--batch", type=whole_number(1, MAX_BATCH), default=1,
                        help="batch size of the smoke run")
    parser.add_argument("--seed", type=whole_number(0, 2**64 - 1), default=0,
                        help="seed for the initial weights (what torch.manual_seed takes)")
    parser.add_argument("--max-params", type=whole_number(0, 10**15), default=None, metavar="N",
                        help="refuse networks with more parameters (default: 2,000,000,000)")
    parser.add_argument("--dynamic", choices=["batch", "hw", "none"], default="batch",
                        help="what may vary in a .pt2/.onnx input: batch (default), hw (batch, "
                        "height and width, where the network allows) or none")
    parser.add_argument("--weights", metavar="NAME", help="load the reference's pretrained "
                        "weights by name (DEFAULT, IMAGENET1K_V1, ...) through torch.hub's cache")
    parser.add_argument("--max-activations", type=whole_number(0, 10**18), default=None,
                        metavar="N", help="refuse networks whose forward pass at --batch holds "
                        "more values at once (default: 2**31, 8 GiB of float32)")
    parser.add_argument("--optimize", action="store_true", help="smoke-run the inference module "
                        "(batch norm folded, channels_last, torch.compile); -o saves the plain one")
    parser.add_argument("--memory-budget", metavar="SIZE", help="recompute blocks in backward "
                        "(activation checkpointing) so a training step at --batch fits SIZE "
                        "(2GB, 512MiB); -o saves the same weights")


def _run_build(args: argparse.Namespace) -> int:
    from ..api import MAX_ACTIVATIONS, MAX_PARAMS, build, check_budget

    if args.memory_budget is not None and args.optimize:
        print("netdsl build: error: --memory-budget plans training; --optimize smoke-runs an "
              "inference module: pass one or the other", file=sys.stderr)
        return 2
    graph = compile_spec(args)
    check_budget(graph, MAX_PARAMS if args.max_params is None else args.max_params,
                 MAX_ACTIVATIONS if args.max_activations is None else args.max_activations,
                 args.batch)
    started = time.perf_counter()
    import torch

    from ..torch import export

    if args.output:
        export.check_output(Path(args.output))
    with status(f"building {graph.name}"):
        torch.manual_seed(args.seed)
        # the budgets were checked above, at --batch
        model = build(graph, max_params=None, max_activations=None, weights=args.weights,
                      memory_budget=args.memory_budget, batch=args.batch)
    built = time.perf_counter() - started
    model.eval()
    x = torch.randn(args.batch, *graph.input.shape)
    with status(f"running {graph.name}" + (" (compiling first)" if args.optimize else "")):
        run, y, ran = _smoke_run(model, x, args.optimize)
    outputs = y.items() if isinstance(y, dict) else [("output", y)]  # output p2, p3: a dict
    rows = [("input", fmt_shape(tuple(x.shape))),
            *((str(k), fmt_shape(tuple(v.shape))) for k, v in outputs),
            ("params", f"{sum(p.numel() for p in model.parameters()):,}"),
            *([("weights", str(model.netdsl_weights))] if args.weights else []),
            ("built in", f"{built:.2f} s"), ("forward", f"{ran:.3f} s"),
            *([("compiled in", f"{run.compile_seconds:.1f} s")] if args.optimize else [])]
    if args.output:
        with status(f"saving {args.output}"):
            export.save(model, graph, Path(args.output), x, dynamic=args.dynamic)
        rows.append(("saved", args.output))
    print_summary(f"{graph.name} ({args.spec})", rows)
    if args.memory_budget is not None:
        print(model.netdsl_memory_plan)
    return 0


def _smoke_run(model, x, optimize: bool):
    """One forward pass (of the optimised module when asked): the module run, its output and
    the seconds the pass took (compiling excluded)."""
    import torch

    run = model
    if optimize:
        from ..api import optimize_inference

        run = optimize_inference(model)
        with torch.no_grad():
            run(x)  # compiles
    started = time.perf_counter()
    with torch.no_grad():
        y = run(x)
    return run, y, time.perf_counter() - started


def status(message: str):
    """A spinner on stderr while long work runs (a terminal only: logs stay clean)."""
    import contextlib
    import sys

    if not sys.stderr.isatty():
        return contextlib.nullcontext()
    from rich.console import Console

    return Console(stderr=True).status(message)


def print_summary(title: str, rows: list[tuple[str, str]]) -> None:
    """Label/value rows as a rich table; values are Text, never markup (a file name may hold
    brackets)."""
    import sys

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(title), title_justify="left", box=None, show_header=False,
                  padding=(0, 1))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for label, value in rows:
        table.add_row(Text(label), Text(value))
    # a pipe or log gets whole lines (a long output path is not cut at 80 columns)
    Console(width=None if sys.stdout.isatty() else 1000).print(table)


COMMANDS: list[Command] = [
    ("build", "compile, emit and smoke-run a network; optionally save it", _setup_build,
     _run_build),
    ("check", "check a spec (exit 0 when valid, 1 with diagnostics)", _setup_check, _run_check),
    ("show", "print the checked IR", _setup_show, _run_show),
]


