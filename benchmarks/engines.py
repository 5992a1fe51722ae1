"""Inference engines on the case-study networks, each engine in its own process, and a plot
of time against batch size: ``python benchmarks/engines.py``.

Runs netdsl/cli/engines.py (one fresh process per engine, per network, per round; the order
reversed every round) for ResNet-50, Inception-v3 and MobileNetV2 at batches 1, 2, 4 and 8,
writes the tables (medians per round; ratios with their min and max over rounds) to
benchmarks/engines.md, the raw medians to benchmarks/engines.json, and draws
benchmarks/engines.png from the JSON (``--plot-only`` redraws it without running anything).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from netdsl.cli.engines import ENGINES, Result, run_engines, tables  # noqa: E402

NETWORKS = ("mobilenet_v2", "resnet50", "inception_v3")  # quickest first
# the comparisons: netdsl's best fp32 against ONNX Runtime and OpenVINO in fp32,
# netdsl's bf16 against OpenVINO's default (bf16 on this CPU)
DEFAULT_ENGINES = ("netdsl", "ort", "openvino-f32", "netdsl-bf16", "openvino")
HERE = ROOT / "benchmarks"


def run(networks, engines, batches, repeats, rounds) -> dict:
    data = {"batches": batches, "engines": list(engines), "networks": {}}
    for name in networks:
        spec = ROOT / "specs" / f"{name}.net"
        results = run_engines(str(spec), list(engines), batches, repeats=repeats, rounds=rounds,
                              log=lambda line: print(line, file=sys.stderr, flush=True))
        data["networks"][name] = {e: {"medians": {str(b): r.medians[b] for b in batches},
                                      "error": {str(b): r.error[b] for b in batches},
                                      "chosen": {str(b): c for b, c in r.chosen.items()}}
                                  for e, r in results.items()}
        print(tables(name, results, batches), file=sys.stderr, flush=True)
        save(data)  # each network as it finishes: a long run stopped early keeps them
    return data


def save(data: dict) -> None:
    (HERE / "engines.json").write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    (HERE / "engines.md").write_text(markdown(data) + "\n", encoding="utf-8")


def markdown(data: dict) -> str:
    batches = data["batches"]
    out = []
    for name, engines in data["networks"].items():
        results = {e: Result(e, {b: v["medians"][str(b)] for b in batches},
                             {b: v["error"][str(b)] for b in batches},
                             {int(b): c for b, c in v.get("chosen", {}).items()})
                   for e, v in engines.items()}
        out += [tables(name, results, batches), ""]
    return "\n".join(out)


def plot(data: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    batches = data["batches"]
    networks = list(data["networks"])
    fig, axes = plt.subplots(1, len(networks), figsize=(5 * len(networks), 4), squeeze=False)
    for ax, name in zip(axes[0], networks, strict=True):
        for engine, values in data["networks"][name].items():
            per_image = [statistics.median(values["medians"][str(b)]) * 1000 / b for b in batches]
            low = [min(values["medians"][str(b)]) * 1000 / b for b in batches]
            high = [max(values["medians"][str(b)]) * 1000 / b for b in batches]
            line, = ax.plot(batches, per_image, marker="o", label=ENGINES[engine])
            ax.fill_between(batches, low, high, color=line.get_color(), alpha=0.15)
        ax.set_title(name)
        ax.set_xlabel("batch size")
        ax.set_xscale("log", base=2)
        ax.set_xticks(batches, [str(b) for b in batches])
        ax.set_ylabel("ms per image")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle("CPU inference, ms per image against batch size (median over rounds, "
                 "band: min-max; 2 cores, shared machine)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS))
    parser.add_argument("--engines", nargs="+", default=list(DEFAULT_ENGINES), choices=ENGINES)
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--plot-only", action="store_true", help="redraw the PNG from the JSON")
    args = parser.parse_args(argv)
    if not args.plot_only:
        started = time.perf_counter()
        data = run(args.networks, args.engines, [int(b) for b in args.batches.split(",")],
                   args.repeats, args.rounds)
        data["seconds"] = round(time.perf_counter() - started)
        save(data)
    data = json.loads((HERE / "engines.json").read_text(encoding="utf-8"))
    plot(data, HERE / "engines.png")
    print(markdown(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
