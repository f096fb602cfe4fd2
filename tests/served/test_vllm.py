"""Against a real vLLM server (tests/served/conftest.py starts it): served and in-process
log-likelihoods agree, a whole study runs through the server without its API key leaking
anywhere, its winner evaluates the same through the server as in-process, and a server lost
mid-study stops the study and a second run resumes it."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from optprompt_testdata import write_sentiment_jsonl
from tcp_proxy import Proxy

from optprompt.config import spec_from_dict
from optprompt.errors import ServerUnavailable
from optprompt.models import connect, load_model
from optprompt.plugins import load_plugins
from optprompt.prompts.render import ScoreRequest
from optprompt.scoring import CausalLMBackend, GenerationSettings
from optprompt.scoring.backends import ServedBackend
from optprompt.study.runner import SPEC_FILE

pytestmark = pytest.mark.served

KEY_ENV = "OPTPROMPT_TEST_VLLM_KEY"


@pytest.fixture
def keyed(vllm_server, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv(KEY_ENV, vllm_server.api_key)
    return {"url": vllm_server.url, "api_key_env": KEY_ENV}


@pytest.fixture(scope="module")
def smollm2(vllm_server):  # type: ignore[no-untyped-def]
    return load_model(str(vllm_server.model_dir), load_plugins(), device="cpu", dtype="float32", progress=False)


def _requests(tokenizer) -> list[ScoreRequest]:  # type: ignore[no-untyped-def]
    """Chat-templated classification requests with multi-token answers, as a study renders them."""
    texts = [
        "I loved every minute of this film.",
        "The plot was dull and the acting worse.",
        "My order arrived broken and nobody answers the phone.",
        "Can you tell me when the store opens on Sunday?",
        "An absolute masterpiece of modern cinema, moving and funny.",
        "meh",
    ]
    out = []
    for i, t in enumerate(texts):
        messages = [{"role": "user", "content": f"Classify the message.\nMessage: {t}\nAnswer with one label."}]
        prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        cut = prompt.index("Message:")
        out.append(
            ScoreRequest(f"ex{i}", prompt[:cut], prompt[cut:], ("positive", "negative", "complaint", "opening hours"))
        )
    return out


@pytest.mark.parametrize("ranking", ["auto", "next_token", "prompt_logprobs"])
def test_served_and_in_process_loglikelihoods_agree(keyed, smollm2, ranking) -> None:
    served = connect({**keyed, "ranking": ranking})
    try:
        assert served.checked_template  # vLLM's /tokenize agreed with the local chat template
        # vLLM reads next tokens (/generative_scoring) as its prompt log-probabilities give them
        assert served.ranking == ("prompt_logprobs" if ranking == "prompt_logprobs" else "next_token")
        if ranking == "auto":  # its /metrics give the prefix cache's block (128 tokens on a CPU)
            assert isinstance(served.cache_block, int) and served.cache_block > 0
        backend = ServedBackend(served)
        requests = _requests(smollm2.tokenizer)
        got = backend.loglikelihoods(requests)
        want = CausalLMBackend(smollm2).loglikelihoods(requests)
        diffs = [abs(a - b) for g, w in zip(got, want) for a, b in zip(g, w)]
        assert max(diffs) < 1e-3, diffs
        ranked = [max(range(4), key=row.__getitem__) for row in got]
        assert ranked == [max(range(4), key=row.__getitem__) for row in want]
    finally:
        served.close()


def test_served_greedy_generation_matches_in_process(keyed, smollm2) -> None:
    served = connect(keyed)
    try:
        prompts = [r.prefix + r.suffix for r in _requests(smollm2.tokenizer)[:4]]
        settings = GenerationSettings(max_new_tokens=12, stop=("\n",))
        got = ServedBackend(served).generate(prompts, settings)
        want = CausalLMBackend(smollm2).generate(prompts, settings)
        assert sum(g == w for g, w in zip(got, want)) >= 3, (got, want)
        assert all(g.strip() for g in got)
    finally:
        served.close()


def _study(tmp_path: Path, model: dict, name: str, trials: int = 4) -> dict:
    data = write_sentiment_jsonl(tmp_path / "sentiment.jsonl", n=36)
    return {
        "name": name,
        "model": model,
        "seed": 0,
        "output": str(tmp_path / name),
        "task": {
            "data": str(data),
            "type": "classification",
            "input": "text",
            "label": "label",
            "id": "id",
            "prompt": "Classify the sentiment of the review.",
        },
        "strategy": {"name": "template_search", "trials": trials, "max_demos": 2, "demo_pool": 4},
        "selection": {"holdout": 0},
    }


def test_a_study_through_the_server_keeps_its_key_secret(
    keyed, vllm_server, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture
) -> None:
    from optprompt.evaluation import evaluate
    from optprompt.study.runner import run_study

    caplog.set_level(logging.DEBUG)
    spec = spec_from_dict(_study(tmp_path, keyed, "through-vllm"))
    result = run_study(spec, progress=False)
    out = Path(spec.output)
    assert result.model.ref == vllm_server.url and result.model.family == "served"
    assert result.model.fingerprint.startswith("served:")
    assert result.n_scored >= 3 and result.best.test is not None

    # The winner evaluated through the server predicts what it predicts in-process.
    data = tmp_path / "sentiment.jsonl"
    through = evaluate(out, data, model=keyed, constrained=True, output=tmp_path / "served-eval.json")
    local = evaluate(out, data, model=str(vllm_server.model_dir), constrained=True, output=tmp_path / "local-eval.json")
    assert through.target.value == pytest.approx(local.target.value)
    # Guided decoding by vLLM itself (structured_outputs choice) against optprompt's in-process measure of it.
    assert result.constrained_generation is not None
    assert through.target.constrained is not None and local.target.constrained is not None
    assert abs(through.target.constrained.value - local.target.constrained.value) <= 0.1

    # The key is nowhere: not in the study's files, the score cache, the logs or the output.
    secret = vllm_server.api_key.encode()
    files = [p for p in out.rglob("*") if p.is_file()] + list(tmp_path.glob("*.json"))
    files += [p for p in tmp_path.parent.rglob("score-cache.sqlite*") if p.is_file()]
    assert files and any(p.name == "result.json" for p in files)
    leaked = [str(p) for p in files if secret in p.read_bytes()]
    assert not leaked
    printed = capsys.readouterr()
    assert vllm_server.api_key not in caplog.text + printed.out + printed.err
    assert json.loads((out / SPEC_FILE).read_text())["spec"]["model"]["api_key_env"] == KEY_ENV


def test_a_server_lost_mid_study_stops_it_and_a_second_run_resumes(keyed, vllm_server, tmp_path: Path) -> None:
    from optprompt.study.runner import run_study
    from optprompt.trials import records

    upstream = int(vllm_server.url.rsplit(":", 1)[1].split("/")[0])
    proxy = Proxy(upstream).start()
    try:
        # Prompt log-probabilities: one request per scoring, so the cut falls mid-search.
        model = {**keyed, "url": f"http://127.0.0.1:{proxy.port}/v1", "retries": 2, "ranking": "prompt_logprobs"}
        spec = spec_from_dict(_study(tmp_path, model, "lost", trials=5))
        proxy.cut_after(b"POST /v1/completions", 6)  # the probe, the baseline, then part of the search
        with pytest.raises(ServerUnavailable, match="optprompt run"):
            run_study(spec, progress=False)
        import optuna

        storage = f"sqlite:///{Path(spec.output) / 'study.db'}"
        study = optuna.load_study(study_name=spec.name, storage=storage)
        before = records(study)
        lost = [t for t in before if t.fail_reason and t.fail_reason.startswith("server lost")]
        finished = {t.number for t in before if t.is_complete}
        assert lost and finished  # the baseline at least was kept
        proxy.restore()
        result = run_study(spec, progress=False)
        after = records(optuna.load_study(study_name=spec.name, storage=storage))
        assert finished <= {t.number for t in after if t.is_complete}  # every finished trial kept
        assert result.n_scored >= 5 - 1
    finally:
        proxy.stop()
