"""Served model references: parsing, the choice of the served model, the tokenizer and the probe
(against a stand-in server backed by the tiny model; the real-vLLM tests are in tests/served/)."""

from __future__ import annotations

import pytest
from served_standin import StandIn

from optprompt.config import ServedModelSpec, spec_from_dict
from optprompt.errors import ConfigError, ModelError
from optprompt.models import connect, is_served_ref
from optprompt.models.served import served_spec


@pytest.fixture
def standin(tiny_model, tiny_model_dir):
    server = StandIn(tiny_model, root=str(tiny_model_dir)).start()
    yield server
    server.stop()


def test_a_url_in_a_study_file_is_a_served_model(study_dict: dict) -> None:
    spec = spec_from_dict({**study_dict, "model": "http://127.0.0.1:8000/v1/"})
    assert spec.model == ServedModelSpec(url="http://127.0.0.1:8000/v1")
    spec = spec_from_dict({**study_dict, "model": {"url": "http://h:1/v1", "name": "m", "api_key_env": "KEY"}})
    assert isinstance(spec.model, ServedModelSpec) and spec.model.name == "m" and spec.model.max_concurrency == 16
    assert spec_from_dict(study_dict).model == study_dict["model"]  # a path stays a path


@pytest.mark.parametrize(
    ("model", "words"),
    [
        ({"url": "http://h:1/v1", "api_key": "sk-1"}, "api_key"),  # extra key: the key itself is never a setting
        ({"url": "ftp://h/v1"}, "http(s) URL"),
        ({"url": "http://user:pw@h:1/v1"}, "no credentials in the URL"),
        ({"url": "http://h:1/v1", "max_concurrency": 0}, "max_concurrency"),
        ({"url": "http://h:1/v1", "api_key_env": "sk-abc def"}, "not an environment variable name"),
        ({"url": "http://h:1/v1", "ranking": "fastest"}, "ranking"),
    ],
)
def test_bad_served_references_name_the_fault(study_dict: dict, model: dict, words: str) -> None:
    with pytest.raises(ConfigError, match="model") as err:
        spec_from_dict({**study_dict, "model": model})
    assert words in str(err.value)


def test_is_served_ref() -> None:
    assert is_served_ref("https://x/v1") and is_served_ref({"url": "http://x"}) and not is_served_ref("smollm2")
    with pytest.raises(ModelError, match="not an http"):
        served_spec({"url": "nope"})


def test_connect_reads_the_served_model_and_probes_it(standin: StandIn, tiny_model_dir) -> None:
    served = connect(standin.url)
    try:
        assert served.model_id == "stand-in" and served.root == str(tiny_model_dir)
        assert served.context_tokens == 2048 and served.checked_template
        assert served.fingerprint.startswith("served:stand-in:")
        paths = [r["path"] for r in standin.requests]
        assert paths == ["/v1/models", "/tokenize", "/tokenize", "/v1/completions", "/generative_scoring", "/metrics"]
        assert served.ranking == "next_token" and served.cache_block == 16  # the stand-in's /metrics say so
        probe, read = standin.requests[-3]["body"], standin.requests[-2]["body"]
        assert probe["echo"] is True and probe["logprobs"] == 1 and isinstance(probe["prompt"][0][0], int)
        assert read["items"] == [probe["prompt"][0][:-1]] and read["label_token_ids"] == [probe["prompt"][0][-1]]
    finally:
        served.close()


def test_the_fingerprint_holds_endpoint_model_and_root(standin: StandIn, tiny_model, tiny_model_dir) -> None:
    first = connect(standin.url, probe=False)
    assert connect(standin.url, probe=False).fingerprint == first.fingerprint
    other = StandIn(tiny_model, root="/other/weights").start()  # another root, same name
    try:
        second = connect({"url": other.url, "tokenizer": str(tiny_model_dir)}, probe=False)
        assert first.fingerprint != second.fingerprint
    finally:
        other.stop()


def test_a_server_without_prompt_logprobs_is_refused(tiny_model, tiny_model_dir) -> None:
    server = StandIn(tiny_model, root=str(tiny_model_dir), mode="generated_only").start()
    try:
        with pytest.raises(ModelError) as err:
            connect(server.url)
        message = str(err.value)
        assert "llama.cpp" in message and "Ollama" in message and "vLLM" in message and "chance" in message
    finally:
        server.stop()


def test_several_served_models_need_a_name(standin: StandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    route = standin.route

    def two_models(method, path, body):  # type: ignore[no-untyped-def]
        if path == "/v1/models":
            return 200, {"data": [{"id": "a", "root": "a"}, {"id": "b", "root": "b"}]}
        return route(method, path, body)

    monkeypatch.setattr(standin, "route", two_models)
    with pytest.raises(ModelError, match=r"several models \(a, b\).*name"):
        connect(standin.url)
    with pytest.raises(ModelError, match="serves no model 'c'; it serves: a, b"):
        connect({"url": standin.url, "name": "c"})


def test_a_root_that_is_not_here_needs_a_tokenizer(tiny_model, tiny_model_dir) -> None:
    server = StandIn(tiny_model, root="/models/elsewhere").start()
    try:
        with pytest.raises(ModelError, match="tokenizer: DIR"):
            connect(server.url)
        served = connect({"url": server.url, "tokenizer": str(tiny_model_dir)})
        assert served.root == "/models/elsewhere"
        served.close()
    finally:
        server.stop()


def test_a_tokenizer_that_differs_from_the_servers_is_refused(tiny_model, tiny_plain_model_dir) -> None:
    server = StandIn(tiny_model, root="/elsewhere").start()
    try:
        with pytest.raises(ModelError, match="applies a chat template and the local tokenizer has none"):
            connect({"url": server.url, "tokenizer": str(tiny_plain_model_dir)})
    finally:
        server.stop()


def test_the_api_key_comes_from_the_environment(tiny_model, tiny_model_dir, monkeypatch: pytest.MonkeyPatch) -> None:
    server = StandIn(tiny_model, root=str(tiny_model_dir), api_key="sk-test-123").start()
    try:
        with pytest.raises(ModelError, match="OPTPROMPT_TEST_KEY.*not set"):
            connect({"url": server.url, "api_key_env": "OPTPROMPT_TEST_KEY"})
        monkeypatch.setenv("OPTPROMPT_TEST_KEY", "sk-test-123")
        served = connect({"url": server.url, "api_key_env": "OPTPROMPT_TEST_KEY"})
        assert "sk-test-123" not in repr(served) and "sk-test-123" not in repr(served.endpoint)
        assert server.headers[-1]["Authorization"] == "Bearer sk-test-123"
        served.close()
    finally:
        server.stop()


@pytest.mark.parametrize(
    "answer, words",
    [
        ({"data": []}, "expected 2 next-token scores"),
        ({"data": [{"index": 0, "score": 0.5}, {"index": 0, "score": 0.5}]}, "unreadable next-token score"),
        ({"data": [{"index": 0, "score": 0.5}, {"index": 1, "score": 1.5}]}, "outside \\[0, 1\\]"),
        ({"object": "error"}, "expected 2 next-token scores"),
    ],
)
def test_unreadable_next_token_answers_are_server_errors(answer: dict, words: str) -> None:
    from optprompt.errors import ServerError
    from optprompt.models.served import read_next_token

    with pytest.raises(ServerError, match=words):
        read_next_token(answer, 2, "http://x/v1")
    assert read_next_token({"data": [{"index": 1, "score": 0.0}, {"index": 0, "score": 1.0}]}, 2, "x") == [
        0.0,
        float("-inf"),
    ]
