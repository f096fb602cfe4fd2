"""Greedy decoding constrained to an answer set, read off one packed scoring pass, gives the
step-by-step decoder's answers: classification with labels that continue one another,
multiple choice with options per example, multi-label lists; with and without a chat
template."""

from __future__ import annotations

import random

import pytest

from optprompt.kinds.prompt.card import PromptCard
from optprompt.kinds.prompt.constrained import constrained_predict
from optprompt.kinds.prompt.constrained_packed import greedy_choice, packed_choices
from optprompt.kinds.prompt.predictor import CardPredictor

WORDS = "the food was great awful service slow quick kind rude price fair steep room clean".split()


def _texts(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(3, 9))) for _ in range(n)]


def test_greedy_choice_by_hand() -> None:
    """Answers [1], [1, 2], [3]; EOS = 0. Scores are per (output so far, token)."""
    answers = [[1], [1, 2], [3]]
    table = {((), 1): -1.0, ((), 3): -2.0, ((1,), 2): -0.5, ((1,), 0): -0.7}
    assert greedy_choice(answers, 0, lambda out, t: table[(out, t)]) == 1  # 1, then 2 beats EOS
    table[((1,), 0)] = -0.1
    assert greedy_choice(answers, 0, lambda out, t: table[(out, t)]) == 0  # 1, then EOS ends it
    table[((), 3)] = 0.0
    assert greedy_choice(answers, 0, lambda out, t: table[(out, t)]) == 2
    # without an EOS token a complete answer ends the output
    assert greedy_choice([[1], [1, 2]], None, lambda out, t: {1: 0.0, 2: 5.0}[t]) == 0


@pytest.mark.parametrize("chat", [True, False])
def test_classification_with_labels_that_continue_one_another(chat: bool, tiny_model, tiny_plain_model) -> None:  # type: ignore[no-untyped-def]
    model = tiny_model if chat else tiny_plain_model
    verbalizer = {"pos": "good", "pos+": "good indeed", "neg": "bad", "mixed": "not so good", "none": "room"}
    card = PromptCard(
        instruction="Rate the review.",
        template="Review: {input}\nRating:",
        demos=[{"input": "great food", "answer": "good"}],
        verbalizer=verbalizer,
        task_type="classification",
        chat=chat,
    )
    predictor = CardPredictor(card, model)
    assert predictor.backend.engine == "packed"
    texts = _texts(24)
    packed = constrained_predict(predictor, texts)
    assert packed == constrained_predict(predictor, texts, packed=False)
    assert set(packed) <= set(verbalizer)


def test_multiple_choice_options_per_example(tiny_model) -> None:  # type: ignore[no-untyped-def]
    card = PromptCard(
        instruction="Pick the word that fits.",
        template="Text: {input}\nOptions: {options}\nAnswer:",
        demos=[],
        verbalizer={},
        task_type="multiple_choice",
    )
    predictor = CardPredictor(card, tiny_model)
    rng = random.Random(1)
    texts = _texts(16, seed=1)
    options = [rng.sample(WORDS, rng.randint(2, 5)) for _ in texts]
    packed = constrained_predict(predictor, texts, options)
    assert packed == constrained_predict(predictor, texts, options, packed=False)
    assert all(p in o for p, o in zip(packed, options, strict=True))


@pytest.mark.parametrize("chat", [True, False])
def test_multi_label_lists(chat: bool, tiny_model, tiny_plain_model) -> None:  # type: ignore[no-untyped-def]
    labels = ["billing", "login", "bug report", "refund", "bug"]
    card = PromptCard(
        instruction="Tag the ticket with its topics.",
        template="Ticket: {input}\nTopics:",
        demos=[],
        verbalizer={lbl: lbl for lbl in labels},
        task_type="multi_label",
        chat=chat,
        task={"labels": labels},
    )
    predictor = CardPredictor(card, tiny_model if chat else tiny_plain_model)
    texts = _texts(20, seed=2)
    packed = constrained_predict(predictor, texts)
    assert packed == constrained_predict(predictor, texts, packed=False)


def test_without_a_packed_engine_there_is_no_packed_answer() -> None:
    class Legacy:
        def token_loglikelihoods(self, contexts, answers):  # type: ignore[no-untyped-def]
            return None

    assert packed_choices(Legacy(), [[1, 2]], [[[3], [4]]], 0) is None
    assert packed_choices(object(), [[1, 2]], [[[3], [4]]], 0) is None
