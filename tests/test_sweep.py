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
