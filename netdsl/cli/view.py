"""``netdsl view``: open a network in Netron, through its ONNX export."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from . import Command, compile_spec, spec_arguments


def _setup(parser: argparse.ArgumentParser) -> None:
    spec_arguments(parser)
    parser.add_argument("--port", type=int, default=0, help="the local port (default: a free one)")
    parser.add_argument("--no-browser", action="store_true",
                        help="only serve; print the address to open")
    parser.add_argument("-o", "--output", metavar="OUT.onnx",
                        help="keep the ONNX file here (default: a temporary file)")


def _run(args: argparse.Namespace) -> int:
    from ..torch import view
    from .core import status

    graph = compile_spec(args)
    with tempfile.TemporaryDirectory(prefix="netdsl-view-") as folder:
        path = Path(args.output) if args.output else Path(folder) / f"{graph.name}.onnx"
        with status(f"exporting {graph.name} to ONNX"):
            view.write_onnx(graph, path)
        host, port = view.serve(path, args.port, browse=not args.no_browser)
        print(f"Netron shows {graph.name} at http://{host}:{port} (Ctrl-C stops it)")
        try:
            while True:
                time.sleep(1)
        finally:
            view.stop((host, port))


COMMANDS: list[Command] = [
    ("view", "open a network in Netron (through its ONNX export)", _setup, _run),
]
