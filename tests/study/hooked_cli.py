"""``optprompt`` in a child process that says when a trial is running, for tests that
kill, terminate or disturb it at a known moment instead of polling the storage.

Run as ``python hooked_cli.py ARGS...`` (the CLI's arguments). With
``OPTPROMPT_TEST_PAUSE_AT=3,6`` (trial numbers), ``OPTPROMPT_TEST_SAY_FD`` and
``OPTPROMPT_TEST_WAIT_FD`` (pipe ends passed with ``pass_fds``): when ``template_search``
has proposed the candidate of one of those trials (the trial is running, its parameters
are stored, nothing is scored yet), the child writes ``"N\\n"`` to the first pipe and
waits for one byte on the second before going on. See :class:`Hooked` for the parent's side.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path


def _install() -> None:
    from optprompt_plugins.template_search.strategy import TemplateSearch

    pause_at = {int(n) for n in os.environ["OPTPROMPT_TEST_PAUSE_AT"].split(",") if n}
    say, wait = int(os.environ["OPTPROMPT_TEST_SAY_FD"]), int(os.environ["OPTPROMPT_TEST_WAIT_FD"])
    real = TemplateSearch.propose

    def propose(self, trial):  # type: ignore[no-untyped-def]
        candidate = real(self, trial)
        if trial.number in pause_at:
            os.write(say, f"{trial.number}\n".encode())
            os.read(wait, 1)  # a signal handler that raises (SIGTERM) ends the wait too
        return candidate

    TemplateSearch.propose = propose


class Hooked:
    """The parent's side: start the CLI, wait until a given trial runs, let it go on."""

    def __init__(self, *args: str, pause_at: tuple[int, ...], env: dict[str, str] | None = None) -> None:
        self._say_r, say_w = os.pipe()
        wait_r, self._wait_w = os.pipe()
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__)), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            pass_fds=(say_w, wait_r),
            env={
                **os.environ,
                **(env or {}),
                "OPTPROMPT_TEST_PAUSE_AT": ",".join(map(str, pause_at)),
                "OPTPROMPT_TEST_SAY_FD": str(say_w),
                "OPTPROMPT_TEST_WAIT_FD": str(wait_r),
            },
        )
        os.close(say_w)  # the child holds them now: its exit ends our reads
        os.close(wait_r)
        self._said = b""

    def running(self) -> int | None:
        """Block until the child pauses in a trial; its number (None: it exited first)."""
        while b"\n" not in self._said:
            chunk = os.read(self._say_r, 64)
            if not chunk:
                return None
            self._said += chunk
        line, self._said = self._said.split(b"\n", 1)
        return int(line)

    def resume(self) -> None:
        os.write(self._wait_w, b"x")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 300) -> tuple[int, str, str]:
        try:
            out, err = self.proc.communicate(timeout=timeout)
        finally:
            for fd in (self._say_r, self._wait_w):
                try:
                    os.close(fd)
                except OSError:
                    pass
        return self.proc.returncode, out, err


if __name__ == "__main__":
    _install()
    from optprompt.cli.main import main

    sys.exit(main(sys.argv[1:]))
