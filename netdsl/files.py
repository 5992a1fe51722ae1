"""Writing files atomically (no torch here).

The new content goes to a temporary file next to the target, which is then renamed over it,
so a failed or interrupted write never leaves a half-written file. What this promises:

- the result keeps the target's permission bits, or for a new file the umask's default (a
  temporary file is created 0666 & ~umask, never mkstemp's 0600);
- a target that is a symlink is written through: the file it points to is replaced and the
  link stays;
- the rename is the commit: a Ctrl-C before it removes the temporary file and leaves the
  target as it was; a Ctrl-C that arrives during the rename is held back (:func:`interrupt_pending`),
  so the caller never reports "interrupted" for a file that was in fact replaced;
- a process killed outright (SIGKILL, power loss) cannot clean up: its temporary file is
  named ``.NAME.PID.RANDOM.netdsl-tmp`` and the next write of the same target removes those
  whose process is gone.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import stat
import threading
from collections.abc import Callable
from pathlib import Path

from .errors import BuildError

SUFFIX = ".netdsl-tmp"
_OWNED = re.compile(r"([0-9]+)\.[0-9a-f]{8}")  # PID.RANDOM between ".NAME." and SUFFIX
written: list[Path] = []  # targets this process replaced, for the CLI's interrupt message
_interrupted = False  # a Ctrl-C arrived while a rename was committing


def atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """Calls ``write(temporary_path)``, then renames the result over ``path`` (a symlink's
    target when ``path`` is a symlink). Raises :class:`BuildError` when the folder cannot
    take a new file."""
    target = real_target(Path(path))
    remove_stale(target)
    tmp, mode = _create(target)
    try:
        write(str(tmp))
        os.chmod(tmp, mode)
        _commit(tmp, target)
    except OSError as error:  # a full disk, a quota: the user's problem, not netdsl's
        tmp.unlink(missing_ok=True)
        raise BuildError(f"cannot write '{path}': {error.strerror or error}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def check_writable(path: Path) -> None:
    """Fails now, before any work, when ``path`` cannot be written: a missing or read-only
    folder, or a folder where the file should be. Probes by creating (and removing) a
    temporary file, which also answers for read-only file systems and for root."""
    target = real_target(Path(path))
    if target.is_dir():
        raise BuildError(f"cannot write '{path}': it is a folder")
    tmp, _ = _create(target)
    tmp.unlink(missing_ok=True)


def real_target(path: Path) -> Path:
    """The file a write of ``path`` must replace: a symlink's target (resolved fully, so a
    chain of links stays intact), else ``path`` itself."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def interrupt_pending() -> bool:
    """Whether a Ctrl-C arrived during a commit and was held back; clears it. A caller that
    writes several files checks it between them."""
    global _interrupted
    pending, _interrupted = _interrupted, False
    return pending


def _create(target: Path) -> tuple[Path, int]:
    """An empty, exclusively created temporary file next to ``target``, and the mode the
    result must have."""
    folder = target.parent if str(target.parent) else Path(".")
    tmp = folder / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}{SUFFIX}"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileNotFoundError:
        raise BuildError(f"cannot write '{target}': no folder '{folder}'") from None
    except OSError as error:
        raise BuildError(f"cannot write '{target}': {error.strerror or error}",
                         notes=(f"the folder '{folder}' must be writable",)) from None
    try:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)  # 0666 less the umask: a new file's default
    finally:
        os.close(fd)
    with contextlib.suppress(FileNotFoundError):
        mode = stat.S_IMODE(os.stat(target).st_mode)
    return tmp, mode


def _commit(tmp: Path, target: Path) -> None:
    """The rename, with SIGINT held back while it runs (only the main thread gets signals)."""
    if threading.current_thread() is not threading.main_thread():
        os.replace(tmp, target)
        written.append(target)
        return
    previous = signal.signal(signal.SIGINT, _hold)
    try:
        os.replace(tmp, target)
        written.append(target)
    finally:
        signal.signal(signal.SIGINT, previous)


def _hold(signum, frame) -> None:
    global _interrupted
    _interrupted = True


def remove_stale(target: Path) -> None:
    """Removes temporary files of ``target`` left by processes that no longer run."""
    folder = target.parent if str(target.parent) else Path(".")
    prefix = f".{target.name}."
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(SUFFIX)):
            continue
        owner = _OWNED.fullmatch(name[len(prefix):-len(SUFFIX)])  # not another file's temp
        if owner and not _alive(int(owner[1])):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by someone else
        return True
    return True
