"""CPU time of each hostile spec of tests/test_budgets.py, to show its margin under the test's
budget: ``python benchmarks/hostile.py [--repeats 5] [--only doubling] [--against TREE]``.

Each run is a fresh child process that builds the parser, then compiles the case, as the
test's child does, without its limits. The time is the child's user + system CPU from the
case's start to its exit (what RLIMIT_CPU counts: a collection at exit is part of it),
median of the repeats, and min-max. ``--against`` another checkout (the tree before a
change) runs its children alternately with this tree's, on the same machine and load, and
prints the ratio of the medians.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from test_budgets import CASES, CPU_SECONDS  # noqa: E402

CHILD = """
import os, resource, sys
import netdsl
assert os.path.dirname(netdsl.__file__) == os.path.join({tree!r}, "netdsl"), netdsl.__file__
netdsl.compile(netdsl.SpecText("network t:\\n input 3x8x8\\n relu"))  # the parser is built once per process
text = {text}
usage = resource.getrusage(resource.RUSAGE_SELF)
print(usage.ru_utime + usage.ru_stime, flush=True)
try:
    graph = netdsl.compile(netdsl.SpecText(text)); print("ok", len(graph.nodes))
except netdsl.NetDSLError as error:
    print(error.code, error.message)
"""


def run_case(tree: Path, text: str) -> tuple[float, str]:
    """The CPU seconds one child spent on the case, up to its exit, and its last line."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run([sys.executable, "-c", CHILD.format(tree=str(tree), text=text)],
                          capture_output=True, text=True, env=env, cwd=tree, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    setup, *_, outcome = done.stdout.splitlines()
    return total - float(setup), outcome


def summary(times: list[float]) -> str:
    return f"{statistics.median(times):6.2f} s ({min(times):.2f}-{max(times):.2f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--only", default="", help="cases whose name contains this")
    ap.add_argument("--against", type=Path, help="another checkout, run alternately")
    args = ap.parse_args()
    trees = [ROOT] + ([args.against.resolve()] if args.against else [])
    print(f"budget: {CPU_SECONDS} s of CPU per case; median of {args.repeats} (min-max)")
    for name, text in CASES.items():
        if args.only not in name:
            continue
        times: dict[Path, list[float]] = {tree: [] for tree in trees}
        outcomes: dict[Path, str] = {}
        for _ in range(args.repeats):
            for tree in trees:
                seconds, outcomes[tree] = run_case(tree, text)
                times[tree].append(seconds)
        line = f"{name:40} {summary(times[ROOT])}"
        if args.against:
            old = times[trees[1]]
            ratio = statistics.median(times[ROOT]) / statistics.median(old)
            line += f"   against {summary(old)}   ratio {ratio:.2f}"
        print(f"{line}   {outcomes[ROOT][:40]}", flush=True)


if __name__ == "__main__":
    main()
