"""`pip install netdsl` is the whole product: the wheel carries the zoo, and from a folder
that is not the clone, networks are found by name and family files import."""

from __future__ import annotations

import os
import re
import site
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

USER_SPEC = """import "resnet_family.net"

network mine = resnet(basic, [1, 1, 1, 1], num_classes=7)
"""


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    """A fresh environment with the wheel installed (not editable); torch and the other
    dependencies are the running interpreter's, wherever they are installed (a virtual
    environment, as the README's Quickstart makes, or the system), so nothing is downloaded."""
    root = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps",
                    "--no-build-isolation", "-q", "-w", str(root / "dist")], check=True,
                   capture_output=True, timeout=600)
    (wheel,) = (root / "dist").glob("netdsl-*.whl")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "env")],
                   check=True, timeout=120)
    see_running_packages(root / "env")
    # no PYTHONPATH: pip asks the new environment what it has, and a clone on PYTHONPATH
    # would answer "netdsl is already installed"
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, "-m", "pip", "--python", str(root / "env/bin/python"),
                    "install", "-q", "--no-deps", "--no-index", "--force-reinstall", str(wheel)],
                   check=True, capture_output=True, timeout=600, env=clean)
    return root / "env"


def see_running_packages(env: Path) -> None:
    """Puts the running interpreter's site-packages folders after ``env``'s own (a .pth
    file): ``venv --system-site-packages`` would show the base interpreter's instead, which
    lack lark and torch when the tests run in a virtual environment. The wheel, installed in
    ``env`` itself, comes first; this clone's editable netdsl is a finder in a .pth file of
    those folders, which plain path lines never run."""
    own = env / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    folders = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (own / "running-interpreter.pth").write_text("".join(f"{p}\n" for p in folders))


def run(venv: Path, cwd: Path, *command: str) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(cwd)})
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_wheel_carries_the_zoo(venv):
    files = run(venv, venv, str(venv / "bin/python"), "-c",
                "import netdsl, pathlib; p = pathlib.Path(netdsl.__file__).parent; "
                "print(p); print(len(list((p / 'zoo').glob('*.net'))))").split()
    assert files[0].startswith(str(venv)), "netdsl must come from the wheel, not the clone"
    assert int(files[1]) == len(list((ROOT / "specs").glob("*.net")))


def test_from_any_folder_networks_are_found_by_name(venv, tmp_path):
    out = run(venv, tmp_path, str(venv / "bin/netdsl"), "build", "resnet18")
    assert re.search(r"params +11,689,512", out)
    assert "resnet152" in run(venv, tmp_path, str(venv / "bin/netdsl"), "list")
    code = ("import netdsl; m = netdsl.build('resnet50', num_classes=10); "
            "print(sum(p.numel() for p in m.parameters()))")
    assert run(venv, tmp_path, str(venv / "bin/python"), "-c", code).strip() == "23528522"


def test_a_users_spec_imports_a_family_from_the_zoo(venv, tmp_path):
    (tmp_path / "mine.net").write_text(USER_SPEC)
    out = run(venv, tmp_path, str(venv / "bin/netdsl"), "check", "mine.net")
    assert "maps 3x224x224 to 7" in out


def test_an_unknown_name_suggests_the_zoos(venv, tmp_path):
    done = subprocess.run([str(venv / "bin/netdsl"), "check", "resnet5"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "did you mean 'resnet50'" in done.stderr
