"""Accuracy under lower precision, measured for real: ``python benchmarks/quant_accuracy.py``.

Trains specs/digits.net and a small zoo ResNet (resnet18.net with one basic block per stage,
on 1x32x32 digits, as examples/conf/model/resnet18.yaml) on scikit-learn's digits with
examples/train.py's recipe (SGD, momentum 0.9, cosine schedule, batch 64, seed 0), then
runs the 450 test images through each inference module and reports test accuracy and the
time of one pass over the test set (batches of 50, medians of interleaved repeats):

- fp32 eager; ``optimize=True`` (backend auto: the faster of OpenVINO and ONNX Runtime); fp32
  ``torch.compile`` (netdsl's inductor route: folded batch norm, freezing), the reference
  of the time ratios;
- ``optimize="bf16"`` (auto: OpenVINO bf16) and bf16 on inductor;
- ``optimize="int8"``: PT2E static quantization (x86 inductor quantizer), calibrated on
  eight training batches.

Each module runs in a process of its own (``--worker``), like benchmarks/engines.py: in one
process the runtimes' thread pools (inductor's OpenMP, ONNX Runtime's spinning pool,
OpenVINO's TBB) hold the cores after their turn and slow the next module's few-millisecond
passes. The parent trains each network once and hands the weights to the workers; the order of
the modules alternates from round to round, and a ratio is the median [min, max] over rounds of
the module's median pass / fp32 torch.compile's in the same round.

Prints a markdown table for RESULTS.md (accuracy drop in points against fp32 eager: goal
<= 0.5; time ratio against fp32 torch.compile: goal <= 0.5 for int8).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

import netdsl  # noqa: E402
from netdsl.cli.bench import median_range  # noqa: E402
from netdsl.torch.optimize import optimize_module  # noqa: E402
from netdsl.torch.runtimes import relative_error  # noqa: E402

NETWORKS = {
    "digits": ("specs/digits.net", {}),
    "resnet18 (1 block/stage, 1x32x32)": ("specs/resnet18.net", {
        "num_classes": 10, "input": (1, 32, 32), "depths": [1, 1, 1, 1]}),
}
BATCH = 50  # the test set's 450 images in 9 equal batches: one compiled shape


def digits(shape):
    """examples/train.py's data: 8x8 digits upsampled to the spec's input, one fixed split."""
    images, labels = load_digits(return_X_y=True)
    x = torch.tensor(images, dtype=torch.float32).view(-1, 1, 8, 8) / 16.0
    x = F.interpolate(x, size=shape[1:], mode="bilinear", align_corners=False)
    x = ((x - x.mean()) / x.std()).repeat(1, shape[0], 1, 1)
    y = torch.tensor(labels)
    return train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)


def train(spec: str, params: dict, epochs: int):
    torch.manual_seed(0)
    model = netdsl.build(spec, **params)
    train_x, test_x, train_y, test_y = digits(model.netdsl_graph.input.shape)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(train_x), generator=generator)
        for i in range(0, len(order), 64):
            batch = order[i:i + 64]
            optimizer.zero_grad()
            F.cross_entropy(model(train_x[batch]), train_y[batch]).backward()
            optimizer.step()
        scheduler.step()
    return model.eval(), train_x, test_x, test_y


# the modules compared, in the table's order: name -> optimize_module's arguments
MODULES = {"fp32 eager": None,
           "fp32 optimize=True": {},
           "fp32 torch.compile": {"backend": "inductor"},
           'bf16 optimize="bf16"': {"mode": "bf16"},
           "bf16 inductor": {"mode": "bf16", "backend": "inductor"},
           'int8 optimize="int8"': {"mode": "int8"}}


def evaluate(run, test_x, test_y) -> tuple[float, torch.Tensor]:
    with torch.no_grad():
        out = torch.cat([run(test_x[i:i + BATCH]) for i in range(0, len(test_x), BATCH)])
    return float((out.argmax(1) == test_y).float().mean()), out


def worker(label: str, module: str, weights: str, repeats: int) -> dict:
    """One module of one trained network in this process: accuracy, agreement with the fp32
    eager module, and the seconds of each timed test pass."""
    spec, params = NETWORKS[label]
    model = netdsl.build(spec, **params)
    model.load_state_dict(torch.load(weights, weights_only=True))
    model.eval()
    train_x, test_x, _, test_y = digits(model.netdsl_graph.input.shape)
    options = MODULES[module]
    if options is None:
        run = model
    else:
        calibration = [train_x[i:i + 64] for i in range(0, 8 * 64, 64)]
        run = optimize_module(model, calibration=calibration, **options)
    accuracy, out = evaluate(run, test_x, test_y)  # compiles every shape it meets
    _, reference = evaluate(model, test_x, test_y)
    evaluate(run, test_x, test_y)  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        evaluate(run, test_x, test_y)
        times.append(time.perf_counter() - started)
    backend = getattr(run, "backend", "torch eager")
    if backend == "fastest":  # what the race chose, per input shape
        backend = " / ".join(sorted({c[0] for c in run.choices.values()}))
    return {"accuracy": accuracy, "error": relative_error(out, reference), "times": times,
            "backend": backend}


def measure(label: str, weights: str, repeats: int, rounds: int) -> dict[str, list[dict]]:
    """Every module in its own process, ``rounds`` times, the order reversed every round."""
    results: dict[str, list[dict]] = {name: [] for name in MODULES}
    for r in range(rounds):
        for name in MODULES if r % 2 == 0 else list(reversed(MODULES)):
            print(f"  {label}, round {r + 1}: {name}", file=sys.stderr, flush=True)
            done = subprocess.run([sys.executable, __file__, "--worker", label, name, weights,
                                   str(repeats)], capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"{name} failed:\n{done.stderr[-3000:]}")
            results[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--repeats", type=int, default=15, help="timed passes per process")
    parser.add_argument("--rounds", type=int, default=3, help="processes per module")
    parser.add_argument("--worker", nargs=4, metavar=("NETWORK", "MODULE", "WEIGHTS", "REPEATS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        label, module, weights, repeats = args.worker
        print(json.dumps(worker(label, module, weights, int(repeats))))
        return 0
    started = time.perf_counter()
    print("| network | module | backend | test accuracy | drop (points) | max rel. error vs "
          "fp32 | test pass ms (median of rounds, range) | time / fp32 torch.compile (median, "
          "range over rounds) |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        for label, (spec, params) in NETWORKS.items():
            model, *_ = train(spec, params, args.epochs)
            weights = str(Path(folder) / "weights.pt")
            torch.save(model.state_dict(), weights)
            results = measure(label, weights, args.repeats, args.rounds)
            base = [statistics.median(r["times"]) for r in results["fp32 torch.compile"]]
            reference_accuracy = results["fp32 eager"][0]["accuracy"]
            for name, rounds in results.items():
                medians = [statistics.median(r["times"]) for r in rounds]
                ratios = [m / b for m, b in zip(medians, base, strict=True)]
                accuracy, error = rounds[0]["accuracy"], max(r["error"] for r in rounds)
                backends = " / ".join(sorted({r["backend"] for r in rounds}))
                print(f"| {label} | {name} | {backends} | {accuracy:.4f} | "
                      f"{(reference_accuracy - accuracy) * 100:+.2f} | {error:.1e} | "
                      f"{median_range(medians, 1e3, 1)} | {median_range(ratios, digits=3)} |",
                      flush=True)
    print(f"\n{args.epochs} epochs each; each module in its own process, {args.rounds} rounds "
          f"of {args.repeats} timed 450-image test passes (batches of {BATCH}), "
          f"{torch.get_num_threads()} torch threads, {time.perf_counter() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
