"""A new task type from a plugin package alone: registered, validated, built and scored.

``optprompt_yes_no_task`` (next to this file) registers a ``yes_no`` task type through the
``register_task_types`` hook; no core file names it. A study on it runs end to end on a
tiny random model, through the same code paths as the built-in types.
"""

from __future__ import annotations

import json
from pathlib import Path

import optprompt_yes_no_task
import optuna
import pytest

from optprompt.config import spec_from_dict
from optprompt.errors import ConfigError, DataError, PluginError
from optprompt.plugins import get_plugin_manager, hookimpl, load_plugins
from optprompt.study import StudyRunner
from optprompt.tasks import Classification, ScoringPath, TaskType, build_task

_FORMS = [True, False, "yes", "no", "Y", "N", 1, 0, "true", "false"]


@pytest.fixture
def yes_no_plugins():  # type: ignore[no-untyped-def]
    return load_plugins(get_plugin_manager(extra_plugins=[optprompt_yes_no_task]))


@pytest.fixture
def yes_no_file(tmp_path: Path) -> Path:
    path = tmp_path / "questions.jsonl"
    rows = [{"id": f"q{i}", "q": f"is {i} an even number?", "a": _FORMS[(i % 2) + 2 * (i % 5)]} for i in range(40)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def raw_spec(yes_no_file: Path, tmp_path: Path, tiny_model_dir: Path) -> dict:
    return {
        "name": "yes-no",
        "model": str(tiny_model_dir),
        "output": str(tmp_path / "out"),
        "task": {"data": str(yes_no_file), "type": "yes_no", "input": "q", "label": "a", "id": "id"},
        "strategy": {"name": "template_search", "trials": 4, "max_demos": 1, "demo_pool": 4},
        "scoring": {"device": "cpu"},
    }


def test_the_type_is_registered_with_its_source(yes_no_plugins) -> None:  # type: ignore[no-untyped-def]
    entry = yes_no_plugins.task_types.get("yes_no")
    assert isinstance(entry.obj, optprompt_yes_no_task.YesNo) and "registered in code" in entry.source
    assert yes_no_plugins.task_types.names() == [
        "classification",
        "extraction",
        "generation",
        "multi_label",
        "multiple_choice",
        "yes_no",
    ]
    assert "yes_no" not in load_plugins().task_types  # nothing global: a fresh manager does not see it


def test_the_spec_accepts_it_only_where_it_is_registered(raw_spec, yes_no_plugins) -> None:  # type: ignore[no-untyped-def]
    assert spec_from_dict(raw_spec, plugins=yes_no_plugins).task.type == "yes_no"
    with pytest.raises(ConfigError, match=r"task\.type: .*unknown task type 'yes_no'; known: classification, "):
        spec_from_dict(raw_spec)
    # The type checks the task section it is given.
    bad = {**raw_spec, "task": {**raw_spec["task"], "labels": ["a", "b"]}}
    with pytest.raises(ConfigError, match="a yes_no task's labels are always no and yes"):
        spec_from_dict(bad, plugins=yes_no_plugins)


def test_a_task_is_built_with_the_types_own_parsing(raw_spec, yes_no_plugins, yes_no_file) -> None:  # type: ignore[no-untyped-def]
    spec = spec_from_dict(raw_spec, plugins=yes_no_plugins)
    task = build_task(spec.task, plugins=yes_no_plugins, seed=0)
    assert task.type == "yes_no" and isinstance(task.task_type, optprompt_yes_no_task.YesNo)
    assert task.labels == ("no", "yes") and task.verbalizer == {"no": "no", "yes": "yes"}
    assert task.instruction == "Answer the question with {labels}." and task.metric == "accuracy"
    assert task.ranks_answers and task.has_fixed_labels and not task.generates
    rows = {json.loads(line)["id"]: json.loads(line)["a"] for line in yes_no_file.read_text().splitlines()}
    for ex in task.train + task.dev + task.test:
        truthy = str(rows[ex.id]).lower() in ("true", "yes", "y", "1")
        assert ex.target == ("yes" if truthy else "no") and task.labels[ex.target_index] == ex.target
    # A row it cannot read names the row and the column.
    with yes_no_file.open("a") as f:
        f.write(json.dumps({"id": "q-bad", "q": "is this a question?", "a": "maybe"}) + "\n")
    with pytest.raises(DataError, match=r"row 41: column 'a' holds 'maybe', not a yes or a no"):
        build_task(spec.task, plugins=yes_no_plugins, seed=0)


def test_a_study_on_the_plugin_type_runs_end_to_end(raw_spec, yes_no_plugins, tiny_model) -> None:  # type: ignore[no-untyped-def]
    spec = spec_from_dict(raw_spec, plugins=yes_no_plugins)
    runner = StudyRunner(spec, plugins=yes_no_plugins, model=tiny_model, progress=False)
    result = runner.run().to_dict()
    assert result["task"]["type"] == "yes_no" and result["task"]["labels"] == ["no", "yes"]
    best = result["best"]["test"]
    assert best["n"] == len(runner.task.test) and best["metric"] == "accuracy"
    # Ranked like classification: predictions are label indices, and accuracy is their hit rate.
    logged = [json.loads(line) for line in (Path(spec.output) / "predictions.jsonl").read_text().splitlines()]
    for role in ("baseline", "best"):
        mine = [p for p in logged if p["role"] == role]
        assert len(mine) == len(runner.task.test) and {p["pred"] for p in mine} <= {0, 1}
        hits = sum(p["pred"] == p["gold"] for p in mine) / len(mine)
        assert result[role]["test"]["value"] == pytest.approx(hits)
    # The search tried the type's own template variants (strategies ask the task type).
    trials = optuna.load_study(study_name="yes-no", storage=f"sqlite:///{Path(spec.output) / 'study.db'}").trials
    templates = {t.params["template"] for t in trials if "template" in t.params}
    assert templates <= {runner.task.template, *optprompt_yes_no_task.YesNo.template_variants}


def test_a_second_type_with_a_built_in_name_is_refused() -> None:
    class Twin(Classification):
        """Another classification."""

    class TwinPlugin:
        @hookimpl
        def register_task_types(self, register):  # type: ignore[no-untyped-def]
            register(Twin)

    with pytest.raises(PluginError, match="task type 'classification' is registered twice"):
        load_plugins(get_plugin_manager(extra_plugins=[TwinPlugin()]))


def test_what_is_registered_must_be_a_complete_task_type() -> None:
    class NotAType:
        @hookimpl
        def register_task_types(self, register):  # type: ignore[no-untyped-def]
            register(dict)

    with pytest.raises(PluginError, match="not a TaskType subclass"):
        load_plugins(get_plugin_manager(extra_plugins=[NotAType()]))

    class Half(TaskType):
        """No way to read a row."""

        name = "half"
        scoring = ScoringPath.GENERATE
        default_instruction = "Answer."
        default_metric = "exact_match"

    class HalfPlugin:
        @hookimpl
        def register_task_types(self, register):  # type: ignore[no-untyped-def]
            register(Half)

    with pytest.raises(PluginError, match="task type 'half' cannot be instantiated"):
        load_plugins(get_plugin_manager(extra_plugins=[HalfPlugin()]))


def test_a_task_names_or_holds_its_type(yes_no_plugins) -> None:  # type: ignore[no-untyped-def]
    import dataclasses

    from optprompt.tasks import Task

    by_name = Task("t", "multiple_choice", [], [], [])
    assert by_name.type == "multiple_choice" and by_name.has_options and not by_name.has_fixed_labels
    held = Task("t", yes_no_plugins.task_types.get("yes_no").obj, [], [], [], labels=("no", "yes"))
    assert held.type == "yes_no" and held.task_type.name == "yes_no"
    assert dataclasses.replace(held, labels=("no", "yes")).task_type is held.task_type  # survives a copy
    # A name no installed plugin registers (a type registered in code is passed itself).
    with pytest.raises(PluginError, match=r"unknown task type 'yes_no'; known: classification, extraction"):
        Task("t", "yes_no", [], [], [])


def test_the_default_type_and_its_rules_come_from_the_registry(raw_spec, yes_no_plugins) -> None:  # type: ignore[no-untyped-def]
    task = {k: v for k, v in raw_spec["task"].items() if k != "type"}
    assert spec_from_dict({**raw_spec, "task": task}, plugins=yes_no_plugins).task.type == "classification"
    described = {**raw_spec, "task": {**raw_spec["task"], "descriptions": {"yes": "agreement"}}}
    with pytest.raises(ConfigError, match="descriptions describe entity types: they need type: extraction"):
        spec_from_dict(described, plugins=yes_no_plugins)


def test_a_subclass_of_the_default_type_is_not_the_default(raw_spec) -> None:  # type: ignore[no-untyped-def]
    class Sentiment(Classification):
        """Classification under another name."""

        name = "sentiment"

    class SentimentPlugin:
        @hookimpl
        def register_task_types(self, register):  # type: ignore[no-untyped-def]
            register(Sentiment)

    plugins = load_plugins(get_plugin_manager(extra_plugins=[SentimentPlugin()]))
    task = {k: v for k, v in raw_spec["task"].items() if k != "type"}
    assert spec_from_dict({**raw_spec, "task": task}, plugins=plugins).task.type == "classification"
