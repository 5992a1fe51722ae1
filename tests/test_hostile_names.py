"""File and folder names are outside input: they reach generated source only as escaped
literals (issue: code ran from a spec named ``x\"\"\";__import__("os").system(...);\"\"\"y.net``)."""

from __future__ import annotations

import subprocess
import sys

import pytest

SPEC = "network t:\n    input 3x8x8\n    c: conv(4, 3x3) -> relu\n"
PAYLOAD = '__import__("os").system("touch CANARY")'
NAMES = [
    f'x""";{PAYLOAD};"""y',        # closes a triple-quoted docstring
    f"x''';{PAYLOAD};'''y",        # the other quote
    f'x";{PAYLOAD};"y',            # a plain string
    "back\\slash\\N",              # \N{...} is an escape in a literal: a SyntaxError before
    "new\nline",                   # ends a line of generated source
    "naïve Ünïcödé ✓",             # non-ASCII
    "tab\tand\rreturn",
]


# One child imports every generated module, each from its own folder as the working directory,
# so a payload that ran would leave its CANARY there. Names reach it as argv, never as source.
IMPORT_EACH = """
import importlib.util, os, sys
for folder, path in zip(sys.argv[1::2], sys.argv[2::2]):
    os.chdir(folder)
    spec = importlib.util.spec_from_file_location("generated", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.Model()
"""


@pytest.mark.parametrize("folder_too", [False, True], ids=["file", "folder"])
def test_hostile_file_and_folder_names_never_run_code(tmp_path, folder_too, monkeypatch, capsys):
    from netdsl.cli import main

    built = []
    for i, name in enumerate(NAMES):
        folder = tmp_path / (name if folder_too else f"case{i}")
        folder.mkdir()
        spec = folder / f"{name}.net"
        spec.write_text(SPEC)
        out = folder / f"model{i}.py"
        monkeypatch.chdir(folder)
        assert main(["build", str(spec), "-o", str(out)]) == 0, (name, capsys.readouterr().err)
        assert str(tmp_path) not in out.read_text(), "generated files carry no absolute folders"
        built += [str(folder), str(out)]
    imported = subprocess.run([sys.executable, "-c", IMPORT_EACH, *built], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
    assert imported.returncode == 0, imported.stderr
    assert not list(tmp_path.rglob("CANARY"))


def test_the_generated_docstring_is_an_escaped_literal(tmp_path):
    import netdsl
    from netdsl.torch.emit import python_source

    spec = tmp_path / f'x""";{PAYLOAD};"""y.net'
    spec.write_text(SPEC)
    source = python_source(netdsl.compile(spec))
    compiled = compile(source, "<test>", "exec")
    names = {n for c in compiled.co_consts if hasattr(c, "co_names") for n in c.co_names}
    assert "system" not in names and "__import__" not in names
