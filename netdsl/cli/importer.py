"""``netdsl import``: a PyTorch model (torchvision, timm or the user's own) to a spec."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from ..errors import OverrideError
from . import Command


def _setup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("module", metavar="MODULE",
                        help="torchvision:NAME, timm:NAME or package.module:callable")
    parser.add_argument("-o", "--output", help="the .net file to write (default: stdout)")
    parser.add_argument("--input", help="input shape CxHxW (default: the model's own, or "
                        "3x224x224)")
    parser.add_argument("--name", help="the network's name (default: from the model)")


def _run(args: argparse.Namespace) -> int:
    from ..files import atomic_write
    from ..importer import from_module
    from ..importer.resolve import resolve

    shape = None
    if args.input is not None:
        if not re.fullmatch(r"[0-9]{1,5}(x[0-9]{1,5}){2}", args.input):
            raise OverrideError(f"--input must look like 3x224x224, found '{args.input}'")
        shape = tuple(int(d) for d in args.input.split("x"))
    name = args.name or re.sub(r"\W", "_", args.module.rsplit(":", 1)[-1].rsplit(".", 1)[-1])
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise OverrideError(f"--name must be an identifier, found '{name}'")
    model, natural = resolve(args.module)
    text = from_module(model, shape or natural or (3, 224, 224), name)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    path = Path(args.output)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    print(f"wrote {path} ({len(text.splitlines())} lines)", file=sys.stderr)
    return 0


COMMANDS: list[Command] = [
    ("import", "write the spec of a PyTorch model (torchvision:resnet50, timm:inception_v4, "
     "package.module:callable)", _setup, _run),
]
