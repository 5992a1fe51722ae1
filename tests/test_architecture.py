"""The package's shape: phases import only earlier phases, no two modules import each other
(directly or round a longer loop), every module stays small, and op facts live in records."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from conftest import ROOT

PACKAGE = ROOT / "netdsl"
# The pipeline, earliest first. A module may import its own phase and earlier ones; anything
# not listed (the CLI, the public API, tools built on them) sits after all of them.
PHASES = ["errors", "limits", "files", "syntax", "ir", "lower", "passes", "torch", "render"]
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def imports_of(path: Path, type_only: bool = False) -> set[str]:
    """The netdsl modules ``path`` imports, lazily or not (``if TYPE_CHECKING`` aside, unless
    ``type_only``: a cycle through an annotation is still a cycle for the reader)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = set() if type_only else {
        id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and _is_type_checking(node)
        for n in ast.walk(node)}
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            if not target.startswith("netdsl"):
                continue
            for alias in node.names:  # `from . import emit` imports a module
                candidate = f"{target}.{alias.name}"
                found.add(candidate if _exists(candidate) else target)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("netdsl")}
    return {m for m in found if m != module_name(path)}


def _exists(module: str) -> bool:
    path = ROOT / Path(*module.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def graph(type_only: bool = False) -> dict[str, set[str]]:
    return {module_name(p): imports_of(p, type_only) for p in sorted(PACKAGE.rglob("*.py"))}


def phase(module: str) -> int:
    parts = module.split(".")
    name = parts[1] if len(parts) > 1 else ""
    return PHASES.index(name) if name in PHASES else len(PHASES)


def test_no_module_imports_a_later_phase():
    upward = [f"{m} imports {t}" for m, targets in graph().items() for t in targets
              if phase(t) > phase(m)]
    assert not upward, upward


@pytest.mark.parametrize("type_only", [False, True], ids=["runtime", "with_type_imports"])
def test_no_import_cycles(type_only):
    edges = graph(type_only)
    cycles = []
    for start in edges:  # every module's strongly connected partner would show up here
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in edges.get(node, ()):
                if nxt == start:
                    cycles.append(" -> ".join([*path, start]))
                elif nxt not in seen and nxt.startswith("netdsl"):
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
    assert not cycles, cycles


def test_the_import_graph_sees_lazy_imports_and_relative_levels():
    """The walker itself: without it, the two tests above would pass on anything."""
    edges = graph()
    assert "netdsl.ir.ops" in edges["netdsl.lower.loader"]
    assert "netdsl.errors" in edges["netdsl.syntax.parser"]
    assert "netdsl.torch.emit" in edges["netdsl.api"]  # imported inside build()
    assert phase("netdsl.torch.emit") > phase("netdsl.passes.check") > phase("netdsl.ir.ops")


def test_the_language_server_reads_only_torch_free_phases():
    """netdsl.lsp sits after passes and beside the CLI: it may use syntax, lower, ir and
    passes (all torch-free), never torch, render or the importer (tests/test_lsp.py runs a
    whole session and finds torch never imported)."""
    edges = graph()
    server = [m for m in edges if m.startswith("netdsl.lsp")]
    assert {"netdsl.lsp.server", "netdsl.lsp.analysis", "netdsl.lsp.hover"} <= set(server)
    allowed = PHASES.index("passes")
    wrong = [f"{m} imports {t}" for m in server for t in edges[m]
             if not t.startswith("netdsl.lsp") and t != "netdsl" and phase(t) > allowed]
    assert not wrong, wrong
    for m in server:
        tree = ast.parse((ROOT / Path(*m.split("."))).with_suffix(".py").read_text()
                         if not m.endswith("lsp") else (PACKAGE / "lsp" / "__init__.py").read_text())
        names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                 for a in n.names}
        names |= {n.module.split(".")[0] for n in ast.walk(tree)
                  if isinstance(n, ast.ImportFrom) and n.module and not n.level}
        assert "torch" not in names, m


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: module_name(p))
def test_every_module_stays_short(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{module_name(path)} has {lines} lines (split it by job)"


# Where a pass may still name an op: the network input is structural, and the residual sum's
# diagnostic says "residual". Everything else an op is, its record says.
OP_NAMES_ALLOWED = {"netdsl/ir/graph.py": {"input"},
                    "netdsl/ir/shapes.py": {"add"},
                    "netdsl/render/graph.py": {"input"},
                    # netdsl import writes builtins: a projection shortcut
                    "netdsl/importer/__init__.py": {"project"}}


def test_passes_read_op_records_not_op_names():
    pattern = re.compile(r"""\bop\s*(?:==|!=|in)\s*[("']+(\w+)""")
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("netdsl/ir/layers/") or rel == "netdsl/lower/evaluate.py":
            continue  # the records themselves; arithmetic operators are not ops
        for name in pattern.findall(path.read_text(encoding="utf-8")):
            if name not in OP_NAMES_ALLOWED.get(rel, set()):
                found.append(f"{rel}: op '{name}'")
    assert not found, found


# --- the CLI is a layer over the public API (issue 27) ----------------------------------------

# What a CLI module may import besides netdsl.api and the package root: the foundation that
# imports nothing of netdsl (errors, limits, atomic writes), and rendering, i.e. turning what
# the API returned into text, pictures or files: tables, plots and pictures (render/), a
# spec's text (syntax.fmt), a module's file formats (torch.export) and Netron (torch.view).
CLI_FOUNDATION = ("netdsl.errors", "netdsl.limits", "netdsl.files")
CLI_RENDERING = ("netdsl.render", "netdsl.syntax.fmt", "netdsl.torch.export", "netdsl.torch.view")
# Commands that are tools of their own beside the pipeline, named here one by one: the
# language server, the importer (torch to spec, the other direction), and the benchmarks,
# which time torch runtimes against each other.
CLI_TOOLS = {"netdsl.cli.lsp": ("netdsl.lsp.server",),
             "netdsl.cli.importer": ("netdsl.importer",),
             "netdsl.cli.bench": ("netdsl.torch.calibrate", "netdsl.torch.optimize",
                                  "netdsl.torch.runtimes"),
             "netdsl.cli.engines": ("netdsl.torch.calibrate", "netdsl.torch.optimize",
                                    "netdsl.torch.runtimes")}


def _under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_the_cli_calls_the_public_api_and_formats():
    """Every command compiles, analyses and builds through netdsl.api: below it the CLI
    reads only the foundation, rendering, and the tools listed above."""
    edges = graph(type_only=True)
    cli = [m for m in edges if _under(m, ("netdsl.cli",))]
    assert {"netdsl.cli", "netdsl.cli.core", "netdsl.cli.analyse", "netdsl.cli.sweep"} <= set(cli)
    wrong = [f"{m} imports {t}" for m in cli for t in edges[m]
             if t not in ("netdsl", "netdsl.api") and not _under(t, ("netdsl.cli",))
             and not _under(t, CLI_FOUNDATION + CLI_RENDERING + CLI_TOOLS.get(m, ()))]
    assert not wrong, wrong


# --- no private coupling -----------------------------------------------------------------------

def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_imports(path: Path, here: str | None = None) -> list[str]:
    """Private names (``_x``) that ``path`` (the module ``here``) takes from another netdsl
    module: ``from .m import _x``, or ``m._x`` where ``m`` names an imported netdsl module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = here or module_name(path)
    package = here.split(".") if path.name == "__init__.py" else here.split(".")[:-1]
    modules: dict[str, str] = {}  # local name -> the netdsl module it is bound to
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            if not target.startswith("netdsl") or target == here:
                continue
            for alias in node.names:
                if _exists(f"{target}.{alias.name}"):
                    modules[alias.asname or alias.name] = f"{target}.{alias.name}"
                elif _private(alias.name):
                    found.append(f"{here}: from {target} import {alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("netdsl"):
                    modules[alias.asname or alias.name.split(".")[0]] = \
                        alias.name if alias.asname else "netdsl"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            owner = _dotted(node.value)
            head = owner.split(".")[0] if owner else None
            if head in modules and modules[head] != here and (
                    owner == head or _exists(modules[head] + owner[len(head):])):
                found.append(f"{here}: {owner}.{node.attr}")
    return found


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f"{inner}.{node.attr}" if inner else None
    return None


def test_no_module_takes_a_private_name_from_another():
    found = [f for p in sorted(PACKAGE.rglob("*.py")) for f in private_imports(p)]
    assert not found, found


def test_private_imports_are_seen_in_both_spellings(tmp_path):
    """The walker itself, on a three-line module: both spellings are found."""
    probe = tmp_path / "probe.py"
    probe.write_text("from .loader import _is_file\nfrom . import loader\nloader._define\n")
    assert private_imports(probe, "netdsl.lower.probe") == [
        "netdsl.lower.probe: from netdsl.lower.loader import _is_file",
        "netdsl.lower.probe: loader._define"]


# Where a pass or the importer may write an op's name as text. Only a field of the summary's
# JSON that happens to be called like the input op; what the code needs of an op it reads from
# the record (memory facts, stride defaults, the torch class it emits), and the joins the
# importer builds are named through their records (CONCAT.name).
OP_TEXT_ALLOWED = {"netdsl/passes/analyse.py": {"input"}}  # the JSON field "input": a shape


def test_no_pass_or_importer_module_names_an_op():
    """Every string constant of netdsl/passes and netdsl/importer, parsed (so a table keyed
    by op name, like ``{"maxpool": 8}``, is caught as well as a comparison)."""
    from netdsl.ir.layers import BUILTIN_OPS

    names = {record.name for record in BUILTIN_OPS}
    found = []
    for path in sorted([*(PACKAGE / "passes").rglob("*.py"), *(PACKAGE / "importer").rglob("*.py")]):
        rel = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in names \
                    and node.value not in OP_TEXT_ALLOWED.get(rel, set()):
                found.append(f"{rel}:{node.lineno}: '{node.value}'")
    assert len(names) > 30 and not found, found
