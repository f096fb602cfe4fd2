"""A broken score cache costs time, never a study: corrupt at start (moved aside, named in
the log), failing mid-run (reported once, scores still computed)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from optprompt.prompts.render import ScoreRequest
from optprompt.scoring import CachedBackend, CausalLMBackend, ScoreCache


def _requests() -> list[ScoreRequest]:
    return [ScoreRequest(f"e{i}", "Classify.\n\nInput:", f" text {i}\nAnswer:", (" good", " bad")) for i in range(3)]


def test_corrupt_file_is_moved_aside_and_a_fresh_cache_started(tmp_path: Path, caplog) -> None:
    path = tmp_path / "scores.sqlite"
    path.write_bytes(b"this is not a database, it is a half-written file\x00" * 50)
    with caplog.at_level(logging.WARNING):
        cache = ScoreCache(path)
    assert str(path) in caplog.text and "moved to" in caplog.text
    aside = list(tmp_path.glob("scores.sqlite.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not a database")
    cache.put_many({"k": [1.0, 2.0]})
    assert cache.get_many(["k"]) == {"k": [1.0, 2.0]}


def test_cache_failing_mid_run_is_reported_once_and_scores_still_computed(tmp_path: Path, tiny_model, caplog) -> None:
    cache = ScoreCache(tmp_path / "scores.sqlite")
    backend = CachedBackend(CausalLMBackend(tiny_model), cache)
    first = backend.loglikelihoods(_requests())
    cache._db.close()  # the file's connection breaks under the study (disk gone, file replaced...)
    with caplog.at_level(logging.WARNING):
        again = backend.loglikelihoods(_requests())
        more = backend.loglikelihoods(_requests()[:1])
    flat = [v for row in first for v in row]
    assert [v for row in again for v in row] == pytest.approx(flat, abs=1e-4)
    assert more[0] == pytest.approx(first[0], abs=1e-4)
    assert caplog.text.count("failed") == 1 and str(tmp_path / "scores.sqlite") in caplog.text
    assert cache.broken
