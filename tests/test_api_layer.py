"""The public API the command line is a layer over (issue 27): what a command does, Python
can do through netdsl.api, with the same rules and the same answers."""

from __future__ import annotations

import pytest

import netdsl
from netdsl import api
from netdsl.cli import main

# A network parameter named like summary's own option `depth`, and one named `base`.
DEEP = """network deep(depth=1, base=4):
    input 3x8x8
    stack(conv(base, 3x3, pad=1) -> relu, depth)
"""


def test_network_parameters_may_come_as_a_mapping_beside_the_options():
    graph = netdsl.compile(DEEP, {"depth": 3, "base": 8})
    assert [n.op for n in graph.nodes].count("conv") == 3 and graph.output_shape == (8, 8, 8)
    figures = netdsl.summary(DEEP, {"depth": 2}, depth=1)  # a parameter, then the option
    assert figures.depth == 2 and [row.name for row in figures.layers] == ["input", "0", "1",
                                                                          "2", "3"]
    assert netdsl.compile(DEEP, {"base": 2}, depth=2).output_shape == (2, 8, 8)
    with pytest.raises(netdsl.NetDSLError, match="'depth' is given twice"):
        netdsl.compile(DEEP, {"depth": 2}, depth=3)


def test_the_api_and_the_cli_resolve_a_spec_name_by_one_rule(capsys, tmp_path, monkeypatch):
    """A name of the zoo, a file beside it and a misspelt name: the API and `netdsl check`
    give the same file and the same error."""
    assert api.spec_file("digits") == api.BUNDLED_SPECS / "digits.net"
    assert "digits" in api.zoo_names()
    with pytest.raises(netdsl.NetDSLError) as caught:
        netdsl.compile("digitz")
    assert main(["check", "digitz"]) == 1
    assert capsys.readouterr().err.strip() == str(caught.value).strip()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "digits").write_text(DEEP)  # a file named like a zoo network wins, as in the CLI
    assert netdsl.compile("digits").name == "deep"
    assert main(["check", "digits"]) == 0 and "deep maps" in capsys.readouterr().out


def test_the_sizes_sweep_and_show_json_of_the_cli_are_api_functions():
    graph = netdsl.compile("digits")
    valid = [r.size for r in api.input_sizes(graph, [3, 4, 16]) if r.node is None]
    assert valid == [4, 16]  # 3x3 convolutions and two 2x2 pools: 3 is too small
    assert api.graph_json(graph)["schema"].startswith("netdsl.ir.graph/")
    points = api.sweep("digits", {"width": [8, [16]]}, budgets={"params": 10_000})
    assert [p.params["width"] for p in points] == [8, (16,)]  # netdsl values, as tables show
    assert points[0].over == () and points[1].error is not None
    assert api.read_spec(api.spec_file("digits")).startswith("# A small VGG-style")
    api.link("resnet_family")  # a family file reads, though its network needs values
    with pytest.raises(netdsl.NetDSLError, match="cannot find 'nothere.net'"):
        api.link('import "nothere.net"\nnetwork n:\n input 3x8x8\n')


def test_build_takes_a_compiled_graph_and_the_cli_build_a_memory_budget(capsys):
    graph = netdsl.compile("digits", width=4)
    assert netdsl.build(graph).netdsl_graph is graph
    with pytest.raises(netdsl.NetDSLError, match="takes no network parameters"):
        netdsl.build(graph, width=8)
    assert main(["build", "digits", "width=4", "--memory-budget", "1GB"]) == 0
    assert "digits" in capsys.readouterr().out
