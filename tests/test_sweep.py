"""`netdsl sweep`: a design-space grid screened from the IR alone."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import netdsl
from netdsl import limits
from netdsl.cli import main, parse_sweep
from netdsl.errors import OverrideError
from netdsl.passes.analyse import summarize
from netdsl.passes.explore import Point, mark_pareto

from conftest import ROOT, SPECS

AXES = ["depths=[1,1,1,1],[2,2,2,2],[3,4,6,3]", "unit=basic,bottleneck,basic",
        "num_classes=10"]


def sweep_json(capsys, *args: str) -> list[dict]:
    assert main(["sweep", str(SPECS / "resnet18.net"), *args, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_every_point_has_the_figures_summary_gives_it(capsys):
    points = sweep_json(capsys, "depths=[1,1,1,1],[2,2,2,2],[3,4,6,3]",
                        "num_classes=10,100,1000")
    assert len(points) == 9
    for point in points:
        depths = tuple(json.loads(point["params"]["depths"]))
        classes = int(point["params"]["num_classes"])
        s = summarize(netdsl.compile(SPECS / "resnet18.net", depths=depths, num_classes=classes))
        assert point["figures"] == {"params": s.total_params, "macs": s.total_macs,
                                    "activation_bytes": s.forward_bytes(),
                                    "receptive_field": max(s.feature_rf), "depth": s.depth}


def test_budgets_mark_exactly_the_points_over_them(capsys):
    points = sweep_json(capsys, *AXES, "--max-macs", "2e9", "--max-params", "12e6")
    for point in points:
        f = point["figures"]
        over = {"macs"} if f["macs"] > 2e9 else set()
        over |= {"params"} if f["params"] > 12e6 else set()
        assert set(point["over"]) == over
    assert {frozenset(p["over"]) for p in points} >= {frozenset(), frozenset({"macs", "params"})}


def test_a_point_that_does_not_compile_is_a_row_with_its_diagnostic(capsys):
    points = sweep_json(capsys, "num_classes=10,0")
    assert points[0]["error"] is None
    assert points[1]["error"]["code"] == "E004" and "at least 1" in points[1]["error"]["message"]
    assert points[1]["figures"] == {} and not points[1]["pareto"]


def test_the_pareto_front_keeps_the_points_nothing_beats_on_both():
    def point(macs, params, error=None):
        return Point({"x": macs}, {"macs": macs, "params": params}, error=error)
    marked = mark_pareto([point(1, 9), point(2, 5), point(3, 5), point(4, 1), point(5, 2),
                          point(0, 0, error=OverrideError("x"))], ("macs", "params"))
    assert [p.pareto for p in marked] == [True, True, False, True, False, False]


def test_the_grid_is_bounded(monkeypatch):
    monkeypatch.setattr(limits, "MAX_SWEEP_POINTS", 8)
    assert len(parse_sweep(["a=range(0,4)", "b=1,2"])["a"]) == 4
    with pytest.raises(OverrideError, match="more than 8 points"):
        parse_sweep(["a=range(0,4)", "b=1,2,3"])
    with pytest.raises(OverrideError, match="not a plain key=value"):
        parse_sweep(["+a=1"])


def test_sweep_never_imports_torch_and_prints_a_table():
    code = ("import sys; from netdsl.cli import main; "
            f"main(['sweep', 'specs/resnet18.net', {', '.join(map(repr, AXES))}]); "
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "False"
    assert sum("fits" in line for line in lines) == 9 and "pareto" in done.stdout


def write_trial(folder, width, accuracy, spec=SPECS / "digits.net", **extra):
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps(
        {"accuracy": accuracy, "train_seconds": 2.0, "model": {"width": width, "num_classes": 10},
         "spec": str(spec), **extra}))


def test_results_join_the_trials_of_each_point_and_skip_the_rest(tmp_path, capsys):
    write_trial(tmp_path / "0", 8, 0.5)
    write_trial(tmp_path / "1", 8, 0.7)  # a second run of the same point: the mean is shown
    write_trial(tmp_path / "2", 16, 0.9)
    write_trial(tmp_path / "3", 16, 0.1, spec=SPECS / "resnet18.net")  # another spec's trial
    write_trial(tmp_path / "4", 32, float("nan"))
    (tmp_path / "5").mkdir()
    (tmp_path / "5" / "metrics.json").write_text("{not json")
    assert main(["sweep", str(SPECS / "digits.net"), "width=8,16,32", "--results", str(tmp_path),
                 "--pareto", "macs,accuracy", "--format", "json"]) == 0
    captured = capsys.readouterr()
    points = json.loads(captured.out)
    assert [p["measured"].get("runs") for p in points] == [2, 1, 0]
    assert points[0]["measured"]["accuracy"] == pytest.approx(0.6)
    assert points[1]["measured"]["accuracy"] == 0.9
    # width 16 costs more but is more accurate: both on the accuracy-MACs front; 32 has no trial
    assert [p["pareto"] for p in points] == [True, True, False]
    assert "skipped" in captured.err and "4/metrics.json: 'accuracy' is not a finite" in captured.err
    assert "5/metrics.json" in captured.err


def test_results_usage_errors(tmp_path, capsys):
    spec = str(SPECS / "digits.net")
    assert main(["sweep", spec, "width=8", "--plot", str(tmp_path / "a.png")]) == 2
    assert "--plot needs --results" in capsys.readouterr().err
    assert main(["sweep", spec, "width=8", "--results", str(tmp_path / "none")]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert main(["sweep", spec, "width=8", "--pareto", "macs,accuracy"]) == 2  # no results
    assert main(["sweep", spec, "width=8", "--results", str(tmp_path),
                 "--plot", str(tmp_path / "a.png")]) == 1  # nothing matched: nothing to draw
    assert "no trial under --results matched" in capsys.readouterr().err


def test_a_parameter_named_like_a_figure_keeps_its_column(capsys):
    assert main(["sweep", str(ROOT / "examples" / "resnet_digits.net"), "depth=1,3",
                 "--format", "csv"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0].startswith("depth,params,") and ",depth (net)," in rows[0]
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "3"]


def test_screen_is_one_point_of_the_sweep_and_ignores_builds_own_options():
    point = netdsl.screen(SPECS / "digits.net", {"width": 64, "memory_budget": "1MB", "batch": 8},
                          max_macs=10**6)
    s = summarize(netdsl.compile(SPECS / "digits.net", width=64))
    assert point.figures["macs"] == s.total_macs > 10**6 and point.over == ("macs",)
    assert netdsl.screen(SPECS / "digits.net", {"width": 0}).error.code == "E004"
    with pytest.raises(netdsl.NetDSLError, match="macs budget must be a number from 0 to 1e18, "
                       "found nan") as caught:
        netdsl.screen(SPECS / "digits.net", max_macs=float("nan"))
    # a coded error (issue 27), still a ValueError for callers that caught that before
    assert caught.value.code == "E010" and isinstance(caught.value, ValueError)
