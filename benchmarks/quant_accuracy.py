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

Prints a markdown table for RESULTS.md (accuracy drop in points against fp32 eager: goal
<= 0.5; time ratio against fp32 torch.compile: goal <= 0.5 for int8).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

import netdsl  # noqa: E402
from netdsl.cli.bench import interleaved, median_range  # noqa: E402
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


def contestants(model, calibration):
    """name -> inference module, each compiled by one call on a test-shaped batch."""
    out = {"fp32 eager": model,
           "fp32 optimize=True": optimize_module(model),
           "fp32 torch.compile": optimize_module(model, backend="inductor"),
           'bf16 optimize="bf16"': optimize_module(model, mode="bf16"),
           "bf16 inductor": optimize_module(model, mode="bf16", backend="inductor"),
           'int8 optimize="int8"': optimize_module(model, mode="int8", calibration=calibration)}
    return out


def evaluate(run, test_x, test_y) -> tuple[float, torch.Tensor]:
    with torch.no_grad():
        out = torch.cat([run(test_x[i:i + BATCH]) for i in range(0, len(test_x), BATCH)])
    return float((out.argmax(1) == test_y).float().mean()), out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    print("| network | module | backend | test accuracy | drop (points) | max rel. error vs "
          "fp32 | test pass ms (median, range) | time / fp32 torch.compile (median, range) |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for label, (spec, params) in NETWORKS.items():
        model, train_x, test_x, test_y = train(spec, params, args.epochs)
        calibration = [train_x[i:i + 64] for i in range(0, 8 * 64, 64)]
        runs = contestants(model, calibration)
        results = {name: evaluate(run, test_x, test_y) for name, run in runs.items()}
        reference_accuracy, reference = results["fp32 eager"]
        times = interleaved({name: (lambda r=run, x=test_x, y=test_y: evaluate(r, x, y))
                             for name, run in runs.items()}, args.repeats)
        base = times["fp32 torch.compile"]
        for name, (accuracy, out) in results.items():
            ratios = [t / b for t, b in zip(times[name], base, strict=True)]
            error = relative_error(out, reference)
            backend = getattr(runs[name], "backend", "torch eager")
            if backend == "fastest":  # what the race chose, per input shape
                backend = " / ".join(sorted({c[0] for c in runs[name].choices.values()}))
            print(f"| {label} | {name} | {backend} | {accuracy:.4f} | "
                  f"{(reference_accuracy - accuracy) * 100:+.2f} | {error:.1e} | "
                  f"{median_range(times[name], 1e3, 1)} | {median_range(ratios, digits=3)} |",
                  flush=True)
    print(f"\n{args.epochs} epochs each, {args.repeats} interleaved repeats of a 450-image test "
          f"pass (batches of {BATCH}), {torch.get_num_threads()} torch threads, "
          f"{time.perf_counter() - started:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
