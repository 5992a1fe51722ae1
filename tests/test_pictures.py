"""Pictures with nothing but pip: Mermaid text, an SVG laid out by grandalf when Graphviz's
``dot`` is missing (parsed back as XML, every box's text present), Graphviz's layout when it
is present; labels are escaped for each format."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET

import pytest

import netdsl
from netdsl.cli import main
from netdsl.render.graph import Box, Edge, Picture, layer_text, picture
from netdsl.render.mermaid import to_mermaid
from netdsl.render.svg import to_svg

from conftest import SPECS

SVG = "{http://www.w3.org/2000/svg}"


def _texts(path) -> list[str]:
    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG}svg"
    return [t.text or "" for t in root.iter(f"{SVG}text")]


@pytest.fixture
def no_dot(tmp_path, monkeypatch):
    """A PATH without Graphviz's dot on it."""
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert shutil.which("dot") is None


def test_svg_without_graphviz_has_every_label(no_dot, tmp_path, capsys):
    out = tmp_path / "g.svg"
    assert main(["graph", str(SPECS / "googlenet.net"), "-o", str(out)]) == 0
    assert "laid out by netdsl" in capsys.readouterr().err
    texts = _texts(out)
    graph = netdsl.compile(SPECS / "googlenet.net")
    pic = picture(graph)
    for box in pic.boxes:
        for line in box.lines:
            assert line in texts
    joined = "\n".join(texts)
    for node in graph.modules():  # every module's layer text is drawn, in some box
        assert layer_text(node) in joined, node.name
    assert {"inception3a", "inception5b", "aux1"} <= set(texts)  # the clusters' labels
    assert "832x7x7" in texts  # an edge's shape


def test_mermaid_has_every_box_and_cluster(no_dot, tmp_path):
    out = tmp_path / "g.mmd"
    assert main(["graph", str(SPECS / "googlenet.net"), "-o", str(out)]) == 0
    text = out.read_text()
    pic = picture(netdsl.compile(SPECS / "googlenet.net"))
    assert "\nflowchart TB\n" in text
    assert set(re.findall(r"^\s*n(\d+)\[", text, re.M)) == {str(b.id) for b in pic.boxes}
    assert text.count("subgraph ") == sum(line.strip() == "end" for line in text.splitlines())
    assert 'subgraph c0["inception3a"]' in text
    assert len(re.findall(r"-->|-\.->", text)) == len(pic.edges)


def test_labels_are_escaped_in_every_format():
    hostile = '<script>alert("x")</script> & ]] --> end'
    pic = Picture(hostile, [Box(0, (hostile, "b"), "#ffffff", False, "outer.inner"),
                            Box(1, ("c",), "#ffffff", True, "")],
                  [Edge(0, 1, hostile, False)])
    texts = [t.text for t in ET.fromstring(to_svg(pic)).iter(f"{SVG}text")]
    assert texts.count(hostile) == 3  # the title, the box and the edge, intact as text
    mermaid = to_mermaid(pic)
    body = mermaid.split("flowchart TB", 1)[1]
    assert "<script" not in body and '"x"' not in body and "--> end" not in body


def test_png_without_graphviz_suggests_the_formats_that_work(no_dot, tmp_path, capsys):
    assert main(["graph", str(SPECS / "resnet18.net"), "-o", str(tmp_path / "g.png")]) == 1
    err = capsys.readouterr().err
    assert ".svg" in err and ".mmd" in err and not (tmp_path / "g.png").exists()


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed (CI installs it)")
def test_svg_with_graphviz_uses_its_layout(tmp_path, capsys):
    out = tmp_path / "g.svg"
    assert main(["graph", str(SPECS / "googlenet.net"), "-o", str(out)]) == 0
    assert "Graphviz" in capsys.readouterr().err
    texts = _texts(out)
    assert "inception3a" in texts and any("conv1: conv 7x7/2, 64" in t for t in texts)
