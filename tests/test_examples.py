"""The examples run as documented: training on digits (one process and torchrun), a Hydra
sweep over two specs, Hydra's help, and the embedding example."""

from __future__ import annotations

import re
import subprocess
import sys

import hydra.utils
import pytest

from conftest import ROOT

pytestmark = pytest.mark.timeout(900)  # the examples train: 250 s of setup alone at a load of 10

TRAIN = str(ROOT / "examples" / "train.py")
QUICK = ["epochs=5"]  # the reduced run CI can afford; the full run is 15 epochs


def run(command: list[str], tmp_path, timeout: int = 300) -> str:
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=timeout,
                            env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def accuracy(output: str) -> float:
    return float(re.findall(r"test accuracy: ([0-9.]+)", output)[-1])


@pytest.fixture(scope="module")
def single_process_accuracy(tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    return accuracy(run([sys.executable, TRAIN, f"hydra.run.dir={out}", *QUICK], out))


def test_training_on_digits_reaches_a_good_accuracy(single_process_accuracy):
    assert single_process_accuracy >= 0.85


def test_torchrun_gives_the_same_accuracy(tmp_path, single_process_accuracy):
    # --standalone rendezvous on a free port: a fixed port collides with another run beside it
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    got = accuracy(run([*torchrun, TRAIN, f"hydra.run.dir={tmp_path}", *QUICK], tmp_path))
    assert got >= 0.85
    assert abs(got - single_process_accuracy) <= 0.05


def test_training_resumes_from_its_checkpoint(tmp_path):
    run([sys.executable, TRAIN, f"hydra.run.dir={tmp_path}", "epochs=1", "subset=128"], tmp_path)
    assert (tmp_path / "checkpoint.pt").is_file()
    out = run([sys.executable, TRAIN, f"hydra.run.dir={tmp_path}", "epochs=2", "subset=128"],
              tmp_path)
    assert "resumed from" in out and "epoch   2" in out and "epoch   1 " not in out


def test_multirun_sweeps_two_specs(tmp_path):
    out = run([sys.executable, TRAIN, "-m", "model=digits,resnet18", "epochs=1", "subset=64",
               f"hydra.sweep.dir={tmp_path}"], tmp_path)
    assert len(re.findall("test accuracy", out)) == 2
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["0", "1"]


def test_help_is_hydras():
    result = subprocess.run([sys.executable, TRAIN, "--help"], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert result.returncode == 0
    assert "== Configuration groups ==" in result.stdout
    assert re.search(r"model: .*digits.*resnet18", result.stdout)


def test_hydra_instantiates_netdsl_build():
    model = hydra.utils.instantiate({"_target_": "netdsl.build", "spec": "specs/resnet18.net",
                                     "num_classes": 10, "depths": [1, 1, 1, 1]})
    assert model.fc.out_features == 10
    assert sum(1 for name, _ in model.named_children() if name.startswith("layer")) == 4
    assert not hasattr(model.layer1, "1")  # one block per stage, from the list override


def test_embedding_example_runs(tmp_path):
    out = run([sys.executable, str(ROOT / "examples" / "embed.py")], tmp_path)
    assert "fails at line 8, column 26" in out


def test_training_in_a_memory_budget_prints_its_plan(tmp_path):
    # ResNet-18 on 32x32 digits at batch 64 needs about 108 MiB without checkpointing and
    # 104.5 MiB at the least (its parameters and gradients alone take 85 MiB)
    out = run([sys.executable, TRAIN, "model=resnet18", "model.memory_budget=106MiB",
               "epochs=1", "subset=64", f"hydra.run.dir={tmp_path}"], tmp_path)
    assert "memory plan for resnet18 at batch 64, budget 106.0 MiB" in out
    assert re.search(r"recomputed in backward: [1-9]\d* segments", out)
    assert "test accuracy" in out
