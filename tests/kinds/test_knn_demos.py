"""Per-input demonstrations end to end: template_search studies retrieving kNN demonstrations
on the tiny model, and exported cards that reproduce the study's test predictions exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import optprompt
from optprompt.config import spec_from_dict
from optprompt.errors import OptpromptError
from optprompt.export import export_card
from optprompt.kinds.prompt import CardPredictor, load_card
from optprompt.prompts import SENTINEL, PromptCandidate
from optprompt.study import StudyRunner


def _knn_study(study_dict: dict, *, seed: int = 3, **strategy: object) -> dict:
    knn = {"k": [2, 3], "mmr": [1.0, 0.5], "pool": 12, **strategy.pop("knn", {})}  # type: ignore[dict-item]
    return {
        **study_dict,
        "seed": seed,
        "strategy": {**study_dict["strategy"], "trials": 6, "demos": ["knn"], "knn": knn, **strategy},
        "selection": {"holdout": 0},  # the best on dev wins (held-out selection has its own tests)
    }


def _study_predictions(output: str, labels: list[str]) -> dict[str, str]:
    logged = [json.loads(line) for line in (Path(output) / "predictions.jsonl").read_text().splitlines()]
    return {p["id"]: labels[p["pred"]] for p in logged if p["role"] == "best"}


def _run(study_dict: dict, model, **strategy: object):  # type: ignore[no-untyped-def]
    spec = spec_from_dict(_knn_study(study_dict, **strategy))
    runner = StudyRunner(spec, model=model, progress=False)
    result = runner.run().to_dict()
    assert result["best"]["candidate"].get("retrieval"), "every candidate but the baseline retrieves"
    return spec, runner, result


@pytest.mark.parametrize("calibration", ["none", "mean", "content_free"])
def test_exported_knn_card_predicts_the_studys_test_predictions(study_dict, tiny_model, tmp_path, calibration) -> None:  # type: ignore[no-untyped-def]
    spec, runner, result = _run(study_dict, tiny_model, calibrations=[calibration])
    best = result["best"]
    r = best["retrieval"]
    assert r["k"] in (2, 3) and len(r["pool"]) == 12 and r["vectors"]["rows"] == 12
    assert r["embedder"] == {"ref": str(spec.model), "fingerprint": tiny_model.fingerprint, "task_model": True}
    assert best["demos"] == [] and "retrieved for the input from 12 examples" in best["prompt"]
    out = tmp_path / "card"
    export_card(spec.output, out)
    card = load_card(out)
    assert card.retrieval is not None and card.demos == []
    assert "retrieved for the input" in (out / "prompt.txt").read_text()
    predictor = optprompt.load(out, tiny_model)
    assert isinstance(predictor, CardPredictor)
    test = runner.task.test
    want = _study_predictions(spec.output, list(runner.task.labels))
    got = predictor.predict([e.input for e in test])
    assert got == [want[e.id] for e in test]
    accuracy = sum(p == e.target for p, e in zip(got, test)) / len(test)
    assert accuracy == result["best"]["test"]["value"]


def test_card_formats_exactly_the_prompt_the_study_scored(study_dict, tiny_model, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A card loaded on its own retrieves with the model it names (loaded on first use)."""
    spec, runner, result = _run(study_dict, tiny_model)
    export_card(spec.output, tmp_path / "card")
    card = load_card(tmp_path / "card")  # no embedder lent: format() loads the model the card names
    cand = PromptCandidate.from_dict(result["best"]["candidate"])
    for ex in runner.task.test[:5]:
        req = runner.renderer.request(cand, ex)
        body = card.body(ex.input, SENTINEL)
        assert tiny_model.chat_formatter()([{"role": "user", "content": body}]).replace(SENTINEL, ex.input) == (
            req.prefix + req.suffix
        )
        shown = [d["id"] for d in card.demos_for(ex.input)]
        assert shown == [d.id for d in runner.renderer.demos(cand, ex)]
        assert len(shown) == cand.retrieval.k and ex.id not in shown


