"""The language server reads imports only inside the workspace, and its diagnostics carry no
terminal escapes (docs/security.md). Each test talks to a server of its own kind: one with a
workspace folder, one an editor started on a single file (no folder at all)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types as lsp
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities
from test_lsp import _open, _published, _recording_client, run

from conftest import ROOT

LIB = "block unit(c) = conv(c, 3x3, pad=1) -> relu\n"
USES_UNIT = "network t:\n    input 3x8x8\n    unit(4)\n"
SERVER = ClientServerConfig(server_command=[sys.executable, "-m", "netdsl", "lsp"],
                            client_factory=_recording_client,
                            server_env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[Path, Path]:
    """A workspace folder, and a folder beside it that is not one, each with a spec of
    blocks; a symlink in the workspace leads to the one outside."""
    base = tmp_path_factory.mktemp("lsp_folders")
    inside, outside = base / "workspace", base / "outside"
    for folder in (inside, outside):
        folder.mkdir()
        (folder / "lib.net").write_text(LIB)
    (inside / "link.net").symlink_to(outside / "lib.net")
    return inside, outside


@pytest_lsp.fixture(scope="module", config=SERVER)
async def client(lsp_client: LanguageClient, folders):
    await lsp_client.initialize_session(lsp.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"), root_uri=folders[0].as_uri(),
        workspace_folders=[lsp.WorkspaceFolder(folders[0].as_uri(), "workspace")]))
    yield
    await lsp_client.shutdown_session()


@pytest_lsp.fixture(scope="module", config=SERVER)
async def lone(lsp_client: LanguageClient):
    """An editor opened on one file: no root and no workspace folder."""
    await lsp_client.initialize_session(lsp.InitializeParams(
        capabilities=client_capabilities("visual-studio-code")))
    yield
    await lsp_client.shutdown_session()


def _refused(found: list[lsp.Diagnostic]) -> bool:
    return [d.code for d in found] == ["E006"] and found[0].range.start.line == 0 and \
        "is outside the workspace" in found[0].message


@run
async def test_imports_outside_the_workspace_are_refused(client, folders):
    inside, outside = folders
    assert await _open(client, (inside / "main.net").as_uri(), 'import "lib.net"\n' + USES_UNIT) == []
    for where, target in [(inside / "a.net", "link.net"),  # a symlink leading out
                          (inside / "b.net", "../outside/lib.net"),
                          (outside / "c.net", "lib.net"),  # a document outside, its neighbour
                          (Path("/etc/netdsl-never-there.net"), "passwd"),
                          (Path("/etc/netdsl-never-there-2.net"), "../../etc/passwd")]:
        found = await _open(client, where.as_uri(), f'import "{target}"\n' + USES_UNIT)
        assert _refused(found), (target, found)
    # the zoo stays open to every document
    assert await _open(client, (outside / "d.net").as_uri(),
                       'import "resnet_family.net"\nnetwork t:\n    input 3x8x8\n'
                       '    basic(4)\n') == []


@run
async def test_a_folder_added_to_the_workspace_opens_its_imports(client, tmp_path):
    document = tmp_path / "main.net"
    (tmp_path / "lib.net").write_text(LIB)
    uri = document.as_uri()
    assert _refused(await _open(client, uri, 'import "lib.net"\n' + USES_UNIT))
    mark = len(client.publications[uri])
    client.workspace_did_change_workspace_folders(lsp.DidChangeWorkspaceFoldersParams(
        lsp.WorkspaceFoldersChangeEvent(added=[lsp.WorkspaceFolder(tmp_path.as_uri(), "t")],
                                        removed=[])))
    assert await _published(client, uri, mark, 1) == []  # checked again at once


@run
async def test_a_diagnostic_shows_a_terminal_escape_as_text(client, folders):
    found = await _open(client, (folders[0] / "e.net").as_uri(),
                        'import "\x1b[2J\x1b]0;owned\x07.net"\n' + USES_UNIT)
    assert [d.code for d in found] == ["E006"]
    assert "\\x1b[2J\\x1b]0;owned\\x07.net" in found[0].message
    assert not any(c in found[0].message for c in "\x1b\x07")


@run
async def test_without_a_workspace_a_file_imports_from_its_own_folder(lone, tmp_path):
    """The CLI's rule, for a document that is a file on disk; a URI alone (nothing there)
    makes no folder readable."""
    (tmp_path / "lib.net").write_text(LIB)
    document = tmp_path / "main.net"
    document.write_text('import "lib.net"\n' + USES_UNIT)
    assert await _open(lone, document.as_uri(), document.read_text()) == []
    ghost = await _open(lone, (tmp_path / "ghost.net").as_uri(), 'import "lib.net"\n' + USES_UNIT)
    assert _refused(ghost), ghost
