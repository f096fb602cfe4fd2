"""Junk from a small rewriter is repaired or rejected, never raised."""

from __future__ import annotations

import pytest
from optprompt_plugins.evolution.junk import JUNK_REASONS, REPAIRS, JunkFilter

EXAMPLE = "The room smelled of damp and the shower ran cold after two minutes"
PARENTS = ["Classify the sentiment of the review. Answer with one of: {labels}."]


@pytest.fixture
def jf() -> JunkFilter:
    return JunkFilter([EXAMPLE, "great food"], ["negative", "positive"], max_chars=120)


@pytest.mark.parametrize(
    "raw, reason",
    [
        ("", "empty"),
        ("  \n\n ", "empty"),
        ("{input}", "empty"),
        ("\ufffd\x01 tone words here", "garbled"),
        ("Regular system, 118.3.1.1.1.2.2.3.2.2.0.1.9.", "garbled"),
        ("Classify the sentiment of the review. Answer with one of: {labels}.", "unchanged"),
        (f"Review: {EXAMPLE}. Answer: negative", "leaked_answer"),
        (f"Consider this: {EXAMPLE}", "leaked_input"),
        ("Label each review. The answer is positive.", "leaked_answer"),
        ('The review was "positive"', "leaked_answer"),
        ("The review was overwhelmingly negative and disapproving.", "leaked_answer"),
        ("positive", "leaked_answer"),
        ("word " * 200, "runaway_length"),
        ("Instruction 1: judge the tone\nInstruction 2: judge the mood", "echoed_operator"),
        (
            "To improve the text, I will rephrase it to:\n\nFixing the original instruction",
            "meta_reply",
        ),
        ("Instructions 1 and 2 are mutually exclusive, so you cannot combine them.", "meta_reply"),
    ],
)
def test_junk_is_rejected_with_its_reason(jf: JunkFilter, raw: str, reason: str) -> None:
    verdict = jf.check(raw, PARENTS)
    assert not verdict.ok and verdict.text is None
    assert verdict.rejected == reason
    assert reason in JUNK_REASONS


@pytest.mark.parametrize(
    "raw, text, repairs",
    [
        (
            'Sure! Here is the new instruction:\n\n"Decide if the review is positive or negative."',
            "Decide if the review is positive or negative.",
            ["stripped_preamble", "stripped_quotes"],
        ),
        (
            "<prompt>Judge the tone of the review. Answer with one of: {labels}.</prompt> and more",
            "Judge the tone of the review. Answer with one of: {labels}.",
            ["extracted"],
        ),
        (
            "Label the review {input} as one of {labels}.",
            "Label the review as one of {labels}.",
            ["removed_input_placeholder"],
        ),
        (
            "Say {foo} the tone of the text, {labels}.",
            "Say the tone of the text, {labels}.",
            ["removed_stray_placeholder"],
        ),
        (
            "Judge the mood of the text.",
            "Judge the mood of the text. Answer with one of: {labels}.",
            ["restored_labels_placeholder"],
        ),
        (
            "Judge the mood. Judge the mood. Judge the mood. Reply {labels}.",
            "Judge the mood. Reply {labels}.",
            ["deduplicated"],
        ),
        (
            "Judge the mood of the review, {labels}. " + "Then weigh every word again. " * 3,
            "Judge the mood of the review, {labels}. Then weigh every word again.",
            ["deduplicated"],
        ),
        (
            "Judge the mood of the review, {labels}. Look at the adjectives and the",
            "Judge the mood of the review, {labels}.",
            ["dropped_fragment"],
        ),
        (
            "Sort the review by its mood, {labels}, which may be one of these options:\n\n1. good",
            "Sort the review by its mood, {labels}, which may be one of these options.",
            ["closed_sentence"],
        ),
        (
            "Judge the mood of the review, {labels}. Look at adjectives first, then at verbs. "
            "Think about sarcasm and irony as well, they flip the meaning of the words.",
            "Judge the mood of the review, {labels}. Look at adjectives first, then at verbs.",
            ["truncated"],
        ),
    ],
)
def test_fixable_rewrites_are_repaired(jf: JunkFilter, raw: str, text: str, repairs: list[str]) -> None:
    verdict = jf.check(raw, PARENTS)
    assert verdict.ok, verdict
    assert verdict.text == text
    assert verdict.repairs == repairs
    assert set(repairs) <= set(REPAIRS)


def test_naming_every_answer_keeps_the_labels_meaning(jf: JunkFilter) -> None:
    # All answer words spelled out: no placeholder needed, and naming both is no leak.
    verdict = jf.check("Answer with positive or negative.", PARENTS)
    assert verdict.text == "Answer with positive or negative." and verdict.repairs == []


def test_labels_are_not_restored_when_a_parent_had_none(jf: JunkFilter) -> None:
    verdict = jf.check("Judge the mood of the text.", ["Classify the review.", PARENTS[0]])
    assert verdict.text == "Judge the mood of the text."


@pytest.mark.parametrize("raw", [None, "\x00" * 5, "}{" * 50, "{" * 10 + "input" + "}" * 10, "<prompt></prompt>"])
def test_nothing_raises(jf: JunkFilter, raw) -> None:  # type: ignore[no-untyped-def]
    verdict = jf.check(raw, PARENTS)
    assert verdict.ok or verdict.rejected in JUNK_REASONS
