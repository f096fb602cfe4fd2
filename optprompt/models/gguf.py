"""GGUF model files (llama.cpp, Ollama): de-quantised once into the model cache.

transformers reads a GGUF file (weights, config, tokenizer and chat template) but cannot
save a model it loaded that way, and de-quantising takes seconds to minutes. So a GGUF
file is converted once into a plain safetensors directory under
``$OPTPROMPT_HOME/models/gguf-<sha256 prefix>``, keyed by the file's content, and loaded
from there like any local model. The embedded SmolLM2 default goes through the same
:func:`convert_gguf`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from optprompt.errors import ModelError

__all__ = [
    "GGUF_SUFFIX",
    "MARKER_FILE",
    "convert_gguf",
    "file_sha256",
    "find_gguf",
    "gguf_cache_dir",
    "list_converted",
    "resolve_gguf",
]

GGUF_SUFFIX = ".gguf"
MARKER_FILE = "optprompt-model.json"  # written last: a directory without it is not finished
_INDEX_FILE = "gguf-index.json"  # path + size + mtime -> sha256, so a big file is hashed once


def find_gguf(path: Path) -> Path | None:
    """The GGUF file ``path`` designates, or None when it designates no GGUF file.

    ``path`` may be a ``.gguf`` file, or a directory that holds one ``.gguf`` file and no
    ``config.json`` (a transformers model directory is loaded as such, GGUF files or not).

    Raises:
        ModelError: the directory holds several ``.gguf`` files (the message lists them).
    """
    if path.is_file():
        return path if path.suffix.lower() == GGUF_SUFFIX else None
    if not path.is_dir() or (path / "config.json").is_file():
        return None
    found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() == GGUF_SUFFIX)
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise ModelError(f"model directory {str(path)!r} holds several GGUF files ({names}); give the file's path")
    return found[0] if found else None


def file_sha256(path: Path) -> str:
    """The file's sha256 (hex)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _cached_sha256(path: Path, home: Path) -> str:
    """:func:`file_sha256`, remembered per (absolute path, size, mtime) in the model cache."""
    index_path = home / "models" / _INDEX_FILE
    st = path.stat()
    key = str(path.resolve())
    stamp = [st.st_size, st.st_mtime_ns]
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        index = {}
    hit = index.get(key)
    if isinstance(hit, dict) and hit.get("stamp") == stamp and isinstance(hit.get("sha256"), str):
        return hit["sha256"]
    sha = file_sha256(path)
    index[key] = {"stamp": stamp, "sha256": sha}
    from optprompt._io import atomic_write_json
    from optprompt.errors import OptpromptError

    try:
        atomic_write_json(index_path, index)
    except OptpromptError:  # a failing write (read-only cache) still works; the file is hashed again next time
        pass
    return sha


def gguf_cache_dir(home: Path, sha256: str) -> Path:
    """Where the converted copy of the GGUF file with this sha256 lives."""
    return home / "models" / f"gguf-{sha256[:16]}"


def convert_gguf(gguf_path: Path, out: Path, *, marker: dict[str, Any]) -> Path:
    """De-quantise ``gguf_path`` into a new safetensors model directory ``out``.

    The tokenizer and chat template come from the file. ``marker`` is written to
    ``out/optprompt-model.json`` (it must hold a ``fingerprint``).

    Raises:
        ModelError: transformers cannot read the file (its architecture or tokenizer is
            not supported, or it is not a GGUF file); the message names the file.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src, name = str(gguf_path.parent), gguf_path.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=name)
        gguf_model = AutoModelForCausalLM.from_pretrained(src, gguf_file=name, dtype=torch.float32)
    except (OSError, ValueError, KeyError, ImportError) as e:
        raise ModelError(f"could not read GGUF file {str(gguf_path)!r}: {e}") from None
    # save_pretrained refuses a GGUF-loaded model: rebuild from a clean config.
    cfg = gguf_model.config.to_dict()
    cfg.pop("quantization_config", None)
    clean_config = type(gguf_model.config).from_dict(cfg)
    model = AutoModelForCausalLM.from_config(clean_config, dtype=torch.float32)
    model.load_state_dict(gguf_model.state_dict(), strict=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / MARKER_FILE).write_text(json.dumps(marker, indent=2))
    return out


def resolve_gguf(path: Path, home: Path, *, progress: bool = True) -> Path:
    """The converted model directory for the GGUF file ``path`` designates (converted on first use).

    Two processes resolving the same file at once convert it once (a file lock); the
    conversion goes to a temporary directory renamed into place, so an interrupted
    conversion leaves nothing half-written behind.
    """
    from filelock import FileLock

    gguf_file = find_gguf(path)
    if gguf_file is None:
        raise ModelError(f"{str(path)!r} is not a GGUF file nor a directory holding one")
    sha = _cached_sha256(gguf_file, home)
    target = gguf_cache_dir(home, sha)
    if (target / MARKER_FILE).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / MARKER_FILE).is_file():
            return target
        if progress:
            print(
                f"optprompt: converting {gguf_file.name} to safetensors in {target} (first use only)...",
                file=sys.stderr,
            )
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}.") as tmp:
            out = Path(tmp) / "model"
            marker = {
                "name": gguf_file.stem,
                "source": f"gguf:{gguf_file.resolve()}",
                "gguf_sha256": sha,
                "fingerprint": f"gguf:{sha[:16]}",
            }
            convert_gguf(gguf_file, out, marker=marker)
            if target.exists():
                shutil.rmtree(target)
            os.replace(out, target)
    return target


def list_converted(home: Path) -> list[dict[str, Any]]:
    """The GGUF files converted into the model cache: each marker plus its ``path``."""
    found = []
    for d in sorted((home / "models").glob("gguf-*")):
        marker = d / MARKER_FILE
        if d.is_dir() and marker.is_file():
            try:
                found.append({**json.loads(marker.read_text(encoding="utf-8")), "path": str(d)})
            except ValueError:
                continue
    return found
