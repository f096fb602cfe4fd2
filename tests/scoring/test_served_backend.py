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


def _connect(standin: StandIn, **options):  # type: ignore[no-untyped-def]
    model = connect({"url": standin.url, "retries": 3, "timeout": 10, **options})
    model.endpoint.backoff = 0.01
    return model


@pytest.mark.parametrize("ranking", ["next_token", "prompt_logprobs"])
def test_served_loglikelihoods_match_in_process(standin, tiny_model, plugins, ranking) -> None:
    served = _connect(standin, ranking=ranking)
    assert served.ranking == ranking
    backend = make_backend(served, plugins)
    assert isinstance(backend, ServedBackend)
    before = len(standin.requests)
    got = backend.loglikelihoods(_requests())
    paths = {r["path"] for r in standin.requests[before:]}
    assert paths == ({"/generative_scoring"} if ranking == "next_token" else {"/v1/completions"})
    want = CausalLMBackend(tiny_model).loglikelihoods(_requests())
    assert _flat(got) == pytest.approx(_flat(want), abs=1e-4)
    assert _flat(backend.naive_loglikelihoods(_requests())) == pytest.approx(_flat(want), abs=1e-4)
    served.close()


def test_next_token_reads_each_pair_once_each_context_first(standin, tiny_model) -> None:
    served = _connect(standin, ranking="next_token")
    backend = ServedBackend(served, max_batch_rows=8)
    reqs = _requests()
    contexts, answers, _ = backend.tokens.requests(reqs)
    before = len(standin.requests)
    backend.loglikelihoods(reqs + reqs)  # the repeats are read once
    sent = [r["body"] for r in standin.requests[before:]]
    reads = [(tuple(item), b["label_token_ids"][0]) for b in sent for item in b["items"]]
    want = {(tuple(c + a[:j]), a[j]) for c, ans in zip(contexts, answers) for a in ans for j in range(len(a))}
    assert len(reads) == len(set(reads)) and set(reads) == want
    # The first requests read each context (and nothing longer), so the server caches it first.
    n_first = len({tuple(c) for c in contexts})
    first = [item for b in sent for item in b["items"]][:n_first]
    assert sorted(map(tuple, first)) == sorted({tuple(c) for c in contexts})
    assert all(b["query"] == [] and len(b["items"]) <= 8 for b in sent)


def test_auto_ranking_reads_next_tokens_where_they_cost_less(standin, tiny_model) -> None:
    from optprompt.scoring.backends.served import next_token_pays

    standin.cache_block = 64
    served = _connect(standin)  # ranking: auto
    assert served.ranking == "next_token" and served.cache_block == 64
    backend = ServedBackend(served)
    long_prefix = "Classify the sentiment of the review. " * 12 + "\nReview: "
    reqs = _requests()[:3] + [
        ScoreRequest(f"long-{i}", long_prefix, f"{t}\nSentiment:", (" positive", " negative", " Positive Negative"))
        for i, t in enumerate(["good fun movie", "awful"])
    ]
    contexts, answers, _ = backend.tokens.requests(reqs)
    pays = [next_token_pays(len(c), a, 64) for c, a in zip(contexts, answers)]
    assert pays == [False] * 3 + [True] * 2  # short prompts (< one block) pay each answer once; long ones read
    before = len(standin.requests)
    got = backend.loglikelihoods(reqs)
    sent = standin.requests[before:]

    def of(seq: list[int]) -> int:  # the input a sequence belongs to (no context begins another)
        return next(k for k, c in enumerate(contexts) if seq[: len(c)] == c)

    assert {of(i) for r in sent if r["path"] == "/generative_scoring" for i in r["body"]["items"]} == {3, 4}
    assert {of(p) for r in sent if r["path"] == "/v1/completions" for p in r["body"]["prompt"]} == {0, 1, 2}
    assert _flat(got) == pytest.approx(_flat(CausalLMBackend(tiny_model).loglikelihoods(reqs)), abs=1e-4)
    served.close()
    standin.cache_block = None  # prefix cache off: reads never pay
    served = _connect(standin)
    assert served.ranking == "next_token" and served.cache_block is None
    before = len(standin.requests)
    ServedBackend(served).loglikelihoods(reqs)
    assert {r["path"] for r in standin.requests[before:]} == {"/v1/completions"}
    served.close()


def test_next_token_reads_pay_for_long_prompts_only() -> None:
    from optprompt.scoring.backends.served import next_token_pays

    seven = [[1, 2, 3], [1, 2, 4], [5, 6], [7, 8, 9], [10, 2], [11, 2, 12], [13, 2, 14, 15]]
    assert not next_token_pays(100, seven, 128)  # never cached: every read computes the prompt again
    assert next_token_pays(100, seven, 16)  # 96 tokens cached: each read computes 4 + its prefix
    assert next_token_pays(1000, seven, 128)
    assert not next_token_pays(1000, [], 16)


def test_a_server_without_next_token_reads_is_ranked_by_prompt_logprobs(standin, tiny_model) -> None:
    from optprompt.errors import ModelError

    standin.next_token = False
    served = _connect(standin)
    assert served.ranking == "prompt_logprobs"
    got = ServedBackend(served).loglikelihoods(_requests())
    assert _flat(got) == pytest.approx(_flat(CausalLMBackend(tiny_model).loglikelihoods(_requests())), abs=1e-4)
    served.close()
    with pytest.raises(ModelError, match="ranking: next_token, but no next-token reads.*ranking: prompt_logprobs"):
        _connect(standin, ranking="next_token")


def test_next_token_reads_that_disagree_with_the_prompt_probe_are_not_used(standin, monkeypatch) -> None:
    read = standin._next_token
    monkeypatch.setattr(standin, "_next_token", lambda body: [{**d, "score": d["score"] / 2} for d in read(body)])
    served = _connect(standin)
    assert served.ranking == "prompt_logprobs"
    served.close()


def test_an_underflowed_next_token_probability_is_read_from_prompt_logprobs(served, standin, tiny_model) -> None:
    backend = ServedBackend(served)
    reqs = _requests()[:2]
    _, answers, _ = backend.tokens.requests(reqs)
    gone = answers[0][1][0]  # the first token of " negative"
    read = standin._next_token

    def underflow(body):  # type: ignore[no-untyped-def]
        return [{**d, "score": 0.0} if body["label_token_ids"][0] == gone else d for d in read(body)]

    standin._next_token = underflow
    before = len(standin.requests)
    got = backend.loglikelihoods(reqs)
    assert any(r["path"] == "/v1/completions" for r in standin.requests[before:])
    assert _flat(got) == pytest.approx(_flat(CausalLMBackend(tiny_model).loglikelihoods(reqs)), abs=1e-4)


def test_several_prompts_per_request_and_each_sequence_once(standin) -> None:
    served = _connect(standin, ranking="prompt_logprobs")
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


def test_a_refused_prompt_names_its_example(standin) -> None:
    served = _connect(standin, ranking="prompt_logprobs")
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


def test_other_echoed_ids_are_refused(standin, monkeypatch: pytest.MonkeyPatch) -> None:
    served = _connect(standin, ranking="prompt_logprobs")  # next-token reads echo no ids
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