def test_a_separate_embedding_model(study_dict, tiny_model, tiny_plain_model_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``knn.embedder`` names any model reference (here pooled at the last token); the card
    records it and loads it to retrieve."""
    spec, runner, result = _run(
        study_dict, tiny_model, knn={"embedder": str(tiny_plain_model_dir), "pooling": ["last"]}
    )
    r = result["best"]["retrieval"]
    assert r["embedder"]["ref"] == str(tiny_plain_model_dir) and r["embedder"]["task_model"] is False
    assert r["pooling"] == "last"
    export_card(spec.output, tmp_path / "card")
    predictor = optprompt.load(tmp_path / "card", tiny_model)
    test = runner.task.test
    want = _study_predictions(spec.output, list(runner.task.labels))
    assert predictor.predict([e.input for e in test]) == [want[e.id] for e in test]


def test_a_card_on_another_model_embeds_its_pool_again(study_dict, tiny_model, tiny_plain_model_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """On another task model (``evaluate --model``) the inputs are embedded with that model,
    so the pool is too: the card's stored vectors are in the study model's space (a model of
    another width failed with "different embedding models")."""
    import numpy as np

    from optprompt.models.loading import load_model
    from optprompt.plugins.manager import load_plugins
    from optprompt.prompts.retrieval import normalise
    from optprompt.scoring.embedding import ModelEmbedder

    spec, _, _ = _run(study_dict, tiny_model)
    export_card(spec.output, tmp_path / "card")
    same = optprompt.load(tmp_path / "card", tiny_model).card
    stored = same._pool().vectors  # the study's model: the stored vectors are used as they are
    other = load_model(str(tiny_plain_model_dir), load_plugins(), progress=False)
    moved = optprompt.load(tmp_path / "card", other).card
    texts = [d["input"] for d in moved.retrieval["pool"]]
    again = normalise(ModelEmbedder(other, pooling=moved.pooling).embed(texts))
    assert np.allclose(moved._pool().vectors, again) and not np.allclose(stored, again)
    assert len(moved.demos_for("the food was lovely")) == moved.retrieval["k"]


def test_a_card_whose_embedding_model_is_missing_says_so(study_dict, tiny_model, tmp_path) -> None:  # type: ignore[no-untyped-def]
    spec, _, _ = _run(study_dict, tiny_model)
    export_card(spec.output, tmp_path / "card")
    path = tmp_path / "card" / "prompt_card.json"
    data = json.loads(path.read_text())
    data["retrieval"]["embedder"]["ref"] = str(tmp_path / "no-such-model")
    path.write_text(json.dumps(data))
    card = load_card(path)
    assert "retrieved for the input" in card.template_text()  # needs no model
    with pytest.raises(
        OptpromptError, match="retrieves its demonstrations per input.*no-such-model.*could not be loaded"
    ):
        card.format("the food was lovely")


def test_default_template_search_keeps_fixed_demonstrations(study_dict, tiny_model) -> None:  # type: ignore[no-untyped-def]
    spec = spec_from_dict(study_dict)
    result = StudyRunner(spec, model=tiny_model, progress=False).run().to_dict()
    assert "retrieval" not in result["best"]["candidate"] and "retrieval" not in result["best"]


def test_mixed_modes_search_both(study_dict, tiny_model) -> None:  # type: ignore[no-untyped-def]
    import optuna

    spec = spec_from_dict(_knn_study(study_dict, trials=10, demos=["fixed", "knn"], sampler="random"))
    StudyRunner(spec, model=tiny_model, progress=False).run().to_dict()
    trials = optuna.load_study(study_name=spec.name, storage=f"sqlite:///{Path(spec.output) / 'study.db'}").trials
    modes = {t.params.get("demos") for t in trials if "demos" in t.params}
    assert modes == {"fixed", "knn"}
    assert all("n_demos" not in t.params for t in trials if t.params.get("demos") == "knn")


def test_words_compared_by_tf_idf_draw_no_pooling(study_dict, tiny_model) -> None:  # type: ignore[no-untyped-def]
    """``knn.pooling`` is searched only for candidates whose similarity uses hidden states:
    a lexical candidate draws none and records the first pooling given."""
    import optuna

    from optprompt.trials.record import records

    knn = {"similarity": ["lexical", "embedding"], "pooling": ["last", "mean"]}
    spec = spec_from_dict(_knn_study(study_dict, trials=8, sampler="random", knn=knn))
    StudyRunner(spec, model=tiny_model, progress=False).run()
    trials = optuna.load_study(study_name=spec.name, storage=f"sqlite:///{Path(spec.output) / 'study.db'}").trials
    drawn = [t for t in trials if "knn_similarity" in t.params]
    lexical = [t for t in drawn if t.params["knn_similarity"] == "lexical"]
    assert lexical and len(lexical) < len(drawn)  # both kinds drawn under this seed
    assert all("knn_pooling" not in t.params for t in lexical)
    assert all("knn_pooling" in t.params for t in drawn if t not in lexical)
    lexical_numbers = {t.number for t in lexical}
    pooled = {r.candidate["retrieval"]["pooling"] for r in records(trials) if r.number in lexical_numbers}
    assert pooled == {"last"}


@pytest.mark.parametrize(
    "strategy,match",
    [
        ({"demos": ["knn", "nearest"]}, r"strategy\.demos\.1"),
        ({"knn": {"k": [0]}}, r"strategy\.knn\.k\.0"),
        ({"knn": {"mmr": [1.2]}}, r"strategy\.knn\.mmr\.0"),
        ({"knn": {"order": ["random"]}}, r"strategy\.knn\.order\.0"),
        ({"knn": {"neighbours": 3}}, r"strategy\.knn\.neighbours"),
    ],
)
def test_bad_knn_options_name_the_key(study_dict, strategy, match) -> None:  # type: ignore[no-untyped-def]
    from optprompt.errors import ConfigError

    with pytest.raises(ConfigError, match=match):
        StudyRunner(spec_from_dict({**study_dict, "strategy": {**study_dict["strategy"], **strategy}})).setup()


def test_multiple_choice_knn_on_a_plain_model(tiny_plain_model, tiny_plain_model_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Multiple choice: demonstrations show their options; balance counts answer positions."""
    import random

    from optprompt_testdata import WORDS

    rng = random.Random(0)
    rows = []
    for i in range(36):
        choices = rng.sample(WORDS, 3)
        rows.append({"id": f"q{i}", "q": " ".join(rng.choices(WORDS, k=6)), "choices": choices, "answer": i % 3})
    data = tmp_path / "mc.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    study = {
        "name": "mc-knn",
        "model": str(tiny_plain_model_dir),
        "seed": 1,
        "output": str(tmp_path / "out"),
        "task": {
            "data": str(data),
            "type": "multiple_choice",
            "input": "q",
            "label": "answer",
            "options": "choices",
            "id": "id",
            "prompt": "Pick the answer.",
            "template": "Question: {input}\nOptions:\n{options}\nAnswer:",
        },
        "strategy": {
            "name": "template_search",
            "trials": 5,
            "demos": ["knn"],
            "knn": {"k": [3], "balance": [True], "pool": 12},
            "calibrations": ["none"],
        },
        "scoring": {"device": "cpu"},
    }
    spec = spec_from_dict(study)
    runner = StudyRunner(spec, model=tiny_plain_model, progress=False)
    result = runner.run().to_dict()
    assert result["best"]["candidate"].get("retrieval")
    pool = result["best"]["retrieval"]["pool"]
    assert all(len(p["options"]) == 3 and p["label"] in {"0", "1", "2"} for p in pool)
    cand = PromptCandidate.from_dict(result["best"]["candidate"])
    for ex in runner.task.test[:4]:
        positions = [d.target_index for d in runner.renderer.demos(cand, ex)]
        assert sorted(positions) == [0, 1, 2]  # balanced: one demonstration per answer position
    export_card(spec.output, tmp_path / "card")
    predictor = optprompt.load(tmp_path / "card", tiny_plain_model)
    test = runner.task.test
    logged = [json.loads(line) for line in (Path(spec.output) / "predictions.jsonl").read_text().splitlines()]
    want = {p["id"]: p["pred"] for p in logged if p["role"] == "best"}
    got = predictor.predict([e.input for e in test], [list(e.options) for e in test])
    assert got == [e.options[want[e.id]] for e in test]


