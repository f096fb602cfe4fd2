"""The benchmark scripts still run against today's API (they are not imported by anything
else, so a renamed method breaks them silently): each runs once on the tiny model, at the
smallest size, writing its JSON to a temporary folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.parametrize(
    ("script", "args"),
    [
        ("decoding.py", ["--examples", "2"]),
        ("soft_prompt_speed.py", ["--steps", "1", "--methods", "lora"]),
        ("adapters.py", ["--examples", "2", "--chunk", "2", "--methods", "lora"]),
    ],
)
def test_a_benchmark_runs_on_the_tiny_model(script: str, args: list[str], tiny_model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--model", str(tiny_model_dir), *args, "--output", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert json.loads(out.read_text())  # wrote its figures where it was told


def test_the_tables_render_from_the_shipped_results() -> None:
    """`make bench`'s tables render from the results kept in benchmarks/results (an old
    result file without a field broke `bench.py --tables-only`)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import bench
    finally:
        sys.path.remove(str(BENCHMARKS))
    text = bench.render(list(bench.BENCHES), None)
    assert "**Adapter scoring**" in text and "**Extraction decoding**" in text


def test_a_peers_free_answer_is_read_as_the_labels_it_names() -> None:
    """`peers.py`'s lenient reading of a DSPy answer without field markers: the label named
    first, whole words only, the longer label where two start at one place."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        from peers_methods import named_labels
    finally:
        sys.path.remove(str(BENCHMARKS))
    labels = ["positive", "negative", "very positive", "pos"]
    assert named_labels("The review is Negative, not positive.", labels) == ["negative", "positive"]
    assert named_labels("very positive indeed", labels) == ["very positive", "positive"]
    assert named_labels("a positively odd purpose", labels) == []  # no whole word
    assert named_labels("[[ ## label ## ]]\nnegative", labels) == ["negative"]
