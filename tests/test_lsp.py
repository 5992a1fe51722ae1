"""The language server end to end: a pytest-lsp client talks to ``netdsl lsp`` over stdio.

One server serves the whole module (starting one costs about a second). Each test opens its
own documents, under their own names, so the order of the tests does not matter.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
import pytest_lsp
from lsprotocol import types as lsp
from pygls.protocol import default_converter
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features

from netdsl.errors import NetDSLError, SpecErrors
from netdsl.lower import lower_spec
from netdsl.passes.check import check
from netdsl.syntax.fmt import format_text

from conftest import ROOT, SPECS

run = pytest.mark.asyncio(loop_scope="module")  # every client test shares the module's server

T = TypeVar("T")
SCRATCH = ROOT / "tests" / "lsp_scratch"  # never written: documents live in the client only
BOTTLENECKS = """\
import "resnet_family.net"

network t:
    input 64x56x56
    b1: bottleneck(64)
    b2: bottleneck(64) -> conv(32, 3x3, pad=1)
    stack(basic(32), 2)
"""


# What a helper waits for the server, at most: far above any answer (under a second when
# idle, a few seconds on a loaded machine), so a lost notification fails the test with what it
# waited for instead of hanging the run (pytest-timeout is the backstop, not the deadline).
DEADLINE = 60.0


def _recording_client() -> LanguageClient:
    """pytest-lsp's client, also keeping every publishDiagnostics in order, with its version:
    the helpers wait for a state (a publication after the request, of its version), never for
    "the next notification", which may have come already or belong to another document."""
    client = LanguageClient(converter_factory=default_converter)
    client.publications = {}

    def published(client: LanguageClient, params: lsp.PublishDiagnosticsParams) -> None:
        client.diagnostics[params.uri] = params.diagnostics
        client.publications.setdefault(params.uri, []).append(params)

    register_lsp_features(client, {**DEFAULT_CLIENT_FEATURES,
                                   lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS: published})
    return client


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(
    server_command=[sys.executable, "-m", "netdsl", "lsp"], client_factory=_recording_client,
    server_env={**os.environ, "PYTHONPATH": str(ROOT)}))
async def client(lsp_client: LanguageClient):
    await lsp_client.initialize_session(lsp.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"), root_uri=ROOT.as_uri()))
    yield
    await lsp_client.shutdown_session()


async def until(what: str, found: Callable[[], T | None], deadline: float = DEADLINE) -> T:
    """``found()`` once it is not None, polled; fails after ``deadline`` seconds saying
    ``what`` it waited for."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while (result := found()) is None:
        if loop.time() > end:
            raise AssertionError(f"waited {deadline:.0f} s for {what}")
        await asyncio.sleep(0.005)
    return result


def _uri(name: str) -> str:
    return (SCRATCH / name).as_uri()


def _mark(client: LanguageClient, uri: str) -> int:
    """How many publications of ``uri`` the client has had: what came before a request."""
    return len(client.publications.get(uri, ()))


async def _published(client: LanguageClient, uri: str, mark: int,
                     version: int | None) -> list[lsp.Diagnostic]:
    """The diagnostics of ``uri`` published after the ``mark``-th publication for ``version``
    of the document or a later one (``None``: as it was closed, with no version)."""
    def latest() -> list[lsp.Diagnostic] | None:
        after = client.publications.get(uri, [])[mark:]
        if after and (after[-1].version == version if version is None
                      else (after[-1].version or 0) >= version):
            return list(after[-1].diagnostics)
        return None
    return await until(f"diagnostics of {uri} version {version} from the server "
                       f"(latest: {client.publications.get(uri, [])[-1:]})", latest)


async def _open(client: LanguageClient, uri: str, text: str) -> list[lsp.Diagnostic]:
    mark = _mark(client, uri)
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(
        lsp.TextDocumentItem(uri, "netdsl", 1, text)))
    return await _published(client, uri, mark, 1)


