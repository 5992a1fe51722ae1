"""``netdsl view``: Netron serves the network's ONNX export on 127.0.0.1, then stops."""

from __future__ import annotations

import urllib.request

import onnx
import pytest

import netdsl
from netdsl.torch import view


def test_netron_serves_the_onnx_export_locally_then_stops(tmp_path):
    graph = netdsl.compile("digits")
    path = view.write_onnx(graph, tmp_path / "digits.onnx")
    onnx.checker.check_model(onnx.load(path))
    host, port = view.serve(path, browse=False)
    try:
        assert host == "127.0.0.1"
        page = urllib.request.urlopen(f"http://{host}:{port}/", timeout=10).read().decode()
        assert '<meta name="file" content="/data/' in page
        served = urllib.request.urlopen(f"http://{host}:{port}/data/{path.name}", timeout=10).read()
        assert served == path.read_bytes()
    finally:
        view.stop((host, port))
    with pytest.raises(OSError):  # refused, or reset
        urllib.request.urlopen(f"http://{host}:{port}/", timeout=2)
