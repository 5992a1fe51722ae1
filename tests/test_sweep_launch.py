"""Design-space sweeps launched through Hydra (issue 17): examples/train.py under
submitit_local and under a Ray cluster started here, every point screened statically first
(the one over the MAC budget is never launched), every trial's metrics.json collected and
joined to ``netdsl sweep``'s table."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from netdsl.cli import main

from conftest import ROOT

pytestmark = pytest.mark.timeout(900)  # sweeps train several networks: 300 s at a load of 10

TRAIN = str(ROOT / "examples" / "train.py")
FAMILY = str(ROOT / "examples" / "resnet_digits.net")
# 2 widths x 2 depths; width 32 has 8.5M and 17.9M MACs, over the 2e6 budget: 2 trials run
# (two are enough to show separate jobs; each trial is a process that imports torch).
GRID = ["model=resnet_digits", "model.width=4,32", "model.depth=1,2", "screen.max_macs=2e6",
        "epochs=1", "subset=128"]
FITTING = {(4, 1), (4, 2)}


def sweep(folder: Path, *launcher: str) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, TRAIN, "-m", *GRID, f"hydra.sweep.dir={folder}",
                           *launcher], capture_output=True, text=True, cwd=ROOT, timeout=600,
                          env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def trials(folder: Path) -> list[dict]:
    return [json.loads(f.read_text()) for f in sorted(folder.glob("*/metrics.json"))]


def check_screened_sweep(folder: Path, log: str) -> list[dict]:
    """Exactly the two fitting points ran, each with its metrics; width 32 never did."""
    runs = trials(folder)
    assert {(t["model"]["width"], t["model"]["depth"]) for t in runs} == FITTING
    assert sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name.isdigit()) == \
        ["0", "1"]  # job folders: none was made for an unlaunched point
    assert not any("model.width=32" in line for line in log.splitlines() if " : " in line)
    assert len(re.findall(r"not launched: .*model\.width=32 .*over budget: macs", log)) == 2
    screened = json.loads((folder / "screened.json").read_text())
    assert [r["launched"] for r in screened] == [True, True, False, False]
    assert {tuple(r["over"]) for r in screened[2:]} == {("macs",)}
    for t in runs:
        assert 0 <= t["accuracy"] <= 1 and t["train_seconds"] > 0 and t["epochs"] == 1
        assert t["macs"] <= 2e6 and f"model.width={t['model']['width']}" in t["overrides"]
    return runs


@pytest.fixture(scope="module")
def submitit_sweep(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("submitit")
    log = sweep(folder, "hydra/launcher=submitit_local")
    check_screened_sweep(folder, log)
    return folder


def test_submitit_local_runs_the_points_that_fit_and_never_the_one_over_budget(submitit_sweep):
    runs = trials(submitit_sweep)
    # each trial was a submitit job of its own: one job folder each, its id in the metrics
    jobs = sorted(p.name for p in (submitit_sweep / ".submitit").iterdir() if p.name.isdigit())
    assert len(jobs) == 2 and sorted(t["job_id"] for t in runs) == jobs
    assert len({t["pid"] for t in runs}) == 2 and os.getpid() not in {t["pid"] for t in runs}


def test_a_ray_cluster_started_here_runs_the_same_sweep(tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the cluster's workers inherit it
    # Ray runs its workers at nice 15: beside CPU-bound neighbours the trials starved past
    # the sweep's 600 s deadline (three CI runs at a load of 10)
    monkeypatch.setenv("RAY_worker_niceness", "0")
    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=100 * 2**20)
    try:
        address = ray.get_runtime_context().gcs_address
        log = sweep(tmp_path, "hydra/launcher=netdsl_ray", f"hydra.launcher.address={address}")
    finally:
        ray.shutdown()
    runs = check_screened_sweep(tmp_path, log)
    assert "2 trials on 2 CPUs" in log
    ids = [t["job_id"] for t in runs]  # Ray task ids: the trials ran as tasks of the cluster
    assert len(set(ids)) == 2 and all(re.fullmatch(r"[0-9a-f]{32,}", i) for i in ids)


def test_the_sweep_table_joins_what_the_trials_measured(submitit_sweep, capsys, tmp_path):
    runs = {(t["model"]["width"], t["model"]["depth"]): t for t in trials(submitit_sweep)}
    picture = tmp_path / "sweep.png"
    assert main(["sweep", FAMILY, "width=4,32", "depth=1,2", "--max-macs", "2e6",
                 "--results", str(submitit_sweep), "--format", "json",
                 "--plot", str(picture), "--pareto", "macs,accuracy"]) == 0
    points = json.loads(capsys.readouterr().out)
    for point in points:
        key = (int(point["params"]["width"]), int(point["params"]["depth"]))
        if key in FITTING:
            assert point["measured"]["runs"] == 1
            assert point["measured"]["accuracy"] == runs[key]["accuracy"]
            assert point["figures"]["macs"] == runs[key]["macs"]
        else:
            assert point["measured"] == {"runs": 0} and point["over"] == ["macs"]
            assert not point["pareto"]
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_single_run_over_budget_refuses_before_training(tmp_path):
    done = subprocess.run([sys.executable, TRAIN, "model=resnet_digits", "screen.max_macs=1e5",
                           f"hydra.run.dir={tmp_path}"], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 1  # a run that trained nothing failed (it exited 0, issue 26)
    assert "not trained: over budget: macs" in done.stdout + done.stderr
    assert not (tmp_path / "metrics.json").exists() and not (tmp_path / "checkpoint.pt").exists()


def test_submitit_slurm_submits_one_array_of_the_points_that_fit(tmp_path):
    """No Slurm here: a stand-in sbatch keeps the script submitit hands it, then fails
    (submitit only checks that srun exists)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "srun").chmod(0o755)
    (bin_dir / "sbatch").write_text(f"#!/bin/sh\ncp \"$1\" {tmp_path}/submitted.sh\n"
                                    "echo 'sbatch: no cluster here' >&2\nexit 1\n")
    (bin_dir / "sbatch").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    grid = [*GRID[:1], "model.width=0,4,8,32", *GRID[2:]]  # width 0 does not compile
    done = subprocess.run([sys.executable, TRAIN, "-m", *grid, f"hydra.sweep.dir={tmp_path}/s",
                           "hydra/launcher=submitit_slurm", "hydra.launcher.partition=cpu",
                           "hydra.launcher.cpus_per_task=2"], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, env=env)
    assert done.returncode != 0 and "no cluster here" in done.stdout + done.stderr
    script = (tmp_path / "submitted.sh").read_text()
    # four tasks: the two points that do not compile and the two over budget are not in it
    assert "#SBATCH --array=0-3" in script
    assert "#SBATCH --partition=cpu" in script and "#SBATCH --cpus-per-task=2" in script
    screened = json.loads((tmp_path / "s" / "screened.json").read_text())
    assert [r["launched"] for r in screened] == [False, False, True, True, True, True, False, False]
    assert screened[0]["error"].startswith("E004: conv: out must be a whole number")
    assert "not launched: model=resnet_digits model.width=0 model.depth=1" in done.stdout
    assert "does not compile: E004" in done.stdout
