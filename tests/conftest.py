"""Shared fixtures. ``pytest --update-golden`` rewrites golden files instead of comparing."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true",
                     help="rewrite golden files from the current output (review the diff!)")


@pytest.fixture
def update_golden(request) -> bool:
    return request.config.getoption("--update-golden")


def all_specs() -> list[Path]:
    return sorted(SPECS.glob("*.net"))


# tests import the helpers in tests/reference.py as a plain module
import sys  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
