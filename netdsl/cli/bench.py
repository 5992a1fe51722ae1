"""``netdsl bench SPEC``: eager and optimised forward of a spec's module against a reference.

The reference is torchvision's model of the same name with the netdsl module's weights
(loaded strictly) when there is one, else the netdsl module itself. Runs are timed side by
side in one process: warm-up first, then interleaved repeats (the order alternates, so drift
in a shared machine's load hits both sides alike), and the table shows medians and ratios.
``benchmarks/run.py`` uses the same functions. Nothing here imports torch at import time.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..torch.calibrate import calibrate
from . import Command, compile_spec, spec_arguments, whole_number


@dataclass
class Row:
    """One comparison: netdsl's median against a reference's, in seconds."""

    section: str
    network: str
    batch: int | str
    ours: str
    ours_s: float
    theirs: str
    theirs_s: float
    target: float | None = None
    note: str = ""
    paired: float | None = None  # median of per-repeat ratios, when both sides were timed

    @property
    def ratio(self) -> float:
        return self.paired if self.paired is not None else self.ours_s / self.theirs_s

    @property
    def verdict(self) -> str:
        if self.target is None:
            return ""
        return "ok" if self.ratio <= self.target else "MISS"


def interleaved(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 1,
                tick: Callable[[], None] | None = None) -> dict[str, list[float]]:
    """Seconds of each run of each function, timed in alternating order after ``warmup``
    rounds (repeat i of every function ran next to repeat i of the others)."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    names = list(fns)
    for r in range(repeats):
        for name in names if r % 2 == 0 else reversed(names):
            started = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - started)
        if tick:
            tick()
    return times


def median(times: list[float]) -> float:
    return statistics.median(times)


def paired_ratio(ours: list[float], theirs: list[float]) -> float:
    """The median of run-by-run ratios: each pair ran back to back, under the same load, so
    this resists a shared machine's load changing during the benchmark better than the
    ratio of the medians does."""
    return statistics.median(a / b for a, b in zip(ours, theirs, strict=True))


def median_range(values: list[float], scale: float = 1.0, digits: int = 0) -> str:
    """``median (min-max)`` of ``values`` times ``scale``: how the benchmark tables show a
    figure with its spread."""
    low, mid, high = (v * scale for v in (min(values), statistics.median(values), max(values)))
    return f"{mid:.{digits}f} ({low:.{digits}f}-{high:.{digits}f})"


def header() -> list[str]:
    """The machine and versions, as markdown bullet lines."""
    import torch

    lines = [f"- date: {time.strftime('%Y-%m-%d %H:%M')}",
             f"- machine: {platform.machine()}, {_cpu_name()}, {torch.get_num_threads()} torch "
             f"threads, {platform.system()} {platform.release()}",
             f"- python {platform.python_version()}, torch {torch.__version__}"]
    try:
        import torchvision
        lines[-1] += f", torchvision {torchvision.__version__}"
    except ImportError:  # pragma: no cover
        pass
    from .. import __version__
    lines[-1] += f", netdsl {__version__}"
    return lines


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def table(rows: list[Row]) -> str:
    """Rows as a markdown table (milliseconds, 4 significant digits)."""
    out = ["| benchmark | network | batch | netdsl | ms | reference | ms | ratio | target | |",
           "|---|---|---|---|---:|---|---:|---:|---:|---|"]
    for r in rows:
        target = f"<= {r.target:g}" if r.target is not None else ""
        note = f"{r.verdict} {r.note}".strip()
        out.append(f"| {r.section} | {r.network} | {r.batch} | {r.ours} | {_ms(r.ours_s)} | "
                   f"{r.theirs} | {_ms(r.theirs_s)} | {r.ratio:.3f} | {target} | {note} |")
    return "\n".join(out)


def _ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:.4g}" if ms < 1000 else f"{ms:.0f}"


# --- the reference model ---------------------------------------------------------------------

