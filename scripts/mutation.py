"""Helpers for the cosmic-ray run over the op records (docs/mutation.md).

    python scripts/mutation.py sample SESSION --seed 0   # one mutant per site, the rest skipped
    python scripts/mutation.py score SESSION             # killed/survived/timeout per file
    python scripts/mutation.py recheck SESSION [--quick] # survivors under grown/wider tests
    python scripts/mutation.py survivors SESSION         # each surviving mutant as a diff

Sampling: cosmic-ray writes up to eleven mutants at one place (``a * b`` becomes ``a + b``,
``a - b``, ``a / b``, ...). ``sample`` keeps one of them, drawn with ``--seed``, for every
(file, position, operator family), so every mutation site is tested once (a third of the
mutants); ``--per-file N`` keeps N such sites per file, drawn with the same seed.
"""

from __future__ import annotations

import argparse
import random
import re
import tomllib
from collections import Counter, defaultdict
from pathlib import Path

from cosmic_ray.mutating import mutate_and_test
from cosmic_ray.work_db import WorkDB, use_db
from cosmic_ray.work_item import TestOutcome, WorkerOutcome, WorkResult

CONFIG = Path(__file__).resolve().parent.parent / "cosmic-ray.toml"


def _family(operator: str) -> str:
    """``core/ReplaceBinaryOperator_Mul_Add`` -> ``ReplaceBinaryOperator_Mul``."""
    name = operator.split("/")[-1]
    match = re.match(r"(Replace(?:Binary|Comparison|Unary)Operator_[A-Za-z]+)_", name)
    return match.group(1) if match else name


def _site(item) -> tuple:
    (mutation,) = item.mutations
    return (str(mutation.module_path), tuple(mutation.start_pos), _family(mutation.operator_name))


def sample(db: WorkDB, seed: int, per_file: int | None, exclude: str | None = None) -> None:
    """Skips all but one mutant per site (or per_file sites per file); ``exclude`` names an
    earlier session whose tested sites are not drawn again (a second batch)."""
    tested = set()
    if exclude:
        with use_db(exclude, WorkDB.Mode.open) as other:
            tested = {_site(item) for item, result in other.completed_work_items
                      if _outcome(result) != "skipped"}
    sites = defaultdict(list)
    for item in db.pending_work_items:
        sites[_site(item)].append(item.job_id)
    for key in tested & set(sites):
        db.set_multiple_results(sites.pop(key), WorkResult(
            output="tested in an earlier batch", worker_outcome=WorkerOutcome.SKIPPED))
    rng = random.Random(seed)
    chosen = set(sites)
    if per_file is not None:
        by_file = defaultdict(list)
        for key in sorted(sites):
            by_file[key[0]].append(key)
        chosen = {key for keys in by_file.values()
                  for key in rng.sample(keys, min(per_file, len(keys)))}
    skipped = 0
    for key in sorted(sites):
        jobs = sorted(sites[key])
        keep = rng.choice(jobs) if key in chosen else None
        for job in jobs:
            if job != keep:
                db.set_result(job, WorkResult(output="not sampled",
                                              worker_outcome=WorkerOutcome.SKIPPED))
                skipped += 1
    print(f"{len(chosen)} of {len(sites)} sites kept, {skipped} mutants skipped")


def _outcome(result: WorkResult | None) -> str:
    if result is None:
        return "pending"
    if result.worker_outcome == WorkerOutcome.SKIPPED:
        return "skipped"
    if result.worker_outcome == WorkerOutcome.ABNORMAL:
        return "timeout"
    if result.worker_outcome != WorkerOutcome.NORMAL or result.test_outcome == TestOutcome.INCOMPETENT:
        return "error"
    if result.test_outcome == TestOutcome.KILLED and result.output == "timeout":
        return "timeout"  # cosmic-ray records a timeout as killed
    return "survived" if result.test_outcome == TestOutcome.SURVIVED else "killed"


def _rows(db: WorkDB):
    for item, result in db.completed_work_items:
        yield item, _outcome(result)
    for item in db.pending_work_items:
        yield item, "pending"


def score(db: WorkDB) -> None:
    counts: dict[str, Counter] = defaultdict(Counter)
    for item, outcome in _rows(db):
        counts[str(item.mutations[0].module_path)][outcome] += 1
    print("file                              killed survived timeout  error pending skipped")
    for path in sorted(counts):
        c = counts[path]
        print(f"{path:34}{c['killed']:7}{c['survived']:9}{c['timeout']:8}{c['error']:7}"
              f"{c['pending']:8}{c['skipped']:8}")


def recheck(db: WorkDB, quick: bool = False) -> None:
    """Runs each survivor again, under the test command (whose tests may have grown since)
    and then the wider suite (the ``recheck-command`` of cosmic-ray.toml); records the new
    outcome."""
    config = tomllib.loads(CONFIG.read_text())
    commands = [config["cosmic-ray"]["test-command"],
                config["netdsl"]["mutation"]["recheck-command"]][:1 if quick else 2]
    timeout = config["cosmic-ray"]["timeout"]
    for item, result in db.completed_work_items:
        if _outcome(result) != "survived":
            continue
        for command in commands:
            again = mutate_and_test(item.mutations, command, timeout)
            if _outcome(again) != "survived":
                break
        m = item.mutations[0]
        print(f"{m.module_path}:{m.start_pos[0]} {m.operator_name}: {_outcome(again)}",
              flush=True)
        if _outcome(again) != "survived":
            db.set_result(item.job_id, again)


def survivors(db: WorkDB) -> None:
    for item, result in db.completed_work_items:
        if _outcome(result) == "survived":
            m = item.mutations[0]
            print(f"--- {m.module_path}:{m.start_pos[0]} {m.operator_name} "
                  f"(occurrence {m.occurrence}) job {item.job_id}")
            print(result.diff)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["sample", "score", "recheck", "survivors"])
    parser.add_argument("session")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-file", type=int, default=None)
    parser.add_argument("--exclude", help="an earlier session whose sites are not drawn again")
    parser.add_argument("--quick", action="store_true",
                        help="recheck: the test command only, not the wider suite")
    args = parser.parse_args()
    with use_db(args.session) as db:
        if args.command == "sample":
            sample(db, args.seed, args.per_file, args.exclude)
        elif args.command == "score":
            score(db)
        elif args.command == "recheck":
            recheck(db, args.quick)
        else:
            survivors(db)


if __name__ == "__main__":
    main()
