"""Variation operators on fixed seeds: the same seed gives the same child."""

from __future__ import annotations

import random

import pytest
from optprompt_plugins.evolution.config import DEFAULT_TEMPLATES
from optprompt_plugins.evolution.operators import (
    DEFAULT_PHRASES,
    DEFAULT_SYNONYMS,
    PhraseEditor,
    Rewriter,
    demo_crossover,
    demo_mutate,
    derive_seed,
    join_phrases,
    random_demos,
    split_phrases,
)

TEXT = "Read the review carefully, then classify its sentiment. Answer with one of: {labels}."


@pytest.fixture
def editor() -> PhraseEditor:
    return PhraseEditor(["delete", "swap", "add", "paraphrase"], DEFAULT_PHRASES["classification"], DEFAULT_SYNONYMS)


def test_phrases_split_and_join() -> None:
    assert split_phrases(TEXT) == [
        "Read the review carefully,",
        "then classify its sentiment.",
        "Answer with one of: {labels}.",
    ]
    assert split_phrases("{labels}: pick one.") == ["{labels}: pick one."]
    assert join_phrases(["Read the review carefully,", "Answer now,"]) == "Read the review carefully, answer now."
    assert join_phrases(["be brief.", "then stop"]) == "Be brief. Then stop."


@pytest.mark.parametrize(
    "op, seed, expected",
    [
        ("delete", 0, "Read the review carefully, answer with one of: {labels}."),
        (
            "swap",
            0,
            "Read the review carefully, answer with one of: {labels}. Then classify its sentiment.",
        ),
        (
            "add",
            0,
            "Read the review carefully, then classify its sentiment. Answer with one of: {labels}. "
            "Choose the label that fits best.",
        ),
        (
            "paraphrase",
            0,
            "Read the review carefully, then label its sentiment. Answer with one of: {labels}.",
        ),
    ],
)
def test_edit_operators_on_a_fixed_seed(editor: PhraseEditor, op: str, seed: int, expected: str) -> None:
    out = getattr(editor, op)(TEXT, random.Random(seed))
    assert out == expected
    assert getattr(editor, op)(TEXT, random.Random(seed)) == out  # deterministic
    assert "{labels}" in out  # placeholders survive every edit


def test_edits_that_do_not_apply_return_none(editor: PhraseEditor) -> None:
    rng = random.Random(0)
    assert editor.delete("Classify it.", rng) is None  # one phrase
    assert editor.swap("Classify it.", rng) is None
    assert editor.delete("Answer with one of: {labels}.", rng) is None  # the placeholder stays
    assert editor.paraphrase("Zzz qqq.", rng) is None
    assert PhraseEditor(["add"], [], []).add("Zzz.", rng) is None  # empty bank


def test_mutate_picks_an_applicable_edit(editor: PhraseEditor) -> None:
    outs = {editor.mutate(TEXT, random.Random(s)) for s in range(20)}
    assert len(outs) > 5
    assert {op for _, op in outs} == {"delete", "swap", "add", "paraphrase"}
    assert editor.mutate(TEXT, random.Random(1)) == (
        "Read the review closely, then classify its sentiment. Answer with one of: {labels}.",
        "paraphrase",
    )


def test_add_draws_from_extra_phrases_and_user_synonyms() -> None:
    ed = PhraseEditor(["add", "paraphrase"], [], [["mood", "feeling"]])
    assert (
        ed.add("Classify the review.", random.Random(0), ["Mind the sarcasm."])
        == "Classify the review. Mind the sarcasm."
    )
    assert ed.add("Classify the review.", random.Random(0)) is None  # empty bank, no extras
    assert ed.paraphrase("Judge the Mood.", random.Random(0)) == "Judge the Feeling."


def test_crossover_and_differential_on_fixed_seeds(editor: PhraseEditor) -> None:
    other = "Decide whether the text is positive or negative. Be brief."
    child = editor.crossover(TEXT, other, random.Random(0))
    assert child == editor.crossover(TEXT, other, random.Random(0))
    assert child == (
        "Read the review carefully, then classify its sentiment. "
        "Decide whether the text is positive or negative. Be brief."
    )
    assert editor.crossover("One.", "Two.", random.Random(0)) is None  # nothing to recombine
    # best + (b - c): b's extra phrase is added, c's extra phrase removed (rate 1).
    mutant = editor.differential(
        TEXT,
        "Read the review carefully, then decide. Think about the overall tone.",
        "Read the review carefully, then classify its sentiment.",
        random.Random(0),
        rate=1.0,
    )
    assert mutant == (
        "Read the review carefully, then decide. Answer with one of: {labels}. Think about the overall tone."
    )
    assert editor.differential(TEXT, TEXT, TEXT, random.Random(0)) is None  # no difference


def test_demo_operators_on_fixed_seeds() -> None:
    pool = ["a", "b", "c", "d"]
    assert random_demos(pool, random.Random(0), 2) == random_demos(pool, random.Random(0), 2)
    for s in range(20):
        ids = demo_mutate(("a", "b"), random.Random(s), pool, 3)
        assert len(set(ids)) == len(ids) <= 3 and set(ids) <= set(pool)
        kid = demo_crossover(("a", "b"), ("c",), random.Random(s))
        assert set(kid) <= {"a", "b", "c"} and len(kid) in (1, 2)
    assert demo_mutate((), random.Random(0), [], 2) == ()


def test_derived_seeds_are_stable() -> None:
    assert derive_seed(0, "evolution", 1, 2, 0) == 1374741892
    assert derive_seed(0, "evolution", 1, 2, 1) != derive_seed(0, "evolution", 1, 2, 0)


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, float, int]] = []

    def generate(self, prompts, *, max_new_tokens=64, stop=(), temperature=0.0, seed=0, chat=True):  # type: ignore[no-untyped-def]
        self.calls.append((prompts[0], temperature, seed))
        return [f"reply {seed}"]


def test_rewriter_fills_templates_literally_and_passes_seed() -> None:
    gen = _Recorder()
    rw = Rewriter(
        gen,
        dict(DEFAULT_TEMPLATES),
        temperature=0.7,
        max_new_tokens=16,  # type: ignore[arg-type]
        show=lambda s: s.replace("{labels}", "negative, positive"),
    )
    out = rw("crossover", 123, prompt1="A {labels} {prompt2}", prompt2="B")
    assert out == "reply 123" and rw.calls == 1
    prompt, temperature, seed = gen.calls[0]
    assert "Instruction 1: A negative, positive {prompt2}\nInstruction 2: B" in prompt  # one pass, no format()
    assert (temperature, seed) == (0.7, 123)
    rw("de", 5, best="X", prompt1="Y", prompt2="Z")
    assert "Best instruction: X" in gen.calls[1][0]


def test_rewriter_on_the_tiny_model_is_seeded(tiny_model) -> None:  # type: ignore[no-untyped-def]
    from optprompt.scoring.backends.causal import CausalLMBackend
    from optprompt.strategies import TextGenerator

    gen = TextGenerator(CausalLMBackend(tiny_model), tiny_model)
    rw = Rewriter(gen, dict(DEFAULT_TEMPLATES), temperature=0.9, max_new_tokens=8)
    a = rw("mutate", 7, prompt=TEXT)
    assert a == rw("mutate", 7, prompt=TEXT)
    assert len({rw("mutate", s, prompt=TEXT) for s in range(4)}) > 1
