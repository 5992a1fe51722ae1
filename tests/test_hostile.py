"""A spec is data: hostile inputs are rejected with a NetDSLError and never execute anything.

Each payload would, if evaluated, create a canary file; the tests check the error and that the
canary never appears. Spec imports stay inside the spec's folder and the bundled specs/ (no
``..``, absolute path or symlink escape); overrides reach network parameters only.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
from pathlib import Path

import pytest

import netdsl
from netdsl.cli import main
from netdsl.errors import OverrideError, SpecImportError

ROOT = Path(__file__).resolve().parent.parent
NET = "network t:\n    input 3x32x32\n    {}\n"


@pytest.fixture
def canary(tmp_path) -> Path:
    path = tmp_path / "CANARY"
    yield path
    assert not path.exists(), "a hostile input ran code"


def _payloads(canary: Path) -> list[str]:
    cmd = f"touch {canary}"
    return [
        f"__import__('os').system('{cmd}')",
        f'__import__("os").system("{cmd}")',
        f'eval("__import__(\\"os\\").system(\\"{cmd}\\")")',
        f'exec("open(\\"{canary}\\", \\"w\\")")',
        f'open("{canary}", "w")',
        "os.system",
        f'os.system("{cmd}")',
        f'getattr(__builtins__, "eval")("{cmd}")',
        "globals()",
        "lambda: 0",
        "().__class__.__bases__[0].__subclasses__()",
        f"{{_target_: os.system, command: '{cmd}'}}",
        f"_target_: os.system('{cmd}')",
        f"!!python/object/apply:os.system ['{cmd}']",
        "${oc.env:HOME}",
        "`rm -rf /`",
        f"$(touch {canary})",
        '"; import os; os.system("true"); "',
    ]


SITES = ["{}", "conv({}, 3x3)", "stack(relu, {})", "conv(16, 3x3) -> {}"]


def test_hostile_layers(canary):
    count = 0
    for payload in _payloads(canary):
        for site in SITES:
            with pytest.raises(netdsl.NetDSLError):
                netdsl.compile(NET.format(site.format(payload)))
            count += 1
    assert count >= 60


@pytest.mark.parametrize("text", [
    "_target_: os.system\ncommand: touch {canary}\n",
    "!!python/object/apply:os.system ['touch {canary}']\n",
    "import os\nos.system('touch {canary}')\n",
    'import "os"\n' + NET.format("relu"),
    "network t:\n    input 3x32x32\n    init __import__('os').system('touch {canary}')\n",
    "block b(x=__import__) = relu\n" + NET.format("b"),
    "network t(n=__import__('os')):\n    input 3x32x32\n    relu\n",
], ids=["hydra-target", "yaml-apply", "python", "import-module", "init", "default", "param"])
def test_hostile_files(text, canary):
    with pytest.raises(netdsl.NetDSLError):
        netdsl.compile(text.format(canary=canary))


@pytest.mark.parametrize("target", ["../../etc/passwd", "/etc/passwd", "../" * 20 + "etc/passwd",
                                    "~/.bashrc", "../outside/secret.net", "/proc/self/environ",
                                    "specs/../../outside/secret.net", "link.net", "lib/secret.net",
                                    "a\x00b.net", "x" * 5000 + ".net", ""])
def test_imports_stay_inside(tmp_path, target):
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.net").write_text("block leak = relu\n")
    spec = tmp_path / "spec"
    spec.mkdir()
    os.symlink(tmp_path / "outside" / "secret.net", spec / "link.net")
    os.symlink(tmp_path / "outside", spec / "lib")
    main_spec = spec / "main.net"
    main_spec.write_text(f'import "{target}"\n' + NET.format("leak"))
    with pytest.raises(SpecImportError):
        netdsl.compile(main_spec)


def test_imports_inside_the_folder_still_work(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "blocks.net").write_text("block unit(c) = conv(c, 3x3) -> relu\n")
    main_spec = tmp_path / "main.net"
    main_spec.write_text('import "lib/blocks.net"\nimport "resnet_family.net"\n'
                         + NET.format("unit(8) -> basic(8)"))
    assert netdsl.compile(main_spec).output_shape == (8, 30, 30)


def _check(*args: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["check", *args])
    return code, err.getvalue()


def test_hostile_overrides(canary):
    spec = str(ROOT / "specs" / "resnet18.net")
    overrides = [
        'unit=__import__("os")',
        f"unit=__import__('os').system('touch {canary}')",
        "unit=os.system",
        "_target_=os.system",
        "num_classes=${oc.env:HOME}",
        "num_classes=${eval:1+1}",
        f"unit=${{oc.create:{{_target_:os.system,_args_:['touch {canary}']}}}}",
        "unit=!!python/object/apply:os.system",
        "hydra.run.dir=/tmp",
        "+_target_=os.system",
        "~num_classes",
        "num_classes=1,2",
        "num_classes={_target_:os.system}",
        "depths=[1,1,1,__import__]",
        f"input=\"$(touch {canary})\"",
        "unit=eval",
        "unit=exec",
    ]
    for override in overrides:
        code, err = _check(spec, override)
        assert code == 1, (override, err)
        assert "error" in err and "Traceback" not in err and "internal error" not in err
    assert len(overrides) >= 15


def test_hostile_python_overrides(canary):
    """Through the API, a Python object is only ever a value: never called, never imported."""
    for value in [os.system, f"__import__('os').system('touch {canary}')", {"_target_": "os.system"},
                  lambda: canary.write_text("ran"), Path(canary)]:
        with pytest.raises(netdsl.NetDSLError):
            netdsl.compile("specs/resnet18.net", unit=value)
    with pytest.raises(OverrideError):
        netdsl.compile("specs/resnet18.net", _target_="os.system")


def test_the_pipeline_evaluates_nothing():
    """No eval, exec, pickle or dynamic import in the modules that read specs."""
    banned = re.compile(r"\b(eval|exec|__import__|pickle|marshal|yaml\.load|import_module)\s*\(")
    package = ROOT / "netdsl"
    files = [package / "errors.py", package / "api.py"]
    for phase in ["syntax", "lower", "ir", "passes"]:
        files += sorted((package / phase).glob("*.py"))
    assert len(files) > 10
    for path in files:
        text = path.read_text(encoding="utf-8")
        code = [line for line in text.splitlines() if not line.lstrip().startswith(("#", ">>>"))]
        hits = [line for line in code if banned.search(line)]
        assert not hits, f"{path.relative_to(ROOT)}: {hits}"


def test_diagnostics_carry_no_terminal_escapes():
    """A spec cannot colour, move or retitle the user's terminal through an error message."""
    for text in ['import "\x1b]0;owned\x07.net"\n', "network t:\n    input 3x32x32\n    relu\x1b[2J\n"]:
        with pytest.raises(netdsl.NetDSLError) as caught:
            netdsl.compile(text)
        assert "\x1b" not in str(caught.value) and "\x07" not in str(caught.value)


