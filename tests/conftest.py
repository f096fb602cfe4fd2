"""Shared fixtures: a tiny random causal LM with a real (tiny) tokenizer, and data files."""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from optprompt_testdata import WORDS, write_sentiment_jsonl  # noqa: F401  (re-exported for tests)

# `make test` runs two xdist workers on two cores: each worker, and every process a test starts
# from it (they inherit the environment), uses one torch thread. With torch's default of one
# thread per core, two workers stall each other at every parallel region (4 threads, 2 cores).
if "PYTEST_XDIST_WORKER" in os.environ:
    os.environ.setdefault("OPTPROMPT_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(int(os.environ["OPTPROMPT_THREADS"]))


# tmp_path and tmp_path_factory in RAM (/dev/shm) where there is one, as scratch_dir does for
# the conformance checks: tests run hundreds of tiny studies, and each commits every trial to
# SQLite; on a disk those commits wait for syncs (measured serially: tests/kinds, tests/auto,
# tests/soft_prompt and test_runner 64 s on disk, 46 s in RAM). PYTEST_DEBUG_TEMPROOT is
# pytest's documented root for them; a value set outside wins, and --basetemp overrides both.
# Only where it has room (a container's default /dev/shm is 64 MiB; a run writes models and
# adapters, and pytest keeps the last three runs' folders).
_SHM = "/dev/shm"
_SHM_ROOM = 1 << 30  # a whole run writes ~80 MiB there
if os.path.isdir(_SHM) and os.access(_SHM, os.W_OK | os.X_OK) and shutil.disk_usage(_SHM).free >= _SHM_ROOM:
    os.environ.setdefault("PYTEST_DEBUG_TEMPROOT", _SHM)


def _tiny_tokenizer(*, chat: bool, bos: bool):  # type: ignore[no-untyped-def]
    from optprompt.testing.fixtures import tiny_tokenizer

    corpus = [" ".join(random.Random(i).choices(WORDS, k=12)) for i in range(200)]
    corpus += ["Input: Answer: Review: Sentiment: positive negative Positive Negative Text: Label: Q: A:"] * 5
    return tiny_tokenizer(corpus, chat=chat, bos=bos)


def _make_tiny_model_dir(root: Path, *, chat: bool) -> Path:
    from optprompt.testing.fixtures import make_tiny_model_dir

    tok = _tiny_tokenizer(chat=chat, bos=not chat)
    return make_tiny_model_dir(root, chat=chat, tokenizer=tok, name="tiny-chat" if chat else "tiny-plain")


def _make_tiny_seq2seq_dir(root: Path) -> Path:
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    tok = _tiny_tokenizer(chat=False, bos=False)
    torch.manual_seed(0)
    cfg = T5Config(
        vocab_size=len(tok),
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_heads=4,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=2,
    )
    out = root / "tiny-t5"
    T5ForConditionalGeneration(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def _make_tiny_masked_dir(root: Path) -> Path:
    import torch
    from transformers import BertConfig, BertForMaskedLM

    tok = _tiny_tokenizer(chat=False, bos=False)
    tok.add_special_tokens({"mask_token": "[MASK]"})
    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        pad_token_id=0,
        initializer_range=0.3,
    )
    out = root / "tiny-bert"
    BertForMaskedLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_seq2seq_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random T5 (encoder-decoder) with the tiny tokenizer."""
    return _make_tiny_seq2seq_dir(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def tiny_masked_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random BERT masked LM with the tiny tokenizer plus a [MASK] token."""
    return _make_tiny_masked_dir(tmp_path_factory.mktemp("models"))


def _load(path: Path):  # type: ignore[no-untyped-def]
    from optprompt.models import load_model
    from optprompt.plugins import load_plugins

    return load_model(str(path), load_plugins(), device="cpu")


@pytest.fixture(scope="session")
def tiny_seq2seq(tiny_seq2seq_dir: Path):
    return _load(tiny_seq2seq_dir)


@pytest.fixture(scope="session")
def tiny_masked(tiny_masked_dir: Path):
    return _load(tiny_masked_dir)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, hidden-64 Llama with a chat template, saved like any local model."""
    return _make_tiny_model_dir(tmp_path_factory.mktemp("models"), chat=True)


@pytest.fixture(scope="session")
def tiny_plain_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same without a chat template."""
    return _make_tiny_model_dir(tmp_path_factory.mktemp("models"), chat=False)


@pytest.fixture
def plugins():
    """A fresh plugin manager and registries per test (no shared global state)."""
    from optprompt.plugins import load_plugins

    return load_plugins()


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir: Path):
    from optprompt.models import load_model
    from optprompt.plugins import load_plugins

    return load_model(str(tiny_model_dir), load_plugins(), device="cpu")


