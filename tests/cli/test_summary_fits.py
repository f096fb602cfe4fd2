"""The end-of-study summary that ``optprompt run`` prints fits the terminal as ``show`` does:
sentences wrap, prompt lines and candidate fields longer than the width end in "…", the
tables share the width; ``--wide`` prints everything in full."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from optprompt.cli.main import main
from optprompt.cli.output import print_result

LONG = "Decide, after reading the whole review and weighing every sentence of it, " * 3


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A tiny study run through ``optprompt run`` in an 80-column terminal: its output and what it printed."""
    from optprompt_testdata import write_sentiment_jsonl

    from optprompt.testing import make_tiny_study_env

    # The summary prints the model's path whole, unbroken: keep it short enough for 80 columns
    # under any temporary root (/dev/shm/pytest-of-USER/pytest-N/popen-gwN/s0/env/models/...).
    root = tmp_path_factory.mktemp("s")
    env = make_tiny_study_env(root / "env")
    data = write_sentiment_jsonl(root / "data.jsonl", n=60)
    study = {
        "name": "summary-width",
        "model": str(env.model_dir),
        "seed": 0,
        "output": str(root / "out"),
        "task": {
            "data": str(data),
            "type": "classification",
            "input": "text",
            "label": "label",
            "id": "id",
            "prompt": LONG,
        },  # fmt: skip
        "strategy": {"name": "template_search", "trials": 3, "max_demos": 1, "demo_pool": 4},
        "scoring": {"device": "cpu"},
    }
    (root / "study.yaml").write_text(yaml.safe_dump(study))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COLUMNS", "80")
        capture = root / "printed.txt"
        import contextlib
        import io

        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            assert main(["run", str(root / "study.yaml"), "-q"]) == 0
        capture.write_text(buf.getvalue())
    return root / "out", capture.read_text()


def _summary(out: str) -> str:
    return out[out.index("\nstudy 'summary-width'") :]


def test_run_prints_a_summary_that_fits_80_columns(finished: tuple[Path, str]) -> None:
    output, printed = finished
    summary = _summary(printed)
    assert all(len(line) <= 80 for line in summary.splitlines()), max(summary.splitlines(), key=len)
    assert "BASELINE PROMPT" in summary and "WINNING PROMPT" in summary
    assert any(line.endswith("…") for line in summary.splitlines())  # the long instruction, cut
    flat = " ".join(summary.split())
    assert "lines longer than 80 columns cut with …" in flat and "--trial N" in flat
    result = json.loads((output / "result.json").read_text())
    assert f"test accuracy: baseline {result['baseline']['test']['value']:.3f} -> winner" in flat


@pytest.mark.parametrize("width", [80, 120])
def test_print_result_fits_the_width_it_is_given(
    finished: tuple[Path, str], width: int, capsys: pytest.CaptureFixture[str]
) -> None:
    output, _ = finished
    result = json.loads((output / "result.json").read_text())
    result["warnings"] = [*result["warnings"], "a warning long enough to wrap " * 8]
    print_result(result, output=str(output), width=width)
    lines = capsys.readouterr().out.splitlines()
    assert all(len(line) <= width for line in lines), max(lines, key=len)
    flat = " ".join(" ".join(lines).split())
    assert ("a warning long enough to wrap " * 8).strip() in flat  # wrapped, not cut
    assert LONG.strip() not in flat  # the prompt's long line is cut at this width ...
    assert LONG[: width - 10] in "\n".join(lines)  # ... after as much of it as fits


def test_wide_prints_the_summary_in_full(finished: tuple[Path, str], capsys: pytest.CaptureFixture[str]) -> None:
    output, _ = finished
    result = json.loads((output / "result.json").read_text())
    print_result(result, output=str(output), width=80, wide=True)
    out = capsys.readouterr().out
    assert LONG.strip() in out and "…" not in out
