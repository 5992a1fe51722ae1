"""Files netdsl writes (atomic writes: mode, symlinks, stale temporaries, Ctrl-C) and the
user errors around outputs and streams, which must be diagnostics, never "internal error"."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netdsl.cli import main
from netdsl.files import SUFFIX, atomic_write

from conftest import ROOT

DIGITS = str(ROOT / "specs" / "digits.net")
UNFORMATTED = "network n:\n  input 3x8x8\n  conv( 4,3x3 )->relu\n"
FORMATTED = "network n:\n    input 3x8x8\n    conv(4, 3x3) -> relu\n"
CLI = "import sys; from netdsl.cli import main; sys.exit(main(sys.argv[1:]))"


def run_cli(*args: str, code: str = CLI, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **kwargs.pop("env", {})}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=env, timeout=300, **kwargs)


def read_only_folder(tmp_path: Path) -> Path:
    """A folder no file can be created in: permissions for a user, /sys for root (whom
    permissions do not stop)."""
    if os.geteuid() == 0:
        return Path("/sys")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    return folder


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(SUFFIX))


# --- atomic writes ---------------------------------------------------------------------------

def test_atomic_write_keeps_the_target_mode(tmp_path):
    target = tmp_path / "model.py"
    target.write_text("old")
    target.chmod(0o640)
    atomic_write(target, lambda tmp: Path(tmp).write_text("new"))
    assert target.read_text() == "new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_atomic_write_gives_a_new_file_the_umask_default_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "new.pt", lambda tmp: Path(tmp).write_bytes(b"x"))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.pt").stat().st_mode) == 0o644


def test_fmt_in_place_writes_through_a_symlink_and_keeps_it(tmp_path):
    real = tmp_path / "real.net"
    real.write_text(UNFORMATTED)
    link = tmp_path / "link.net"
    link.symlink_to(real.name)
    assert main(["fmt", "-i", str(link)]) == 0
    assert link.is_symlink() and os.readlink(link) == "real.net"
    assert real.read_text() == FORMATTED
    assert temporaries(tmp_path) == []


def test_sigkill_leaves_a_recognisable_temporary_that_the_next_write_removes(tmp_path):
    target = tmp_path / "model.pt"
    code = ("import sys, time; from pathlib import Path; from netdsl.files import atomic_write\n"
            "def slow(tmp):\n    Path(tmp).write_text('half'); time.sleep(120)\n"
            "atomic_write(Path(sys.argv[1]), slow)\n")
    child = subprocess.Popen([sys.executable, "-c", code, str(target)],
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        for _ in range(600):  # until the child has written its temporary file
            if temporaries(tmp_path):
                break
            time.sleep(0.05)
    finally:
        child.kill()
        child.wait(timeout=60)
    [left] = temporaries(tmp_path)
    assert left.startswith(f".model.pt.{child.pid}.")
    assert not target.exists()
    atomic_write(target, lambda tmp: Path(tmp).write_text("whole"))
    assert temporaries(tmp_path) == [] and target.read_text() == "whole"


def test_stale_cleanup_keeps_live_processes_and_other_files_temporaries(tmp_path):
    live = tmp_path / f".model.pt.{os.getppid()}.0123abcd{SUFFIX}"  # our parent still runs
    other = tmp_path / f".model.pt.99999.0.0123abcd{SUFFIX}"  # model.pt.99999's temporary
    live.touch(), other.touch()
    atomic_write(tmp_path / "model.pt", lambda tmp: Path(tmp).write_text("x"))
    assert live.exists() and other.exists()


def test_interrupt_during_the_write_leaves_the_target_and_says_interrupted(tmp_path):
    target = tmp_path / "n.net"
    target.write_text(UNFORMATTED)
    # a Ctrl-C from outside, sent once the child says it is inside the write (it then waits
    # there, checking for signals every 10 ms, whichever of its threads the kernel picks)
    # SIGINT's default handler set in the child: a job started in the background by a
    # non-interactive shell (CI scripts, stress_ci.sh --together) inherits SIGINT ignored,
    # which is what this test's Ctrl-C from a terminal never meets
    code = ("import signal, time\n"
            "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
            "import netdsl.cli.format as fmt\n"
            "real = fmt._write\n"
            "def write(path, text):\n"
            "    real(path, text); print('inside', flush=True)\n"
            "    for _ in range(6000): time.sleep(0.01)\n"
            "fmt._write = write\n" + CLI)
    child = subprocess.Popen([sys.executable, "-c", code, "fmt", "-i", str(target)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert child.stdout.readline() == "inside\n"
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
    finally:
        child.kill()
        child.wait(timeout=60)
    assert child.returncode == 1 and "netdsl: interrupted" in err, (child.returncode, err)
    assert "already written" not in err
    assert target.read_text() == UNFORMATTED and temporaries(tmp_path) == []


# os.replace, then a Ctrl-C at once: the signal lands while the rename commits (raise_signal
# runs the handler in this thread before it returns, so it lands there, never later).
_LATE_INTERRUPT = ("import os, signal, sys\n"
                   "real = os.replace\n"
                   "def replace(a, b):\n"
                   "    real(a, b); signal.raise_signal(signal.SIGINT)\n"
                   "os.replace = replace\n" + CLI)


def test_interrupt_after_the_rename_never_reports_interrupted(tmp_path):
    target = tmp_path / "n.net"
    target.write_text(UNFORMATTED)
    done = run_cli("fmt", "-i", str(target), code=_LATE_INTERRUPT)
    assert (done.returncode, done.stderr) == (0, "")
    assert target.read_text() == FORMATTED


def test_interrupt_between_files_names_the_files_already_written(tmp_path):
    first, second = tmp_path / "a.net", tmp_path / "b.net"
    first.write_text(UNFORMATTED), second.write_text(UNFORMATTED)
    done = run_cli("fmt", "-i", str(first), str(second), code=_LATE_INTERRUPT)
    assert done.returncode == 1
    assert done.stderr == f"netdsl: interrupted; already written: {first}\n"
    assert first.read_text() == FORMATTED and second.read_text() == UNFORMATTED


# --- outputs checked before the work ---------------------------------------------------------

def test_build_into_a_read_only_folder_fails_before_the_build(tmp_path, capsys):
    assert main(["build", DIGITS, "-o", str(read_only_folder(tmp_path) / "m.pt")]) == 1
    out, err = capsys.readouterr()
    assert "error: cannot write" in err and "internal error" not in err
    assert "params" not in out  # nothing was built


def test_build_into_a_missing_folder_fails_before_the_build(tmp_path, capsys):
    assert main(["build", DIGITS, "-o", str(tmp_path / "no" / "m.pt")]) == 1
    out, err = capsys.readouterr()
    assert f"no folder '{tmp_path / 'no'}'" in err and "params" not in out


def test_graph_into_a_read_only_folder_fails_before_compiling(tmp_path, capsys):
    bad = tmp_path / "bad.net"
    bad.write_text("network n:\n    input 3x8x8\n    conv(4, 9x9)\n")  # would fail to check
    folder = read_only_folder(tmp_path)
    assert main(["graph", str(bad), "-o", str(folder / "n.dot")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot write '{folder / 'n.dot'}'"), err


def test_graph_writes_dot_atomically(tmp_path, capsys):
    target = tmp_path / "n.dot"
    assert main(["graph", DIGITS, "-o", str(target)]) == 0
    assert target.read_text().startswith("digraph") and temporaries(tmp_path) == []


def test_summary_plot_with_an_unknown_format_is_a_diagnostic(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert main(["summary", DIGITS, "--plot", str(tmp_path / "x.xyz")]) == 1
    out, err = capsys.readouterr()
    assert "unknown picture format '.xyz'" in err and "internal error" not in err
    assert out == ""  # refused before the summary


@pytest.mark.parametrize("argv", [
    ["build", DIGITS, "--batch", "-1"],
    ["build", DIGITS, "--batch", "0"],
    ["build", DIGITS, "--seed", str(10**30)],
    ["build", DIGITS, "--seed", "-1"],
    ["build", DIGITS, "--max-params", "-5"],
    ["summary", DIGITS, "--batch", "-1"],
    ["sweep", DIGITS, "--batch", "0"],
    ["bench", DIGITS, "--repeats", "0"],
    ["bench", DIGITS, "--batch", "-2"],
])
def test_bad_numbers_on_the_command_line_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as usage:
        main(argv)
    assert usage.value.code == 2
    assert "expected a whole number" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "1e30", "many"])
def test_sweep_budgets_that_are_not_numbers_are_usage_errors(value, capsys):
    with pytest.raises(SystemExit) as usage:
        main(["sweep", DIGITS, "--max-params", value])
    assert usage.value.code == 2
    assert "expected a number from 0 to 1e18" in capsys.readouterr().err


def test_sweep_budget_in_scientific_notation_still_works(capsys):
    assert main(["sweep", DIGITS, "--max-params", "1e4"]) == 0
    assert "over params" in capsys.readouterr().out


def test_max_params_zero_is_honoured(capsys):
    assert main(["build", DIGITS, "--max-params", "0"]) == 1
    assert "more than the budget of 0" in capsys.readouterr().err


# --- streams -----------------------------------------------------------------------------------

def test_show_into_a_closed_pipe_exits_quietly():
    reader = subprocess.Popen([sys.executable, "-c", CLI, "show", "specs/resnet152.net",
                               "--format", "json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert reader.stdout.readline().startswith(b"{")
    reader.stdout.close()  # like `| head -1`
    err = reader.stderr.read().decode()
    reader.wait(timeout=120)
    assert err == "" and reader.returncode == 1


def test_non_utf8_stdout_gets_escapes_not_an_internal_error(tmp_path):
    spec = tmp_path / "réseau→.net"
    spec.write_text("network n:\n    input 3x8x8\n    conv(4, 3x3)\n", encoding="utf-8")
    done = run_cli("check", str(spec), env={"PYTHONIOENCODING": "ascii"})
    assert done.returncode == 0, done.stderr
    assert "r\\xe9seau\\u2192.net: ok" in done.stdout


def test_sigint_default_handler_is_restored_after_a_write(tmp_path):
    before = signal.getsignal(signal.SIGINT)
    atomic_write(tmp_path / "x", lambda tmp: Path(tmp).write_text("x"))
    assert signal.getsignal(signal.SIGINT) is before
