"""Guided decoding through the real vLLM server: a served multi-label study measures its
constrained-generation figure with the server's grammar-guided decoding, and the files an
export writes for serving stacks (``answers.gbnf``, ``answers.schema.json``) are accepted by
vLLM's structured outputs and constrain what it writes to the answer set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import optprompt
from optprompt.config import spec_from_dict
from optprompt.evaluation import evaluate
from optprompt.kinds.prompt.constrained import constrained_predict
from optprompt.scoring.backends import ServedBackend
from optprompt.tasks.answer_formats import answer_grammar, answer_schema
from optprompt.tasks.types import parse_label_list

pytestmark = pytest.mark.served

KEY_ENV = "OPTPROMPT_TEST_VLLM_KEY"
TICKETS = Path(__file__).resolve().parents[2] / "studies" / "data" / "tickets.jsonl"
LABELS = ["account", "billing", "bug", "login", "refund", "shipping"]


@pytest.fixture
def keyed(vllm_server, monkeypatch: pytest.MonkeyPatch) -> dict:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(KEY_ENV, vllm_server.api_key)
    return {"url": vllm_server.url, "api_key_env": KEY_ENV}


@pytest.fixture
def tickets(tmp_path: Path) -> Path:
    rows = TICKETS.read_text().splitlines(keepends=True)[:40]
    (tmp_path / "tickets.jsonl").write_text("".join(rows))
    return tmp_path / "tickets.jsonl"


def _in_language(text: str) -> bool:
    """Whether ``text`` is a label list of the grammar (", "-separated labels or ``none``,
    after an optional space); the last item may be cut by the token budget."""
    items = text.strip().rstrip(",").split(", ")  # cut after a label, inside ", "
    if items == ["none"]:
        return True
    *whole, last = items
    return all(i in LABELS for i in whole) and any(lbl.startswith(last) for lbl in LABELS) and bool(last)


def test_a_served_multi_label_study_measures_guided_decoding_and_its_exports_serve(
    keyed, vllm_server, tickets: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from optprompt.study.runner import run_study

    task = {"data": str(tickets), "type": "multi_label", "input": "text", "label": "labels_text",
            "label_separator": "|", "id": "id", "max_new_tokens": 12,
            "prompt": "Which topics does the ticket raise?"}  # fmt: skip
    spec = spec_from_dict(
        {
            "name": "served-tickets",
            "model": keyed,
            "seed": 0,
            "output": str(tmp_path / "study"),
            "task": task,
            "strategy": {"name": "template_search", "trials": 2, "max_demos": 1, "demo_pool": 2},
            "selection": {"holdout": 0},
        }
    )
    result = run_study(spec, progress=False)
    served = result.constrained_generation
    assert served is not None and served["metric"] == "label_f1" and 0.0 <= served["value"] <= 1.0

    export = tmp_path / "export"
    optprompt.export_card(spec.output, export)
    grammar = (export / "answers.gbnf").read_text()
    schema = json.loads((export / "answers.schema.json").read_text())
    texts = [json.loads(line)["text"] for line in tickets.read_text().splitlines()[:8]]
    predictor = optprompt.load(export, keyed)
    try:
        backend = predictor.backend
        assert isinstance(backend, ServedBackend)
        prompts = [predictor.prompt(t) for t in texts]
        # The exported grammar, as vLLM's structured outputs take it: every answer is a label list.
        by_grammar = backend.guided(prompts, {"grammar": grammar}, 48)
        assert all(_in_language(t) for t in by_grammar), by_grammar
        # The exported JSON schema: every answer is a JSON array of labels.
        by_schema = backend.guided(prompts, {"json": schema}, 64)
        arrays = [json.loads(t) for t in by_schema]
        assert all(isinstance(a, list) and set(a) <= set(LABELS) for a in arrays), by_schema
        assert [parse_label_list(t, LABELS) for t in by_schema] == [list(dict.fromkeys(a)) for a in arrays]
        # What the study measured goes through the same grammar: label lists, each label once.
        measured = constrained_predict(predictor, texts)
        assert all(m == "none" or set(m.split(", ")) <= set(LABELS) for m in measured), measured
        assert all(len(m.split(", ")) == len(set(m.split(", "))) for m in measured)
    finally:
        predictor.loaded.close()

    # On new data, through the server and in-process: both constrained figures are measured.
    new = tmp_path / "new.jsonl"
    new.write_text("".join(TICKETS.read_text().splitlines(keepends=True)[150:170]))
    columns = {"input": "text", "label": "labels"}
    through = evaluate(export, new, model=keyed, columns=columns, constrained=True, output=tmp_path / "s.json")
    local = evaluate(export, new, model=str(vllm_server.model_dir), columns=columns, constrained=True, output=None)
    assert through.target.constrained is not None and local.target.constrained is not None
    assert through.target.value == pytest.approx(local.target.value, abs=0.1)  # the answers written (greedy)
    print(
        f"multi-label constrained label_f1: served {through.target.constrained.value:.3f}, "
        f"in-process {local.target.constrained.value:.3f}; ranked {through.target.value:.3f}"
    )


def test_a_classification_schema_and_grammar_constrain_vllm_to_the_answers(keyed) -> None:  # type: ignore[no-untyped-def]
    from optprompt.models import connect

    served = connect(keyed)
    try:
        backend = ServedBackend(served)
        chat = served.chat_formatter()
        prompts = [
            chat([{"role": "user", "content": f"Is this review positive or negative?\nReview: {t}"}])
            for t in ("I loved it.", "Dull and far too long.", "meh")
        ]
        words = ["positive", "negative"]
        assert set(backend.guided(prompts, {"grammar": answer_grammar(words)}, 8)) <= set(words)
        assert {json.loads(t) for t in backend.guided(prompts, {"json": answer_schema(words)}, 8)} <= set(words)
    finally:
        served.close()
