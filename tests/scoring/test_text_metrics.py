from __future__ import annotations

import re

import pytest

from optprompt.errors import ConfigError
from optprompt.plugins.manager import get_plugin_manager, load_plugins
from optprompt.scoring import text_metrics
from optprompt.scoring.text_metrics import (
    bleu,
    compile_pattern,
    contains,
    exact_match,
    extract_answer,
    normalize_answer,
    rouge_l,
    token_f1,
)
from optprompt.tasks.types import MetricKind

# --- normalisation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Cat!", "cat"),
        ("  An   apple,\ta day\n", "apple day"),
        ("Paris.", "paris"),
        ("don't", "dont"),  # SQuAD deletes punctuation without a space
        ("theatre anthem", "theatre anthem"),  # articles only as whole words
        ("", ""),
        ("the a an", ""),
    ],
)
def test_normalize_answer(text: str, expected: str) -> None:
    assert normalize_answer(text) == expected


# --- exact match / contains ------------------------------------------------------------


def test_exact_match_after_normalisation() -> None:
    assert exact_match("The Eiffel Tower.", "eiffel tower") == 1.0
    assert exact_match("Eiffel Tower", "Tower Eiffel") == 0.0
    assert exact_match("Paris", "Paris, France") == 0.0


def test_contains() -> None:
    assert contains("I think the answer is Paris, France.", "paris") == 1.0
    assert contains("It is London.", "Paris") == 0.0
    assert contains("The answer is 42.", "4") == 0.0  # whole tokens, not substrings
    assert contains("new york city", "New York") == 1.0


def test_contains_empty_reference_is_zero() -> None:
    assert contains("anything", "") == 0.0
    assert contains("anything", "the.") == 0.0  # normalises to empty


# --- token F1 --------------------------------------------------------------------------


def test_token_f1_partial_overlap() -> None:
    # pred -> [cat, sat, on, mat], ref -> [cat, on, mat]; common = 3
    # precision 3/4, recall 3/3 -> F1 = 2 * 0.75 * 1 / 1.75 = 6/7
    assert token_f1("the cat sat on the mat", "a cat on a mat") == pytest.approx(6 / 7)


def test_token_f1_counts_repeats_once_per_match() -> None:
    # common = min(3, 1) = 1; precision 1/3, recall 1/2 -> F1 = 2/5
    assert token_f1("cat cat cat", "cat dog") == pytest.approx(0.4)


def test_token_f1_edge_cases() -> None:
    assert token_f1("Paris", "paris.") == 1.0
    assert token_f1("London", "Paris") == 0.0
    assert token_f1("", "the") == 1.0  # both empty after normalisation
    assert token_f1("", "Paris") == 0.0
    assert token_f1("Paris", "") == 0.0


# --- ROUGE-L ---------------------------------------------------------------------------


def test_rouge_l_hand_computed_lcs() -> None:
    # ref: the cat sat on the mat / pred: the mat sat on the cat
    # LCS = "the sat on the" (4 tokens); P = R = 4/6 -> F = 2/3
    assert rouge_l("the mat sat on the cat", "the cat sat on the mat") == pytest.approx(2 / 3)


def test_rouge_l_contiguous_subsequence() -> None:
    # LCS = 5 of pred's 6 and ref's 5 tokens: P = 5/6, R = 1 -> F = 10/11
    assert rouge_l("the cat sat on the mat", "the cat on the mat") == pytest.approx(10 / 11)


def test_rouge_l_identical_disjoint_and_empty() -> None:
    assert rouge_l("Hello world", "hello world") == pytest.approx(1.0)
    assert rouge_l("alpha beta", "gamma delta") == 0.0
    assert rouge_l("", "gamma") == 0.0
    assert isinstance(rouge_l("", ""), float)


def test_rouge_l_scorer_is_built_once() -> None:
    assert text_metrics._rouge_l_scorer() is text_metrics._rouge_l_scorer()


# --- BLEU ------------------------------------------------------------------------------


def test_bleu_identical_is_one() -> None:
    sentence = "the quick brown fox jumps over the lazy dog"
    assert bleu(sentence, sentence) == 1.0
    assert bleu("yes", "yes") == 1.0  # short strings: effective order


def test_bleu_disjoint_is_near_zero() -> None:
    assert bleu("alpha beta gamma delta", "one two three four") < 0.1


def test_bleu_partial_overlap_is_strictly_between() -> None:
    score = bleu("the quick brown fox jumps", "the quick red fox leaps")
    assert 0.1 < score < 0.9


def test_bleu_empty_prediction_is_zero() -> None:
    assert bleu("", "a reference") == 0.0


# --- answer extraction -----------------------------------------------------------------


def test_extract_answer_without_pattern_takes_first_non_empty_line() -> None:
    assert extract_answer("\n  \n  Paris  \nbecause...", None) == "Paris"


@pytest.mark.parametrize("text", ["", "   \n\t\n"])
def test_extract_answer_blank_text_is_none(text: str) -> None:
    assert extract_answer(text, None) is None


def test_extract_answer_with_group_returns_group_one() -> None:
    text = "Reasoning: 2 + 2.\nAnswer: 4\nAnswer: 5"
    assert extract_answer(text, r"Answer:\s*(\d+)") == "4"


def test_extract_answer_without_group_returns_whole_match() -> None:
    assert extract_answer("it costs 42 dollars", r"\d+") == "42"


def test_extract_answer_accepts_a_compiled_pattern() -> None:
    assert extract_answer("ANSWER: b", re.compile(r"answer:\s*(\w)", re.IGNORECASE)) == "b"


def test_extract_answer_no_match_is_none() -> None:
    assert extract_answer("I don't know", r"Answer:\s*(\d+)") is None


def test_extract_answer_unmatched_optional_group_is_none() -> None:
    assert extract_answer("Answer:", r"Answer:(\d+)?") is None


# --- compile_pattern -------------------------------------------------------------------


def test_compile_pattern_valid() -> None:
    assert compile_pattern(r"Answer: (\w+)", key="task.answer_pattern").groups == 1


def test_compile_pattern_invalid_names_key_and_error() -> None:
    with pytest.raises(ConfigError, match=r"task\.answer_pattern") as info:
        compile_pattern(r"Answer: (\w+", key="task.answer_pattern")
    assert "missing )" in str(info.value)
    assert "Answer: (\\\\w+" in str(info.value)


# --- plugin registration ---------------------------------------------------------------


def test_registers_generation_metrics() -> None:
    pm = get_plugin_manager(entry_points=False)
    if not pm.is_registered(text_metrics):  # until it is listed as a core plugin
        pm.register(text_metrics)
    metrics = load_plugins(pm).metrics
    for name, fn in [
        ("exact_match", exact_match),
        ("contains", contains),
        ("token_f1", token_f1),
        ("rouge_l", rouge_l),
        ("bleu", bleu),
    ]:
        entry = metrics.get(name)
        assert entry.obj is fn
        assert entry.extra == {"kind": MetricKind.TEXT}
        assert entry.description
