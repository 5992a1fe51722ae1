"""Inference engines timed each in its own process: ``netdsl bench --engines`` and
``benchmarks/run.py --only engines``.

Two runtimes in one process fight over the cores (OpenMP threads that spin after torch's
ops, OpenVINO's TBB pool, ONNX Runtime's own pool), so every engine runs in a fresh child
process: ``python -m netdsl.cli.engines SPEC ENGINE BATCH,...`` builds the spec's module
(seed 0, batch norm statistics of one seeded batch: every process holds the same weights),
prepares the engine, warms it up and prints one JSON line of per-run seconds per batch.
The parent alternates the order of the engines from round to round and compares the rounds'
medians. Nothing here imports torch at import time.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# engine name -> what it is (the table's wording)
ENGINES = {
    "eager": "netdsl eager",
    "compile": "torch.compile (freezing, fp32)",
    "netdsl": "netdsl optimize=True (fp32)",
    "netdsl-bf16": 'netdsl optimize="bf16"',
    "netdsl-int8": 'netdsl optimize="int8"',
    "ort": "ONNX Runtime (fp32)",
    "openvino-f32": "OpenVINO (f32 hint)",
    "openvino": "OpenVINO (default: bf16 here)",
}


def _model(spec: str):
    import torch

    import netdsl

    from ..torch.calibrate import calibrate

    torch.manual_seed(0)
    model = netdsl.build(spec)
    calibrate(model, torch.randn(8, *model.netdsl_graph.input.shape,
                                 generator=torch.Generator().manual_seed(1)))
    return model.eval()


def _onnx(model, x, folder: str) -> str:
    import torch

    path = os.path.join(folder, "model.onnx")
    torch.onnx.export(model, (x,), path, input_names=["x"], dynamo=False,
                      dynamic_axes={"x": {0: "batch"}})
    return path


def prepare(engine: str, model, x, folder: str) -> Callable:
    """A function of one input tensor running ``engine`` (compiled, sessions created)."""
    import torch

    if engine == "eager":
        return model
    if engine == "compile":
        return torch.compile(model, fullgraph=True, options={"freezing": True})
    if engine.startswith("netdsl"):
        from ..torch.optimize import optimize_module

        mode = {"netdsl": True, "netdsl-bf16": "bf16", "netdsl-int8": "int8"}[engine]
        calibration = torch.randn(8, *x.shape[1:], generator=torch.Generator().manual_seed(3))
        return optimize_module(model, mode=mode, calibration=calibration)
    if engine == "ort":
        import onnxruntime as ort

        session = ort.InferenceSession(_onnx(model, x, folder), providers=["CPUExecutionProvider"])
        return lambda t: session.run(None, {"x": t.numpy()})[0]
    if engine.startswith("openvino"):
        import openvino as ov

        config = {"INFERENCE_PRECISION_HINT": "f32"} if engine == "openvino-f32" else {}
        compiled = ov.Core().compile_model(ov.convert_model(_onnx(model, x, folder)), "CPU", config)
        return lambda t: compiled(t.numpy())[0]
    raise ValueError(f"unknown engine {engine!r}; known: {', '.join(ENGINES)}")


def worker(spec: str, engine: str, batches: list[int], repeats: int) -> dict:
    """Times ``engine`` on ``spec`` for each batch size; returns seconds and agreement."""
    import numpy as np
    import torch

    from ..torch.runtimes import relative_error

    model = _model(spec)
    shape = model.netdsl_graph.input.shape
    out: dict = {"engine": engine, "times": {}, "error": {}, "setup_s": {}, "chosen": {}}
    with tempfile.TemporaryDirectory() as folder, torch.no_grad():
        run = None
        for batch in batches:
            x = torch.randn(batch, *shape, generator=torch.Generator().manual_seed(batch))
            started = time.perf_counter()
            run = run or prepare(engine, model, x, folder)
            y = torch.as_tensor(np.asarray(run(x)))  # the first call compiles
            out["setup_s"][batch] = time.perf_counter() - started
            if getattr(run, "choices", None):  # optimize=True raced the runtimes
                out["chosen"][batch] = run.choices[tuple(x.shape)][0]
            expected = model(x)
            out["error"][batch] = relative_error(y, expected)
            run(x)
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                run(x)
                times.append(time.perf_counter() - started)
            out["times"][batch] = times
    return out


@dataclass
class Result:
    """One engine's medians over rounds: ``medians[batch]`` lists each round's median."""

    engine: str
    medians: dict[int, list[float]]
    error: dict[int, float]
    # per batch, the runtime each round's optimize=True module chose (netdsl.torch.runtimes)
    chosen: dict[int, list[str]] = field(default_factory=dict)


def run_engines(spec: str, engines: list[str], batches: list[int], repeats: int = 10,
                rounds: int = 2, log: Callable[[str], None] | None = None) -> dict[str, Result]:
    """Each engine in its own process, ``rounds`` times, the order reversed every round."""
    results = {e: Result(e, {b: [] for b in batches}, {}) for e in engines}
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [_root(),
                                                                    os.environ.get("PYTHONPATH")]))}
    for r in range(rounds):
        for engine in engines if r % 2 == 0 else list(reversed(engines)):
            if log:
                log(f"  round {r + 1}: {engine}")
            cmd = [sys.executable, "-m", "netdsl.cli.engines", str(spec), engine,
                   ",".join(map(str, batches)), str(repeats)]
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"engine {engine} failed:\n{done.stderr[-3000:]}")
            data = json.loads(done.stdout.strip().splitlines()[-1])
            for batch in batches:
                results[engine].medians[batch].append(statistics.median(data["times"][str(batch)]))
                results[engine].error[batch] = data["error"][str(batch)]
                if str(batch) in data["chosen"]:
                    results[engine].chosen.setdefault(batch, []).append(
                        data["chosen"][str(batch)])
    return results


def ratio(results: dict[str, Result], ours: str, theirs: str, batch: int) -> tuple[float, float,
                                                                                 float]:
    """Median, min and max over rounds of ``ours / theirs`` (each round's medians: the two
    ran minutes apart at most, under similar load)."""
    pairs = [a / b for a, b in zip(results[ours].medians[batch], results[theirs].medians[batch],
                                   strict=True)]
    return statistics.median(pairs), min(pairs), max(pairs)


def _root() -> str:
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


if __name__ == "__main__":
    spec_arg, engine_arg, batches_arg, repeats_arg = sys.argv[1:5]
    result = worker(spec_arg, engine_arg, [int(b) for b in batches_arg.split(",")], int(repeats_arg))
    print(json.dumps(result))


# (ours, theirs) pairs the tables report, when both engines ran
COMPARISONS = [("netdsl", "ort"), ("netdsl", "openvino-f32"), ("netdsl-bf16", "openvino"),
               ("netdsl-int8", "compile"), ("netdsl-bf16", "compile"), ("netdsl", "compile"),
               ("netdsl", "eager")]


def tables(network: str, results: dict[str, Result], batches: list[int]) -> str:
    """Markdown: each engine's medians and agreement, then the ratios with their spread."""
    out = [f"#### {network}", "", "| engine | " + " | ".join(f"batch {b} (ms, per round)"
                                                          for b in batches)
           + " | max rel. error vs eager |", "|---|" + "---:|" * (len(batches) + 1)]
    for name, r in results.items():
        cells = [" / ".join(f"{t * 1000:.1f}" for t in r.medians[b]) for b in batches]
        error = max(r.error.values()) if r.error else float("nan")
        out.append(f"| {ENGINES[name]} | " + " | ".join(cells) + f" | {error:.1e} |")
    out += ["", "| ratio | " + " | ".join(f"batch {b}: median [min, max]" for b in batches) + " |",
            "|---|" + "---:|" * len(batches)]
    for ours, theirs in COMPARISONS:
        if ours in results and theirs in results:
            cells = ["{:.3f} [{:.3f}, {:.3f}]".format(*ratio(results, ours, theirs, b))
                     for b in batches]
            out.append(f"| {ours} / {theirs} | " + " | ".join(cells) + " |")
    for name, r in results.items():
        if r.chosen:
            out += ["", f"{ENGINES[name]} ran on: " + "; ".join(
                f"batch {b}: {' / '.join(r.chosen[b])}" for b in batches if b in r.chosen)]
    return "\n".join(out)
