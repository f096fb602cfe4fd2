"""Keep Ctrl-C and SIGTERM out of the few steps that must not be cut in half.

A signal turns into an exception at whatever bytecode the main thread runs next. Between
``study.ask()`` creating a trial in storage and the runner holding it, an exception would leave
a trial "running" that nobody will ever finish. :func:`deferred_interrupts` holds such signals
until the block ends and then delivers them, exactly once, as the handler they were meant for.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["deferred_interrupts"]

_SIGNALS = tuple(s for s in (signal.SIGINT, getattr(signal, "SIGTERM", None)) if s is not None)


@contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Run the block with SIGINT / SIGTERM held back; deliver them when it ends.

    Outside the main thread (where Python runs no signal handlers) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[tuple[int, Any]] = []
    previous = {s: signal.getsignal(s) for s in _SIGNALS}

    def hold(signum: int, frame: Any) -> None:
        pending.append((signum, frame))

    for s in _SIGNALS:
        signal.signal(s, hold)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if pending:
            signum, frame = pending[0]
            handler = previous[signum]
            if callable(handler):
                handler(signum, frame)
            elif handler == signal.SIG_DFL:
                if signum == signal.SIGINT:
                    raise KeyboardInterrupt
                signal.raise_signal(signum)
