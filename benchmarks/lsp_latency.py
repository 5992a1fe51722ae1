"""Latency of the language server as an editor sees it (issue 14; not a test).

Starts ``netdsl lsp`` as an editor would (a subprocess on stdio), then measures, on
specs/resnet152.net and specs/inception_v4.net:

- edit -> diagnostics: from sending a ``didChange`` (one number of the network changed, back
  and forth, so every edit is a real re-check) to receiving its ``publishDiagnostics``;
- hover: a hover request on a block call whose figures come from the checked graph (for
  ResNet-152, ``layer3: layer(...)`` in resnet_family.net, the file it imports).

Prints median, quartiles and min/max in milliseconds, and the median's ratio to the 50 ms
budget. On a shared machine the wall time counts the other processes' turns too, so the
re-check is also timed in this process as CPU time (``time.thread_time``: the work one edit
costs, which is the wall time on an idle core), with the load average before and after.
Usage: ``python benchmarks/lsp_latency.py [--runs 40]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's netdsl, for the in-process re-check
SPECS = ROOT / "specs"
BUDGET_MS = 50.0
WARMUP = 5

# (spec, edited text -> its alternative, hover: (file, text on the line, text to hover))
CASES = [
    ("resnet152.net", ("[3, 8, 36, 3]", "[3, 8, 35, 3]"),
     ("resnet_family.net", "layer3: layer(", "layer(")),
    ("inception_v4.net", ("branch0: unit(96, 1x1),", "branch0: unit(97, 1x1),"),
     ("inception_v4.net", "inception_a", "inception_a")),
]


def _position(text: str, line_text: str, word: str) -> lsp.Position:
    lines = text.split("\n")
    number = max(i for i, line in enumerate(lines) if line_text in line)
    return lsp.Position(number, lines[number].index(word) + 1)


class Session:
    def __init__(self) -> None:
        self.client = LanguageClient("netdsl-bench", "1")
        self.waiting: dict[tuple[str, int | None], asyncio.Future] = {}

        @self.client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def published(params: lsp.PublishDiagnosticsParams) -> None:
            future = self.waiting.pop((params.uri, params.version), None)
            if future is not None and not future.done():
                future.set_result((time.perf_counter(), params.diagnostics))

    async def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        await self.client.start_io(sys.executable, "-m", "netdsl", "lsp", env=env)
        await self.client.initialize_async(lsp.InitializeParams(
            capabilities=lsp.ClientCapabilities(), root_uri=ROOT.as_uri()))
        self.client.initialized(lsp.InitializedParams())

    def expect(self, uri: str, version: int) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self.waiting[(uri, version)] = future
        return future

    async def open(self, path: Path) -> str:
        uri = path.as_uri()
        done = self.expect(uri, 1)
        self.client.text_document_did_open(lsp.DidOpenTextDocumentParams(
            lsp.TextDocumentItem(uri, "netdsl", 1, path.read_text(encoding="utf-8"))))
        _, diagnostics = await done
        assert not any(d.severity == lsp.DiagnosticSeverity.Error for d in diagnostics), path
        return uri

    async def edit(self, uri: str, version: int, text: str) -> float:
        done = self.expect(uri, version)
        started = time.perf_counter()
        self.client.text_document_did_change(lsp.DidChangeTextDocumentParams(
            lsp.VersionedTextDocumentIdentifier(version, uri),
            [lsp.TextDocumentContentChangeWholeDocument(text)]))
        finished, diagnostics = await done
        assert not diagnostics, diagnostics
        return (finished - started) * 1000

    async def hover(self, uri: str, position: lsp.Position) -> float:
        started = time.perf_counter()
        result = await self.client.text_document_hover_async(lsp.HoverParams(
            lsp.TextDocumentIdentifier(uri), position))
        elapsed = (time.perf_counter() - started) * 1000
        assert result is not None and "params" in result.contents.value, result
        return elapsed

    async def stop(self) -> None:
        await self.client.shutdown_async(None)
        self.client.exit(None)
        await self.client.stop()


def _row(name: str, what: str, times: list[float]) -> str:
    q1, median, q3 = statistics.quantiles(times, n=4)
    return (f"| {name} | {what} | {median:.1f} | {q1:.1f} - {q3:.1f} | {min(times):.1f} - "
            f"{max(times):.1f} | {median / BUDGET_MS:.2f} | {'ok' if median <= BUDGET_MS else 'MISS'} |")


def recheck_cpu(runs: int) -> None:
    """The server's re-check (netdsl.lsp.analysis.analyse, pieces and import cache warm) in
    this process: CPU milliseconds per edit, and wall milliseconds beside them."""
    from netdsl.lsp.analysis import ImportCache, analyse

    print("\n| spec | re-check in process | CPU median ms | CPU IQR ms | CPU min - max ms "
          "| wall median ms | CPU median / 50 ms |")
    print("|---|---|---:|---:|---:|---:|---:|")
    cache = ImportCache()
    for spec, (old, new), _ in CASES:
        path = SPECS / spec
        text = path.read_text(encoding="utf-8")
        pieces: dict = {}
        cpu, wall = [], []
        for run in range(WARMUP + runs):
            changed = text.replace(old, new) if run % 2 else text
            started, wall_started = time.thread_time(), time.perf_counter()
            result = analyse(changed, path, cache, pieces)
            if run >= WARMUP:
                cpu.append((time.thread_time() - started) * 1000)
                wall.append((time.perf_counter() - wall_started) * 1000)
            assert result.graph is not None and not result.errors
        q1, median, q3 = statistics.quantiles(cpu, n=4)
        print(f"| {spec} | analyse (edit -> diagnostics' content) | {median:.1f} | {q1:.1f} - "
              f"{q3:.1f} | {min(cpu):.1f} - {max(cpu):.1f} | {statistics.median(wall):.1f} | "
              f"{median / BUDGET_MS:.2f} |")


async def main(runs: int) -> None:
    load = "load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
    session = Session()
    await session.start()
    print(f"netdsl lsp, {runs} runs after {WARMUP} warm-up runs; budget {BUDGET_MS:.0f} ms; "
          f"{os.cpu_count()} cores, {load} before\n")
    print("| spec | request | median ms | IQR ms | min - max ms | median / 50 ms | |")
    print("|---|---|---:|---:|---:|---:|---|")
    for spec, (old, new), (hover_file, line_text, word) in CASES:
        path = SPECS / spec
        text = path.read_text(encoding="utf-8")
        assert old in text, old
        uri = await session.open(path)
        edits = []
        for version in range(2, 2 + WARMUP + runs):
            changed = text.replace(old, new) if version % 2 == 0 else text
            elapsed = await session.edit(uri, version, changed)
            if version >= 2 + WARMUP:
                edits.append(elapsed)
        print(_row(spec, "didChange -> diagnostics", edits))
        target = SPECS / hover_file
        hover_uri = uri if target == path else await session.open(target)
        position = _position(target.read_text(encoding="utf-8"), line_text, word)
        hovers = [await session.hover(hover_uri, position) for _ in range(WARMUP + runs)]
        print(_row(spec, f"hover on {word.rstrip('(')} ({hover_file})", hovers[WARMUP:]))
    await session.stop()
    recheck_cpu(runs)
    print("\nload average {:.1f} {:.1f} {:.1f} after".format(*os.getloadavg()))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=40)
    asyncio.run(main(parser.parse_args().runs))
