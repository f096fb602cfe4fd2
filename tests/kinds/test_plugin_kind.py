"""A new candidate kind from a plugin package alone: a whole study, export and load back.

``optprompt_ensemble_kind`` (next to this file) registers an ``ensemble`` kind and a
strategy proposing ensembles through the plugin hooks; no core file names it.
"""

from __future__ import annotations

import json
from pathlib import Path

import optprompt_ensemble_kind
import pytest

import optprompt
from optprompt.cli.output import print_result
from optprompt.config import spec_from_dict
from optprompt.errors import PluginError
from optprompt.export import export_card
from optprompt.kinds import EXPORT_FILE, CandidateKind
from optprompt.plugins import get_plugin_manager, hookimpl, load_plugins
from optprompt.study import StudyRunner


@pytest.fixture
def ensemble_plugins():  # type: ignore[no-untyped-def]
    """A fresh plugin manager with the ensemble plugin registered in code."""
    return load_plugins(get_plugin_manager(extra_plugins=[optprompt_ensemble_kind]))


def test_the_kind_is_registered_with_its_source(ensemble_plugins) -> None:  # type: ignore[no-untyped-def]
    entry = ensemble_plugins.kinds.get("ensemble")
    assert entry.obj is optprompt_ensemble_kind.EnsembleKind
    assert "registered in code" in entry.source
    assert ensemble_plugins.kinds.names() == ["ensemble", "prompt", "prompt_adapter", "prompt_ensemble", "soft"]
    assert "ensemble" not in load_plugins().kinds  # nothing global: a fresh manager does not see it


def test_a_study_runs_exports_and_loads_back_a_plugin_kind(ensemble_plugins, study_dict, tiny_model, capsys) -> None:  # type: ignore[no-untyped-def]
    # Picked as the best on dev (held-out selection and do-no-harm have their own tests).
    raw = {**study_dict, "strategy": {"name": "ensemble_search", "trials": 5}, "selection": {"holdout": 0}}
    spec = spec_from_dict(raw)
    runner = StudyRunner(spec, plugins=ensemble_plugins, model=tiny_model, progress=False)
    result = runner.run().to_dict()
    kinds = [json.loads(json.dumps(t["candidate"])).get("kind") for t in (result["baseline"], result["best"])]
    assert kinds == [None, "ensemble"]  # the baseline is a prompt; an ensemble won on dev
    best = result["best"]
    assert best["test"]["n"] == len(runner.task.test) and len(best["members"]) >= 1

    # The kind describes its candidates where the CLI prints them.
    print_result(result, output=spec.output, plugins=ensemble_plugins, wide=True)
    shown = capsys.readouterr().out
    assert "--- ensemble: " in shown and "member prompt cards" in shown

    # Exported in its own format, then loaded back with one call: the study's test predictions.
    out = Path(spec.output).parent / "export"
    export_card(spec.output, out, plugins=ensemble_plugins)
    assert json.loads((out / EXPORT_FILE).read_text())["kind"] == "ensemble"
    predictor = optprompt.load(out, tiny_model, plugins=ensemble_plugins)
    predicted = predictor.predict([e.input for e in runner.task.test])
    logged = [json.loads(line) for line in (Path(spec.output) / "predictions.jsonl").read_text().splitlines()]
    labels = list(runner.task.labels)
    by_id = {p["id"]: labels[p["pred"]] for p in logged if p["role"] == "best"}
    assert predicted == [by_id[e.id] for e in runner.task.test]


def test_a_second_kind_with_the_same_name_is_refused() -> None:
    class Twin(CandidateKind):
        """Another ensemble."""

        name = "ensemble"

        # Refused at registration: neither method is ever called.
        def export(self, result, output, to, member=None):  # type: ignore[no-untyped-def]
            raise AssertionError("a refused kind exported something")

        def load(self, path, model=None, **options):  # type: ignore[no-untyped-def]
            raise AssertionError("a refused kind loaded something")

    class TwinPlugin:
        @hookimpl
        def register_candidate_kinds(self, register):  # type: ignore[no-untyped-def]
            register(Twin)

    pm = get_plugin_manager(extra_plugins=[optprompt_ensemble_kind, TwinPlugin()])
    with pytest.raises(PluginError, match="candidate kind 'ensemble' is registered twice"):
        load_plugins(pm)


def test_a_kind_must_be_a_candidate_kind_subclass() -> None:
    class Bad:
        @hookimpl
        def register_candidate_kinds(self, register):  # type: ignore[no-untyped-def]
            register(dict)

    with pytest.raises(PluginError, match="not a CandidateKind subclass"):
        load_plugins(get_plugin_manager(extra_plugins=[Bad()]))
