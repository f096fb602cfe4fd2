"""Extraction studies end to end on the tiny model: scoring by generation, entity F1, the
paired test over sentences, export and reload of the winning card."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import optprompt
from optprompt.config import spec_from_dict
from optprompt.errors import OptpromptError
from optprompt.export import export_card
from optprompt.plugins import load_plugins
from optprompt.scoring.backends.causal import CausalLMBackend
from optprompt.study import run_study
from optprompt.tasks import build_task

PEOPLE = ["Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra", "Barbara Liskov"]
ORGS = ["Acme Corp", "Globex", "Initech", "Umbrella Labs"]
PLACES = ["Paris", "Lagos", "Oslo", "Lima", "Kyoto", "Perth"]


def _write_conll(path: Path, n: int = 40) -> dict[str, list[tuple[str, str]]]:
    """Sentences "P joined O in L on day i ." as CoNLL; returns text -> gold (type, text) pairs."""
    blocks, gold = [], {}
    for i in range(n):
        p, o, loc = PEOPLE[i % 5], ORGS[i % 4], PLACES[i % 6]
        rows = [(w, "B-PER" if k == 0 else "I-PER") for k, w in enumerate(p.split())]
        rows += [("joined", "O")] + [(w, "B-ORG" if k == 0 else "I-ORG") for k, w in enumerate(o.split())]
        rows += [("in", "O"), (loc, "B-LOC"), ("on", "O"), ("day", "O"), (str(i), "O"), (".", "O")]
        blocks.append("\n".join(f"{w} {t}" for w, t in rows))
        gold[" ".join(w for w, _ in rows)] = [("PER", p), ("ORG", o), ("LOC", loc)]
    path.write_text("\n\n".join(blocks) + "\n")
    return gold


def _study(tmp_path: Path, model_dir: Path, data: Path, **strategy: object) -> dict:
    return {
        "name": "tiny-ner",
        "model": str(model_dir),
        "seed": 0,
        "output": str(tmp_path / "out"),
        "task": {
            "data": str(data),
            "type": "extraction",
            "descriptions": {"PER": "people", "ORG": "companies", "LOC": "places"},
            "max_new_tokens": 8,
        },
        "strategy": {"name": "template_search", "trials": 5, "max_demos": 2, "demo_pool": 4, **strategy},
        "scoring": {"device": "cpu"},
    }


def _predictions(out: Path, role: str) -> list[dict]:
    lines = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    return [p for p in lines if p["role"] == role]


def _inputs(spec, ids: list[str]) -> list[str]:  # type: ignore[no-untyped-def]
    task = build_task(spec.task, plugins=load_plugins(), seed=spec.seed)
    return [task.example(i).input for i in ids]


def test_extraction_study_on_a_random_model_counts_format_failures_and_reloads(
    tmp_path: Path, tiny_model_dir: Path, tiny_model
) -> None:  # type: ignore[no-untyped-def]
    _write_conll(tmp_path / "d.conll")
    spec = spec_from_dict(_study(tmp_path, tiny_model_dir, tmp_path / "d.conll"))
    result = run_study(spec, model=tiny_model, progress=False).to_dict()
    out = Path(spec.output)
    assert result["task"]["type"] == "extraction" and result["task"]["metric"] == "entity_f1"
    assert result["task"]["labels"] == ["PER", "ORG", "LOC"]  # the order of task.descriptions
    metrics = set(result["best"]["test"]["metrics"])
    assert metrics == {"entity_f1", "entity_macro_f1", "entity_precision", "entity_recall"}
    assert result["comparison"]["test"] == "paired-bootstrap"
    assert result["comparison"]["n"] == result["task"]["sizes"]["test"]
    assert "Entity types: PER (people), ORG (companies), LOC (places)." in result["baseline"]["prompt"]
    assert "TYPE: text" in result["baseline"]["prompt"]  # the prompt states the output format
    preds = _predictions(out, "best")
    # The random model writes junk: each unreadable answer is a counted failure scoring 0.
    failures = sum(p["pred"] is None for p in preds)
    assert failures > 0
    assert failures == result["best"]["test"]["format_failures"]
    assert all(p["score"] == 0.0 for p in preds if p["pred"] is None)
    assert all(len(p["gold"]) == 3 and p["output"] is not None for p in preds)

    # Resuming scores nothing again; changing the baseline's output format is refused.
    again = run_study(spec, model=tiny_model, progress=False).to_dict()
    assert again["best"]["hash"] == result["best"]["hash"] and again["n_trials"] == result["n_trials"]
    other = _study(tmp_path, tiny_model_dir, tmp_path / "d.conll")
    other["task"]["output_format"] = "json"
    with pytest.raises(OptpromptError, match="prompt"):
        run_study(spec_from_dict(other), model=tiny_model, progress=False)

    export_card(out, tmp_path / "card")
    card = json.loads((tmp_path / "card" / "prompt_card.json").read_text())
    assert card["task_type"] == "extraction" and card["output_format"] in ("lines", "json", "inline")
    predictor = optprompt.load(tmp_path / "card", model=tiny_model)
    assert predictor.predict(_inputs(spec, [p["id"] for p in preds])) == [p["pred"] for p in preds]


@pytest.fixture
def json_oracle(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The causal backend's generate replaced by a 'model' that answers perfectly in JSON
    when the prompt asks for JSON, and with junk otherwise."""
    gold: dict[str, list[tuple[str, str]]] = {}

    def generate(self, prompts, settings):  # type: ignore[no-untyped-def]
        outs = []
        for prompt in prompts:
            # The query is the last sentence of the data in the prompt (demonstrations come first).
            text = max(gold, key=lambda t: prompt.rfind(t))
            if "JSON list" in prompt:
                outs.append(json.dumps([{"type": t, "text": x} for t, x in gold[text]]) + "\n\nText:")
            else:
                outs.append("I am not sure what you mean.")
        return outs

    monkeypatch.setattr(CausalLMBackend, "generate", generate)
    return gold


