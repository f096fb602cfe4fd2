"""`optprompt evaluate` / `optprompt.evaluate`: an export or a study's winner scored on new
data with the study's metric, a 95% interval, a paired test against another target, on
its own model or another one; evaluation.json is typed and versioned."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import optprompt
from optprompt.cli.main import main
from optprompt.errors import OptpromptError
from optprompt.evaluation import EVALUATION_FORMAT, EvaluationReport
from optprompt.testing import TinyStudyEnv, make_tiny_model_dir, make_tiny_study_env


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> TinyStudyEnv:
    return make_tiny_study_env(tmp_path_factory.mktemp("evaluate"))


@pytest.fixture(scope="module")
def study(env: TinyStudyEnv) -> Path:
    return env.run_study("template_search", {"trials": 4, "max_demos": 1, "demo_pool": 4})


@pytest.fixture(scope="module")
def new_data(env: TinyStudyEnv) -> Path:
    """Other rows than the study's, in another column layout (CSV, other column names)."""
    import csv

    rows = [json.loads(line) for line in env.data.read_text().splitlines()]
    path = env.root / "new.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["review", "sentiment"])
        for r in rows[::2]:
            w.writerow([r["text"] + " indeed", r["label"]])
    return path


def _expected_accuracy(export: Path, data: Path, model: str | None = None) -> tuple[float, int]:
    import csv

    rows = list(csv.DictReader(data.open()))
    predicted = optprompt.load(export, model).predict([r["review"] for r in rows])
    return sum(p == r["sentiment"] for p, r in zip(predicted, rows, strict=True)) / len(rows), len(rows)


def test_the_winner_against_the_baseline_on_new_data(study: Path, new_data: Path, tmp_path: Path) -> None:
    report = optprompt.evaluate(
        study, new_data, against="baseline", columns={"input": "review", "label": "sentiment"}, output=tmp_path
    )
    optprompt.export_card(study, tmp_path / "winner")
    expected, n = _expected_accuracy(tmp_path / "winner", new_data)
    assert report.n == n and report.metric == "accuracy" and report.task_type == "classification"
    assert report.target.value == pytest.approx(expected)
    assert report.target.interval.low <= report.target.value <= report.target.interval.high
    assert report.target.what.startswith("the winner of study 'conformance'")
    assert report.against is not None and report.against.what.startswith("the baseline of study 'conformance'")
    assert report.comparison is not None and report.comparison.n == n
    assert report.comparison.difference.estimate == pytest.approx(report.target.value - report.against.value)
    assert 0.0 <= report.comparison.p_value <= 1.0
    saved = EvaluationReport.load(tmp_path / "evaluation.json")
    assert saved == report and saved.format_version == EVALUATION_FORMAT


def test_another_model_rescores_the_same_prompt(study: Path, new_data: Path, tmp_path: Path) -> None:
    other = make_tiny_model_dir(tmp_path / "models", seed=7, name="other-tiny")
    optprompt.export_card(study, tmp_path / "card")
    cols = {"input": "review", "label": "sentiment"}
    report = optprompt.evaluate(tmp_path / "card", new_data, model=str(other), columns=cols)
    assert report.target.model == str(other) and report.target.kind == "prompt"
    expected, _ = _expected_accuracy(tmp_path / "card", new_data, str(other))
    assert report.target.value == pytest.approx(expected)


def test_a_chat_card_on_a_model_without_a_chat_template_is_scored_plain_when_asked(
    study: Path, new_data: Path, tmp_path: Path
) -> None:
    """A deployment model without a chat template (a base GGUF, say): the card's text is
    scored as a plain prompt with ``plain``, and the report says so; without it, the error
    names the option."""
    import dataclasses

    base = make_tiny_model_dir(tmp_path / "models", chat=False, seed=7, name="base-tiny")
    optprompt.export_card(study, tmp_path / "card")
    assert optprompt.load_card(tmp_path / "card").chat
    cols = {"input": "review", "label": "sentiment"}
    with pytest.raises(OptpromptError, match="--plain"):
        optprompt.evaluate(tmp_path / "card", new_data, model=str(base), columns=cols)
    report = optprompt.evaluate(tmp_path / "card", new_data, model=str(base), columns=cols, plain=True)
    assert report.target.what.endswith("as a plain prompt (no chat template)")
    import csv

    rows = list(csv.DictReader(new_data.open()))
    card = dataclasses.replace(optprompt.load_card(tmp_path / "card"), chat=False)
    from optprompt.kinds.prompt.predictor import CardPredictor
    from optprompt.models import load_model
    from optprompt.plugins import load_plugins

    predicted = CardPredictor(card, load_model(str(base), load_plugins(), device="cpu")).predict(
        [r["review"] for r in rows]
    )
    expected = sum(p == r["sentiment"] for p, r in zip(predicted, rows, strict=True)) / len(rows)
    assert report.target.value == pytest.approx(expected)


