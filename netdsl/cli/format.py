"""``netdsl fmt``: print, check or rewrite a spec in its canonical layout."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import Command


def _setup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("specs", nargs="+", metavar="SPEC", help=".net files")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true",
                      help="exit 1 if a file is not in canonical layout (for CI)")
    mode.add_argument("-i", "--in-place", action="store_true",
                      help="rewrite the files (atomically)")


def _run(args: argparse.Namespace) -> int:
    from ..api import read_spec
    from ..files import atomic_write, interrupt_pending
    from ..syntax.fmt import format_text

    unformatted = []
    for name in args.specs:
        if interrupt_pending():  # a Ctrl-C held back while the previous file was committed
            raise KeyboardInterrupt
        path = Path(name)
        text = read_spec(path)  # a coded error for a file that is missing, too large or a FIFO
        formatted = format_text(text, str(path))
        if args.check:
            if formatted != text:
                unformatted.append(name)
        elif args.in_place:
            if formatted != text:
                atomic_write(path, lambda tmp, f=formatted: _write(tmp, f))
        else:
            sys.stdout.write(formatted)
    for name in unformatted:
        print(f"{name}: not in canonical layout (netdsl fmt -i {name})", file=sys.stderr)
    return 1 if unformatted else 0


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8", newline="") as file:  # '\n' stays '\n'
        file.write(text)


COMMANDS: list[Command] = [
    ("fmt", "print a spec in canonical layout (--check for CI, -i to rewrite)", _setup, _run),
]
