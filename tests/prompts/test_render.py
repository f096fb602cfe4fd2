from __future__ import annotations

import pytest

from optprompt.errors import CandidateRejected, ConfigError
from optprompt.prompts import PromptCandidate, PromptRenderer
from optprompt.tasks import Example, Task


def _task(kind: str = "classification") -> Task:
    if kind == "classification":
        train = [Example("t1", "lovely food", "pos", 1), Example("t2", "awful room", "neg", 0)]
        dev = [Example("d1", "fine staff", "pos", 1)]
        return Task(
            "t",
            "classification",
            train,
            dev,
            dev,
            labels=("neg", "pos"),
            verbalizer={"neg": "negative", "pos": "positive"},
        )
    opts = ("red", "green")
    ex = [Example(f"m{i}", f"colour {i}?", opts[i % 2], i % 2, opts) for i in range(4)]
    return Task("m", "multiple_choice", ex[:2], ex[2:3], ex[3:])


def _cand(**kw) -> PromptCandidate:
    base = dict(
        instruction="Answer with {labels}.",
        template="Review: {input}\nSentiment:",
        verbalizer=(("neg", "bad"), ("pos", "good")),
    )
    return PromptCandidate(**{**base, **kw})


def test_plain_render_and_prefix_split() -> None:
    task = _task()
    r = PromptRenderer(task)
    req = r.request(_cand(demo_ids=("t2",)), task.dev[0])
    assert req.prefix == "Answer with bad, good.\n\nReview: awful room\nSentiment: bad\n\nReview:"
    # the space before the input stays with it, so its first word tokenizes naturally
    assert req.suffix == " fine staff\nSentiment:"
    assert req.continuations == (" bad", " good")


def test_chat_render_wraps_user_turn_and_answers_without_space() -> None:
    task = _task()
    fmt = lambda msgs: "<s>user: " + msgs[0]["content"] + "</s><s>assistant: "  # noqa: E731
    req = PromptRenderer(task, fmt).request(_cand(), task.dev[0])
    assert req.prefix == "<s>user: Answer with bad, good.\n\nReview:"
    assert req.suffix == " fine staff\nSentiment:</s><s>assistant: "
    assert req.continuations == ("bad", "good")


def test_hash_is_stable_and_content_based() -> None:
    assert _cand().hash == _cand().hash
    assert _cand().hash != _cand(demo_ids=("t1",)).hash
    c = _cand(demo_ids=("t1", "t2"))
    assert PromptCandidate.from_dict(c.to_dict()) == c
    assert PromptCandidate.from_dict(c.to_dict()).hash == c.hash


def test_template_without_input_is_an_error() -> None:
    with pytest.raises(ConfigError, match=r"\{input\} placeholder"):
        _cand(template="Sentiment:")


def test_shared_verbalizer_word_is_rejected() -> None:
    task = _task()
    with pytest.raises(CandidateRejected, match="share"):
        PromptRenderer(task).request(_cand(verbalizer=(("neg", "x"), ("pos", "x"))), task.dev[0])


def test_multiple_choice_letters_and_text() -> None:
    task = _task("mc")
    r = PromptRenderer(task)
    letters = PromptCandidate(instruction="", template="Q: {input}\n{options}\nA:", choice_format="letters")
    req = r.request(letters, task.dev[0])
    assert req.continuations == (" A", " B")
    assert "A. red\nB. green" in req.suffix
    text = PromptCandidate(instruction="Pick.", template="Q: {input}\nA:")
    assert r.request(text, task.dev[0]).continuations == (" red", " green")
    with pytest.raises(CandidateRejected, match="options"):
        r.request(PromptCandidate(instruction="", template="Q: {input}\nA:", choice_format="letters"), task.dev[0])
