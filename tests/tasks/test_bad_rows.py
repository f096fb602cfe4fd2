"""``task.bad_rows``: error (the first bad row stops the study, named) or skip (dropped and
counted per reason, with the first row numbers, in the task's summary)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from optprompt.config.spec import TaskSpec
from optprompt.errors import BadRowError, DataError
from optprompt.tasks import build_task
from optprompt.tasks.bad_rows import FIRST_ROWS, BadRows, describe


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _rows(n: int = 40) -> list[dict]:
    return [{"id": f"r{i}", "text": f"text number {i}", "label": "pos" if i % 2 else "neg"} for i in range(n)]


def _classification(tmp_path: Path) -> Path:
    rows = _rows(40)
    rows[3]["text"] = "   "  # row 4: empty input
    rows[9]["text"] = None  # row 10
    rows[12]["label"] = None  # row 13: missing label
    del rows[20]["label"]  # row 21
    rows[30]["label"] = "neutral"  # row 31: not in task.labels
    return _jsonl(tmp_path / "d.jsonl", rows)


def test_default_is_error_naming_the_first_bad_row(tmp_path: Path, plugins) -> None:
    f = _classification(tmp_path)
    with pytest.raises(BadRowError, match=r"d.jsonl row 4: column 'text' is empty") as e:
        build_task(TaskSpec(data=str(f), input="text", label="label", id="id"), plugins=plugins)
    assert isinstance(e.value, DataError) and e.value.reason == "empty_input"
    assert str(e.value).endswith("set `task.bad_rows: skip` to drop such rows; result.json counts them)")


def test_skip_drops_bad_rows_and_counts_them_per_reason(tmp_path: Path, plugins) -> None:
    f = _classification(tmp_path)
    spec = TaskSpec(data=str(f), input="text", label="label", id="id", labels=["neg", "pos"], bad_rows="skip")
    task = build_task(spec, plugins=plugins, seed=0)
    kept = [e for s in (task.train, task.dev, task.test) for e in s]
    assert len(kept) == 35
    assert {"r3", "r9", "r12", "r20", "r30"}.isdisjoint(e.id for e in kept)
    summary = task.summary()["bad_rows"]
    where = str(f)
    assert summary == {
        "policy": "skip",
        "skipped": 5,
        "reasons": {
            "empty_input": {"count": 2, "first_rows": [f"{where} row 4", f"{where} row 10"]},
            "missing_label": {"count": 2, "first_rows": [f"{where} row 13", f"{where} row 21"]},
            "unknown_label": {"count": 1, "first_rows": [f"{where} row 31"]},
        },
    }
    assert describe(summary).startswith("skipped 5 bad rows: empty_input 2 (")
    # Without task.labels an unseen label is a label of the task, not a bad row.
    loose = build_task(TaskSpec(data=str(f), input="text", label="label", id="id", bad_rows="skip"), plugins=plugins)
    assert loose.labels == ("neg", "neutral", "pos") and loose.summary()["bad_rows"]["skipped"] == 4


def test_skip_with_a_clean_file_reports_nothing_dropped(tmp_path: Path, plugins) -> None:
    f = _jsonl(tmp_path / "d.jsonl", _rows(20))
    task = build_task(TaskSpec(data=str(f), input="text", label="label", bad_rows="skip"), plugins=plugins)
    assert task.summary()["bad_rows"] == {"policy": "skip", "skipped": 0, "reasons": {}}
    plain = build_task(TaskSpec(data=str(f), input="text", label="label"), plugins=plugins)
    assert "bad_rows" not in plain.summary()


def test_multiple_choice_unreadable_options_and_unknown_answers(tmp_path: Path, plugins) -> None:
    rows = [{"q": f"question {i}", "options": ["a", "b", "c"], "answer": "b"} for i in range(30)]
    rows[2]["options"] = "a|b|c"  # row 3: not a list
    rows[5]["options"] = ["a"]  # row 6: one option
    rows[7]["options"] = ["a", "", "c"]  # row 8: an empty option
    rows[11]["answer"] = "z"  # row 12: not an option, not an index
    rows[14]["answer"] = 2  # row 15: an index, fine
    f = _jsonl(tmp_path / "mc.jsonl", rows)
    spec = dict(data=str(f), type="multiple_choice", input="q", label="answer", options="options")
    with pytest.raises(BadRowError, match="mc.jsonl row 3: column 'options' must hold a list"):
        build_task(TaskSpec(**spec), plugins=plugins)
    task = build_task(TaskSpec(**spec, bad_rows="skip"), plugins=plugins)
    reasons = task.summary()["bad_rows"]["reasons"]
    assert reasons["bad_options"]["count"] == 3
    assert [r.rsplit(" ", 1)[1] for r in reasons["bad_options"]["first_rows"]] == ["3", "6", "8"]
    assert reasons["unknown_label"]["first_rows"] == [f"{f} row 12"]
    assert sum(len(s) for s in (task.train, task.dev, task.test)) == 26


def test_given_splits_name_each_file_and_extraction_skips_bad_entities(tmp_path: Path, plugins) -> None:
    rows = [{"text": f"Ann met Bob {i}", "entities": [{"start": 0, "end": 3, "type": "PER"}]} for i in range(12)]
    rows[4]["entities"] = [{"start": 50, "end": 60, "type": "PER"}]  # beyond the text
    rows[6]["entities"] = None  # a sentence without entities, as today: kept
    data = {
        "train": str(_jsonl(tmp_path / "train.jsonl", rows)),
        "dev": str(_jsonl(tmp_path / "dev.jsonl", rows[:4])),
        "test": str(_jsonl(tmp_path / "test.jsonl", [{"text": "", "entities": []}, *rows[:4]])),
    }
    spec = TaskSpec(data=data, type="extraction", input="text", label="entities", bad_rows="skip")
    task = build_task(spec, plugins=plugins)
    reasons = task.summary()["bad_rows"]["reasons"]
    assert reasons["empty_input"]["first_rows"] == [f"{data['test']} row 1"]
    assert reasons["unknown_label"]["first_rows"] == [f"{data['train']} row 5"]
    assert (len(task.train), len(task.dev), len(task.test)) == (11, 4, 4)


def test_summary_names_only_the_first_rows() -> None:
    bad = BadRows("skip")
    for i in range(FIRST_ROWS + 3):
        bad.skip("empty_input", f"f row {i + 1}")
    s = bad.summary()
    assert s["reasons"]["empty_input"]["count"] == FIRST_ROWS + 3
    assert len(s["reasons"]["empty_input"]["first_rows"]) == FIRST_ROWS
    assert describe(s).endswith(", ...)")
    with pytest.raises(ValueError, match="unknown bad-row reason"):
        bad.skip("bad_mood", "f row 1")


def test_skip_drops_labels_the_verbalizer_has_no_word_for(tmp_path: Path, plugins) -> None:
    rows = _rows(30)
    rows[7]["label"] = "meh"  # row 8
    f = _jsonl(tmp_path / "d.jsonl", rows)
    spec = dict(data=str(f), input="text", label="label", verbalizer={"neg": "bad", "pos": "good"})
    with pytest.raises(BadRowError, match="d.jsonl row 8: label 'meh' has no word in task.verbalizer"):
        build_task(TaskSpec(**spec), plugins=plugins)
    task = build_task(TaskSpec(**spec, bad_rows="skip"), plugins=plugins)
    assert task.labels == ("neg", "pos")
    assert task.summary()["bad_rows"]["reasons"] == {"unknown_label": {"count": 1, "first_rows": [f"{f} row 8"]}}


def test_a_study_with_skipped_rows_reports_them_in_result_json_and_its_summary(
    tmp_path: Path, tiny_model, study_dict, capsys
) -> None:  # type: ignore[no-untyped-def]
    from optprompt.cli.main import main as cli_main
    from optprompt.config import spec_from_dict
    from optprompt.study import StudyRunner

    rows = [json.loads(line) for line in Path(study_dict["task"]["data"]).read_text().splitlines()]
    rows[1]["text"] = ""
    rows[4]["label"] = None
    data = _jsonl(tmp_path / "holes.jsonl", rows)
    raw = {**study_dict, "task": {**study_dict["task"], "data": str(data), "bad_rows": "skip"}}
    raw["strategy"] = {"name": "template_search", "trials": 2}
    result = StudyRunner(spec_from_dict(raw), model=tiny_model, progress=False).run().to_dict()
    bad = result["task"]["bad_rows"]
    assert bad["skipped"] == 2
    assert bad["reasons"]["empty_input"]["first_rows"] == [f"{data} row 2"]
    assert bad["reasons"]["missing_label"]["first_rows"] == [f"{data} row 5"]
    assert sum(result["task"]["sizes"].values()) == len(rows) - 2
    capsys.readouterr()
    assert cli_main(["show", raw["output"]]) == 0
    shown = " ".join(capsys.readouterr().out.split())  # the summary wraps to the terminal
    assert f"task.bad_rows: skip: skipped 2 bad rows: empty_input 1 ({data} row 2)" in shown