def test_a_file_name_with_terminal_escapes_is_shown_as_text(tmp_path, capsys):
    """Names from outside (here a spec file's) reach stderr with their escapes written out,
    so the user sees what the name holds and the terminal obeys none of it."""
    spec = tmp_path / "a\x1b[2J\x1b]0;owned\x07.net"
    spec.write_text(NET.format("no_such_layer"))
    assert main(["check", str(spec)]) == 1
    err = capsys.readouterr().err
    assert "a\\x1b[2J\\x1b]0;owned\\x07.net:3:5: error: unknown name 'no_such_layer'" in err
    assert "\x1b" not in err and "\x07" not in err


def test_a_weights_file_whose_names_hold_escapes_is_refused_as_text(tmp_path):
    """torch's own words and a weights file's keys are outside text too."""
    import torch

    from netdsl.torch.export import load_weights

    path = tmp_path / "w.pt"
    torch.save({"\x1b[2Jweight": torch.zeros(1)}, path)
    model = netdsl.build("network t:\n    input 3x4x4\n    conv(2, 1x1)\n")
    with pytest.raises(netdsl.NetDSLError) as caught:
        load_weights(model, path)
    shown = str(caught.value)
    assert "\\x1b[2Jweight" in shown and "\x1b" not in shown and "\x1b" not in caught.value.message
