"""The netdsl command: build / check / show, Hydra overrides, exit codes, atomic outputs."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import entry_points

import pytest
import torch

from netdsl.cli import main

from conftest import ROOT


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch):
    monkeypatch.chdir(ROOT)


def test_build_prints_a_report(capsys):
    assert main(["build", "specs/resnet18.net"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"input +1x3x224x224", out) and re.search(r"output +1x1000", out)
    assert re.search(r"params +11,689,512", out)


def test_overrides_use_hydra_syntax_and_reach_network_parameters(capsys):
    argv = ["build", "specs/resnet50.net", "num_classes=10", "unit=basic", "depths=[1,1,1,1]",
            "input=3x64x64"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert re.search(r"input +1x3x64x64", out) and re.search(r"output +1x10\b", out)


@pytest.mark.parametrize("override,message", [
    ("num_clases=10", "has no parameter 'num_clases'"),
    ("num_classes=10,20", "not a plain key=value"),
    ("num_classes=[1", "malformed override"),
    ("unit=bottlenek", "unknown name 'bottlenek'"),
    ("num_classes=2.5", "out must be a whole number of at least 1, found the number 2.5"),
    ("num_classes=ten", "unknown name 'ten'"),
])
def test_bad_overrides_are_diagnostics(capsys, override, message):
    assert main(["check", "specs/resnet50.net", override]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_check_exit_codes(capsys, tmp_path):
    assert main(["check", "specs/googlenet.net"]) == 0
    bad = tmp_path / "bad.net"
    bad.write_text("network n:\n    input 3x8x8\n    conv(4, 9x9)\n")
    assert main(["check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{bad}:3:5: error: conv gets 8x8, needs at least 9x9")
    with pytest.raises(SystemExit) as usage:
        main(["check"])
    assert usage.value.code == 2


def test_show_prints_the_ir(capsys):
    assert main(["show", "specs/vgg16.net", "num_classes=3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("network vgg16")
    assert "classifier.6 = fc(%" in out and "-> 3  @" in out


@pytest.mark.parametrize("suffix", [".pt", ".py", ".pt2"])
def test_build_saves_atomically(tmp_path, suffix, capsys):
    target = tmp_path / f"model{suffix}"
    assert main(["build", "specs/resnet18.net", "num_classes=4", "input=3x32x32", "-o",
                 str(target)]) == 0
    assert target.is_file()
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no temporary file left
    if suffix == ".pt":
        state = torch.load(target, weights_only=True)
        assert state["fc.weight"].shape == (4, 512)
    if suffix == ".pt2":
        program = torch.export.load(target)
        assert program.module()(torch.randn(1, 3, 32, 32)).shape == (1, 4)


def test_python_export_runs_without_netdsl(tmp_path, capsys):
    target = tmp_path / "resnet18.py"
    assert main(["build", "specs/resnet18.net", "-o", str(target)]) == 0
    code = ("import sys; sys.modules['netdsl'] = None\n"  # importing netdsl would now fail
            "import importlib.util, torch\n"
            f"spec = importlib.util.spec_from_file_location('m', {str(target)!r})\n"
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
            "model = m.Model()\n"
            "print(sum(p.numel() for p in model.parameters()))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "11689512"


def test_failed_save_leaves_nothing_behind(tmp_path, capsys):
    assert main(["build", "specs/resnet18.net", "-o", str(tmp_path / "model.onnx2")]) == 1
    assert "unknown format" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
    assert main(["build", "specs/resnet18.net", "-o", str(tmp_path / "no" / "m.pt")]) == 1
    assert list(tmp_path.iterdir()) == []


def test_console_script_is_installed():
    """`netdsl` is the installed entry point to netdsl.cli.main (pyproject's
    [project.scripts]), and it runs."""
    (script,) = entry_points(group="console_scripts", name="netdsl")
    assert script.value == "netdsl.cli:main" and script.load() is main
    result = subprocess.run(["netdsl", "check", "specs/resnet152.net"], capture_output=True,
                            text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0 and "ok" in result.stdout


def test_overrides_may_follow_options(capsys):
    assert main(["check", "specs/googlenet.net", "--sizes", "64:64", "num_classes=10"]) == 0
    assert "maps 3x224x224 to 10" in capsys.readouterr().out
    with pytest.raises(SystemExit) as usage:
        main(["check", "specs/googlenet.net", "--bogus"])
    assert usage.value.code == 2


def test_every_help_ends_with_an_example(capsys):
    from netdsl.cli import _commands

    for name in ["", *(c[0] for c in _commands())]:
        with pytest.raises(SystemExit):
            main([name, "--help"] if name else ["--help"])
        out = capsys.readouterr().out
        assert f"example: netdsl {name}".rstrip() in out, name


def test_completion_scripts_complete_commands_options_and_zoo_names(capsys, tmp_path):
    for shell in ("bash", "zsh"):
        with pytest.raises(SystemExit):
            main(["--completion", shell])
        (tmp_path / f"c.{shell}").write_text(capsys.readouterr().out)
    probe = (f"source {tmp_path / 'c.bash'}; "
             "COMP_WORDS=(netdsl bu); COMP_CWORD=1; _netdsl; echo ${COMPREPLY[@]}; "
             "COMP_WORDS=(netdsl build --wei); COMP_CWORD=2; _netdsl; echo ${COMPREPLY[@]}; "
             "COMP_WORDS=(netdsl check resnet15); COMP_CWORD=2; _netdsl; echo ${COMPREPLY[@]}")
    done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, cwd=tmp_path,
                          check=True, timeout=60)
    assert done.stdout.splitlines() == ["build", "--weights", "resnet152"]
    assert "bashcompinit" in (tmp_path / "c.zsh").read_text()


def test_build_prints_its_summary_as_a_table_without_markup(capsys, tmp_path):
    target = tmp_path / "[bold]m.pt"
    assert main(["build", "digits", "-o", str(target)]) == 0
    out = capsys.readouterr().out
    assert str(target) in out and re.search(r"saved +", out)


def test_compare_says_which_parameter_count_it_shows(capsys):
    assert main(["compare", "resnet18", "googlenet"]) == 0
    out = capsys.readouterr().out
    assert "googlenet: params shown without its auxiliary classifiers, 6,624,904; with them " \
        "(training) 13,004,888" in out
    assert "resnet18: params shown" not in out
