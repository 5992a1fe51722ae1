"""The long differential campaign: random valid networks (tests/netgen.py), each checked by
tests/test_differential.py's ``disagreements`` (shapes, parameters, state_dict keys, MACs,
the .py export, in-place layers, fmt), or with ``--analysis`` by
tests/test_analysis_differential.py's (the receptive field of the central output, MACs,
parameters and peak activation memory of ``summary`` against torch).

    python scripts/differential.py --count 10000 --jobs 2 --seed 0
    nice -n 19 python scripts/differential.py --analysis --count 10000 --jobs 1

Prints the number of networks checked and of disagreements (a network whose module differs
from its IR, or on which netdsl raised), each with its spec text; exits 1 if there was any.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))


def _worker(task: tuple[int, int, bool]) -> tuple[int, list[tuple[str, str]]]:
    """Checks ``count`` networks drawn with ``seed``; returns (checked, disagreements)."""
    count, seed, analysis = task
    warnings.simplefilter("ignore")
    import test_analysis_differential as figures
    import torch
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed

    import netdsl

    import netgen
    import test_differential as diff

    torch.set_num_threads(1)
    found: list[tuple[str, str]] = []
    checked = 0

    @hypothesis_seed(seed)
    @settings(max_examples=count, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(netgen.networks())
    def run(text):
        nonlocal checked
        checked += 1
        with tempfile.TemporaryDirectory() as folder:
            try:
                problems = figures.disagreements(netdsl.compile(netdsl.SpecText(text))) if analysis \
                    else diff.disagreements(text, Path(folder))
            except Exception:  # noqa: BLE001 - any exception on a valid network is a finding
                problems = [traceback.format_exc(limit=3)]
        if problems:
            found.append((text, "; ".join(problems)))
            print(f"--- disagreement: {found[-1][1]}\n{text}", file=sys.stderr, flush=True)
        if checked % 100 == 0:  # a campaign stopped early still says how far it got
            print(f"seed {seed}: {checked} checked, {len(found)} disagreements",
                  file=sys.stderr, flush=True)

    run()
    return checked, found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--analysis", action="store_true",
                        help="check summary's figures (receptive field, MACs, parameters, "
                             "peak memory) against torch instead")
    args = parser.parse_args()
    started = time.perf_counter()
    chunks = 4 * args.jobs
    tasks = [(args.count // chunks + (i < args.count % chunks), args.seed * 1000 + i,
              args.analysis) for i in range(chunks)]
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        results = pool.map(_worker, [t for t in tasks if t[0]])
    checked = sum(n for n, _ in results)
    found = [f for _, fs in results for f in fs]
    print(f"networks checked: {checked}; disagreements: {len(found)}; "
          f"{time.perf_counter() - started:.0f} s")
    for text, what in found[:20]:
        print(f"\n--- {what}\n{text}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
