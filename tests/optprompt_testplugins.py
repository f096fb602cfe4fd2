"""Plugin packages installed for real in tests (importable from any test folder): pip builds
a package into a directory of its own, offline, and subprocesses find it through
``PYTHONPATH`` and its entry points, as a user's environment would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def install_plugin(source: Path, site: Path, timeout: float = 180) -> Path:
    """pip-install the package at ``source`` into ``site`` (no dependencies, no build
    isolation, no index); returns ``site``. pip builds in ``source``: pass a copy, not a
    folder of the repository."""
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", str(site), str(source)],
        check=True, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    return site


def plugin_env(site: Path, **extra: str) -> dict[str, str]:
    """The environment of a subprocess that sees the plugins installed in ``site`` (one
    thread: tiny models are fastest so on a busy machine)."""
    return {
        **os.environ,
        "PYTHONPATH": str(site),
        "PYTHONDONTWRITEBYTECODE": "1",
        "OMP_NUM_THREADS": "1",
        **extra,
    }
