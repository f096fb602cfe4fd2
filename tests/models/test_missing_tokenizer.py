"""A model directory without its tokenizer: a clear error naming the directory, from the
library and from a real `optprompt run` process, before any work."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from optprompt_testdata import write_sentiment_jsonl

from optprompt.errors import ModelError
from optprompt.models import load_model
from optprompt.models.loading import TOKENIZER_FILES
from optprompt.plugins import load_plugins


def _without_tokenizer(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    for name in TOKENIZER_FILES:
        (dst / name).unlink(missing_ok=True)
    return dst


def test_library_error_names_the_directory(tmp_path: Path, tiny_model_dir: Path) -> None:
    broken = _without_tokenizer(tiny_model_dir, tmp_path / "no-tokenizer")
    with pytest.raises(ModelError, match=f"model directory {broken} has no tokenizer"):
        load_model(str(broken), load_plugins())


def test_run_refuses_with_exit_2(tmp_path: Path, tiny_model_dir: Path) -> None:
    broken = _without_tokenizer(tiny_model_dir, tmp_path / "no-tokenizer")
    data = write_sentiment_jsonl(tmp_path / "data.jsonl", n=48)
    study = tmp_path / "study.yaml"
    study.write_text(
        yaml.safe_dump(
            {
                "name": "notok",
                "model": str(broken),
                "output": str(tmp_path / "out"),
                "task": {"data": str(data), "input": "text", "label": "label"},
                "strategy": {"name": "template_search", "trials": 2},
            }
        )
    )
    cmd = [sys.executable, "-m", "optprompt.cli.main", "run", str(study), "-q"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert f"model directory {broken} has no tokenizer" in proc.stderr and "Traceback" not in proc.stderr
