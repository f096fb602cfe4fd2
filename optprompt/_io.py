"""Atomic file writes: a reader never sees a half-written output file."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["atomic_write_text", "atomic_write_json", "read_json"]


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename.

    A failing write (disk full, read-only filesystem) leaves the previous file as it was
    and raises :class:`~optprompt.errors.OptpromptError` naming the file and the reason.
    """
    path = Path(path)
    try:
        return _atomic_write(path, text)
    except OSError as e:
        from optprompt.errors import OptpromptError

        raise OptpromptError(
            f"cannot write {path}: {e.strerror or e}. Everything finished so far is kept in the study's storage: "
            "make room (or fix the directory) and run the same command again"
        ) from None


def _atomic_write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; output files follow the umask
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_json(path: str | os.PathLike[str], data: Any) -> Path:
    """Write ``data`` as indented JSON, atomically."""
    return atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def read_json(path: str | os.PathLike[str], *, what: str = "file") -> Any:
    """Read a JSON file, raising :class:`~optprompt.errors.OptpromptError` with the path."""
    from optprompt.errors import OptpromptError

    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OptpromptError(f"{what} not found: {path}") from None
    except json.JSONDecodeError as e:
        raise OptpromptError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}): {e.msg}") from None


def contained_path(root: str | os.PathLike[str], name: str, *, what: str) -> Path:
    """``root / name`` for a relative ``name`` read from a file someone may have shared
    (a manifest's member folder): refused with an :class:`~optprompt.errors.OptpromptError`
    when it is absolute or leads out of ``root`` (``..``, a symbolic link)."""
    from optprompt.errors import OptpromptError

    base = Path(root).resolve()
    if not isinstance(name, str) or not name or Path(name).is_absolute():
        raise OptpromptError(f"{what}: {name!r} must be a folder name inside {root}")
    target = (base / name).resolve()
    if target != base and base not in target.parents:
        raise OptpromptError(f"{what}: {name!r} leads out of {root}; refused")
    return target
