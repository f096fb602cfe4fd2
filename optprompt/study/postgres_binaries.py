"""Where a local PostgreSQL's server binaries come from (``pgserver`` or a ``pg_ctl`` on
``PATH``), and who runs them: as root, an unprivileged user, from a copy of the
installation every user may read."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from optprompt.errors import OptpromptError

__all__ = ["find_binaries", "reachable_copy", "reachable_by_others", "run_as"]


def find_binaries() -> Path:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres``.

    Looked for in ``OPTPROMPT_PG_BIN``, then the ``pgserver`` package, then ``pg_ctl`` on
    ``PATH``; an :class:`OptpromptError` says how to get them when none has them.
    """
    candidates: list[Path] = []
    if os.environ.get("OPTPROMPT_PG_BIN"):
        candidates.append(Path(os.environ["OPTPROMPT_PG_BIN"]))
    import importlib.util

    spec = importlib.util.find_spec("pgserver")  # its binaries only: pgserver itself is not imported
    if spec is not None and spec.origin:
        candidates.append(Path(spec.origin).parent / "pginstall" / "bin")
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for folder in candidates:
        if all((folder / exe).is_file() for exe in ("initdb", "pg_ctl", "postgres")):
            return folder
    raise OptpromptError(
        "no PostgreSQL server binaries found (looked in OPTPROMPT_PG_BIN, the pgserver package, and for "
        "pg_ctl on PATH): install them with `pip install 'optprompt[postgres]'` (Linux, macOS; Python < 3.13) "
        "or your system's PostgreSQL server package"
    )


def reachable_by_others(path: Path) -> bool:
    """Whether a user other than the owner may run ``path`` (every folder above it open)."""
    return all(os.stat(p).st_mode & 0o001 for p in (path, *path.parents))


def reachable_copy(bin_dir: Path) -> Path:
    """A copy of the installation holding ``bin_dir`` (bin/, lib/, share/) in a folder every
    user may read: as root the server runs as another user, who cannot reach binaries
    installed under a closed folder (a virtual environment in root's home)."""
    import tempfile

    install = bin_dir.parent  # pgserver/pginstall; its libraries are found at $ORIGIN/../../../pgserver.libs
    libs = install.parent.parent / f"{install.parent.name}.libs"
    import hashlib

    tag = hashlib.sha256(f"{install}:{os.stat(bin_dir / 'postgres').st_mtime_ns}".encode()).hexdigest()[:12]
    target = Path(tempfile.gettempdir()) / f"optprompt-pginstall-{os.getuid()}-{tag}"
    copied = target / install.parent.name / install.name
    if not (copied / "bin" / "postgres").is_file():
        tmp = Path(tempfile.mkdtemp(prefix="optprompt-pginstall-"))
        shutil.copytree(install, tmp / install.parent.name / install.name, symlinks=True)
        if libs.is_dir():
            shutil.copytree(libs, tmp / libs.name, symlinks=True)
        for folder in (tmp, tmp / install.parent.name):
            os.chmod(folder, 0o755)
        try:
            os.replace(tmp, target)
        except OSError:  # another process made it first
            shutil.rmtree(tmp, ignore_errors=True)
    return copied / "bin"


def run_as() -> str | None:
    """The user the server runs as: None (this one) unless this one is root."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    import pwd

    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise OptpromptError("PostgreSQL refuses to run as root, and there is no 'postgres' or 'nobody' user to run it as")
