"""How many CPU threads torch uses: the cores this process may run on, shared among the
optprompt workers on this machine, unless ``OPTPROMPT_THREADS`` says otherwise.

Two workers with two threads each on two cores stall each other at every parallel region
(seconds become minutes), so each worker announces itself with a small file under
``$OPTPROMPT_HOME/workers`` (``~/.cache/optprompt`` by default) while it runs, and each
takes ``cores // live workers`` threads (at least one).
"""

from __future__ import annotations

import atexit
import logging
import os
from pathlib import Path

from optprompt.errors import ConfigError

__all__ = ["configure_threads", "available_cores", "live_workers", "threads_for"]

log = logging.getLogger(__name__)
_configured: int | None = None


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _workers_dir() -> Path:
    home = os.environ.get("OPTPROMPT_HOME") or str(Path.home() / ".cache" / "optprompt")
    return Path(home) / "workers"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def live_workers(directory: Path | None = None) -> int:
    """Running optprompt processes that announced themselves (stale files are removed)."""
    directory = directory or _workers_dir()
    count = 0
    for f in directory.glob("*.pid") if directory.is_dir() else []:
        try:
            pid = int(f.stem)
        except ValueError:
            continue
        if _alive(pid):
            count += 1
        else:
            f.unlink(missing_ok=True)
    return count


def threads_for(cores: int, workers: int, override: str | None) -> int:
    """The thread count for one worker: ``override`` if set, else ``cores // workers``."""
    if override:
        try:
            n = int(override)
        except ValueError:
            n = 0
        if n < 1:
            raise ConfigError(f"OPTPROMPT_THREADS must be a positive integer, got {override!r}")
        return n
    return max(1, cores // max(1, workers))


def _announce() -> None:
    directory = _workers_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        f = directory / f"{os.getpid()}.pid"
        f.touch()
        atexit.register(f.unlink, missing_ok=True)
    except OSError as e:  # a read-only home still runs, it just cannot coordinate
        log.debug("cannot announce this worker in %s: %s", directory, e)


def configure_threads() -> int:
    """Set torch's intra-op threads once per process and return the count."""
    global _configured
    if _configured is not None:
        return _configured
    import torch

    _announce()
    n = threads_for(available_cores(), live_workers(), os.environ.get("OPTPROMPT_THREADS"))
    if n != torch.get_num_threads():
        torch.set_num_threads(n)
        log.info("torch uses %d CPU thread(s)", n)
    _configured = n
    return n