async def _change(client: LanguageClient, uri: str, version: int, text: str):
    mark = _mark(client, uri)
    client.text_document_did_change(lsp.DidChangeTextDocumentParams(
        lsp.VersionedTextDocumentIdentifier(version, uri),
        [lsp.TextDocumentContentChangeWholeDocument(text)]))
    return await _published(client, uri, mark, version)


async def _close(client: LanguageClient, uri: str) -> None:
    mark = _mark(client, uri)
    client.text_document_did_close(lsp.DidCloseTextDocumentParams(
        lsp.TextDocumentIdentifier(uri)))
    assert await _published(client, uri, mark, None) == []


def _cli_errors(spec: str | Path) -> list[NetDSLError]:
    """What ``netdsl check`` raises for a spec (the same pipeline, in this process)."""
    try:
        check(lower_spec(spec))
    except SpecErrors as errors:
        return list(errors.errors)
    except NetDSLError as error:
        return [error]
    return []


def _where(d: lsp.Diagnostic) -> tuple[int, int, int, int]:
    r = d.range
    return r.start.line + 1, r.start.character + 1, r.end.line + 1, r.end.character + 1


def _span(e: NetDSLError) -> tuple[int, int, int, int]:
    s = e.span
    return s.line, s.column, s.end_line, s.end_column


@run
async def test_diagnostics_appear_and_clear_after_edits(client: LanguageClient):
    uri = _uri("edits.net")
    good = "network t:\n    input 3x32x32\n    conv(8, 3x3) -> relu\n    gap -> flatten -> fc(10)\n"
    assert await _open(client, uri, good) == []
    bad = good.replace("relu", "reluu").replace("fc(10)", "fc(10, wat=1)")
    found = await _change(client, uri, 2, bad)
    expected = _cli_errors(bad)
    assert len(found) == len(expected) == 2  # several at once, as the CLI prints them
    assert [(d.code, _where(d)) for d in found] == [(e.code, _span(e)) for e in expected]
    assert "reluu" in found[0].message and found[0].severity == lsp.DiagnosticSeverity.Error
    assert await _change(client, uri, 3, good) == []


CORPUS = [p for p in sorted((ROOT / "tests" / "diagnostics").glob("*.net"))
          if not p.read_text(encoding="utf-8").startswith("# args:")]


@run
async def test_every_golden_diagnostic_has_the_clis_code_and_span(client: LanguageClient):
    assert len(CORPUS) > 50
    for spec in CORPUS:
        found = await _open(client, spec.as_uri(), spec.read_text(encoding="utf-8"))
        expected = _cli_errors(spec)
        assert [d.code for d in found] == [e.code for e in expected], spec.name
        for d, e in zip(found, expected, strict=True):
            if e.span is not None and Path(e.span.source.filename).resolve() == spec:
                assert _where(d) == _span(e), spec.name
            elif e.span is not None:  # in an imported file: shown here, pointing there
                assert d.related_information, spec.name
        await _close(client, spec.as_uri())


async def _hover(client, uri, line, text_on_line) -> str:
    lines = BOTTLENECKS.split("\n")
    column = lines[line].index(text_on_line) + 2
    result = await client.text_document_hover_async(lsp.HoverParams(
        lsp.TextDocumentIdentifier(uri), lsp.Position(line, column)))
    return result.contents.value if result else ""


PROJECTED = """\
block unit(c, stride=1) = residual(conv(c, 3x3, stride=stride, pad=1), shortcut=project)

network t:
    input 8x8x8
    a: unit(16, stride=2)
    b: unit(16)
"""


@run
async def test_hover_on_project_counts_one_expansion_for_its_conv_and_bn(client):
    """``project`` becomes conv + bn in ``a`` and nothing in ``b``: one expansion of two
    nodes sharing one position, not two (issue 26, item 6)."""
    uri = _uri("project.net")
    assert await _open(client, uri, PROJECTED) == []
    column = PROJECTED.split("\n")[0].index("project") + 2
    result = await client.text_document_hover_async(lsp.HoverParams(
        lsp.TextDocumentIdentifier(uri), lsp.Position(0, column)))
    text = result.contents.value
    assert "expanded" not in text and "`16x4x4`" in text, text

