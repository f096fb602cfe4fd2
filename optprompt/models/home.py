"""Where optprompt keeps pulled models and caches: ``$OPTPROMPT_HOME``."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["optprompt_home"]


def optprompt_home() -> Path:
    """``$OPTPROMPT_HOME``, else ``$XDG_CACHE_HOME/optprompt``, else ``~/.cache/optprompt``."""
    env = os.environ.get("OPTPROMPT_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "optprompt"