def test_the_command_prints_a_table_and_writes_the_file(
    study: Path, new_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "70")
    out = tmp_path / "ev.json"
    argv = ["evaluate", str(study), "--data", str(new_data), "--input", "review", "--label", "sentiment"]
    assert main([*argv, "--against", "baseline", "--output", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].endswith("examples (classification), accuracy")
    assert printed[1].split()[:3] == ["accuracy", "95%", "CI"]
    assert all(len(line) <= 70 for line in printed[1:4])
    assert printed[4].startswith("difference ") and printed[-1] == f"wrote {out}"
    assert json.loads(out.read_text())["format_version"] == EVALUATION_FORMAT
    assert main([*argv, "--output", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["against"] is None


def test_bad_input_is_a_clear_error(study: Path, new_data: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["evaluate", str(study), "--data", str(new_data), "--output", str(tmp_path / "e.json")]) == 2
    assert (
        "column 'text' (from task.input) is not in the data; columns are: review, sentiment" in capsys.readouterr().err
    )
    with pytest.raises(OptpromptError, match="no such data file"):
        optprompt.evaluate(study, tmp_path / "missing.jsonl")
    with pytest.raises(OptpromptError, match="columns: unknown key"):
        optprompt.evaluate(study, new_data, columns={"text": "review"})
    optprompt.export_card(study, tmp_path / "card")
    with pytest.raises(OptpromptError, match="--against baseline compares a study's winner"):
        optprompt.evaluate(tmp_path / "card", new_data, against="baseline", columns={"input": "review"})
    (tmp_path / "old.json").write_text(json.dumps({"format_version": 99}))
    with pytest.raises(OptpromptError, match="evaluation format 99"):
        EvaluationReport.load(tmp_path / "old.json")


def test_an_export_carries_its_studys_columns(
    study: Path, env: TinyStudyEnv, new_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The card remembers the study's column mapping (its data's input is ``text``): the
    study's own file is scored with no column flag; the flags still override it; a card
    written before cards carried columns still loads and takes the flags."""
    from optprompt.kinds.prompt.card import CARD_FILE

    card = tmp_path / "card"
    optprompt.export_card(study, card)
    assert json.loads((card / CARD_FILE).read_text())["task"]["columns"] == {"input": "text", "label": "label"}
    out = tmp_path / "e.json"
    assert main(["evaluate", str(card), "--data", str(env.data), "--output", str(out)]) == 0
    assert EvaluationReport.load(out).n == len(env.data.read_text().splitlines())
    assert main(["evaluate", str(card), "--data", str(new_data), "--output", str(out)]) == 2  # other columns there
    missing = "column 'text' (from task.input) is not in the data; columns are: review, sentiment"
    assert missing in capsys.readouterr().err
    by_flags = ["evaluate", str(card), "--data", str(new_data), "--input", "review", "--label", "sentiment"]
    assert main([*by_flags, "--output", str(out)]) == 0
    assert EvaluationReport.load(out).target.value == pytest.approx(_expected_accuracy(card, new_data)[0])

    written = json.loads((card / CARD_FILE).read_text())
    del written["task"]["columns"]  # as cards were written before
    (card / CARD_FILE).write_text(json.dumps(written))
    assert main(["evaluate", str(card), "--data", str(env.data), "--output", str(out)]) == 2
    assert "column 'input' (from task.input) is not in the data" in capsys.readouterr().err
    assert main(["evaluate", str(card), "--data", str(env.data), "--input", "text", "--output", str(out)]) == 0

    written["task"]["columns"] = {"input": 3}
    (card / CARD_FILE).write_text(json.dumps(written))
    with pytest.raises(OptpromptError, match=r"card: the card's task.columns must map input, label"):
        optprompt.evaluate(card, env.data)


def test_a_given_label_column_does_not_inherit_the_studys_label_separator() -> None:
    from optprompt.evaluation.run import _merged_columns

    study = {"input": "text", "label": "labels_text", "label_separator": "|"}
    assert _merged_columns(study, {}) == study
    assert _merged_columns(study, {"input": "body"}) == {**study, "input": "body"}
    assert _merged_columns(study, {"label": "labels"}) == {"input": "text", "label": "labels"}
    assert _merged_columns(study, {"label": "tags", "label_separator": ";"}) == {
        "input": "text",
        "label": "tags",
        "label_separator": ";",
    }


def test_the_command_scores_through_a_served_model(
    env: TinyStudyEnv, study: Path, new_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--model URL` (with `--api-key-env`) scores through a server: the same figures as in-process."""
    from served_standin import StandIn

    server = StandIn(env.model, root=str(env.model_dir), api_key="sk-eval-1").start()
    monkeypatch.setenv("EVAL_KEY", "sk-eval-1")
    argv = ["evaluate", str(study), "--data", str(new_data), "--input", "review", "--label", "sentiment"]
    try:
        served_out, local_out = tmp_path / "served.json", tmp_path / "local.json"
        assert main([*argv, "--model", server.url, "--api-key-env", "EVAL_KEY", "--output", str(served_out)]) == 0
        assert main([*argv, "--model", str(env.model_dir), "--output", str(local_out)]) == 0
        served, local = json.loads(served_out.read_text()), json.loads(local_out.read_text())
        assert served["target"]["model"] == server.url
        assert served["target"]["value"] == pytest.approx(local["target"]["value"])
        assert "sk-eval-1" not in served_out.read_text()
        assert main([*argv, "--model", str(env.model_dir), "--api-key-env", "EVAL_KEY"]) == 2  # not a server
    finally:
        server.stop()