@run
async def test_hover_on_a_bottleneck_call_shows_its_shape_and_parameters(client):
    uri = _uri("hover.net")
    assert await _open(client, uri, BOTTLENECKS) == []
    text = await _hover(client, uri, 4, "bottleneck")
    # torchvision's layer1[0]: 64 -> 256 channels with a projection shortcut
    assert "`256x56x56`" in text and "75,008" in text and "231,211,008" in text
    assert "stride=1" in text and "base_width=64" in text  # the signature, with defaults
    conv = await _hover(client, uri, 5, "conv(32")
    assert "`32x56x56`" in conv and "73,760" in conv and "receptive field 7x7" in conv
    keyword = await _hover(client, uri, 5, "pad=")
    assert keyword.startswith("parameter **pad** of `conv` (default `0`)")
    stacked = await _hover(client, uri, 6, "basic(32)")
    assert "expanded 2 times" in stacked and "18,560" in stacked
    whole = await _hover(client, uri, 6, "stack")
    assert "37,120" in whole and "expanded" not in whole  # one stack, both copies
    network = await _hover(client, uri, 2, " t:")
    assert "maps `64x56x56` to `32x56x56`" in network and "256,288" in network
    imported = await _hover(client, uri, 0, "resnet_family")
    assert "bottleneck" in imported and "resnet_family.net" in imported


@run
async def test_definition_jumps_into_the_bundled_zoo(client: LanguageClient):
    uri = _uri("definition.net")
    await _open(client, uri, BOTTLENECKS)
    found = await client.text_document_definition_async(lsp.DefinitionParams(
        lsp.TextDocumentIdentifier(uri), lsp.Position(4, 10)))
    assert found.uri == (SPECS / "resnet_family.net").as_uri()
    line = (SPECS / "resnet_family.net").read_text().split("\n")[found.range.start.line]
    assert line[found.range.start.character:].startswith("bottleneck(")
    assert line.startswith("block bottleneck")


@run
async def test_references_find_every_use_of_a_block(client: LanguageClient):
    uri = _uri("references.net")
    text = ("block unit(c) = conv(c, 3x3, pad=1) -> relu\n\nnetwork t:\n    input 3x8x8\n"
            "    unit(4) -> unit(8)\n    c: unit(2)\n")
    await _open(client, uri, text)
    found = await client.text_document_references_async(lsp.ReferenceParams(
        context=lsp.ReferenceContext(True), text_document=lsp.TextDocumentIdentifier(uri),
        position=lsp.Position(4, 6)))
    assert sorted((r.range.start.line, r.range.start.character) for r in found) == \
        [(0, 6), (4, 4), (4, 15), (5, 7)]
    family = (SPECS / "resnet_family.net").as_uri()  # an import that is not open
    await _change(client, uri, 2, "import \"resnet_family.net\"\n" + text.replace(
        "c: unit(2)", "c: layer(basic, 8, 2, 1, 1, 64)"))
    found = await client.text_document_references_async(lsp.ReferenceParams(
        context=lsp.ReferenceContext(False), text_document=lsp.TextDocumentIdentifier(uri),
        position=lsp.Position(6, 8)))
    stages = [i for i, line in enumerate((SPECS / "resnet_family.net").read_text().split("\n"))
              if ": layer(unit" in line]
    assert len(stages) == 4
    assert sorted((r.uri == family, r.range.start.line) for r in found) == \
        [(False, 6), *((True, i) for i in stages)]
    await _change(client, uri, 3, text)
    param = await client.text_document_references_async(lsp.ReferenceParams(
        context=lsp.ReferenceContext(False), text_document=lsp.TextDocumentIdentifier(uri),
        position=lsp.Position(0, 21)))
    assert [(r.range.start.line, r.range.start.character) for r in param] == [(0, 21)]


