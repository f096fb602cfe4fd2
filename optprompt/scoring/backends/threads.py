"""How many CPU threads torch uses: the cores this process may run on, shared among the
optprompt workers on this machine, unless ``OPTPROMPT_THREADS`` says otherwise.

Two workers with two threads each on two cores stall each other at every parallel region
(seconds become minutes), so each study process (``optprompt run`` / ``optprompt worker``)
announces itself with a small file under ``$OPTPROMPT_HOME/workers`` while it runs, and
each takes ``cores // running studies`` threads (at least one). A process that scores
without announcing itself (a library user, a test) counts itself on top.
"""

from __future__ import annotations

import atexit
import logging
import os
from pathlib import Path

from optprompt.errors import ConfigError

__all__ = ["announce_worker", "configure_threads", "available_cores", "live_workers", "threads_for"]

log = logging.getLogger(__name__)
_configured: int | None = None
_announced = False


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _workers_dir() -> Path:
    from optprompt.models.home import optprompt_home

    return optprompt_home() / "workers"


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


def announce_worker() -> None:
    """Count this process as a study worker on this machine until it exits."""
    global _announced
    if _announced:
        return
    directory = _workers_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        f = directory / f"{os.getpid()}.pid"
        f.touch()
        atexit.register(f.unlink, missing_ok=True)
        _announced = True
    except OSError as e:  # a read-only home still runs, it just cannot coordinate
        log.debug("cannot announce this worker in %s: %s", directory, e)


def configure_threads() -> int:
    """Set torch's intra-op threads once per process and return the count."""
    global _configured
    if _configured is not None:
        return _configured
    import torch

    workers = live_workers() + (0 if _announced else 1)
    n = threads_for(available_cores(), workers, os.environ.get("OPTPROMPT_THREADS"))
    if n != torch.get_num_threads():
        torch.set_num_threads(n)
        log.info("torch uses %d CPU thread(s)", n)
    _configured = n
    return n
