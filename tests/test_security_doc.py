"""docs/security.md cites code and tests as the ground of each guarantee: every one it names
must exist, so the page cannot go on citing a test that was renamed or removed."""

from __future__ import annotations

import re

import pytest

from conftest import ROOT

DOC = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
TESTS = sorted(set(re.findall(r"(tests/test_\w+\.py)::(test_\w+)", DOC)))
# a test cited without its file (`test_x`, after a test_file.py::... on the same line)
BARE = sorted(set(re.findall(r"`(test_\w+)(?:_\*)?`", DOC)))
PATHS = sorted(set(re.findall(r"`?((?:netdsl|tests|docs|examples)/[\w/]+\.(?:py|md|net))", DOC)))


def test_the_page_cites_tests_and_code():
    assert len(TESTS) >= 10 and len(PATHS) >= 10
    assert "docs/security.md" in (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("path", PATHS)
def test_cited_files_exist(path):
    assert (ROOT / path).exists(), path


@pytest.mark.parametrize("path,name", TESTS)
def test_cited_tests_exist(path, name):
    assert re.search(rf"^(?:async )?def {name}\(", (ROOT / path).read_text(encoding="utf-8"), re.M), name


@pytest.mark.parametrize("name", BARE)
def test_tests_cited_by_name_exist(name):
    pattern = re.compile(rf"^(?:async )?def {name}", re.M)
    assert any(pattern.search(p.read_text(encoding="utf-8"))
               for p in (ROOT / "tests").glob("test_*.py")), name