@run
async def test_completion_inside_conv_offers_its_keywords_with_defaults(client):
    uri = _uri("completion.net")
    text = "import \"resnet_family.net\"\n\nnetwork t:\n    input 3x32x32\n    conv("
    await _open(client, uri, text)  # does not parse: completion reads the text itself
    result = await client.text_document_completion_async(lsp.CompletionParams(
        lsp.TextDocumentIdentifier(uri), lsp.Position(4, 9)))
    items = {i.label: i for i in result.items}
    assert items["stride="].detail == "stride=1" and items["pad="].detail == "pad=0"
    assert "groups=" in items and "bias=" in items
    assert sorted(items, key=lambda k: items[k].sort_text)[0].endswith("=")  # keywords first
    assert "bottleneck" in items and "residual" in items and "relu" in items  # in scope
    given = text + "64, 3x3, stride=2, "
    await _change(client, uri, 2, given)
    result = await client.text_document_completion_async(lsp.CompletionParams(
        lsp.TextDocumentIdentifier(uri), lsp.Position(4, len(given.split("\n")[-1]))))
    labels = {i.label for i in result.items}
    assert "pad=" in labels and "stride=" not in labels  # already given
    block = "import \"resnet_family.net\"\nnetwork t:\n    input 3x32x32\n    bottleneck(8, "
    await _change(client, uri, 3, block)
    result = await client.text_document_completion_async(lsp.CompletionParams(
        lsp.TextDocumentIdentifier(uri), lsp.Position(3, len("    bottleneck(8, "))))
    details = {i.label: i.detail for i in result.items}
    assert details["base_width="] == "base_width=64"


@run
async def test_formatting_returns_netdsl_fmts_text(client: LanguageClient):
    uri = _uri("format.net")
    text = "network t:\n  input 3x8x8\n  conv( 8,3x3 )->relu   # c\n"
    await _open(client, uri, text)
    edits = await client.text_document_formatting_async(lsp.DocumentFormattingParams(
        lsp.TextDocumentIdentifier(uri), lsp.FormattingOptions(4, True)))
    assert len(edits) == 1 and edits[0].new_text == format_text(text)
    assert edits[0].range.start == lsp.Position(0, 0) and edits[0].range.end == lsp.Position(3, 0)
    await _change(client, uri, 2, format_text(text))
    assert await client.text_document_formatting_async(lsp.DocumentFormattingParams(
        lsp.TextDocumentIdentifier(uri), lsp.FormattingOptions(4, True))) in ([], ())


@run
async def test_symbols_and_inlay_hints(client: LanguageClient):
    uri = _uri("outline.net")
    await _open(client, uri, BOTTLENECKS)
    found = await client.text_document_document_symbol_async(lsp.DocumentSymbolParams(
        lsp.TextDocumentIdentifier(uri)))
    assert [(s.name, [c.name for c in s.children]) for s in found] == [("t", ["b1", "b2"])]
    hints = await client.text_document_inlay_hint_async(lsp.InlayHintParams(
        lsp.TextDocumentIdentifier(uri), lsp.Range(lsp.Position(0, 0), lsp.Position(9, 0))))
    assert [(h.position.line, h.label) for h in hints] == \
        [(4, "# 256x56x56"), (5, "# 32x56x56"), (6, "# 32x56x56")]
    family = (SPECS / "resnet_family.net")
    diagnostics = await _open(client, family.as_uri(), family.read_text())
    # a file to import: E009 as the CLI says it, but as information, not an error
    assert [(d.code, d.severity) for d in diagnostics] == \
        [("E009", lsp.DiagnosticSeverity.Information)]


UNIT_NEEDS_K = "block unit(c, k) = conv(c, k) -> relu\n"  # main.net's unit(4) lacks k: E003


