"""``netdsl view``: a network in Netron (``pip install 'netdsl[view]'``), through its ONNX
export. Netron serves the file from a local web server; only 127.0.0.1 is bound, so the
picture of a network is never offered to other machines."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import BuildError
from ..ir.graph import Graph
from . import emit, export


def write_onnx(graph: Graph, path: Path) -> Path:
    """The network's ONNX export (any batch size), for Netron to read."""
    torch.manual_seed(0)
    model = emit.build_module(graph).eval()
    export.save(model, graph, path, torch.zeros(1, *graph.input.shape))
    return path


def serve(path: Path, port: int = 0, browse: bool = True) -> tuple[str, int]:
    """Starts Netron's server for ``path`` on 127.0.0.1 (``port`` 0: a free one) and opens a
    browser unless ``browse`` is false; returns the address (stop it with :func:`stop`)."""
    try:
        import netron
    except ImportError:
        raise BuildError("netdsl view needs Netron", notes=(
            "pip install 'netdsl[view]' (or pip install netron)",)) from None
    return tuple(netron.serve(str(path), address=("127.0.0.1", port or None), browse=browse))


def stop(address: tuple[str, int]) -> None:
    import netron

    netron.stop(address)
