"""The long fuzzing campaign: the generators of tests/test_fuzz.py, many more cases, counts.

    python scripts/fuzz.py            # 12,000 cases (a few minutes)
    python scripts/fuzz.py -n 50000 --seed 1

Every case must end in a result or a NetDSLError (API), or in exit 0/1/2 without a traceback
(CLI). Escapes (any other exception, an "internal error" from the CLI) and cases slower than
--slow seconds are counted and printed with their input; the exit status is 1 if any occurred.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import test_fuzz as gen  # noqa: E402  (the generators live with the in-suite tests)


class Slow(Exception):
    pass


def _alarm(*_):
    raise Slow


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--cases", type=int, default=12_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--slow", type=float, default=2.0, help="seconds before a case is 'slow'")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    signal.signal(signal.SIGALRM, _alarm)
    folder = Path(tempfile.mkdtemp(prefix="netdsl-fuzz-"))
    counts: dict[str, Counter] = {}
    escapes: list[tuple[str, str, str]] = []

    def record(kind: str, text: str, run) -> None:
        signal.setitimer(signal.ITIMER_REAL, args.slow)
        try:
            outcome = run(text)
        except Slow:
            outcome = "slow"
            escapes.append((kind, "slow", text))
        except Exception as error:  # noqa: BLE001 - an escape is what we are looking for
            outcome = "escape"
            escapes.append((kind, f"{type(error).__name__}: {error}", text))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        counts.setdefault(kind, Counter())[outcome] += 1

    def cli(text: str) -> str:
        path = folder / "fuzzed.net"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        code, err = gen.cli_outcome(path)
        gen.assert_clean_cli(code, err)
        return f"exit {code}"

    plan = [  # (kind, share of the cases, strategy, check)
        ("grammar file", 0.10, gen.grammar_texts(), gen.api_outcome),
        ("grammar network", 0.25, gen.network_texts(), gen.api_outcome),
        ("mutated spec", 0.40, gen.mutated_specs(), gen.api_outcome),
        ("random text", 0.10, st.text(max_size=60)
         | st.binary(max_size=60).map(lambda b: b.decode("latin-1")), gen.api_outcome),
        ("cli, mutated spec", 0.15, gen.mutated_specs() | gen.network_texts(), cli),
    ]
    started = time.perf_counter()
    def campaign(kind, n, strategy, check):
        @seed(args.seed)
        @settings(max_examples=n, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(strategy)
        def run(text):
            record(kind, text, check)
        return run

    for kind, share, strategy, check in plan:
        campaign(kind, max(1, round(args.cases * share)), strategy, check)()
        print(f"{kind:18} {sum(counts[kind].values()):6}  " + ", ".join(
            f"{k} {v}" for k, v in sorted(counts[kind].items())), flush=True)
    total = sum(sum(c.values()) for c in counts.values())
    print(f"{'total':18} {total:6}  in {time.perf_counter() - started:.0f} s; "
          f"escapes {len(escapes)}")
    for kind, what, text in escapes[:20]:
        print(f"\n[{kind}] {what}\n{text[:2000]!r}")
    return 1 if escapes else 0


if __name__ == "__main__":
    sys.exit(main())
