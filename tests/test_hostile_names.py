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


@pytest.mark.parametrize("folder_too", [False, True], ids=["file", "folder"])
def test_hostile_file_and_folder_names_never_run_code(tmp_path, folder_too):
    for i, name in enumerate(NAMES):
        folder = tmp_path / (name if folder_too else f"case{i}")
        folder.mkdir()
        spec = folder / f"{name}.net"
        spec.write_text(SPEC)
        out = folder / f"model{i}.py"
        run = subprocess.run([sys.executable, "-c", "import sys; from netdsl.cli import main; "
                              "sys.exit(main(sys.argv[1:]))", "build", str(spec), "-o", str(out)],
                             cwd=folder, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, (name, run.stderr)
        imported = subprocess.run([sys.executable, "-c", f"import model{i} as m; m.Model()"],
                                  cwd=folder, capture_output=True, text=True, timeout=120)
        assert imported.returncode == 0, (name, imported.stderr)
        assert not (folder / "CANARY").exists(), name
        assert str(tmp_path) not in out.read_text(), "generated files carry no absolute folders"
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
