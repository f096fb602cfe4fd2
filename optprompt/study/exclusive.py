"""One study process per output directory.

Two ``optprompt run`` on one output directory would race for its files (result.json,
predictions, exports); a second one is refused at once, naming the directory and the
process that holds it. Workers that share a study use ``optprompt worker`` with their
own output directories. An output directory that cannot be written is refused before
anything is computed.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from optprompt.errors import OptpromptError

__all__ = ["LOCK_FILE", "output_lock"]

LOCK_FILE = ".optprompt-run.lock"
_PID_FILE = ".optprompt-run.pid"


@contextlib.contextmanager
def output_lock(output: str | os.PathLike[str]) -> Iterator[None]:
    """Hold ``output`` for this process while the block runs (the OS drops the lock if the
    process dies, so a killed run never leaves a stale one behind)."""
    from filelock import FileLock, Timeout

    out = Path(output)
    try:
        out.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(out / LOCK_FILE), timeout=0)
        lock.acquire()
    except Timeout:
        holder = (out / _PID_FILE).read_text().strip() if (out / _PID_FILE).exists() else "unknown"
        raise OptpromptError(
            f"output directory {out} is in use by another optprompt process (pid {holder}); wait for it to "
            "finish, or add workers to that study with `optprompt worker --storage URL` and their own --output"
        ) from None
    except OSError as e:
        raise OptpromptError(f"output directory {out} cannot be written: {e.strerror or e}") from None
    try:
        try:
            (out / _PID_FILE).write_text(f"{os.getpid()}\n")
        except OSError as e:
            raise OptpromptError(f"output directory {out} cannot be written: {e.strerror or e}") from None
        yield
    finally:
        lock.release()