async def _lib_and_main(client: LanguageClient, folder: Path) -> tuple[Path, Path]:
    """lib.net (a block) and main.net (a network importing it) on disk, main open and clean
    (``folder`` made a workspace folder: the server reads imports only inside those)."""
    client.workspace_did_change_workspace_folders(lsp.DidChangeWorkspaceFoldersParams(
        lsp.WorkspaceFoldersChangeEvent(added=[lsp.WorkspaceFolder(folder.as_uri(), folder.name)],
                                        removed=[])))
    lib, main = folder / "lib.net", folder / "main.net"
    lib.write_text("block unit(c) = conv(c, 3x3, pad=1) -> relu\n")
    main.write_text('import "lib.net"\nnetwork t:\n    input 3x8x8\n    unit(4)\n')
    assert await _open(client, main.as_uri(), main.read_text()) == []
    return lib, main


async def _close_and_recheck(client: LanguageClient, closed: Path, importer: Path) -> None:
    """Closes ``closed`` without saving; ``importer`` is checked against the disk again."""
    await _close(client, closed.as_uri())
    assert not await _diagnostics_of(client, importer.as_uri(), lambda d: len(d) == 0)


async def _diagnostics_of(client: LanguageClient, uri: str, holds) -> list[lsp.Diagnostic]:
    """The client's latest diagnostics of ``uri`` once ``holds`` is true of them (several
    documents publish in turn: waiting for one notification after another could miss one)."""
    def latest() -> list[lsp.Diagnostic] | None:
        found = client.diagnostics.get(uri)
        return list(found) if found is not None and holds(found) else None
    return await until(f"diagnostics of {uri} as expected (latest: "
                       f"{client.diagnostics.get(uri)})", latest)


@run
async def test_saving_an_imported_file_checks_the_files_importing_it(client, tmp_path_factory):
    lib, main = await _lib_and_main(client, tmp_path_factory.mktemp("saved"))
    await _open(client, lib.as_uri(), lib.read_text())
    lib.write_text(UNIT_NEEDS_K)  # saved by the editor
    os.utime(lib, ns=(1, 1))
    await _change(client, lib.as_uri(), 2, lib.read_text())
    client.text_document_did_save(lsp.DidSaveTextDocumentParams(
        lsp.TextDocumentIdentifier(lib.as_uri())))
    found = await _diagnostics_of(client, main.as_uri(), lambda d: len(d) > 0)
    assert [d.code for d in found] == ["E003"] and found[0].range.start.line == 3  # unit needs k


@run
async def test_an_unsaved_edit_of_an_import_checks_the_files_importing_it(client,
                                                                         tmp_path_factory):
    lib, main = await _lib_and_main(client, tmp_path_factory.mktemp("unsaved"))
    await _open(client, lib.as_uri(), lib.read_text())
    client.text_document_did_change(lsp.DidChangeTextDocumentParams(  # typed, not saved
        lsp.VersionedTextDocumentIdentifier(2, lib.as_uri()),
        [lsp.TextDocumentContentChangeWholeDocument(UNIT_NEEDS_K)]))
    found = await _diagnostics_of(client, main.as_uri(), lambda d: len(d) > 0)
    assert [d.code for d in found] == ["E003"] and found[0].range.start.line == 3
    await _close_and_recheck(client, lib, main)


@run
async def test_a_buffer_opened_unsaved_is_what_the_files_importing_it_read(client,
                                                                          tmp_path_factory):
    lib, main = await _lib_and_main(client, tmp_path_factory.mktemp("restored"))
    client.text_document_did_open(lsp.DidOpenTextDocumentParams(lsp.TextDocumentItem(
        lib.as_uri(), "netdsl", 1, UNIT_NEEDS_K)))  # an editor restoring unsaved work
    found = await _diagnostics_of(client, main.as_uri(), lambda d: len(d) > 0)
    assert [d.code for d in found] == ["E003"]
    await _close_and_recheck(client, lib, main)


def _failures(client: LanguageClient) -> list[str]:
    """What the server logged as its own failures (a feature that raised, then answered
    nothing: the session goes on, but it is a bug)."""
    return [m.message for m in client.log_messages if m.type == lsp.MessageType.Error]


