"""One study process per output directory; an unwritable one is refused before any work."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from optprompt_testdata import write_sentiment_jsonl

from optprompt.errors import OptpromptError
from optprompt.study.exclusive import output_lock, worker_output_lock


def _study(tmp_path: Path, model_dir: Path) -> dict:
    data = write_sentiment_jsonl(tmp_path / "data.jsonl", n=96)
    return {
        "name": "twice",
        "model": str(model_dir),
        "output": str(tmp_path / "out"),
        "task": {"data": str(data), "input": "text", "label": "label", "id": "id"},
        "strategy": {"name": "template_search", "trials": 6, "max_demos": 2, "demo_pool": 6},
        "scoring": {"device": "cpu", "batch_tokens": 64},
    }


def _cli(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "optprompt.cli.main", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_second_run_on_one_output_directory_is_refused(tmp_path: Path, tiny_model_dir: Path) -> None:
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump(_study(tmp_path, tiny_model_dir)))
    # This process holds the directory, as a running study does: no race to win.
    with output_lock(tmp_path / "out"):
        second = _cli("run", str(study), "-q")
        assert second.wait(timeout=120) == 2
    err = second.stderr.read()
    assert str(tmp_path / "out") in err and f"pid {os.getpid()}" in err and "optprompt worker" in err
    assert not (tmp_path / "out" / "result.json").exists()  # refused before any work
    # once the holder has finished, the directory is free again
    again = _cli("run", str(study), "-q")
    assert again.wait(timeout=240) == 0, again.stderr.read()
    assert (tmp_path / "out" / "result.json").exists()


def test_workers_without_output_get_a_directory_each(tmp_path: Path) -> None:
    host = socket.gethostname()
    with worker_output_lock(tmp_path / "out") as first, worker_output_lock(tmp_path / "out") as second:
        assert first == tmp_path / "out" / "workers" / f"{host}-1"
        assert second == tmp_path / "out" / "workers" / f"{host}-2"
        with pytest.raises(OptpromptError, match="in use by another optprompt process"):
            with output_lock(first):
                pass
    with worker_output_lock(tmp_path / "out") as again:  # a finished (or killed) worker frees its directory
        assert again == first


def test_lock_is_released_and_reentrant_after_use(tmp_path: Path) -> None:
    with output_lock(tmp_path / "o"):
        with pytest.raises(OptpromptError, match="in use by another optprompt process"):
            with output_lock(tmp_path / "o"):
                pass
    with output_lock(tmp_path / "o"):
        pass


def test_unwritable_output_directory_is_refused_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(OptpromptError, match="a-file/out cannot be written"):
        with output_lock(blocker / "out"):
            pass


def test_read_only_filesystem_is_refused(tmp_path: Path) -> None:
    mnt = tmp_path / "ro"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(mnt)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {proc.stderr.decode().strip()}")
    try:
        with pytest.raises(OptpromptError, match="cannot be written: Read-only file system"):
            with output_lock(mnt / "out"):
                pass
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
