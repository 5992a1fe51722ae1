"""netdsl benchmarks, side by side in one process: ``python benchmarks/run.py [--quick]``.

Sections (``--only`` picks some):
  frontend   parse + check of resnet152 and inception_v4, and of generated stacks of
             10 ... 10,000 residual blocks (the time per block must stay flat: linear growth)
  build      netdsl.build against the torchvision constructor (resnet152, vgg16)
  eager      eager forward, netdsl against torchvision with the same weights (batch 1 and 8)
  optimized  netdsl.build(optimize=True) against torchvision eager and torch.compile (batch 8)
  process    `netdsl check` as a whole process against `python -c "import torch"`
  engines    ResNet-50 and Inception-v3 at batch 1 and 8 on every inference engine (netdsl
             fp32/bf16/int8, torch.compile, ONNX Runtime, OpenVINO f32 and default), each in
             its own process, in alternating rounds (netdsl/cli/engines.py)

Every comparison warms up first, then alternates the two sides for each repeat and reports
medians and their ratio. ``--write`` also writes benchmarks/RESULTS.md. Timings belong here,
never in tests.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
sys.path.insert(0, str(ROOT))

from netdsl.cli.bench import (  # noqa: E402
    Row,
    eager_rows,
    header,
    interleaved,
    median,
    optimized_rows,
    paired_ratio,
    table,
)

SECTIONS = ("frontend", "build", "eager", "optimized", "process", "engines")
# results of the separate scripts that --write copies into RESULTS.md: (title, file)
SEPARATE = [("Inference engines, batch 1-8 (benchmarks/engines.py)", "engines.md"),
            ("Accuracy and speed in lower precision (benchmarks/quant_accuracy.py)",
             "quant_accuracy.md"),
            ("Training in half the memory (benchmarks/memory.py)", "memory.md")]
EXTRA: list[str] = []  # markdown sections that are not rows (the engines' tables)


def _spec(name: str) -> Path | None:
    path = SPECS / f"{name}.net"
    if not path.exists():
        print(f"  (skipped {name}: {path.relative_to(ROOT)} does not exist yet)", file=sys.stderr)
        return None
    return path


# --- 1. frontend -----------------------------------------------------------------------------

STACK_HEAD = """\
block unit(c) = residual(conv3x3(c, bias=false) -> bn -> relu -> conv3x3(c, bias=false) -> bn)
    -> relu

network deep:
    input 16x8x8
