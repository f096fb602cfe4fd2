from __future__ import annotations

import json
from pathlib import Path

import pytest

from optprompt.config.spec import TaskSpec
from optprompt.errors import ConfigError, DataError
from optprompt.tasks import build_task


def _rows(n: int = 40) -> list[dict]:
    return [{"id": f"r{i}", "text": f"text number {i}", "label": "pos" if i % 2 else "neg"} for i in range(n)]


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _spec(data: str | dict, **kw) -> TaskSpec:
    return TaskSpec(data=data, input="text", label="label", **kw)


def test_jsonl_split_is_deterministic_stratified_and_disjoint(tmp_path: Path, plugins) -> None:
    f = _jsonl(tmp_path / "d.jsonl", _rows(40))
    a = build_task(_spec(str(f), id="id"), plugins=plugins, seed=1)
    b = build_task(_spec(str(f), id="id"), plugins=plugins, seed=1)
    c = build_task(_spec(str(f), id="id"), plugins=plugins, seed=2)
    ids = lambda t: ([e.id for e in t.train], [e.id for e in t.dev], [e.id for e in t.test])  # noqa: E731
    assert ids(a) == ids(b)
    assert ids(a) != ids(c)
    assert (len(a.train), len(a.dev), len(a.test)) == (20, 10, 10)
    assert sum(e.target == "pos" for e in a.dev) == 5  # stratified
    all_ids = [i for split in ids(a) for i in split]
    assert len(set(all_ids)) == 40
    assert a.labels == ("neg", "pos")
    assert a.verbalizer == {"neg": "neg", "pos": "pos"}


def test_csv_and_parquet_load_through_datasets(tmp_path: Path, plugins) -> None:
    import pandas as pd

    df = pd.DataFrame(_rows(20))
    df.to_csv(tmp_path / "d.csv", index=False)
    df.to_parquet(tmp_path / "d.parquet")
    for name in ("d.csv", "d.parquet"):
        t = build_task(_spec(str(tmp_path / name)), plugins=plugins)
        assert len(t.train) + len(t.dev) + len(t.test) == 20


def test_bigbench_task_json_multiple_choice(tmp_path: Path, plugins) -> None:
    examples = [{"input": f"q{i}", "target_scores": {"yes": int(i % 2 == 0), "no": int(i % 2 == 1)}} for i in range(12)]
    (tmp_path / "task.json").write_text(json.dumps({"name": "x", "examples": examples}))
    t = build_task(
        TaskSpec(data=str(tmp_path / "task.json"), type="multiple_choice", options="options"), plugins=plugins
    )
    ex = t.dev[0]
    assert ex.options == ("yes", "no")
    assert ex.target == ex.options[ex.target_index]


def test_bigbench_target_scores_without_mc_type_gives_hint(tmp_path: Path, plugins) -> None:
    examples = [{"input": "q", "target_scores": {"yes": 1, "no": 0}}] * 4
    (tmp_path / "task.json").write_text(json.dumps({"examples": examples}))
    with pytest.raises(DataError, match="multiple_choice"):
        build_task(TaskSpec(data=str(tmp_path / "task.json"), label="missing"), plugins=plugins)


def test_given_splits(tmp_path: Path, plugins) -> None:
    rows = _rows(30)
    files = {
        s: str(_jsonl(tmp_path / f"{s}.jsonl", rows[i * 10 : (i + 1) * 10]))
        for i, s in enumerate(["train", "dev", "test"])
    }
    t = build_task(_spec(files, id="id"), plugins=plugins)
    assert [e.id for e in t.dev] == [f"r{i}" for i in range(10, 20)]


def test_missing_data_file_names_the_places_tried(tmp_path: Path, plugins) -> None:
    with pytest.raises(DataError, match=r"data file not found: 'nowhere.jsonl' \(tried .*nowhere.jsonl"):
        build_task(_spec("nowhere.jsonl"), plugins=plugins, base_dir=str(tmp_path))


def test_relative_data_found_next_to_study_file(tmp_path: Path, plugins) -> None:
    _jsonl(tmp_path / "d.jsonl", _rows(20))
    t = build_task(_spec("d.jsonl"), plugins=plugins, base_dir=str(tmp_path))
    assert t.source.endswith("d.jsonl")


