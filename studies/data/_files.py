"""Writing (or checking) the data files a generator script makes: shared by the
``make_*.py`` scripts beside this file, which run as plain scripts (this folder is first
on their import path)."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def write_or_check(files: Mapping[str, Sequence[dict[str, Any]]], *, check: bool, script: str) -> int:
    """Write each ``name -> records`` as JSON lines beside this file, or with ``check``
    confirm the shipped files are byte-identical to what would be written. Exit status."""
    for name, records in files.items():
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        path = HERE / name
        if check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                print(f"{path} differs from a fresh run of {script}", file=sys.stderr)
                return 1
            print(f"{path}: up to date ({len(records)} rows)")
            continue
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path} ({len(records)} rows)")
    return 0
