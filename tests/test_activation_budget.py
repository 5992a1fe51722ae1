"""Issue 12, item 5: no activation budget. A network of some hundred parameters on a 3x100000x100000
input, or with ``pad=999999999999999``, passed check and asked torch for 120 GB to 2 TB at
build ("internal error"). ``netdsl.build`` and ``netdsl build`` now refuse, from the IR, a
network whose inference pass holds more values at once than ``max_activations`` (default
2**31: 8 GiB of float32 at batch 1), at the declared input and batch."""

from __future__ import annotations

import pytest

import netdsl
from netdsl.api import MAX_ACTIVATIONS, check_budget
from netdsl.cli import main
from netdsl.errors import SpecLimitError

HUGE = "network t:\n    input 3x100000x100000\n    conv(4, 3x3) -> relu -> gap -> flatten -> fc(10)\n"
SMALL = "network t:\n    input 3x32x32\n    conv(4, 3x3) -> relu -> gap -> flatten -> fc(10)\n"


@pytest.mark.parametrize("spec", [HUGE, SMALL.replace("3x3)", "3x3, pad=999999999999999)")],
                         ids=["huge_input", "huge_padding"])
def test_huge_activations_refused_before_build(spec):
    with pytest.raises(SpecLimitError) as caught:
        netdsl.build(spec)
    assert caught.value.code == "E007" and "values at once" in caught.value.message
    assert caught.value.line == 3  # the layer with the largest output


def test_the_budget_is_the_inference_peak_times_the_batch():
    graph = netdsl.compile(SMALL)
    # the input (the caller holds it throughout), the conv's output, and the pooled values
    # written while the conv's output is read
    peak = 3 * 32 * 32 + 4 * 30 * 30 + 4
    check_budget(graph, None, peak)
    with pytest.raises(SpecLimitError):
        check_budget(graph, None, peak - 1)
    check_budget(graph, None, 8 * peak, batch=8)
    with pytest.raises(SpecLimitError):
        check_budget(graph, None, 8 * peak - 1, batch=8)


def test_max_activations_none_builds_weights_only():
    # nothing of the input's size is allocated by building: only the weights
    model = netdsl.build(HUGE, max_activations=None)
    assert sum(p.numel() for p in model.parameters()) == 4 * 27 + 4 + 4 * 10 + 10
    assert MAX_ACTIVATIONS == 2**31


def test_cli_build_refuses_and_takes_max_activations(tmp_path, capsys):
    path = tmp_path / "huge.net"
    path.write_text(HUGE.replace("100000x100000", "300x300"))
    assert main(["build", str(path), "--max-activations", "100000"]) == 1
    assert "more than the budget of 100,000" in capsys.readouterr().err
    assert main(["build", str(path), "--batch", "2", "--max-activations", "1000000"]) == 1
    assert main(["build", str(path), "--max-activations", "1000000"]) == 0