def test_label_column_absent(tmp_path: Path, plugins) -> None:
    f = _jsonl(tmp_path / "d.jsonl", _rows(10))
    with pytest.raises(
        DataError, match=r"column 'sentiment' \(from task.label\) is not in the data; columns are: id, text, label"
    ):
        build_task(TaskSpec(data=str(f), input="text", label="sentiment"), plugins=plugins)


def test_label_missing_from_verbalizer_names_the_row(tmp_path: Path, plugins) -> None:
    rows = _rows(20)
    rows[7]["label"] = "neutral"
    f = _jsonl(tmp_path / "d.jsonl", rows)
    with pytest.raises(DataError, match=r"d.jsonl row 8: label 'neutral' has no word in task.verbalizer"):
        build_task(_spec(str(f), verbalizer={"pos": "good", "neg": "bad"}), plugins=plugins)


def test_verbalizer_key_that_is_not_a_label(tmp_path: Path, plugins) -> None:
    f = _jsonl(tmp_path / "d.jsonl", _rows(20))
    with pytest.raises(ConfigError, match=r"task.verbalizer.maybe"):
        build_task(_spec(str(f), verbalizer={"pos": "good", "neg": "bad", "maybe": "eh"}), plugins=plugins)


def test_numeric_labels_need_a_verbalizer(tmp_path: Path, plugins) -> None:
    rows = [{"text": f"t{i}", "label": i % 2} for i in range(20)]
    f = _jsonl(tmp_path / "d.jsonl", rows)
    with pytest.raises(ConfigError, match="labels are numbers"):
        build_task(_spec(str(f)), plugins=plugins)
    t = build_task(_spec(str(f), verbalizer={"0": "bad", "1": "good"}), plugins=plugins)
    assert t.labels == ("0", "1")


def test_empty_dev_split(tmp_path: Path, plugins) -> None:
    f = _jsonl(tmp_path / "d.jsonl", _rows(2))
    with pytest.raises(DataError, match="split is empty"):
        build_task(_spec(str(f), split={"train": 0.8, "dev": 0.1, "test": 0.1}), plugins=plugins)


def test_empty_input_value_names_row(tmp_path: Path, plugins) -> None:
    rows = _rows(10)
    rows[3]["text"] = "  "
    f = _jsonl(tmp_path / "d.jsonl", rows)
    with pytest.raises(DataError, match=r"row 4: column 'text' is empty"):
        build_task(_spec(str(f)), plugins=plugins)


def test_bad_json_line_is_named(tmp_path: Path, plugins) -> None:
    f = tmp_path / "d.jsonl"
    f.write_text('{"text": "a", "label": "x"}\n{"text": oops}\n')
    with pytest.raises(DataError, match=r"d.jsonl line 2: not valid JSON"):
        build_task(_spec(str(f)), plugins=plugins)


def test_duplicate_ids(tmp_path: Path, plugins) -> None:
    rows = _rows(10)
    rows[5]["id"] = "r1"
    f = _jsonl(tmp_path / "d.jsonl", rows)
    with pytest.raises(DataError, match="'r1' is not unique"):
        build_task(_spec(str(f), id="id"), plugins=plugins)


def test_multiple_choice_label_as_index_or_text(tmp_path: Path, plugins) -> None:
    rows = [
        {
            "q": f"q{i}",
            "choices": ["red", "green", "blue"],
            "answer": i % 3 if i % 2 else ["red", "green", "blue"][i % 3],
        }
        for i in range(12)
    ]
    f = _jsonl(tmp_path / "mc.jsonl", [{**r, "answer": str(r["answer"])} for r in rows])
    t = build_task(
        TaskSpec(data=str(f), type="multiple_choice", input="q", label="answer", options="choices"), plugins=plugins
    )
    for ex in t.train + t.dev + t.test:
        i = int(ex.input[1:])
        assert ex.target == ["red", "green", "blue"][i % 3]
    rows[0]["answer"] = "purple"
    f2 = _jsonl(tmp_path / "mc2.jsonl", rows)
    with pytest.raises(DataError, match="row 1: label 'purple' is neither one of the options"):
        build_task(
            TaskSpec(data=str(f2), type="multiple_choice", input="q", label="answer", options="choices"),
            plugins=plugins,
        )