"""


def stack_spec(blocks: int) -> str:
    """A network of ``blocks`` residual blocks, one statement (one source line) each."""
    return STACK_HEAD + "".join(f"    b{i}: unit(16)\n" for i in range(blocks))


def _cold_compile(spec):
    """netdsl.compile as a fresh process runs it: every file parsed, none from the parse cache
    (which serves the language server and sweeps, where the same files compile again)."""
    import netdsl
    from netdsl.syntax import parser

    parser._parse_cached.cache_clear()
    return netdsl.compile(spec)


def frontend(quick: bool) -> tuple[list[Row], list[str]]:
    import netdsl

    rows, lines = [], []
    netdsl.compile(SPECS / "resnet18.net")  # the grammar is built once per process
    for name in ("resnet152", "inception_v4"):
        path = _spec(name)
        if path is None:
            continue
        t = interleaved({name: lambda p=path: _cold_compile(p)}, 5 if quick else 21)[name]
        rows.append(Row("frontend", name, "-", "parse + check", median(t), "budget 20 ms", 0.020,
                        1.0))
    lines += ["| blocks | layers | parse + check (ms) | per block (us) | per block / previous |",
              "|---:|---:|---:|---:|---:|"]
    previous = None
    for blocks in (10, 100, 1000, 10000):
        text = stack_spec(blocks)
        repeats = max(3, (3 if quick else 9) - blocks // 5000 * 4)
        seconds = median(interleaved({"x": lambda t=text: _cold_compile(t)}, repeats)["x"])
        layers = len(netdsl.compile(netdsl.SpecText(text)).nodes)
        per_block = seconds / blocks
        growth = f"{per_block / previous:.2f}" if previous else ""
        lines.append(f"| {blocks:,} | {layers:,} | {seconds * 1000:.1f} | {per_block * 1e6:.0f} | "
                     f"{growth} |")
        previous = per_block
        print(f"  stack of {blocks}: {seconds * 1000:.1f} ms", file=sys.stderr)
    lines.append("\nLinear growth: the time per block stays flat (ratio to the previous row near 1).")
    return rows, lines


# --- 2. build --------------------------------------------------------------------------------

def build(quick: bool) -> list[Row]:
    import torch
    import torchvision

    import netdsl

    rows = []
    for name in ("resnet152", "vgg16"):
        path = _spec(name)
        if path is None:
            continue
        ctor = getattr(torchvision.models, name)
        torch.manual_seed(0)
        t = interleaved({"ours": lambda p=path: netdsl.build(p), "theirs": ctor}, 3 if quick else 9)
        rows.append(Row("build", name, "-", "netdsl.build", median(t["ours"]),
                        "torchvision constructor", median(t["theirs"]), 1.05,
                        paired=paired_ratio(t["ours"], t["theirs"])))
    return rows


# --- 3. eager and 4. optimised forward -------------------------------------------------------

def eager(quick: bool) -> list[Row]:
    rows = []
    for name in ("resnet50", "vgg16", "googlenet", "inception_v3"):
        path = _spec(name)
        if path is not None:
            print(f"  eager {name}", file=sys.stderr)
            rows += eager_rows(path, (1, 8), repeats=5 if quick else 15)
    return rows


def optimized(quick: bool) -> list[Row]:
    rows = []
    for name in ("resnet50", "inception_v3"):
        path = _spec(name)
        if path is not None:
            print(f"  optimised {name} (compiles twice)", file=sys.stderr)
            rows += optimized_rows(path, 8, repeats=4 if quick else 10)
    return rows


# --- 5. the check process --------------------------------------------------------------------

def process(quick: bool) -> list[Row]:
    exe = shutil.which("netdsl")
    check = [exe] if exe else [sys.executable, "-c", "import sys; from netdsl.cli import main; "
                                                    "sys.exit(main())"]
    check += ["check", str(SPECS / "resnet152.net")]
    torch = [sys.executable, "-c", "import torch"]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE", "")}

    def run(cmd):
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)

    t = interleaved({"check": lambda: run(check), "torch": lambda: run(torch)}, 3 if quick else 9)
    return [Row("process", "resnet152", "-", "netdsl check", median(t["check"]),
                'python -c "import torch"', median(t["torch"]), 0.3,
                paired=paired_ratio(t["check"], t["torch"]))]


# --- 6. engines, each in its own process ---------------------------------------------------

def engines(quick: bool) -> list[Row]:
    from netdsl.cli.engines import ENGINES, run_engines, tables

    for name in ("resnet50", "inception_v3", "mobilenet_v2"):
        path = _spec(name)
        if path is not None:
            results = run_engines(str(path), list(ENGINES), [1, 8], repeats=3 if quick else 8,
                                  rounds=2 if quick else 3,
                                  log=lambda line: print(line, file=sys.stderr))
            EXTRA.append(tables(name, results, [1, 8]))
            print(EXTRA[-1], file=sys.stderr)
    return []


# --- main ------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (while developing)")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--write", action="store_true", help="write benchmarks/RESULTS.md")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    rows: list[Row] = []
    growth: list[str] = []
    for section in args.only:
        print(f"[{section}]", file=sys.stderr)
        if section == "frontend":
            more, growth = frontend(args.quick)
            rows += more
        else:
            rows += globals()[section](args.quick)
        print(table(rows), file=sys.stderr)
    misses = [r for r in rows if r.verdict == "MISS"]
    text = ["# netdsl benchmarks", "", *header(),
            f"- command: `python benchmarks/run.py{' --quick' if args.quick else ''}`, "
            f"{time.perf_counter() - started:.0f} s", "",
            "Times are medians (ms) of interleaved runs; ratio = netdsl / reference, the median "
            "of the run-by-run ratios (each pair ran back to back, so a shared machine's changing "
            "load cancels out); lower is better. Compile-time rows: the first call, compiling "
            "included (inductor's one-time start-up is paid beforehand by a tiny model).", "",
            table(rows)]
    if growth:
        text += ["", "## Frontend growth (generated stacks of residual blocks)", "", *growth]
    if EXTRA:
        text += ["", "## Inference engines (each in its own process)", "", *EXTRA]
    for title, name in SEPARATE:  # scripts of their own, too long for this run
        path = ROOT / "benchmarks" / name
        if path.exists():
            text += ["", f"## {title}", "", path.read_text(encoding="utf-8").rstrip()]
    text += ["", f"{len(misses)} of {sum(r.target is not None for r in rows)} targets missed"
             + (": " + ", ".join(f"{r.section} {r.network} {r.batch}" for r in misses)
                if misses else ".")]
    out = "\n".join(text) + "\n"
    print(out)
    if args.write:
        (ROOT / "benchmarks" / "RESULTS.md").write_text(out, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

