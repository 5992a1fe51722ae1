"""``netdsl lsp``: the language server, over stdin and stdout (see netdsl/lsp)."""

from __future__ import annotations

import argparse
import sys

from . import Command


def _setup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stdio", action="store_true",
                        help="talk over stdin/stdout (the default and only transport; editors "
                        "that always pass it may)")


def _run(args: argparse.Namespace) -> int:
    try:
        import pygls  # noqa: F401
    except ImportError:
        print("netdsl lsp needs pygls: pip install 'netdsl[lsp]'", file=sys.stderr)
        return 1
    from ..lsp.server import main

    main()
    # the server has closed stdout on 'exit': leave before main() flushes it
    raise SystemExit(0)


COMMANDS: list[Command] = [
    ("lsp", "run the language server over stdio (for editors; needs the extra 'lsp')", _setup,
     _run),
]
