"""The served backend against a stand-in server backed by the tiny model: the same scores
and generations as in-process, retries, and errors that name the example."""

from __future__ import annotations

import pytest
from served_standin import StandIn

from optprompt.errors import ServerError, ServerUnavailable
from optprompt.models import connect
from optprompt.prompts.render import ScoreRequest
from optprompt.scoring import CausalLMBackend, GenerationSettings
from optprompt.scoring.backends import ServedBackend, make_backend


@pytest.fixture
def standin(tiny_model, tiny_model_dir):
    server = StandIn(tiny_model, root=str(tiny_model_dir)).start()
    yield server
    server.stop()


@pytest.fixture
def served(standin):
    model = connect({"url": standin.url, "retries": 3, "timeout": 10})
    model.endpoint.backoff = 0.01
    yield model
    model.close()


def _requests() -> list[ScoreRequest]:
    prefix = "Classify the sentiment of the review.\nReview: "
    texts = ["good fun movie", "bad boring plot", "a truly great film", "awful", "fine"]
    return [
        ScoreRequest(f"ex-{i}", prefix, f"{t}\nSentiment:", (" positive", " negative", " Positive Negative"))
        for i, t in enumerate(texts)
    ]


def _flat(rows: list[list[float]]) -> list[float]:
    return [v for row in rows for v in row]


def test_served_loglikelihoods_match_in_process(served, tiny_model, plugins) -> None:
    backend = make_backend(served, plugins)
    assert isinstance(backend, ServedBackend)
    got = backend.loglikelihoods(_requests())
    want = CausalLMBackend(tiny_model).loglikelihoods(_requests())
    assert _flat(got) == pytest.approx(_flat(want), abs=1e-4)
    assert _flat(backend.naive_loglikelihoods(_requests())) == pytest.approx(_flat(want), abs=1e-4)


def test_several_prompts_per_request_and_each_sequence_once(served, standin) -> None:
    backend = ServedBackend(served, max_batch_rows=4)
    before = len(standin.requests)
    reqs = _requests()
    backend.loglikelihoods(reqs + reqs)  # the repeats are sent once
    sent = [r["body"]["prompt"] for r in standin.requests[before:]]
    assert sorted(len(p) for p in sent) == [3, 4, 4, 4]  # 15 distinct sequences, 4 per request (sent concurrently)
    assert all(isinstance(ids, list) and isinstance(ids[0], int) for p in sent for ids in p)


def test_served_generation_matches_in_process(served, tiny_model) -> None:
    prompts = ["Review: good fun movie\nSentiment:", "Review: bad\nSentiment:"]
    settings = GenerationSettings(max_new_tokens=6, stop=("\n",))
    assert ServedBackend(served).generate(prompts, settings) == CausalLMBackend(tiny_model).generate(prompts, settings)


def test_the_served_backend_refuses_an_empty_prompt_as_in_process(served, standin) -> None:
    from optprompt.errors import CandidateRejected

    with pytest.raises(CandidateRejected, match="an empty prompt cannot be continued"):
        ServedBackend(served).generate(["Review: bad\nSentiment:", ""], GenerationSettings(max_new_tokens=4, stop=()))


def test_retries_on_server_errors_and_lost_connections(served, standin) -> None:
    backend = ServedBackend(served)
    want = backend.loglikelihoods(_requests()[:1])
    standin.faults[:] = [503, "drop", 429]
    assert backend.loglikelihoods(_requests()[1:2] + _requests()[:1])[1] == pytest.approx(want[0], abs=1e-6)
    assert served.endpoint.retried >= 3


def test_a_refused_prompt_names_its_example(served, standin) -> None:
    standin.max_model_len = 20  # the server's limit; the client was told 2048
    with pytest.raises(ServerError, match=r"example 'ex-0'.*HTTP 400.*maximum context length"):
        ServedBackend(served).loglikelihoods(_requests())


def test_a_prompt_longer_than_the_served_context_is_named_before_sending(served, standin) -> None:
    served.context_tokens = 12
    before = len(standin.requests)
    with pytest.raises(
        ServerError, match="example 'ex-0' is .* tokens with its answer, longer than the served context"
    ):
        ServedBackend(served).loglikelihoods(_requests())
    assert len(standin.requests) == before


def test_a_server_gone_is_unavailable_after_the_retries(served, standin) -> None:
    standin.stop()
    with pytest.raises(ServerUnavailable, match=r"did not answer scoring .* after 4 tries.*optprompt run"):
        ServedBackend(served).loglikelihoods(_requests())


def test_other_echoed_ids_are_refused(served, standin, monkeypatch: pytest.MonkeyPatch) -> None:
    complete = standin._complete

    def retokenized(index, ids, body):  # type: ignore[no-untyped-def]
        choice = complete(index, ids, body)
        choice["prompt_token_ids"] = ids[:-1]
        return choice

    monkeypatch.setattr(standin, "_complete", retokenized)
    with pytest.raises(ServerError, match="echoed other token ids"):
        ServedBackend(served).loglikelihoods(_requests())


def test_cache_keys_of_served_and_in_process_scores_differ(served, tiny_model) -> None:
    assert ServedBackend(served).settings_key != CausalLMBackend(tiny_model).settings_key
    assert ServedBackend(served).settings_key == ["served", served.fingerprint]


def test_guided_choices_go_to_the_server_grouped_by_choice_set(served, standin) -> None:
    backend = ServedBackend(served)
    before = len(standin.requests)
    picks = backend.guided_choices(
        ["Review: good\nSentiment:", "Review: bad\nSentiment:", "Q: x\nA:"],
        [
            [" positive", " negative"],
            [" positive", " negative"],
            [" yes", " no", " maybe"],
        ],
    )
    assert picks[0] in (0, 1) and picks[1] in (0, 1) and picks[2] in (0, 1, 2)
    sent = [r["body"] for r in standin.requests[before:]]
    assert [b["structured_outputs"]["choice"] for b in sent] == [[" positive", " negative"], [" yes", " no", " maybe"]]
    assert [len(b["prompt"]) for b in sent] == [2, 1]
