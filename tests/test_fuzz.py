"""Fuzzing: whatever the text, netdsl answers with a result or a NetDSLError, never anything else.

Two sources of inputs: sentences of netdsl's own grammar (``hypothesis.extra.lark.from_lark``)
and mutations of the real specs in ``specs/`` (tokens deleted, duplicated or swapped, numbers
changed, truncation, random characters). The API (``netdsl.syntax.parser``, ``netdsl.compile``) may
raise only :class:`netdsl.NetDSLError`; the CLI never prints a traceback and exits 0, 1 or 2.
The suite runs a few hundred cases; ``python scripts/fuzz.py`` runs the long campaign with the
same generators and prints the counts.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark
from lark import Lark

import netdsl
from netdsl.cli import main
from netdsl.syntax.parser import _GRAMMAR

ROOT = Path(__file__).resolve().parent.parent
SPEC_TEXTS = {p.name: p.read_text(encoding="utf-8") for p in sorted((ROOT / "specs").glob("*.net"))}
TOKEN = re.compile(r"\s+|[A-Za-z_][A-Za-z0-9_]*|[0-9]+(?:x[0-9]+)*|->|\*\*|//|.", re.S)
NUMBER = re.compile(r"[0-9]+")

# --- inputs -------------------------------------------------------------------------------

# Names the compiler knows, so generated sentences reach lowering and checking, not only the
# "unknown name" error; plus arbitrary identifiers.
KNOWN_NAMES = ["conv", "bn", "relu", "maxpool", "avgpool", "gap", "flatten", "fc", "dropout",
               "lrn", "stack", "residual", "concat", "add", "aux", "inception", "conv3x3",
               "conv1x1", "conv_relu", "stage", "same", "project", "identity", "none", "true",
               "false", "stride", "pad", "groups", "shortcut", "scale", "unit", "c", "n", "x",
               "adaptive_avgpool", "scale", "sigmoid", "resnet", "torch", "pool", "when"]
_SMALL_INT = st.integers(0, 300).map(str) | st.sampled_from(["0", "1", "2", "3", "64", "10**9"])
_EXPLICIT = {
    "NAME": st.sampled_from(KNOWN_NAMES) | st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True),
    "INT": _SMALL_INT.filter(lambda s: s.isdigit()),
    "DIMS": st.lists(st.integers(0, 300), min_size=2, max_size=4).map(lambda d: "x".join(map(str, d))),
    "REDUCE": st.integers(0, 300).map(lambda n: f"r{n}"),
    "STRING": st.sampled_from(['"resnet_family.net"', '"vgg_family.net"', '"missing.net"',
                               '"../../etc/passwd"', '""', '"specs"']),
    # keywords need a space after them, or "block" + "b" lexes as the name "blockb"
    **{kw: st.just(f" {kw.lower()} ") for kw in ("IMPORT", "BLOCK", "INLINE", "NETWORK", "INPUT",
                                                "INIT", "IF", "ELSE")},
    "_NL": st.sampled_from(["\n", "\n    ", "\n\n"]),
    # what %ignore skips: spaces, a backslash continuing the line, comments
    "__IGNORE_0": st.sampled_from([" ", "\t", "  "]),
    "__IGNORE_1": st.just("\\\n"),
    "COMMENT": st.sampled_from(["# a comment\n", "#\n"]),
}


_LARK = Lark(_GRAMMAR, parser="lalr", lexer="basic", start=["start", "expr"])


def _tamed(strategy):
    """from_lark picks each alternative of a rule equally often. Most alternatives of netdsl's
    expression rules recurse (``sum: product | sum + product | sum - product``), so sentences
    would grow without bound and Hypothesis would discard nearly all of them as too large.
    Draw one of the shortest alternatives 3 times in 4; every alternative stays reachable."""
    inner = getattr(strategy, "wrapped_strategy", strategy)
    rules = getattr(inner, "nonterminal_strategies", None)
    if rules is None:  # another Hypothesis version: keep the plain strategy
        return strategy
    for name, choice in list(rules.items()):
        options = list(getattr(choice, "elements", ()))
        least = min(map(len, options), default=0)
        short = [o for o in options if len(o) == least]
        if len(short) < len(options):
            shortest = st.sampled_from(short)
            rules[name] = st.one_of(shortest, shortest, shortest, st.sampled_from(options))
    return inner


def grammar_texts() -> st.SearchStrategy[str]:
    """Whole files in netdsl's grammar (generated from the grammar alone, without netdsl's
    post-lexer: generated newlines may be wrong for netdsl's layout, part of the point)."""
    return _tamed(from_lark(_LARK, start="start", explicit=_EXPLICIT))


def network_texts() -> st.SearchStrategy[str]:
    """A network whose layers are one generated expression: reaches lowering and checking."""
    unused = ("IMPORT", "BLOCK", "INLINE", "NETWORK", "INPUT", "INIT", "_NL")
    explicit = {k: v for k, v in _EXPLICIT.items() if k not in unused}
    explicit["COMMENT"] = st.just(" ")  # a comment would swallow the rest of the line
    body = _tamed(from_lark(_LARK, start="expr", explicit=explicit))
    return st.tuples(st.sampled_from(_SITES), body).map(
        lambda t: _NETWORK.replace("{e}", t[0].replace("{e}", t[1])))