@pytest.mark.parametrize("similarity", ["lexical", "hybrid"])
def test_cards_comparing_words_predict_the_studys_predictions(study_dict, tiny_model, tmp_path, similarity) -> None:  # type: ignore[no-untyped-def]
    """``similarity: lexical`` (TF-IDF over the pool's words) and ``hybrid`` (its cosine
    averaged with the embeddings'): the card rebuilds the vocabulary from its pool's inputs
    and retrieves exactly as the study did; a lexical card stores no vectors and names no model."""
    spec, runner, result = _run(study_dict, tiny_model, knn={"similarity": [similarity]})
    r = result["best"]["retrieval"]
    assert r["similarity"] == similarity
    if similarity == "lexical":
        assert r["vectors"] is None and r["embedder"] is None
    else:
        assert r["vectors"]["rows"] == 12 and r["embedder"]["task_model"] is True
    export_card(spec.output, tmp_path / "card")
    card = load_card(tmp_path / "card")
    cand = PromptCandidate.from_dict(result["best"]["candidate"])
    if similarity == "lexical":  # no model lent, none named: retrieval needs none
        for ex in runner.task.test[:5]:
            assert [d["id"] for d in card.demos_for(ex.input)] == [d.id for d in runner.renderer.demos(cand, ex)]
    predictor = optprompt.load(tmp_path / "card", tiny_model)
    test = runner.task.test
    want = _study_predictions(spec.output, list(runner.task.labels))
    assert predictor.predict([e.input for e in test]) == [want[e.id] for e in test]