def test_the_study_finds_the_format_the_model_follows_and_the_card_reproduces_it(
    tmp_path: Path, tiny_model_dir: Path, tiny_model, json_oracle
) -> None:  # type: ignore[no-untyped-def]
    json_oracle.update(_write_conll(tmp_path / "d.conll"))
    raw = _study(tmp_path, tiny_model_dir, tmp_path / "d.conll", output_formats=["json"], trials=3)
    spec = spec_from_dict(raw)
    result = run_study(spec, model=tiny_model, progress=False).to_dict()
    out = Path(spec.output)
    n_test = result["task"]["sizes"]["test"]
    base, best = result["baseline"]["test"], result["best"]["test"]
    assert base["value"] == 0.0 and base["format_failures"] == n_test  # lines asked, junk answered
    assert best["value"] == 1.0 and best["metrics"]["entity_macro_f1"] == 1.0
    assert "format_failures" not in best
    assert result["best"]["candidate"]["output_format"] == "json"
    comparison = result["comparison"]
    assert comparison["difference"]["estimate"] == 1.0 and comparison["p_value"] < 0.01
    assert result["format_failures"] == {"test_baseline": n_test}

    export_card(out, tmp_path / "card")
    predictor = optprompt.load(tmp_path / "card", model=tiny_model)
    preds = _predictions(out, "best")
    texts = _inputs(spec, [p["id"] for p in preds])
    got = predictor.predict(texts)
    assert got == [p["pred"] for p in preds]
    assert [[(e["type"], e["text"]) for e in g] for g in got] == [json_oracle[t] for t in texts]
    assert all(t[e["start"] : e["end"]] == e["text"] for t, g in zip(texts, got) for e in g)


def test_soft_prompt_trains_on_the_serialised_entities_and_scores_by_generation(
    tmp_path: Path, tiny_model_dir: Path, tiny_model
) -> None:  # type: ignore[no-untyped-def]
    import optuna
    from optprompt_plugins.soft_prompt.strategy import HISTORY_ATTR

    from optprompt.adapters.training import training_items
    from optprompt.study.runner import StudyRunner

    _write_conll(tmp_path / "d.conll", n=24)
    raw = _study(tmp_path, tiny_model_dir, tmp_path / "d.conll")
    raw["task"]["output_format"] = "json"
    raw["strategy"] = {
        "name": "soft_prompt",
        "trials": 2,
        "methods": ["prompt_tuning"],
        "epochs": [2, 2],
        "min_steps": 0,
        "virtual_tokens": [4],
        "lr": {"prompt_tuning": 0.3},
        "init": ["vocab"],
    }
    raw["scoring"]["cache"] = False
    spec = spec_from_dict(raw)
    runner = StudyRunner(spec, model=tiny_model, progress=False)
    result = runner.run().to_dict()
    # What the adapter is trained on: the gold entities in the candidate's format, after the prompt.
    items, _ = training_items(runner.baseline, runner.task.train[:1], runner.renderer, tiny_model.tokenizer, chat=True)
    ex = runner.task.train[0]
    *answer, end = items[0].choices[0]
    assert tiny_model.tokenizer.decode(answer) == json.dumps([{"type": e.type, "text": e.text} for e in ex.entities])
    # ... followed by the end of sequence, where decoding stops: the adapter learns when the list ends.
    assert tiny_model.tokenizer.eos_token_id is not None and end == tiny_model.tokenizer.eos_token_id
    trial = optuna.load_study(study_name=spec.name, storage=f"sqlite:///{Path(spec.output) / 'study.db'}").trials[1]
    history = trial.user_attrs[HISTORY_ATTR]
    assert len(history) == 2 and history[1]["train_loss"] < history[0]["train_loss"]
    assert result["best"]["test"]["metric"] == "entity_f1" and result["comparison"]["test"] == "paired-bootstrap"