# Where a generated expression goes: as the layers, or as an argument of a layer or block.
_NETWORK = ("block unit(c, k=3x3) = conv(c, k) -> relu\n"
            "network n(c=16, k=3x3):\n    input 3x32x32\n    {e}\n")
_SITES = ["{e}", "conv({e}, 3x3)", "conv(16, {e})", "conv(16, 3x3, stride={e}, pad={e})",
          "stack(relu, {e})", "stack({e}, 2)", "residual({e})", "residual(relu, shortcut={e})",
          "concat({e}, relu)", "unit({e})", "unit(8, {e})", "inception({e})", "maxpool({e})",
          "gap -> flatten -> fc({e})", "conv(c, k) -> {e} -> relu", "dropout({e})"]


def _mutate(text: str, data: st.DataObject) -> str:
    tokens = TOKEN.findall(text)
    kind = data.draw(st.sampled_from(["delete", "duplicate", "swap", "number", "truncate",
                                      "insert", "replace", "bytes"]), label="mutation")
    for _ in range(data.draw(st.integers(1, 3), label="times")):
        i = data.draw(st.integers(0, len(tokens) - 1), label="at")
        if kind == "delete":
            del tokens[i]
        elif kind == "duplicate":
            tokens.insert(i, tokens[i])
        elif kind == "swap":
            j = data.draw(st.integers(0, len(tokens) - 1), label="with")
            tokens[i], tokens[j] = tokens[j], tokens[i]
        elif kind == "number":
            numbers = [k for k, t in enumerate(tokens) if NUMBER.fullmatch(t)] or [i]
            k = data.draw(st.sampled_from(numbers), label="number")
            tokens[k] = data.draw(st.sampled_from(["0", "1", "-1", "1.5", "7", "1000000", "9" * 40,
                                                   "1e999", "0x0", "2 ** 64", "(0)"]), label="value")
        elif kind == "truncate":
            tokens = tokens[:i]
        elif kind == "insert":
            tokens.insert(i, data.draw(st.sampled_from(
                ["(", ")", "[", "]", ",", "=", ":", "->", "\n", "    ", "#", '"', "x", "**", "if",
                 "block", "network", "import", "input", "stack(", "residual(", "relu", "3x3", "0",
                 "\t", "\r", "\\\n", "→", "×"]), label="token"))
        elif kind == "replace":
            tokens[i] = data.draw(st.text(max_size=3), label="text")
        else:
            raw = data.draw(st.binary(max_size=8), label="bytes")
            tokens.insert(i, raw.decode("latin-1"))
        if not tokens:
            break
    return "".join(tokens)


@st.composite
def mutated_specs(draw) -> str:
    name = draw(st.sampled_from(sorted(SPEC_TEXTS)), label="spec")
    return _mutate(SPEC_TEXTS[name], draw(st.data()))


# --- what counts as an escape ----------------------------------------------------------------

def api_outcome(text: str) -> str:
    """'ok', or the code of the NetDSLError raised; any other exception propagates."""
    try:
        netdsl.parse(text)
        netdsl.compile(text)
    except netdsl.NetDSLError as error:
        assert "error: " in str(error)  # renders, with its position when it has one
        return error.code
    return "ok"


def cli_outcome(path: Path, *args: str) -> tuple[int, str]:
    """Runs ``netdsl check`` in-process; returns (exit code, stderr)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(["check", str(path), *args])
        except SystemExit as exit_:  # argparse's usage errors
            code = exit_.code if isinstance(exit_.code, int) else 2
    return code, err.getvalue()


def assert_clean_cli(code: int, err: str) -> None:
    assert code in (0, 1, 2), code
    assert "Traceback" not in err and "internal error" not in err, err


# --- the bounded in-suite run ------------------------------------------------------------------

FAST = settings(max_examples=100, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                       HealthCheck.data_too_large])


@settings(FAST, max_examples=30)
@given(grammar_texts())
def test_grammar_files_raise_only_netdsl_errors(text):
    api_outcome(text)


@settings(FAST, max_examples=60)
@given(network_texts())
def test_grammar_networks_raise_only_netdsl_errors(text):
    api_outcome(text)


@FAST
@given(mutated_specs())
def test_mutated_specs_raise_only_netdsl_errors(text):
    api_outcome(text)


@settings(FAST, max_examples=40)
@given(text=mutated_specs() | network_texts())
def test_cli_never_prints_a_traceback(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "fuzzed.net"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    assert_clean_cli(*cli_outcome(path))


@settings(FAST, max_examples=40)
@given(key=st.sampled_from(["num_classes", "unit", "depths", "input", "x", "_target_", "a.b"]),
       value=st.text(max_size=12))
def test_cli_overrides_never_print_a_traceback(key, value):
    assert_clean_cli(*cli_outcome(ROOT / "specs" / "resnet18.net", f"{key}={value}"))


@settings(FAST, max_examples=100)
@given(st.text(max_size=40) | st.binary(max_size=40).map(lambda b: b.decode("latin-1")))
def test_arbitrary_text(text):
    api_outcome(text)
