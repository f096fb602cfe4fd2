"""An exported LoRA winner served by the real vLLM server (loaded at run time into the
session's server, which serves LoRA): evaluated through the server it predicts what it
predicts in-process, its log-likelihoods agree within 1e-3 and differ from the base
model's (the adapter is applied), and a server that does not serve it is named clearly."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import serve_vllm
from optprompt_testdata import export_lora, soft_study_dict, write_sentiment_jsonl

import optprompt
from optprompt.cli.main import main as cli_main
from optprompt.config import spec_from_dict
from optprompt.errors import ModelError
from optprompt.evaluation import evaluate
from optprompt.kinds.soft.served import ServedAdapter
from optprompt.models import load_model
from optprompt.plugins import load_plugins
from optprompt.study.runner import StudyRunner

pytestmark = pytest.mark.served

KEY_ENV = "OPTPROMPT_TEST_VLLM_KEY"
NAME = f"sentiment-lora-{os.getpid()}"  # one per session: a reused server (OPTPROMPT_TEST_VLLM_URL) keeps old ones


@pytest.fixture(scope="module")
def lora_export(vllm_server, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, object]:
    """A LoRA adapter trained on SmolLM2 (rank 4, one epoch), exported, and loaded into the
    session's server as ``sentiment-lora``; with its data and the in-process model."""
    tmp = tmp_path_factory.mktemp("lora")
    smollm2 = load_model(str(vllm_server.model_dir), load_plugins(), device="cpu", dtype="float32", progress=False)
    data = write_sentiment_jsonl(tmp / "sentiment.jsonl", n=24)
    spec = spec_from_dict(soft_study_dict(data, vllm_server.model_dir, tmp / "study", trials=2))
    runner = StudyRunner(spec, model=smollm2, progress=False)
    runner.setup()
    export = export_lora(runner, tmp / "export", lr=0.02)
    serve_vllm.load_lora(vllm_server.url, NAME, export, api_key=vllm_server.api_key)
    return export, data, smollm2


@pytest.fixture
def keyed(vllm_server, monkeypatch: pytest.MonkeyPatch) -> dict:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(KEY_ENV, vllm_server.api_key)
    return {"url": vllm_server.url, "api_key_env": KEY_ENV}


def test_a_served_lora_export_predicts_as_in_process(lora_export, keyed, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    export, data, smollm2 = lora_export
    texts = [json.loads(line)["text"] for line in data.read_text().splitlines()]
    with optprompt.load(export, keyed) as served, optprompt.load(export, smollm2) as local:
        assert isinstance(served, ServedAdapter) and served.adapter == NAME  # found by its directory
        got, want = served.loglikelihoods(texts), local.loglikelihoods(texts)
        diffs = [abs(a - b) for g, w in zip(got, want) for a, b in zip(g, w)]
        assert max(diffs) < 1e-3, max(diffs)
        served_predictions, local_predictions = served.predict(texts), local.predict(texts)
    agreement = sum(a == b for a, b in zip(served_predictions, local_predictions)) / len(texts)
    assert agreement >= 0.99, (served_predictions, local_predictions)
    # The adapter is applied: the base model, through the same server, scores otherwise.
    card = export / "prompt_card.json"
    base = optprompt.load(card, keyed).loglikelihoods(texts)
    effect = max(abs(a - b) for g, w in zip(got, base) for a, b in zip(g, w))
    assert effect > 1e-2
    print(
        f"LoRA through vLLM vs in-process: {len(texts)} inputs, max |loglik diff| {max(diffs):.2e}, "
        f"agreement {agreement:.3f}; the adapter moves log-likelihoods by up to {effect:.2f}"
    )

    # optprompt evaluate through the server (the adapter named) measures what in-process does.
    through = evaluate(export, data, model={**keyed, "adapter": NAME}, output=tmp_path / "served.json")
    in_process = evaluate(export, data, model=smollm2.ref, output=tmp_path / "local.json")  # on local weights
    assert through.target.value == pytest.approx(in_process.target.value)
    # The command line passes the adapter's name on: a few rows are enough to show it.
    few = tmp_path / "few.jsonl"
    few.write_text("\n".join(data.read_text().splitlines()[:6]) + "\n")
    want_few = evaluate(export, few, model=smollm2.ref, output=tmp_path / "few-local.json").target.value
    argv = ["evaluate", str(export), "--data", str(few), "--model", keyed["url"], "--api-key-env", KEY_ENV]
    assert cli_main([*argv, "--adapter", NAME, "--output", str(tmp_path / "cli.json")]) == 0
    assert json.loads((tmp_path / "cli.json").read_text())["target"]["value"] == pytest.approx(want_few)


def test_an_adapter_the_server_does_not_serve_is_named(lora_export, keyed) -> None:  # type: ignore[no-untyped-def]
    export, _, _ = lora_export
    with pytest.raises(ModelError, match=f"serves no LoRA adapter 'missing'; it serves the adapters: .*{NAME}"):
        optprompt.load(export, {**keyed, "adapter": "missing"})