def reference_model(module, graph):
    """torchvision's model named like the graph, holding ``module``'s weights; ``None`` when
    torchvision has no such model or its state_dict does not match."""
    try:
        import torchvision
    except ImportError:  # pragma: no cover
        return None
    ctor = getattr(torchvision.models, graph.name, None)
    if ctor is None or not callable(ctor):
        return None
    kwargs: dict[str, object] = {"num_classes": graph.output_shape[0]}
    if graph.name in ("googlenet", "inception_v3"):
        kwargs.update(aux_logits=bool(graph.aux_outputs), init_weights=False)
    try:
        import torch

        with torch.device("meta"):  # weights come from the netdsl module: no init needed
            theirs = ctor(**kwargs)
        theirs.load_state_dict(module.state_dict(), strict=True, assign=True)
    except Exception:  # a spec that merely shares a name with a torchvision model
        return None
    return theirs.eval()


# --- the comparisons -------------------------------------------------------------------------

def _contestants(spec, params: dict, fallback: str):
    """The netdsl module (seeded, batch norm calibrated), its graph, the reference model with
    the same weights (or the module itself where there is none) and the reference's label."""
    import torch

    import netdsl

    torch.manual_seed(0)
    ours = netdsl.build(spec, **params)
    graph = ours.netdsl_graph
    calibrate(ours, torch.randn(8, *graph.input.shape))
    theirs = reference_model(ours, graph)
    if theirs is None:
        return ours, graph, ours, fallback
    return ours, graph, theirs, "torchvision"


def eager_rows(spec, batches=(1, 8), repeats=20, target=1.02, tick=None, **params) -> list[Row]:
    """(3) eager forward: the netdsl module against the reference, same weights and input."""
    import torch

    ours, graph, theirs, label = _contestants(spec, params, "netdsl (same module)")
    rows = []
    for batch in batches:
        x = torch.randn(batch, *graph.input.shape)
        with torch.no_grad():
            torch.testing.assert_close(ours(x), theirs(x))
            t = interleaved({"ours": lambda x=x: ours(x), "theirs": lambda x=x: theirs(x)},
                            repeats, warmup=2, tick=tick)
        rows.append(Row("eager forward", graph.name, batch, "eager", median(t["ours"]),
                        f"{label} eager", median(t["theirs"]), target,
                        paired=paired_ratio(t["ours"], t["theirs"])))
    return rows


def optimized_rows(spec, batch=8, repeats=10, target=1.0, tick=None, **params) -> list[Row]:
    """(4) optimised inference: ``netdsl.build(optimize=True)`` against the reference in eager
    mode and under ``torch.compile`` (fullgraph, inductor freezing: its best settings)."""
    import torch

    from netdsl.torch.optimize import optimize_module

    eager, graph, theirs, label = _contestants(spec, params, "netdsl")
    _warm_up_inductor()
    ours = optimize_module(eager)
    compiled = torch.compile(theirs, fullgraph=True, options={"freezing": True})
    x = torch.randn(batch, *graph.input.shape)
    # no on-disk caches: each side's compile time is a real compile, not a cache hit
    with torch.no_grad(), torch._inductor.config.patch(force_disable_caches=True):
        expected = theirs(x)
        started = time.perf_counter()
        ours_error = _error(ours(x), expected)
        ours_compile = time.perf_counter() - started
        if tick:
            tick()
        started = time.perf_counter()
        theirs_error = _error(compiled(x), expected)
        theirs_compile = time.perf_counter() - started
        if tick:
            tick()
    with torch.no_grad():
        t = interleaved({"ours": lambda: ours(x), "eager": lambda: theirs(x),
                         "compiled": lambda: compiled(x)}, repeats, warmup=1, tick=tick)
    return [
        Row("optimised", graph.name, batch, "optimize=True", median(t["ours"]), f"{label} eager",
            median(t["eager"]), paired=paired_ratio(t["ours"], t["eager"])),
        Row("optimised", graph.name, batch, "optimize=True", median(t["ours"]),
            f"{label} torch.compile", median(t["compiled"]), target,
            f"max error vs eager {ours_error:.1e} (torch.compile: {theirs_error:.1e})",
            paired=paired_ratio(t["ours"], t["compiled"])),
        Row("compile time", graph.name, batch, "optimize=True", ours_compile,
            f"{label} torch.compile", theirs_compile, 1.0, "first call, seconds x 1000"),
    ]


