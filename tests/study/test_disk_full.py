"""Disk full while writing results: a clear error naming the file, no half-written file,
every finished trial kept; with room again, the same command writes the results without
re-running anything. A real process on a real (tiny) tmpfs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from optprompt_testdata import write_sentiment_jsonl


@pytest.fixture
def tiny_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    mnt = tmp_path / "disk"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12k", "tmpfs", str(mnt)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {proc.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", str(mnt)], check=False)


def test_disk_full_while_writing_results(tmp_path: Path, tiny_model_dir: Path, tiny_disk: Path) -> None:
    data = write_sentiment_jsonl(tmp_path / "data.jsonl", n=96)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    spec = {
        "name": "full",
        "model": str(tiny_model_dir),
        "output": str(tiny_disk / "run"),
        "storage": storage,
        "task": {"data": str(data), "input": "text", "label": "label", "id": "id"},
        "strategy": {"name": "template_search", "trials": 4, "max_demos": 2, "demo_pool": 6},
        "scoring": {"device": "cpu", "cache_path": str(tmp_path / "scores.sqlite")},
    }
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump(spec))
    cmd = [sys.executable, "-m", "optprompt.cli.main", "run", str(study), "-q"]
    full = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert full.returncode == 2, full.stderr
    assert "cannot write" in full.stderr and "No space left on device" in full.stderr
    assert str(tiny_disk / "run") in full.stderr and "Traceback" not in full.stderr
    assert not list((tiny_disk / "run").glob(".*.tmp"))  # nothing half-written
    trials = optuna.load_study(study_name="full", storage=storage).get_trials(deepcopy=False)
    finished = [(t.number, t.value) for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(finished) >= 4  # (a repeated candidate completes too, without counting)

    subprocess.run(["mount", "-o", "remount,size=2m", str(tiny_disk)], check=True)
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    after = optuna.load_study(study_name="full", storage=storage).get_trials(deepcopy=False)
    assert [(t.number, t.value) for t in after if t.state == optuna.trial.TrialState.COMPLETE] == finished
    assert len(after) == len(trials)  # nothing was re-run
    assert json.loads((tiny_disk / "run" / "result.json").read_text())["n_scored"] == 4
