"""Bounds on the work one spec may cause, and the helpers that keep the front end linear.

Every limit is a module attribute read at use (``limits.MAX_NODES``), so tests can lower one.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import math
import os
import stat
import sys
import traceback
from collections.abc import Callable, Sized

from .errors import NetDSLError, SpecLimitError

MAX_NODES = 100_000  # layers in one expanded network (ResNet-152 has 516)
MAX_STEPS = 200_000  # expressions expanded in one network, layers or not (ResNet-152: 1,230)
MAX_BLOCK_DEPTH = 64  # blocks called inside blocks
MAX_IMPORT_DEPTH = 32
MAX_REPORTED = 10  # independent errors reported from one network
MAX_SWEEP_POINTS = 10_000  # points of one design-space grid (netdsl sweep)
MAX_NUMBER = 10**15
MAX_DIGITS = 15  # of a whole number (a literal below 10^15), a size's dimension, an rN count
# A decimal literal is bounded by length and value, not by precision: 17 significant digits
# round-trip every double (timm's 1.7139588594436646), and 40 characters hold any of them.
MAX_LITERAL = 40
MIN_FLOAT = sys.float_info.min  # the least normal double: below it digits are lost, or all
# What the parser reads of one file (the largest spec is a few KB; benchmarks/run.py's
# generated network of 10,000 residual blocks has 200 KB, 10,000 lines, 70,000 tokens).
MAX_SOURCE = 4_000_000  # characters
MAX_LINES = 50_000
MAX_TOKENS = 150_000
MAX_SIZES = 1_024  # input sizes one sweep checks (netdsl check --sizes; 32:512 is 481)
# Layers times points a sweep may shape-check or compile: `check --sizes 32:512` on ResNet-152
# is 248,000 layer checks, a sweep of 100 ResNet-152 variants 52,000 layers.
MAX_SIZE_CHECKS = 1_000_000  # layers x input sizes (netdsl check --sizes; about 1 s)
MAX_SWEEP_LAYERS = 500_000  # layers compiled over all points of a sweep (netdsl sweep; ~30 s)
MAX_TRIALS = 100_000  # metrics.json files read by netdsl sweep --results
MAX_TRIAL_CHARACTERS = 1 << 20  # of one metrics.json
MAX_LABEL_PARTS = 32  # parts of one dotted label ("fpn.inner_blocks.3.0" has 4)
MAX_OVERRIDE = 10_000  # characters of one key=value override
MAX_OVERRIDE_NESTING = 100  # lists inside lists in an override value (as MAX_NESTING in specs)


def bracket_depth(text: str) -> int:
    """How deep ``(``, ``[`` and ``{`` nest in an override's text, counted before a parser
    that recurses per bracket (Hydra's) reads it."""
    depth = deepest = 0
    for char in text:
        depth += (char in "([{") - (char in ")]}")
        deepest = max(deepest, depth)
    return deepest
# A .safetensors header (JSON, parsed whole before any tensor is read) is refused unparsed
# when it lists more tensors than this many per tensor of the model, or declares more bytes
# than this many per tensor it may list (torchvision's entries take about 100 bytes).
WEIGHTS_ENTRIES_PER_TENSOR = 10  # a full model's file may load into a smaller one (strict=False)
WEIGHTS_SPARE_ENTRIES = 1_000
WEIGHTS_HEADER_BYTES_PER_ENTRY = 1_024


def decimal_problem(text: str) -> str | None:
    """Why a decimal literal (``0.17``, ``1e-3``) is refused, as the end of a sentence about
    it (``is beyond 1e+15``), or None. The same rule holds for a spec's literal and an
    override's float: at most :data:`MAX_LITERAL` characters, a finite value of at most
    :data:`MAX_NUMBER`, and 0 or at least :data:`MIN_FLOAT` (a smaller one reads as 0 or
    loses digits)."""
    if len(text) > MAX_LITERAL:
        return f"has {len(text):,} characters; at most {MAX_LITERAL} allowed"
    value = abs(float(text))
    if not (math.isfinite(value) and value <= MAX_NUMBER):  # 1e999 reads as inf
        return f"is beyond {MAX_NUMBER:.0e}"
    if 0 < value < MIN_FLOAT or (value == 0 and any(d in "123456789" for d in _mantissa(text))):
        return f"is below {MIN_FLOAT:.1e}, the least normal double"
    return None


def shown(text: str) -> str:
    """A number's text for a message: a 5,000-digit one is cut."""
    return text if len(text) <= MAX_LITERAL else f"{text[:20]}..."


def _mantissa(text: str) -> str:
    return text.lower().split("e")[0]


@contextlib.contextmanager
def paused_gc():
    """Pauses Python's cyclic garbage collector (lowering and checking use it).

    They allocate many objects that all stay alive (nodes, attrs, shapes), and each automatic
    collection rescans them: with it running, the time per block grew about 1.3x from 1,000
    to 10,000 blocks (benchmarks/run.py, frontend). Nothing here needs the collector; it
    runs as usual afterwards.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    except NetDSLError as error:
        # the traceback's frames hold all the work so far (a refused hostile spec: 1M objects);
        # their locals are dropped before the collector is back, so reference counting frees
        # it now instead of the collector scanning it (0.5 s) and freeing it at exit (1-2 s).
        # The error keeps its message, notes and span, and the traceback its lines.
        traceback.clear_frames(error.__traceback__)
        raise
    finally:
        gc.enable()


def recursion_guard(work: Callable):
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 20_000))
    try:
        return work()
    except RecursionError:
        raise SpecLimitError("spec nests too deeply to expand") from None
    finally:
        sys.setrecursionlimit(limit)


def length(values: Sized) -> int:
    """``len(values)``, also for a range longer than ``sys.maxsize`` (``len`` overflows)."""
    try:
        return len(values)
    except OverflowError:
        if not isinstance(values, range):
            raise
        return max(0, -((values.start - values.stop) // values.step))


def read_text(path: str | os.PathLike, limit: int | None = None) -> str:
    """A spec file's text, read only from a regular file and only up to ``limit`` characters
    (default :data:`MAX_SOURCE`), so a huge file, ``/dev/zero`` or a FIFO costs nothing.

    The file is opened without blocking (a FIFO's open waits for a writer otherwise) and
    measured on the open descriptor, so it cannot be swapped between the check and the read.
    No newline translation: the lexer reads a lone '\\r' as a space. Raises OSError for a
    file that is not a regular file or cannot be read, :class:`SpecLimitError` for one over
    the limit (a UTF-8 character has at most 4 bytes, so a larger file is refused unread).
    """
    limit = MAX_SOURCE if limit is None else limit
    # Windows has no O_NONBLOCK (nor FIFOs) and needs O_BINARY to keep '\r\n' as written
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        if info.st_size > 4 * limit:
            raise SpecLimitError(f"a file of {info.st_size:,} bytes; at most {limit:,} "
                                 "characters are read")
        with open(fd, encoding="utf-8", newline="", closefd=False) as file:
            text = file.read(limit + 1)  # a file that grew since: still no more than this
    finally:
        os.close(fd)
    if len(text) > limit:
        raise SpecLimitError(f"a file of more than {limit:,} characters; at most {limit:,} "
                             "are read")
    return text
