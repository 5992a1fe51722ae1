"""Bounds on the work one spec may cause, and the helpers that keep the front end linear.

Every limit is a module attribute read at use (``limits.MAX_NODES``), so tests can lower one.
"""

from __future__ import annotations

import contextlib
import gc
import sys
import traceback
from collections.abc import Callable

from .errors import NetDSLError, SpecLimitError

MAX_NODES = 100_000  # layers in one expanded network (ResNet-152 has 516)
MAX_STEPS = 200_000  # expressions expanded in one network, layers or not (ResNet-152: 1,230)
MAX_BLOCK_DEPTH = 64  # blocks called inside blocks
MAX_IMPORT_DEPTH = 32
MAX_REPORTED = 10  # independent errors reported from one network
MAX_SWEEP_POINTS = 10_000  # points of one design-space grid (netdsl sweep)
MAX_NUMBER = 10**15
# What the parser reads of one file (the largest spec is a few KB; benchmarks/run.py's
# generated network of 10,000 residual blocks has 200 KB, 10,000 lines, 70,000 tokens).
MAX_SOURCE = 4_000_000  # characters
MAX_LINES = 50_000
MAX_TOKENS = 150_000
MAX_SIZES = 1_024  # input sizes one sweep checks (netdsl check --sizes; 32:512 is 481)


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