@pytest.fixture(scope="session")
def tiny_plain_model(tiny_plain_model_dir: Path):
    from optprompt.models import load_model
    from optprompt.plugins import load_plugins

    return load_model(str(tiny_plain_model_dir), load_plugins(), device="cpu")


@pytest.fixture(autouse=True)
def _no_adapter_left_on_a_shared_model(request: pytest.FixtureRequest) -> Iterator[None]:
    """The session's tiny models are shared by every test: one that leaves an adapter's
    layers in them (an adapter loaded with ``optprompt.load(DIR, model)`` and not closed)
    would change what every later test scores. Such a test fails here, named."""
    yield
    from optprompt.adapters.methods import adapter_layers

    for name in ("tiny_model", "tiny_plain_model"):
        if name in request.fixturenames:
            layers = adapter_layers(request.getfixturevalue(name).model)
            assert not layers, f"{request.node.nodeid} left adapter layers in the shared {name}: {layers[:3]}..."


@pytest.fixture
def sentiment_file(tmp_path: Path) -> Path:
    return write_sentiment_jsonl(tmp_path / "sentiment.jsonl")


@pytest.fixture
def study_dict(sentiment_file: Path, tmp_path: Path, tiny_model_dir: Path) -> dict:
    """A complete study spec (as loaded from YAML) on the tiny model."""
    return {
        "name": "tiny-study",
        "model": str(tiny_model_dir),
        "seed": 0,
        "output": str(tmp_path / "out"),
        "task": {
            "data": str(sentiment_file),
            "type": "classification",
            "input": "text",
            "label": "label",
            "id": "id",
            "prompt": "Classify the sentiment of the review.",
        },
        "strategy": {"name": "template_search", "trials": 6, "max_demos": 2, "demo_pool": 4},
        "scoring": {"device": "cpu"},
    }


@pytest.fixture(autouse=True)
def _isolated_score_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own persistent score cache (the model cache stays shared)."""
    monkeypatch.setenv("OPTPROMPT_SCORE_CACHE", str(tmp_path / "score-cache.sqlite"))


@pytest.fixture
def soft_runner(tmp_path: Path, tiny_model_dir: Path, tiny_model):
    """A set-up (not run) soft_prompt study on the tiny model: its kind context and strategy at hand."""
    from optprompt_testdata import soft_study_dict

    from optprompt.config import spec_from_dict
    from optprompt.study.runner import StudyRunner

    data = write_sentiment_jsonl(tmp_path / "soft-sentiment.jsonl", n=48)
    spec = spec_from_dict(soft_study_dict(data, tiny_model_dir, tmp_path / "soft-out", trials=3))
    runner = StudyRunner(spec, model=tiny_model, progress=False)
    runner.setup()
    return runner


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server for the multi-worker tests: ``OPTPROMPT_TEST_POSTGRES`` (a URL)
    when set, else a throw-away server started here (``optprompt.study.local_postgres``:
    the ``pgserver`` binaries of the ``dev`` extra or ``pg_ctl`` on PATH) in a temporary
    folder on a free port, stopped and deleted at the end of the session."""
    import sqlalchemy

    from optprompt.errors import OptpromptError
    from optprompt.study.local_postgres import LocalPostgres, find_binaries, free_port

    given = os.environ.get("OPTPROMPT_TEST_POSTGRES")
    if given:
        problem = None
        try:
            sqlalchemy.create_engine(given, poolclass=sqlalchemy.pool.NullPool).connect().close()
        except Exception as e:
            problem = f"{type(e).__name__}: {str(e).strip().splitlines()[0]}"
        if problem:
            pytest.fail(f"OPTPROMPT_TEST_POSTGRES={given} cannot be reached: {problem}", pytrace=False)
        yield given
        return
    try:
        find_binaries()
    except OptpromptError as e:
        pytest.skip(f"no PostgreSQL to test with: set OPTPROMPT_TEST_POSTGRES=URL, or {e}")
    base = Path(tempfile.mkdtemp(prefix="optprompt-test-pg-"))
    os.chmod(base, 0o711)  # as root the server runs as another user, who must reach its data folder
    server = LocalPostgres(base / "data", port=free_port())
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
