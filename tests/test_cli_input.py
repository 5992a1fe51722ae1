"""What the command line and the API take in (issue 12, item 11): SPEC is a file, overrides
obey the language's own limits, usage errors exit 2, a BOM is fine, and spec text imports
only what it is allowed to."""

from __future__ import annotations

import pytest

import netdsl
from netdsl.cli import main

from conftest import ROOT

TINY = "network tiny(width=4):\n    input 3x8x8\n    conv(width, 3x3) -> relu\n"


@pytest.fixture(autouse=True)
def _in_repo(monkeypatch):
    monkeypatch.chdir(ROOT)


def check(*argv: str) -> int:
    try:
        return main(["check", *argv])
    except SystemExit as usage:
        return usage.code


def test_spec_not_ending_in_net_is_read_as_a_file(tmp_path, capsys):
    spec = tmp_path / "digits.txt"
    spec.write_text(TINY)
    assert check(str(spec)) == 0
    assert check(str(tmp_path / "other.txt")) == 1
    err = capsys.readouterr().err
    assert "no such spec file" in err and "SPEC is a file name" in err
    assert "unexpected" not in err  # never parsed as spec text


def test_missing_spec_suggests_the_net_file_meant(tmp_path, capsys):
    (tmp_path / "tiny.net").write_text(TINY)
    assert check(str(tmp_path / "tiny")) == 1
    assert f"did you mean '{tmp_path / 'tiny.net'}'?" in capsys.readouterr().err
    assert check("digits") == 0  # a bundled spec by name


@pytest.mark.parametrize("override", ["width=10000000000000000", "width=1e20",
                                      "width=[4,10000000000000000]"])
def test_overrides_obey_the_15_digit_number_limit(tmp_path, capsys, override):
    spec = tmp_path / "t.net"
    spec.write_text(TINY)
    assert check(str(spec), override) == 1
    err = capsys.readouterr().err
    assert "is beyond 1e+15" in err and "at most 15 digits" in err


def test_api_overrides_obey_the_15_digit_number_limit():
    with pytest.raises(netdsl.NetDSLError, match="is beyond 1e\\+15") as caught:
        netdsl.compile(TINY, width=10**20)
    assert caught.value.code == "E007"


def test_override_null_says_netdsl_has_no_null(tmp_path, capsys):
    spec = tmp_path / "t.net"
    spec.write_text(TINY)
    assert check(str(spec), "width=null") == 1
    err = capsys.readouterr().err
    assert "override width=null gives no value" in err and "unknown name" not in err
    with pytest.raises(netdsl.NetDSLError, match="width=null gives no value"):
        netdsl.compile(TINY, width=None)


def test_force_add_override_is_refused_like_add(capsys):
    for override in ("+num_classes=3", "++num_classes=3"):
        assert check("specs/resnet18.net", override) == 1
        assert "is not a plain key=value" in capsys.readouterr().err


@pytest.mark.parametrize("override,shown", [("input=abc", "found abc"),
                                            ("input=[3,-1]", "found [3, -1]"),
                                            ("input=[3,10000000000000000]", "found [3, 1")])
def test_bad_input_override_shows_what_was_given(capsys, override, shown):
    assert check("specs/resnet18.net", override) == 1
    err = capsys.readouterr().err
    assert f"input must be a shape like 3x224x224, {shown}" in err and "found ()" not in err


@pytest.mark.parametrize("stray", ["stray", "specs/vgg16.net"])
def test_stray_argument_is_a_usage_error(capsys, stray):
    assert check("specs/resnet18.net", stray) == 2
    assert f"unrecognized arguments: {stray}" in capsys.readouterr().err


def test_utf8_bom_is_accepted(tmp_path, capsys):
    spec = tmp_path / "bom.net"
    spec.write_bytes(b"\xef\xbb\xbf" + TINY.encode())
    assert check(str(spec)) == 0
    assert netdsl.compile("\ufeff" + TINY).name == "tiny"
    bad = tmp_path / "bad.net"
    bad.write_bytes(b"\xef\xbb\xbf" + TINY.replace("relu", "rleu").encode())
    assert check(str(bad)) == 1
    assert f"{bad}:3:25: error: unknown name 'rleu'" in capsys.readouterr().err


IMPORTING = 'import "local.net"\nnetwork n:\n    input 3x8x8\n    mine(4)\n'


def test_spec_text_imports_only_the_bundled_zoo(tmp_path, monkeypatch):
    (tmp_path / "local.net").write_text("block mine(c) = conv(c, 3x3)\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(netdsl.NetDSLError, match="cannot find 'local.net'") as caught:
        netdsl.compile(IMPORTING)
    assert "spec text has no folder (pass base=FOLDER)" in str(caught.value)
    assert netdsl.compile(IMPORTING, base=tmp_path).output_shape == (4, 6, 6)
    zoo = 'import "resnet_family.net"\nnetwork r = resnet(basic, [1, 1, 1, 1], 10)\n'
    assert netdsl.compile(zoo).output_shape == (10,)


def test_spec_text_never_reads_the_working_folder(monkeypatch):
    monkeypatch.chdir("/")
    with pytest.raises(netdsl.NetDSLError) as caught:
        netdsl.compile('import "etc/passwd"\nnetwork n:\n    input 3x8x8\n    relu\n')
    assert "cannot find 'etc/passwd'" in str(caught.value)
    assert "root" not in str(caught.value)  # the first line of /etc/passwd is not echoed
