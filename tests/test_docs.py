"""docs/language.md describes the whole language: every grammar rule, layer and builtin; and the
README's Quickstart is what CI runs."""

from __future__ import annotations

import re

import pytest

from netdsl.ir.ops import OPS
from netdsl.lower import Loader
from netdsl.lower.builtins import BUILTINS
from netdsl.lower.functions import FUNCTIONS

from conftest import ROOT

DOC = (ROOT / "docs" / "language.md").read_text()
GRAMMAR = (ROOT / "netdsl" / "syntax" / "grammar.lark").read_text()
RULES = sorted(set(re.findall(r"^\??([a-z_][a-z_0-9]*):", GRAMMAR, re.M)) |
               set(re.findall(r"-> (\w+)", GRAMMAR)))


@pytest.mark.parametrize("rule", RULES)
def test_every_grammar_rule_is_documented(rule):
    assert f"`{rule}`" in DOC


@pytest.mark.parametrize("name", sorted(OPS) + sorted(BUILTINS))
def test_every_layer_and_builtin_is_documented(name):
    assert f"`{name}" in DOC


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_function_is_documented_with_an_example(name):
    rows = [line.split("|") for line in DOC.splitlines() if line.startswith("| `")]
    row = next((cells for cells in rows if f"`{name}(" in cells[1]), None)
    assert row, f"no row for {name} in docs/language.md, Functions"
    assert f"{name}(" in row[3], f"the example of {name} does not call it"


def test_every_prelude_block_is_documented():
    prelude = Loader([ROOT]).prelude
    for name in prelude.names:
        assert f"`{name}(" in DOC, name


def test_readme_spec_table_lists_every_spec_with_its_line_count():
    from conftest import all_specs

    rows = dict(re.findall(r"^\| `([\w.]+\.net)` \| (\d+) \|", (ROOT / "README.md").read_text(),
                           re.M))
    specs = {p.name: str(len(p.read_text().splitlines())) for p in all_specs()}
    assert rows == specs


def test_ci_runs_the_readmes_quickstart_verbatim():
    """What a newcomer types is what CI runs: the Quickstart's two lines (a virtual
    environment, install and build; then the tests) appear in .ci/run as they are written."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quickstart = readme.split("## Quickstart", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    commands = quickstart.strip().splitlines()
    assert len(commands) == 2 and "venv" in commands[0] and "pytest" in commands[1]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert all(command in ci for command in commands), commands
