"""A ResNet-152 training step in half the memory: ``python benchmarks/memory.py``.

Measures the peak of one eager training step (X: every storage it holds, parameters,
gradients and input included; netdsl.torch.memory.LiveBytes), builds the same network with
``memory_budget=X/2``, measures its peak, and times both steps (forward, cross-entropy,
backward, SGD update) in alternating order. Prints a markdown table for RESULTS.md; the
median of the run-by-run ratios is the step-time cost of recomputation (goal <= 1.3).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

import netdsl  # noqa: E402
from netdsl.cli.bench import interleaved, median_range  # noqa: E402
from netdsl.passes.memory import fmt_bytes, plan  # noqa: E402
from netdsl.torch.memory import training_step_peak  # noqa: E402


def _build(spec: str, **kwargs) -> torch.nn.Module:
    torch.manual_seed(0)
    return netdsl.build(spec, **kwargs)


def _step(module: torch.nn.Module, x: torch.Tensor, y: torch.Tensor):
    optimizer = torch.optim.SGD(module.parameters(), lr=1e-4)

    def run() -> None:
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(module(x), y).backward()
        optimizer.step()
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", default=str(ROOT / "specs" / "resnet152.net"))
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=4)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    eager = _build(args.spec)
    graph = eager.netdsl_graph
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(args.batch, *graph.input.shape, generator=generator)
    y = torch.randint(0, graph.output_shape[0], (args.batch,), generator=generator)
    predicted_eager = plan(graph, None, args.batch).eager_peak
    measured_eager = training_step_peak(eager, x, y)
    budget = measured_eager // 2
    planned = _build(args.spec, memory_budget=budget, batch=args.batch)
    memory_plan = planned.netdsl_memory_plan
    measured = training_step_peak(planned, x, y)
    print(memory_plan, file=sys.stderr)
    times = interleaved({"eager": _step(eager, x, y), "planned": _step(planned, x, y)},
                        args.repeats)
    ratios = [p / e for p, e in zip(times["planned"], times["eager"], strict=True)]

    name = graph.name
    print("| network | batch | eager peak X (measured / predicted) | budget X/2 | "
          "planned peak (measured / predicted) | measured / budget | recomputed | "
          "eager step ms (median, range) | planned step ms (median, range) | "
          "step time ratio (median, range) | goal |")
    print("|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---|")
    ratio = statistics.median(ratios)
    print(f"| {name} | {args.batch} | {fmt_bytes(measured_eager)} / "
          f"{fmt_bytes(predicted_eager)} | {fmt_bytes(budget)} | {fmt_bytes(measured)} / "
          f"{fmt_bytes(memory_plan.peak)} | {measured / budget:.3f} | "
          f"{len(memory_plan.recomputed)} segments, {memory_plan.recompute_fraction:.0%} of "
          f"the forward's MACs | {median_range(times['eager'], 1e3)} | "
          f"{median_range(times['planned'], 1e3)} | {median_range(ratios, digits=3)} | "
          f"peak <= budget: {'ok' if measured <= budget else 'MISS'}; ratio <= 1.3: "
          f"{'ok' if ratio <= 1.3 else 'MISS'} |")
    print(f"\n{args.repeats} alternating pairs after one warm-up step each, "
          f"{torch.get_num_threads()} torch threads, {time.perf_counter() - started:.0f} s "
          f"in all; recomputed: {', '.join(u.name for u in memory_plan.recomputed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
