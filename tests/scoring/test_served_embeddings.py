"""Embeddings through a model server for per-input (kNN) demonstrations, against the stand-in
server (``/v1/embeddings`` as vLLM's pooling runner serves it): the same vectors as the local
model, a study of a served model retrieving with a served embedder (recorded in the card),
and a server without embeddings refused with an error saying what to do."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from served_standin import StandIn

import optprompt
from optprompt.config import spec_from_dict
from optprompt.errors import ConfigError, ModelError
from optprompt.prompts.retrieval import Retrieval
from optprompt.scoring.embedding import ModelEmbedder, make_embedder
from optprompt.scoring.served_embedding import ServedEmbedder
from optprompt.study.runner import run_study


@pytest.fixture
def standin(tiny_model, tiny_model_dir):
    server = StandIn(tiny_model, root=str(tiny_model_dir), embeddings=True).start()
    yield server
    server.stop()


def test_served_vectors_are_the_models(standin: StandIn, tiny_model) -> None:
    embedder = make_embedder(standin.url, "mean", lambda ref: pytest.fail("a served embedder loads no model"))
    try:
        assert isinstance(embedder, ServedEmbedder) and embedder.fingerprint.startswith("served-embeddings:stand-in:")
        texts = ["good fun movie", "", "bad boring plot", "fine"]
        local = ModelEmbedder(standin.loaded).embed(texts)
        assert np.allclose(embedder.embed(texts), local, atol=1e-5)
        assert np.allclose(embedder.embed_one("fine"), local[3], atol=1e-5)
        assert embedder.reference == {"url": standin.url}  # what a card records: no key, no defaults
    finally:
        embedder.close()


def test_a_server_without_embeddings_is_refused_saying_what_to_do(tiny_model, tiny_model_dir) -> None:
    generating = StandIn(tiny_model, root=str(tiny_model_dir)).start()
    try:
        with pytest.raises(ModelError, match="does not serve embeddings.*--runner pooling --convert embed"):
            ServedEmbedder(Retrieval(pool=("a",), embedder=generating.url).embedder)  # type: ignore[arg-type]
    finally:
        generating.stop()


def test_the_embedder_setting_takes_a_served_endpoint() -> None:
    r = Retrieval(pool=("a", "b"), embedder={"url": "http://emb:8001/v1", "name": "e5", "api_key_env": "EMB_KEY"})
    assert r.to_dict()["embedder"] == {"url": "http://emb:8001/v1", "name": "e5", "api_key_env": "EMB_KEY"}
    assert Retrieval.from_dict(r.to_dict()) == r and hash(r) == hash(Retrieval.from_dict(r.to_dict()))
    assert Retrieval(pool=("a",), embedder="smollm2-135m-instruct").embedder == "smollm2-135m-instruct"
    with pytest.raises(ConfigError, match="retrieval.embedder"):
        Retrieval(pool=("a",), embedder={"url": "ftp://emb/v1"})


def test_a_served_study_retrieves_with_a_served_embedder(study_dict: dict, standin: StandIn, tmp_path: Path) -> None:
    strategy = {**study_dict["strategy"], "trials": 4, "demos": ["knn"], "knn": {"k": [2], "embedder": standin.url}}
    spec = spec_from_dict(
        {**study_dict, "model": {"url": standin.url}, "strategy": strategy, "output": str(tmp_path / "knn")}
    )
    result = run_study(spec, progress=False)
    assert result.best.test is not None
    assert any(r["path"] == "/v1/embeddings" for r in standin.requests)
    winner = result.best.candidate
    if winner.get("retrieval"):  # the baseline can win; a kNN winner's card names the served embedder
        to = tmp_path / "export"
        optprompt.export_card(spec.output, to)
        embedder = json.loads((to / "prompt_card.json").read_text())["retrieval"]["embedder"]
        assert embedder["ref"] == {"url": standin.url} and embedder["fingerprint"].startswith("served-embeddings:")
        assert embedder["task_model"] is False


def test_a_served_task_model_without_an_embedder_names_the_choices(
    study_dict: dict, standin: StandIn, caplog: pytest.LogCaptureFixture
) -> None:
    """Asked for embeddings without an embedder (a served study compares words by default:
    tests/study/test_served_study.py), each kNN trial fails naming the three ways out."""
    strategy = {**study_dict["strategy"], "trials": 3, "demos": ["knn"], "knn": {"similarity": ["embedding"]}}
    spec = spec_from_dict({**study_dict, "model": {"url": standin.url}, "strategy": strategy})
    run_study(spec, progress=False)  # the kNN trials fail, each saying why
    assert "served embeddings endpoint (embedder: http://HOST:PORT/v1" in caplog.text
    assert "(knn: {similarity: [lexical]})" in caplog.text
    assert not any(r["path"] == "/v1/embeddings" for r in standin.requests)  # chosen explicitly, never guessed
