"""One study process per output directory.

Two ``optprompt run`` on one output directory would race for its files (result.json,
predictions, exports); a second one is refused at once, naming the directory and the
process that holds it. Workers that share a study use ``optprompt worker``: each has an
output directory of its own, ``--output`` or else the first free one of
``OUTPUT/workers/HOST-1``, ``HOST-2``... (:func:`worker_output_lock`), so the same command
can be started as many times as wanted. An output directory that cannot be written is
refused before anything is computed.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from optprompt.errors import OptpromptError

__all__ = ["LOCK_FILE", "output_lock", "worker_output_lock"]

LOCK_FILE = ".optprompt-run.lock"
_PID_FILE = ".optprompt-run.pid"


class _Busy(Exception):
    pass


def _acquire(out: Path):  # type: ignore[no-untyped-def]
    """The lock on ``out``, taken now; :class:`_Busy` when another process holds it."""
    from filelock import FileLock, Timeout

    try:
        out.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(out / LOCK_FILE), timeout=0)
        lock.acquire()
    except Timeout:
        raise _Busy from None
    except OSError as e:
        raise OptpromptError(f"output directory {out} cannot be written: {e.strerror or e}") from None
    try:
        (out / _PID_FILE).write_text(f"{os.getpid()}\n")
    except OSError as e:
        lock.release()
        raise OptpromptError(f"output directory {out} cannot be written: {e.strerror or e}") from None
    return lock


@contextlib.contextmanager
def output_lock(output: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold ``output`` for this process while the block runs (the OS drops the lock if the
    process dies, so a killed run never leaves a stale one behind); yields it."""
    out = Path(output)
    try:
        lock = _acquire(out)
    except _Busy:
        holder = (out / _PID_FILE).read_text().strip() if (out / _PID_FILE).exists() else "unknown"
        raise OptpromptError(
            f"output directory {out} is in use by another optprompt process (pid {holder}); wait for it to "
            "finish, or add workers to that study with `optprompt worker --storage URL`"
        ) from None
    try:
        yield out
    finally:
        lock.release()


@contextlib.contextmanager
def worker_output_lock(output: str | os.PathLike[str], *, limit: int = 1000) -> Iterator[Path]:
    """Hold the first of ``output/workers/HOST-1``, ``HOST-2``... that no running process
    holds, and yield it: the output directory of a worker started without ``--output``.
    A worker that dies frees its directory for the next one started."""
    base = Path(output) / "workers"
    host = socket.gethostname() or "host"
    for i in range(1, limit + 1):
        out = base / f"{host}-{i}"
        try:
            lock = _acquire(out)
        except _Busy:
            continue
        try:
            yield out
        finally:
            lock.release()
        return
    raise OptpromptError(f"all {limit} worker directories under {base} are in use")