def _error(got, expected) -> float:
    """The largest difference relative to the output's scale; fails loudly past 1e-3."""
    from ..torch.runtimes import relative_error

    error = relative_error(got, expected)
    if not error <= 1e-3:
        raise AssertionError(f"optimised output differs from eager by {error:.1e} (relative)")
    return error


def _warm_up_inductor() -> None:
    """Compiles a tiny network once, so that neither side's compile time includes inductor's
    one-time start-up (imports, compile workers)."""
    import torch
    from torch import nn

    tiny = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).eval()
    with torch.no_grad():
        torch.compile(tiny, fullgraph=True, options={"freezing": True})(torch.randn(1, 3, 8, 8))


# --- the command -----------------------------------------------------------------------------

def _setup_bench(parser: argparse.ArgumentParser) -> None:
    spec_arguments(parser)
    parser.add_argument("--batch", type=whole_number(1, 4096), action="append",
                        help="batch size (repeatable; default 1 and 8, and 8 when optimising)")
    parser.add_argument("--optimize", action="store_true",
                        help="also time optimize=True against torch.compile (compiles: minutes)")
    parser.add_argument("--repeats", type=whole_number(1, 10**6), default=20,
                        help="timed runs of each side")
    parser.add_argument("--engines", nargs="+", metavar="ENGINE",
                        help="instead: time these engines, each in its own process, in "
                             "alternating rounds (eager, compile, netdsl, netdsl-bf16, "
                             "netdsl-int8, ort, openvino-f32, openvino)")
    parser.add_argument("--rounds", type=whole_number(1, 10**4), default=2,
                        help="rounds of --engines")


def _run_bench(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import Progress

    from . import parse_overrides

    graph = compile_spec(args)  # spec errors surface before torch is imported
    params = parse_overrides(args.overrides)
    batches = args.batch or [1, 8]
    if args.engines:
        return _run_engines(args, graph, batches)
    _require_reference(graph)
    console = Console(stderr=True)
    rows: list[Row] = []
    with Progress(console=console, transient=True) as progress:
        optimize_batches = args.batch or [8]
        steps = len(batches) * args.repeats
        if args.optimize:
            steps += len(optimize_batches) * (2 + max(1, args.repeats // 2))
        task = progress.add_task(f"benchmarking {graph.name}", total=steps)
        tick = lambda: progress.advance(task)  # noqa: E731
        rows += eager_rows(args.spec, batches, args.repeats, tick=tick, **params)
        if args.optimize:
            for batch in optimize_batches:
                rows += optimized_rows(args.spec, batch, max(1, args.repeats // 2), tick=tick,
                                       **params)
    print("\n".join(header()) + "\n\n" + table(rows))
    return 0


def _require_reference(graph) -> None:
    """Refuses to time a network that torchvision does not have: its only reference would be
    the module itself, and the ratio would measure noise."""
    import torchvision

    from ..errors import BuildError

    if not callable(getattr(torchvision.models, graph.name, None)):
        raise BuildError(f"{graph.name} has no reference implementation to compare against",
                         graph.input.span, notes=(
                             "netdsl bench times a network against torchvision's model of the "
                             "same name (resnet50, vgg16, googlenet, inception_v3, ...)",
                             "--engines ENGINE ... times this network on several engines"))


def _run_engines(args: argparse.Namespace, graph, batches: list[int]) -> int:
    import sys

    from .engines import ENGINES, run_engines, tables

    unknown = [e for e in args.engines if e not in ENGINES]
    if unknown or args.overrides:
        print(f"netdsl bench: unknown engine {unknown[0]!r}; known: {', '.join(ENGINES)}"
              if unknown else "netdsl bench: --engines takes no overrides", file=sys.stderr)
        return 2
    results = run_engines(str(args.spec), args.engines, batches, args.repeats, args.rounds,
                          log=lambda line: print(line, file=sys.stderr))
    print("\n".join(header()) + "\n\n" + tables(graph.name, results, batches))
    return 0


COMMANDS: list[Command] = [
    ("bench", "time a spec's module against torchvision (eager; --optimize: compiled)",
     _setup_bench, _run_bench),
]
