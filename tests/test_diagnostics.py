"""Golden diagnostics: one wrong spec per kind of error, with the exact text `netdsl check` prints.

Each ``tests/diagnostics/NAME.net`` is a small, realistic mistake; ``NAME.err`` is the expected
stderr, reviewed by a person. ``pytest tests/test_diagnostics.py --update-golden`` rewrites the
.err files from the current output (review the diff before committing). A first line
``# args: key=value ...`` gives command-line overrides. The prefix of NAME says which error
code the spec must raise (``syntax_`` is E001, ``shape_`` E005, ...); docs/errors.md documents
every code.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

import netdsl
from netdsl import errors
from netdsl.cli import main, parse_overrides
from netdsl.passes.check import check

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "tests" / "diagnostics"
CASES = sorted(FOLDER.glob("*.net"))
CODES = {"syntax": "E001", "name": "E002", "arg": "E003", "type": "E004", "shape": "E005",
         "import": "E006", "limit": "E007", "recursion": "E008", "override": "E009",
         "module": "E011", "tensor": "E012"}
HEAD = re.compile(r"^(?P<file>[^\n]+?):(?P<line>\d+):(?P<column>\d+): error: (?P<message>.+)$")


def _args(spec: Path) -> list[str]:
    first = spec.read_text(encoding="utf-8").split("\n", 1)[0]
    return shlex.split(first[len("# args:"):]) if first.startswith("# args:") else []


def _relative(spec: Path) -> str:
    return spec.relative_to(ROOT).as_posix()


@pytest.fixture(autouse=True)
def _at_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # diagnostics show paths relative to the working folder


def test_enough_cases():
    assert len(CASES) >= 15
    assert {c.stem.split("_")[0] for c in CASES} == set(CODES)


@pytest.mark.parametrize("spec", CASES, ids=lambda p: p.stem)
def test_golden(spec: Path, capsys, update_golden: bool):
    code = main(["check", _relative(spec), *_args(spec)])
    out, err = capsys.readouterr()
    assert code == 1, f"expected a diagnostic, got exit {code}: {out}{err}"
    assert "Traceback" not in err and "internal error" not in err
    golden = spec.with_suffix(".err")
    if update_golden:
        golden.write_text(err, encoding="utf-8")
    expected = golden.read_text(encoding="utf-8")
    assert err == expected
    head = err.splitlines()[0]
    match = HEAD.match(head)
    if match is None:  # a diagnostic about the whole file has no position
        assert head.startswith("error: ") and _relative(spec) in head
        return
    line, column = int(match["line"]), int(match["column"])
    assert match["message"] == match["message"].strip() and not match["message"][0].isupper()
    where = match["file"]
    if where.startswith("<"):  # an override's own text
        assert line == 1
        return
    lines = (ROOT / where).read_text(encoding="utf-8").splitlines()
    assert 1 <= line <= len(lines) and 1 <= column <= len(lines[line - 1]) + 1
    shown = err.splitlines()[2]
    assert shown.startswith(f"{line} | ")


@pytest.mark.parametrize("spec", CASES, ids=lambda p: p.stem)
def test_code(spec: Path):
    """The error raised has the code its file name claims, and renders as the CLI prints."""
    with pytest.raises(errors.NetDSLError) as caught:
        check(netdsl.compile(_relative(spec), parse_overrides(_args(spec))))
    assert caught.value.code == CODES[spec.stem.split("_")[0]]
    assert str(caught.value) + "\n" == spec.with_suffix(".err").read_text(encoding="utf-8")


def test_every_code_is_documented():
    docs = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    classes = [c for c in vars(errors).values()
               if isinstance(c, type) and issubclass(c, errors.NetDSLError) and c.code != "E000"]
    for cls in classes:
        assert f"## {cls.code}" in docs, f"{cls.__name__} ({cls.code}) is not in docs/errors.md"
    for case in CASES:
        assert case.stem in docs, f"docs/errors.md does not list the example {case.stem}"


def test_build_error_code():
    """E010 is raised by `build -o`, not by `check`: unit-tested here instead of golden."""
    error = errors.BuildError("cannot write 'net.xyz': unknown format '.xyz'")
    assert error.code == "E010" and str(error) == "error: cannot write 'net.xyz': unknown format '.xyz'"


def test_long_lines_are_shown_as_a_window():
    source = errors.Source("x" * 5000 + "!" + "y" * 5000, "wide.net")
    text = str(errors.SpecSyntaxError("unexpected character '!'", errors.Span(source, 1, 5001, 1, 5002)))
    shown, caret = text.splitlines()[2], text.splitlines()[3]
    assert len(shown) < 130 and shown[caret.index("^")] == "!"
