"""Embeddings from a real vLLM pooling server (``--runner pooling --convert embed``) for
per-input demonstrations, and the session's generating server refused as an embedder.

A pooling server is a second vLLM (about two minutes to start on 2 cores), so the tests
that need it run only with ``OPTPROMPT_TEST_VLLM_EMBEDDINGS=1``; the stand-in server covers
the same code in every run (tests/scoring/test_served_embeddings.py)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import serve_vllm

from optprompt.errors import ModelError
from optprompt.scoring.embedding import make_embedder

pytestmark = pytest.mark.served
KEY_ENV = "OPTPROMPT_TEST_VLLM_KEY"
POOLING = pytest.mark.skipif(
    not os.environ.get("OPTPROMPT_TEST_VLLM_EMBEDDINGS"),
    reason="a second (pooling) vLLM server: set OPTPROMPT_TEST_VLLM_EMBEDDINGS=1 to start one",
)


def test_the_generating_server_is_refused_as_an_embedder(vllm_server, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv(KEY_ENV, vllm_server.api_key)
    with pytest.raises(ModelError, match="does not serve embeddings.*--runner pooling --convert embed"):
        make_embedder({"url": vllm_server.url, "api_key_env": KEY_ENV}, "mean", lambda ref: pytest.fail("no model"))


@pytest.fixture(scope="module")
def pooling_url(vllm_server):  # type: ignore[no-untyped-def]
    from optprompt.study.local_postgres import free_port

    port = free_port()
    log = Path(tempfile.mkdtemp(prefix="optprompt-vllm-pooling-")) / "server.log"
    process = serve_vllm.start(vllm_server.model_dir, port, log, extra=["--runner", "pooling", "--convert", "embed"])
    url = f"http://127.0.0.1:{port}/v1"
    try:
        serve_vllm.wait_ready(process, url, log)
        yield url
    finally:
        serve_vllm.stop(process)


@POOLING
def test_a_pooling_server_embeds_for_retrieval(pooling_url: str) -> None:
    embedder = make_embedder(pooling_url, "mean", lambda ref: pytest.fail("a served embedder loads no model"))
    try:
        texts = ["I want my money back for the headphones.", "", "The app crashes when I open settings."]
        vectors = embedder.embed(texts)
        assert vectors.shape == (3, embedder.dim) and embedder.dim > 0
        assert not vectors[1].any() and vectors[0].any()  # an empty text is zeros, as locally
        one = embedder.embed_one(texts[2])
        cosine = float(one @ vectors[2] / (np.linalg.norm(one) * np.linalg.norm(vectors[2])))
        assert cosine > 0.999, cosine  # a text alone and in a batch: the same vector
        assert embedder.fingerprint.startswith("served-embeddings:")
    finally:
        embedder.close()  # type: ignore[attr-defined]