@run
async def test_typing_a_spec_key_by_key(client: LanguageClient):
    """Every keystroke an edit of one character (ranges, as editors send them); between
    keystrokes every request the server answers, at the cursor."""
    uri = _uri("typing.net")
    await _open(client, uri, "")
    line = column = 0
    document = lsp.TextDocumentIdentifier(uri)
    for version, char in enumerate(BOTTLENECKS, 2):
        here = lsp.Position(line, column)
        mark = _mark(client, uri)
        client.text_document_did_change(lsp.DidChangeTextDocumentParams(
            lsp.VersionedTextDocumentIdentifier(version, uri),
            [lsp.TextDocumentContentChangePartial(lsp.Range(here, here), char)]))
        found = await _published(client, uri, mark, version)
        line, column = (line + 1, 0) if char == "\n" else (line, column + 1)
        cursor = lsp.Position(line, column)
        if version % 5 == 0:
            await client.text_document_hover_async(lsp.HoverParams(document, cursor))
            await client.text_document_completion_async(lsp.CompletionParams(document, cursor))
            await client.text_document_definition_async(lsp.DefinitionParams(document, cursor))
            await client.text_document_references_async(lsp.ReferenceParams(
                context=lsp.ReferenceContext(True), text_document=document, position=cursor))
            await client.text_document_inlay_hint_async(lsp.InlayHintParams(
                document, lsp.Range(lsp.Position(0, 0), cursor)))
            await client.text_document_document_symbol_async(lsp.DocumentSymbolParams(document))
            await client.text_document_formatting_async(lsp.DocumentFormattingParams(
                document, lsp.FormattingOptions(4, True)))
    assert found == [] and not _failures(client)
    hints = await client.text_document_inlay_hint_async(lsp.InlayHintParams(
        document, lsp.Range(lsp.Position(0, 0), lsp.Position(9, 0))))
    assert [h.label for h in hints] == ["# 256x56x56", "# 32x56x56", "# 32x56x56"]


