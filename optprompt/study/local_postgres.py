"""A local PostgreSQL server for studies shared by several workers on one machine.

Usage::

    optprompt postgres start                            # prints the storage URL
    optprompt worker studies/sentiment.yaml --storage URL   # as many times as you like
    optprompt postgres stop

(``python -m optprompt.study.local_postgres start|stop|url`` does the same.)

The server binaries come from the ``pgserver`` package (``pip install 'optprompt[postgres]'``
on Linux and macOS, Python < 3.13) or from a PostgreSQL installation whose ``pg_ctl`` is on
``PATH`` (or in ``OPTPROMPT_PG_BIN``). The server listens on 127.0.0.1 only, with ``trust``
authentication: it is meant for the workers of one machine, not for a network. The test
suite starts a throw-away one the same way (``tests/conftest.py``).

PostgreSQL refuses to run as root: as root, the data folder is handed to an unprivileged
user (``postgres`` when there is one, else ``nobody``) and the server runs as that user.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from optprompt.errors import OptpromptError
from optprompt.study.postgres_binaries import find_binaries, reachable_by_others, reachable_copy, run_as

__all__ = ["LocalPostgres", "add_arguments", "default_data_dir", "find_binaries", "free_port", "run_action"]

DATABASE = "optprompt"
SUPERUSER = "postgres"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def default_data_dir() -> Path:
    """Where ``start`` keeps the server's data unless told: per user, and reachable by the
    unprivileged user the server runs as when started by root."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/tmp/optprompt-postgres")
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "optprompt" / "postgres"


@dataclass
class LocalPostgres:
    """A PostgreSQL server whose data live in ``data_dir`` (created on first start)."""

    data_dir: Path
    port: int | None = None  # None: the running server's, else 5432 when free, else a free one
    host: str = "127.0.0.1"
    bin_dir: Path | None = None
    user: str | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).absolute()
        self.user = run_as()

    # --- paths and state ------------------------------------------------------------
    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    def _bin(self, name: str) -> str:
        if self.bin_dir is None:
            self.bin_dir = find_binaries()
            if self.user is not None and not reachable_by_others(self.bin_dir / "postgres"):
                self.bin_dir = reachable_copy(self.bin_dir)
        return str(self.bin_dir / name)

    def running_port(self) -> int | None:
        """The port of the server running on ``data_dir``, None when none runs."""
        pid_file = self.data_dir / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, IndexError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, run by another user
        return port

    def url(self, driver: str | None = None, database: str = DATABASE) -> str:
        """The SQLAlchemy URL of the running server (``postgresql://`` or ``postgresql+DRIVER://``)."""
        port = self.running_port() or self.port
        if port is None:
            raise OptpromptError(f"no PostgreSQL server runs on {self.data_dir}")
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://{SUPERUSER}@{self.host}:{port}/{database}"

    # --- start and stop ---------------------------------------------------------------
    def _call(self, *args: str, what: str) -> None:
        done = subprocess.run(
            list(args), user=self.user, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120
        )
        if done.returncode != 0:
            log = self.log_file.read_text()[-2000:] if self.log_file.exists() else ""
            raise OptpromptError(
                f"PostgreSQL {what} failed (exit {done.returncode}) for {self.data_dir}: "
                f"{(done.stderr or done.stdout).strip()[-2000:]}" + (f"\nserver log:\n{log}" if log else "")
            )

    def _init(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.user is not None:
            import pwd

            entry = pwd.getpwnam(self.user)
            os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
            os.chmod(self.data_dir, 0o700)
            blocked = [p for p in self.data_dir.parents if not os.stat(p).st_mode & 0o001]
            if blocked:
                raise OptpromptError(
                    f"PostgreSQL runs as user {self.user!r} here (it refuses root), and {blocked[0]} is closed to "
                    f"it: choose a data folder under one it can reach (e.g. {default_data_dir()})"
                )
        self._call(
            self._bin("initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
            what="initdb",
        )

    def start(self) -> str:
        """Start the server (initialising ``data_dir`` first if needed) and create the
        ``optprompt`` database; returns its URL. A server already running there is reused."""
        if self.running_port() is not None:
            return self.url()
        if self.port is None:
            self.port = next((p for p in range(5432, 5532) if _port_is_free(p, self.host)), None) or free_port()
        elif not _port_is_free(self.port, self.host):
            raise OptpromptError(f"port {self.port} on {self.host} is in use: give another with --port")
        if not (self.data_dir / "PG_VERSION").exists():
            self._init()
        options = f"-p {self.port} -c listen_addresses={self.host} -c unix_socket_directories='' -c fsync=off"
        self._call(
            self._bin("pg_ctl"),
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
            what="start",
        )
        self._create_database()
        return self.url()

    def _create_database(self) -> None:
        createdb = self._bin("createdb")
        deadline = time.monotonic() + 30
        while True:
            done = subprocess.run(
                [createdb, "-h", self.host, "-p", str(self.port), "-U", SUPERUSER, DATABASE],
                user=self.user,
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
                timeout=60,
            )
            if done.returncode == 0 or "already exists" in done.stderr:
                return
            if time.monotonic() > deadline:
                raise OptpromptError(
                    f"creating database {DATABASE!r} on port {self.port} failed: {done.stderr.strip()}"
                )
            time.sleep(0.2)

    def stop(self) -> bool:
        """Stop the server (fast shutdown); False when none was running."""
        if self.running_port() is None:
            return False
        self._call(self._bin("pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "60", "stop", what="stop")
        return True

    def __enter__(self) -> LocalPostgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``start | stop | url`` (``optprompt postgres`` and ``python -m`` share them)."""
    parser.add_argument("action", choices=["start", "stop", "url"], help="start the server, stop it, or print its URL")
    parser.add_argument("--dir", type=Path, default=None, help=f"data folder (default {default_data_dir()})")
    parser.add_argument("--port", type=int, default=None, help="port (default: 5432 when free, else the next free)")


def run_action(action: str, data_dir: Path | None = None, port: int | None = None) -> None:
    """Start, stop or name the server on ``data_dir``, printing what a user needs next.

    Raises :class:`OptpromptError` with the reason when the server cannot be started or found.
    """
    server = LocalPostgres(data_dir or default_data_dir(), port=port)
    if action == "start":
        url = server.start()
        print(url)
        print(f"  data: {server.data_dir}  log: {server.log_file}", file=sys.stderr)
        print(f"  workers: optprompt worker STUDY.yaml --storage {url}", file=sys.stderr)
        print(f"  stop it: optprompt postgres stop --dir {server.data_dir}", file=sys.stderr)
    elif action == "stop":
        print("stopped" if server.stop() else f"no server runs on {server.data_dir}")
    elif action == "url":
        print(server.url())
    else:
        raise OptpromptError(f"unknown action {action!r}: use start, stop or url")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m optprompt.study.local_postgres",
        description="Start or stop a local PostgreSQL server for the workers of a study on this machine.",
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        run_action(args.action, args.dir, args.port)
    except OptpromptError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