def test_distillation_from_an_exported_extraction_card(
    tmp_path: Path, tiny_model_dir: Path, tiny_model, json_oracle
) -> None:  # type: ignore[no-untyped-def]
    """The teacher is the card of a finished study (it follows JSON); it labels train and
    unlabelled sentences, and is scored on test against the student."""
    json_oracle.update(_write_conll(tmp_path / "d.conll"))
    teacher_spec = spec_from_dict(_study(tmp_path / "t", tiny_model_dir, tmp_path / "d.conll", output_formats=["json"]))
    run_study(teacher_spec, model=tiny_model, progress=False)
    export_card(teacher_spec.output, tmp_path / "teacher-card")

    unlabeled = ["Grace Hopper visited Initech in Lima", "Alan Turing left Globex for Oslo"]
    json_oracle.update({unlabeled[0]: [("PER", "Grace Hopper"), ("ORG", "Initech"), ("LOC", "Lima")],
                        unlabeled[1]: [("PER", "Alan Turing"), ("ORG", "Globex"), ("LOC", "Oslo")]})  # fmt: skip
    (tmp_path / "u.jsonl").write_text("".join(json.dumps({"input": t}) + "\n" for t in unlabeled))
    raw = _study(tmp_path / "s", tiny_model_dir, tmp_path / "d.conll", trials=2)
    raw["teacher"] = str(tmp_path / "teacher-card")
    raw["task"]["unlabeled"] = str(tmp_path / "u.jsonl")
    from optprompt.study.runner import StudyRunner

    runner = StudyRunner(spec_from_dict(raw), model=tiny_model, progress=False)
    result = runner.run().to_dict()
    train = runner.task.train
    assert [ex.input for ex in train[-2:]] == unlabeled and train[-1].id == "unlabeled:row2"
    last = train[-1]
    assert [(e.type, last.input[e.start : e.end]) for e in last.entities] == [
        ("PER", "Alan Turing"),
        ("ORG", "Globex"),
        ("LOC", "Oslo"),
    ]
    assert all(sorted((e.type, e.text) for e in ex.entities) == sorted(json_oracle[ex.input]) for ex in train)
    t = result["teacher"]
    assert t["train_labelled"] == len(train) - 2 and t["unlabeled_labelled"] == 2 and t["dropped"] == 0
    assert t["test"]["value"] == 1.0 and t["test"]["metric"] == "entity_f1"
    assert t["comparison"]["difference"]["estimate"] == pytest.approx(1.0 - result["baseline"]["test"]["value"])


@pytest.mark.filterwarnings("ignore:strategy '(evolution|auto)' is experimental")
def test_auto_runs_every_family_on_an_extraction_task(tmp_path: Path, tiny_model_dir: Path, tiny_model) -> None:  # type: ignore[no-untyped-def]
    _write_conll(tmp_path / "d.conll", n=24)
    raw = _study(tmp_path, tiny_model_dir, tmp_path / "d.conll")
    raw["strategy"] = {
        "name": "auto",
        "trials": 10,
        "budget": {"dev_examples": 60},
        "template_search": {"max_demos": 1, "demo_pool": 2},
        "evolution": {"population": 2, "generations": 1, "operators": "edit"},
        "soft_prompt": {"methods": ["prompt_tuning"], "epochs": [1, 1], "virtual_tokens": [4], "init": ["vocab"]},
        "schedule": "shares",
        "shares": {"template_search": 0.3, "evolution": 0.3, "soft_prompt": 0.4},
    }
    raw["scoring"]["cache"] = False
    result = run_study(spec_from_dict(raw), model=tiny_model, progress=False).to_dict()
    families = result["families"]
    assert set(families) == {"template_search", "evolution", "soft_prompt"}
    for fam in families.values():
        assert fam["trials"] >= 1
        if "best" in fam:
            assert fam["best"]["test"]["metric"] == "entity_f1"
            assert fam["comparison"]["test"] == "paired-bootstrap"
