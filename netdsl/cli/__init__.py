"""The ``netdsl`` command line: one module per group of commands, each listing its
commands in ``COMMANDS`` as (name, help, add_arguments, run) rows.

Exit codes: 0 success, 1 a diagnostic (printed to stderr as ``path:line:col: error: ...``),
2 a usage error. No command ever prints a Python traceback. ``check`` and ``show`` never
import torch; overrides (``key=value``) are parsed by Hydra's override grammar.
"""

from __future__ import annotations

import argparse
import importlib
import math
import re
import sys
from collections.abc import Callable

from .. import limits
from ..errors import NetDSLError, OverrideError, SpecLimitError, printable
from ..render.numbers import fmt_shape  # noqa: F401 - the commands' modules import it from here

Command = tuple[str, str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]


# --- overrides ---------------------------------------------------------------------------

def parse_overrides(items: list[str]) -> dict[str, object]:
    """``key=value`` strings to network parameters, with Hydra's override parser."""
    if not items:
        return {}
    items, params = _checked_numbers(items)
    overrides = _hydra_parse(items, "override")
    for override in overrides:
        key = _plain_key(override, sweeps=False)
        params[key] = _no_dictionary(override.value())
    return params


def parse_sweep(items: list[str]) -> dict[str, list]:
    """``key=a,b,c`` / ``key=range(16,64,16)`` / ``key=value`` strings to the values of each
    axis of a design-space grid, with Hydra's sweep syntax (a plain value is a one-point axis)."""
    items, bad = _checked_numbers(items)
    overrides = _hydra_parse(items, "sweep")
    axes: dict[str, list] = {key: [value] for key, value in bad.items()}
    points = 1
    for override in overrides:
        key = _plain_key(override, sweeps=True)
        values = _axis(override, limits.MAX_SWEEP_POINTS // points) \
            if override.is_sweep_override() else [override.value()]
        points *= max(1, len(values))
        if points > limits.MAX_SWEEP_POINTS:
            raise OverrideError(f"the grid has more than {limits.MAX_SWEEP_POINTS:,} points",
                                notes=("sweep fewer values, or screen a coarser grid first",))
        axes[key] = [_no_dictionary(v) for v in values]
    return axes


_PIECES = re.compile(r"[^0-9A-Za-z_.+-]+")  # what separates numbers in a value: , [ ] ( ) ...
_NUMERIC = re.compile(r"[+-]?[0-9_.]+([eE][+-]?[0-9_]+)?")
_HYDRA_INT_DIGITS = 4_000  # Python's int() refuses over 4,300 digits (a ValueError, in Hydra)


def _checked_numbers(items: list[str]) -> tuple[list[str], dict[str, object]]:
    """The items Hydra may read, and for each other one a :class:`~netdsl.lower.BadNumber`:
    an override's decimals obey a spec literal's rule, at most 40 characters and a value in
    range (:func:`netdsl.limits.decimal_problem`), and a whole number Hydra cannot read is
    refused (one above 10^15 that it can is refused by value, at the network). Read
    from the text, since Hydra's float has lost how it was written (a 5,000-digit decimal)
    and its int refuses 4,300 digits with a ValueError. Linear: one split, a match a piece.
    The problem is reported by lowering, at the network, as every override's is."""
    from ..api import BadNumber

    good, bad = [], {}
    for item in items:
        key, _, value = item.partition("=")
        problem = next(filter(None, map(_number_problem, _PIECES.split(value))), None)
        if problem is None:
            good.append(item)
        else:
            bad[key] = BadNumber(limits.shown(value), problem)
    return good, bad


def _number_problem(piece: str) -> str | None:
    if not any(c.isdigit() for c in piece) or not _NUMERIC.fullmatch(piece):
        return None
    number = piece.lstrip("+-").replace("_", "")
    if not any(c in number for c in ".eE"):  # a whole number above 10^15 is refused by
        # value at the network (as an API int is); only one Hydra cannot read is caught here
        too_long = len(number.lstrip("0")) > _HYDRA_INT_DIGITS
        return f"is beyond {limits.MAX_NUMBER:.0e}" if too_long else None
    try:
        return limits.decimal_problem(number)
    except ValueError:  # not a number after all ("1.2.3"): Hydra reads it as text
        return None


def _hydra_parse(items: list[str], what: str) -> list:
    """Hydra's parse of ``items``, each measured first: its parser recurses once per
    bracket (3,000 nested lists overflow the stack) and reads integers of any length."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException


    for item in items:
        if len(item) > limits.MAX_OVERRIDE:
            raise SpecLimitError(f"{what} of {len(item):,} characters; at most "
                                 f"{limits.MAX_OVERRIDE:,} are read", notes=(f"{item[:40]}...",))
        if limits.bracket_depth(item) > limits.MAX_OVERRIDE_NESTING:
            raise SpecLimitError(f"{what} nests more than {limits.MAX_OVERRIDE_NESTING} "
                                 "brackets deep", notes=(f"{item[:40]}...",))
    try:
        return OverridesParser.create().parse_overrides(items)
    except HydraException as error:
        raise OverrideError(f"malformed {what}: {str(error).splitlines()[0]}") from None
    except ValueError as error:  # Python's limit on converting digits to an int
        raise SpecLimitError(f"{what} has a number too long to read ({str(error).split(':')[0]});"
                             " numbers have at most 15 digits") from None


def _axis(override, room: int) -> list:
    """The values of one swept axis, at most ``room + 1`` of them: a range is counted as it
    is enumerated, never listed whole (range(0,100000000) would take gigabytes)."""
    import itertools
    import random

    from hydra.core.override_parser.types import RangeSweep
    from hydra.errors import HydraException

    sweep = override.value()
    try:
        if isinstance(sweep, RangeSweep):  # Hydra lists a shuffled range whole: shuffle here
            values = list(itertools.islice(sweep.range(), room + 1))
            if sweep.shuffle:
                random.shuffle(values)
            return values
        return list(itertools.islice(override.sweep_iterator(), room + 1))
    except (HydraException, ValueError) as error:  # interval(0,1), range(0,4,0)
        raise OverrideError(f"sweep '{override.input_line}' cannot be listed: "
                            f"{str(error).splitlines()[0]}",
                            notes=("a grid takes listed values: a,b,c or range(start,stop,step)",
                                   )) from None


def _plain_key(override, sweeps: bool) -> str:
    """The network parameter an override sets; anything but ``key=value`` (or, for a sweep,
    ``key=a,b``) is refused: netdsl overrides name network parameters and nothing else."""
    key = override.key_or_group
    if (override.is_sweep_override() and not sweeps) or override.is_delete() \
            or override.is_add() or override.is_force_add() or override.package is not None \
            or "." in key:
        raise OverrideError(f"override '{override.input_line}' is not a plain key=value",
                            notes=("netdsl overrides set network parameters, e.g. "
                                   "num_classes=10",))
    return key


def _no_dictionary(value: object) -> object:
    """Hydra's value of an override, refused when it is or holds a dictionary (``{a: 1}``):
    a network parameter is never one. netdsl.compile converts the rest (lists, strings)."""
    if isinstance(value, dict):
        raise OverrideError("an override value cannot be a dictionary")
    if isinstance(value, list | tuple):
        for item in value:
            _no_dictionary(item)
    return value


def spec_arguments(parser: argparse.ArgumentParser) -> None:
    """The SPEC and key=value arguments every spec-reading command takes."""
    parser.add_argument("spec", help="a .net file")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="network parameters, in Hydra's override syntax (num_classes=10)")


def compile_spec(args: argparse.Namespace, input_shape: tuple[int, ...] | None = None):
    """The checked graph for ``args.spec`` (a file or a bundled network's name) with
    ``args.overrides``, and ``input_shape`` when given (torch is not imported)."""
    from ..api import compile, spec_file

    params = parse_overrides(args.overrides)
    if input_shape is not None:
        params["input"] = input_shape
    return compile(spec_file(args.spec), params)


def whole_number(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high`` (a usage error otherwise,
    never a traceback from torch further on: ``--batch -1``, ``--seed 10**30``)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:  # also a number of more than 4,300 digits
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected a whole number from {low:,} to {high:,}, "
                                             f"found '{text[:40]}'")
        return value
    return parse


def budget(text: str) -> int:
    """An argparse type for a budget: a finite number from 0 to 10^18, written as a whole
    number or in scientific notation (``--max-macs 4e9``); nan and inf are usage errors."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value <= 10**18:  # also false for nan
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1e18 (like 4e9), "
                                         f"found '{text[:40]}'")
    return int(value)


# Modules of netdsl.cli that define commands; each must import quickly (no torch at import).
GROUPS = ["core", "analyse", "bench", "format", "sweep", "view", "importer", "lsp"]


def _commands() -> list[Command]:
    rows: list[Command] = []
    for group in GROUPS:
        rows += importlib.import_module(f"{__name__}.{group}").COMMANDS
    return rows


# One line each `--help` ends with: a command a newcomer can paste as it is.
EXAMPLES = {
    "netdsl": "netdsl build resnet152",
    "build": "netdsl build resnet50 num_classes=10 -o resnet50.onnx",
    "check": "netdsl check googlenet --sizes 32:512",
    "show": "netdsl show resnet18 --format json",
    "summary": "netdsl summary vgg16 --format markdown",
    "compare": "netdsl compare alexnet vgg16 googlenet resnet152",
    "graph": "netdsl graph googlenet -o googlenet.svg",
    "list": "netdsl list",
    "bench": "netdsl bench resnet50 --batch 8",
    "fmt": "netdsl fmt --check specs/*.net",
    "view": "netdsl view resnet18",
    "import": "netdsl import torchvision:resnet50 -o resnet50.net",
    "lsp": "netdsl lsp --stdio",
}


def _parser() -> argparse.ArgumentParser:
    from .. import __version__
    from .completion import SHELLS, CompletionAction

    parser = argparse.ArgumentParser(prog="netdsl", description="Compile .net network specs "
                                     "to PyTorch.", epilog=f"example: {EXAMPLES['netdsl']}")
    parser.add_argument("--version", action="version", version=f"netdsl {__version__}")
    parser.add_argument("--completion", choices=SHELLS, action=CompletionAction,
                        help="print a shell completion script (eval \"$(netdsl --completion "
                        "bash)\")")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text, setup, run in _commands():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        setup(sub)
        if name in EXAMPLES:  # a command may set its own epilog (sweep does)
            sub.epilog = f"example: {EXAMPLES[name]}"
        sub.set_defaults(run=run)
    return parser


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    """argparse, except that ``key=value`` overrides may also follow options
    (``netdsl check SPEC --sizes 32:64 num_classes=10``)."""
    parser = _parser()
    args, rest = parser.parse_known_args(argv)
    stray = [item for item in rest if item.startswith("-") or "=" not in item]
    if stray or (rest and not hasattr(args, "overrides")):
        parser.error(f"unrecognized arguments: {' '.join(stray or rest)}")
    if rest:
        args.overrides = [*args.overrides, *rest]
    # a second SPEC or a stray word is a usage error (exit 2), not a malformed override;
    # '~key' (a Hydra deletion) goes on to be refused with its own message
    stray = [item for item in getattr(args, "overrides", None) or []
             if "=" not in item and not item.startswith("~")]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)} (overrides are key=value)")
    return args


def main(argv: list[str] | None = None) -> int:
    from ..files import written

    _tolerant_streams()
    written.clear()
    args = _parse_args(argv)
    try:
        code = args.run(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the try, not at exit
        return code
    except NetDSLError as error:
        print(error, file=sys.stderr)
        return 1
    except BrokenPipeError:  # `netdsl show ... | head -1`: the reader has all it wants
        _silence_stdout()
        return 1
    except KeyboardInterrupt:
        done = f"; already written: {', '.join(map(str, written))}" if written else ""
        print(f"netdsl: interrupted{done}", file=sys.stderr)
        return 1
    except Exception as error:  # a bug in netdsl: still no traceback for the user
        print(f"netdsl: internal error: {type(error).__name__}: {printable(str(error))}\n"
              "please report this with the spec that caused it", file=sys.stderr)
        return 1


def _tolerant_streams() -> None:
    """A terminal or pipe that cannot show a character (LANG=C, PYTHONIOENCODING=ascii)
    gets an escape (\\u2192) instead of a UnicodeEncodeError."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")


def _silence_stdout() -> None:
    """Points stdout at /dev/null, so the interpreter's final flush does not fail again
    on the closed pipe (the recipe of Python's signal documentation)."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (tests capture it)
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