def _mutations(text: str) -> list[str]:
    """Prefixes at a few cut points, and the text with a bracket or line dropped."""
    cuts = [len(text) * k // 5 for k in range(1, 5)]
    out = [text[:c] for c in cuts]
    lines = text.split("\n")
    out.append("\n".join(lines[:len(lines) // 2] + lines[len(lines) // 2 + 1:]))
    out.append(text.replace(")", "", 1))
    return out


@run
async def test_the_fuzzing_corpus_replayed_as_edits_gives_only_diagnostics(client):
    corpus = [p.read_text(encoding="utf-8") for p in CORPUS]
    for spec in sorted(SPECS.glob("*.net"))[::3]:
        corpus += _mutations(spec.read_text(encoding="utf-8"))
    corpus += ["", "\ufeff", "network", "network t:\n    input 3x\u2028", "(" * 5000]
    uri = (SPECS / "replayed.net").as_uri()  # imports resolve beside the zoo
    await _open(client, uri, "")
    for version, text in enumerate(corpus, 2):
        found = await _change(client, uri, version, text)
        assert all(d.code and d.code.startswith("E") for d in found), (version, text[:200])
        assert all("internal error" not in d.message for d in found), (version, text[:200])
    assert client.error is None and not _failures(client)
    result = await client.text_document_hover_async(lsp.HoverParams(  # still answering
        lsp.TextDocumentIdentifier(uri), lsp.Position(0, 0)))
    assert result is None or result.contents


# --- without a client ----------------------------------------------------------------------

def _frame(message: dict) -> bytes:
    body = json.dumps(message).encode()
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def test_netdsl_lsp_never_imports_torch():
    """A whole session (open, hover, shutdown, exit) through the real command line."""
    uri = (SPECS / "resnet152.net").as_uri()
    session = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize",
         "params": {"processId": None, "rootUri": None, "capabilities": {}}},
        {"jsonrpc": "2.0", "method": "initialized", "params": {}},
        {"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
            "uri": uri, "languageId": "netdsl", "version": 1,
            "text": (SPECS / "resnet152.net").read_text()}}},
        {"jsonrpc": "2.0", "id": 2, "method": "textDocument/hover", "params": {
            "textDocument": {"uri": uri}, "position": {"line": 3, "character": 10}}},
        {"jsonrpc": "2.0", "id": 3, "method": "shutdown", "params": None},
        {"jsonrpc": "2.0", "method": "exit", "params": None}]
    code = ("import atexit, sys; atexit.register(lambda: sys.stderr.write("
            "'torch imported: %s\\n' % ('torch' in sys.modules))); "
            "from netdsl.cli import main; sys.exit(main(['lsp']))")
    done = subprocess.run([sys.executable, "-c", code], input=b"".join(map(_frame, session)),
                          capture_output=True, timeout=120, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()
    assert "torch imported: False" in done.stderr.decode()
    assert '"diagnostics": []' in out and "1000" in out  # checked; hover: resnet152 maps to 1000


def test_netdsl_lsp_without_pygls_names_the_extra(monkeypatch, capsys):
    from netdsl.cli import main

    monkeypatch.setitem(sys.modules, "pygls", None)  # import pygls now raises ImportError
    assert main(["lsp"]) == 1
    err = capsys.readouterr().err
    assert "pip install 'netdsl[lsp]'" in err and "Traceback" not in err


def test_an_edit_reparses_only_the_statement_it_changed():
    from netdsl.ir.graph import to_json
    from netdsl.lsp.analysis import ImportCache, analyse
    from netdsl.lsp.incremental import parse_document
    from netdsl.syntax.parser import parse

    text = (SPECS / "inception_v4.net").read_text()
    pieces: dict = {}
    before = parse_document(text, "v4.net", pieces)
    edited = text.replace("branch0: unit(96, 1x1),", "branch0: unit(97, 1x1),")
    after = parse_document(edited, "v4.net", pieces)
    changed = [a.name for a, b in zip(before.items, after.items, strict=True) if a is not b]
    assert changed == ["inception_a"] and after.source.text == edited
    mine = analyse(edited, SPECS / "inception_v4.net", ImportCache(), pieces).graph
    assert to_json(mine) == to_json(check(lower_spec(edited, filename=mine.filename)))
    broken = edited.replace("unit(97, 1x1)", "unit(97 1x1)")
    with pytest.raises(NetDSLError) as piecewise:
        parse_document(broken, "v4.net", pieces)
    with pytest.raises(NetDSLError) as whole:
        parse(broken, "v4.net")
    assert str(piecewise.value) == str(whole.value)  # errors come from the whole file


def test_an_edit_that_leaves_the_tree_as_it_was_is_not_checked_again(tmp_path):
    from netdsl.lsp.analysis import ImportCache, analyse

    for name in ("inception_v4.net", "resnet152.net", "resnet_family.net"):
        (tmp_path / name).write_text((SPECS / name).read_text())
    cache, pieces = ImportCache(), {}
    spec = tmp_path / "inception_v4.net"
    text = spec.read_text()
    first = analyse(text, spec, cache, pieces)
    line = "    branch0: unit(96, 1x1),"
    commented = analyse(text.replace(line, line + "  # 96 wide"), spec, cache, pieces, first)
    assert commented.reused and commented.graph is first.graph
    assert commented.module.source.text != first.module.source.text
    widened = analyse(text.replace(line, line.replace("96", "97")), spec, cache, pieces, commented)
    assert not widened.reused and widened.graph.output_shape == first.graph.output_shape
    moved = analyse(text.replace(line, "\n" + line), spec, cache, pieces, first)
    assert not moved.reused  # every later span moved a line down
    spec = tmp_path / "resnet152.net"
    before = analyse(spec.read_text(), spec, cache, {})
    os.utime(tmp_path / "resnet_family.net", ns=(1, 1))  # an import changed on disk
    after = analyse(spec.read_text() + "# a comment\n", spec, cache, {}, before)
    assert not after.reused and after.graph is not before.graph


def test_imports_are_cached_by_path_and_modification_time(tmp_path):
    from netdsl.lsp.analysis import ImportCache, analyse

    for name in ("resnet152.net", "resnet_family.net"):
        (tmp_path / name).write_text((SPECS / name).read_text())
    spec, family = tmp_path / "resnet152.net", tmp_path / "resnet_family.net"
    cache = ImportCache()
    first = analyse(spec.read_text(), spec, cache)
    assert first.graph is not None and (cache.hits, cache.misses) == (0, 1)
    assert family.resolve() in first.deps
    again = analyse(spec.read_text().replace("36", "35"), spec, cache)
    assert (cache.hits, cache.misses) == (1, 1) and again.graph.output_shape == (1000,)
    family.write_text(family.read_text().replace("fc: fc(num_classes)", "fc: fc(7)"))
    os.utime(family, ns=(1, 1))  # a different modification time, whatever the clock says
    changed = analyse(spec.read_text(), spec, cache)
    assert (cache.hits, cache.misses) == (1, 2) and changed.graph.output_shape == (7,)


def test_an_import_open_with_unsaved_changes_is_read_from_its_buffer(tmp_path):
    """Directly or through another import, and never through the shared cache: closing the
    buffer unsaved gives the file on disk back."""
    from netdsl.lsp.analysis import ImportCache, analyse

    lib, mid, main = tmp_path / "lib.net", tmp_path / "mid.net", tmp_path / "main.net"
    lib.write_text("block unit(c) = conv(c, 3x3, pad=1) -> relu\n")
    mid.write_text('import "lib.net"\nblock pair(c) = unit(c) -> unit(c)\n')
    text = 'import "mid.net"\nnetwork t:\n    input 3x8x8\n    pair(4)\n'
    cache = ImportCache()
    on_disk = analyse(text, main, cache)
    assert on_disk.graph.output_shape == (4, 8, 8)
    edited = {lib.resolve(): "block unit(c) = conv(c, 3x3) -> relu\n"}  # no padding
    unsaved = analyse(text, main, cache, previous=on_disk, unsaved=edited)
    assert not unsaved.reused and unsaved.graph.output_shape == (4, 4, 4)
    assert lib.resolve() in unsaved.deps
    assert cache.entries[lib.resolve()].stamp == on_disk.stamps[lib.resolve()]  # the disk's
    closed = analyse(text, main, cache, previous=unsaved)
    assert not closed.reused and closed.graph.output_shape == (4, 8, 8)


EDITOR = ROOT / "editors" / "vscode"


def test_the_vscode_extension_files_are_valid_and_colour_every_keyword():
    from netdsl.syntax.diagnostics import RESERVED

    package = json.loads((EDITOR / "package.json").read_text())
    config = json.loads((EDITOR / "language-configuration.json").read_text())
    grammar = json.loads((EDITOR / "syntaxes" / "netdsl.tmLanguage.json").read_text())
    language = package["contributes"]["languages"][0]
    assert language["extensions"] == [".net"] and (EDITOR / language["configuration"]).is_file()
    assert (EDITOR / package["contributes"]["grammars"][0]["path"]).is_file()
    assert (EDITOR / package["main"]).is_file() and "vscode-languageclient" in package["dependencies"]
    assert config["comments"]["lineComment"] == "#"
    assert ["(", ")"] in config["brackets"] and ["[", "]"] in config["brackets"]

    def scopes(word: str) -> set[str]:
        """The scopes the grammar's patterns give ``word`` (the keyword patterns only)."""
        found = set()
        for rule in grammar["repository"]["keyword"]["patterns"]:
            if re.fullmatch(rule["match"].replace("\\b", ""), word):
                found.add(rule["name"])
        return found
    for word in RESERVED:
        assert scopes(word), word
    assert not scopes("conv") and not scopes("blocks")
    comment = grammar["repository"]["comment"]["match"]
    assert re.search(comment, "conv(64, 3x3)  # a comment").group() == "# a comment"
    size = grammar["repository"]["number"]["patterns"][0]["match"]
    assert re.search(size, "conv(64, 3x3)").group() == "3x3"
