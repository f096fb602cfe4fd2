"""Per-example text metrics for free-form generation tasks (a core plugin).

Each metric is ``fn(prediction, reference) -> float`` in ``[0, 1]`` and scores one example;
averaging over a data set is the caller's job. :func:`extract_answer` pulls the answer out
of a generation first; a ``None`` from it is a format failure, which callers count and
score 0.

``rouge-score`` (which imports nltk) and ``sacrebleu`` are imported on first use only, so
loading the plugins (and ``optprompt --help``) does not pay for them.
"""

from __future__ import annotations

import functools
import re
import string
from collections import Counter
from typing import TYPE_CHECKING

from optprompt.errors import ConfigError
from optprompt.plugins.hookspecs import hookimpl
from optprompt.tasks.types import MetricKind

if TYPE_CHECKING:
    from rouge_score.rouge_scorer import RougeScorer

__all__ = [
    "bleu",
    "compile_pattern",
    "contains",
    "exact_match",
    "extract_answer",
    "label_exact_match",
    "label_f1",
    "normalize_answer",
    "rouge_l",
    "token_f1",
]

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """Normalise an answer the way the SQuAD evaluation script does.

    Lowercases, deletes ASCII punctuation (``"don't"`` becomes ``"dont"``), drops the
    articles *a*, *an* and *the*, and collapses runs of whitespace to single spaces.

    Args:
        text: A prediction or a reference.

    Returns:
        The normalised text, without leading or trailing whitespace.
    """
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, reference: str) -> float:
    """1.0 when prediction and reference are equal after :func:`normalize_answer`, else 0.0.

    Args:
        prediction: The model's answer.
        reference: The gold answer.

    Returns:
        1.0 or 0.0.
    """
    return float(normalize_answer(prediction) == normalize_answer(reference))


def contains(prediction: str, reference: str) -> float:
    """1.0 when the normalised reference occurs in the normalised prediction, else 0.0.

    The match is on whole tokens: reference ``"4"`` is found in ``"the answer is 4"`` but
    not in ``"42"``. An empty (normalised) reference scores 0.0.

    Args:
        prediction: The model's answer.
        reference: The gold answer.

    Returns:
        1.0 or 0.0.
    """
    ref = normalize_answer(reference)
    if not ref:
        return 0.0
    return float(f" {ref} " in f" {normalize_answer(prediction)} ")


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD token F1 between the normalised prediction and reference.

    Tokens are the whitespace-separated words of :func:`normalize_answer`; overlap counts
    repeated tokens at most as often as they appear on both sides.

    Args:
        prediction: The model's answer.
        reference: The gold answer.

    Returns:
        The harmonic mean of token precision and recall; 1.0 when both sides are empty,
        0.0 when only one is.
    """
    pred_tokens = normalize_answer(prediction).split()
    ref_tokens = normalize_answer(reference).split()
    if not pred_tokens or not ref_tokens:
        return float(pred_tokens == ref_tokens)
    common = sum((Counter(pred_tokens) & Counter(ref_tokens)).values())
    if common == 0:
        return 0.0
    precision = common / len(pred_tokens)
    recall = common / len(ref_tokens)
    return 2 * precision * recall / (precision + recall)


@functools.cache
def _rouge_l_scorer() -> RougeScorer:
    # Built once, on first use: constructing it imports nltk.
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure (longest common token subsequence) from the ``rouge-score`` package.

    Uses ``rouge-score``'s own tokenizer (lowercased alphanumeric runs), without stemming.

    Args:
        prediction: The model's answer.
        reference: The gold answer.

    Returns:
        The F-measure; 0.0 when either side has no tokens.
    """
    score = _rouge_l_scorer().score(reference, prediction)["rougeL"]
    return float(score.fmeasure)


def bleu(prediction: str, reference: str) -> float:
    """Sentence BLEU from ``sacrebleu``, scaled to ``[0, 1]``.

    ``sacrebleu.sentence_bleu`` defaults apply: exponential smoothing, effective n-gram
    order (so identical short strings score 1.0), its ``13a`` tokenizer, case-sensitive.

    Args:
        prediction: The model's answer.
        reference: The gold answer.

    Returns:
        BLEU / 100, clipped to ``[0, 1]`` (sacrebleu can return 100.00000000000004);
        0.0 when the prediction is empty.
    """
    import sacrebleu

    score = sacrebleu.sentence_bleu(prediction, [reference]).score / 100
    return min(max(score, 0.0), 1.0)


def compile_pattern(pattern: str, *, key: str) -> re.Pattern[str]:
    """Compile an answer-extraction regex from a config value.

    Args:
        pattern: The regular expression.
        key: Where the pattern came from (e.g. ``"task.answer_pattern"``), for the message.

    Returns:
        The compiled pattern.

    Raises:
        ConfigError: The pattern is not a valid regular expression; the message names
            ``key``, the pattern and the regex error.
    """
    try:
        return re.compile(pattern)
    except re.error as e:
        raise ConfigError(f"{key}: invalid regular expression {pattern!r}: {e}") from e


def extract_answer(text: str, pattern: str | re.Pattern[str] | None) -> str | None:
    """Extract the answer from a generation.

    Args:
        text: The generated text.
        pattern: ``None`` to take the first non-empty line; otherwise a regex (a string or
            a compiled pattern) searched for in ``text``. Its group 1 is the answer, or the
            whole match when it has no groups.

    Returns:
        The answer, or ``None`` for a format failure: blank text (``pattern=None``), no
        match, or a group 1 that did not take part in the match. Callers count these and
        score them 0.

    Raises:
        ConfigError: ``pattern`` is a string that is not a valid regular expression.
    """
    if pattern is None:
        for line in text.splitlines():
            if line.strip():
                return line.strip()
        return None
    regex = pattern if isinstance(pattern, re.Pattern) else compile_pattern(pattern, key="pattern")
    match = regex.search(text)
    if match is None:
        return None
    return match.group(1) if regex.groups else match.group(0)


def label_f1(prediction: str, reference: str) -> float:
    """Set F1 of the labels a written list names against the reference list (multi-label).

    Both are read with :func:`~optprompt.tasks.parse_label_list` (a JSON array, or labels
    separated by commas, semicolons, bars, new lines or "and"; case and quotes aside).
    Two empty sets (``none``) score 1.0; an unreadable prediction scores 0.0.
    """
    from optprompt.tasks.types import parse_label_list

    pred = set(parse_label_list(prediction) or [])
    gold = set(parse_label_list(reference) or [])
    if not pred and not gold:
        return 1.0
    hit = len(pred & gold)
    return 2 * hit / (len(pred) + len(gold))


def label_exact_match(prediction: str, reference: str) -> float:
    """1.0 when a written list names exactly the reference's labels (multi-label), else 0.0."""
    from optprompt.tasks.types import parse_label_list

    pred = parse_label_list(prediction)
    return float(pred is not None and set(pred) == set(parse_label_list(reference) or []))


_GENERATION_METRICS = (
    ("exact_match", exact_match, "1 if the normalised prediction equals the normalised reference"),
    ("contains", contains, "1 if the normalised reference occurs (whole tokens) in the prediction"),
    ("token_f1", token_f1, "SQuAD token F1 on normalised tokens"),
    ("rouge_l", rouge_l, "ROUGE-L F-measure (rouge-score, no stemming)"),
    ("bleu", bleu, "sentence BLEU (sacrebleu defaults) / 100"),
)
_LABEL_LIST_METRICS = (
    ("label_f1", label_f1, "multi-label: set F1 of the listed labels against the reference labels"),
    ("label_exact_match", label_exact_match, "multi-label: 1 if the listed labels are exactly the reference set"),
)


@hookimpl
def register_metrics(register):  # type: ignore[no-untyped-def]
    for name, fn, description in _GENERATION_METRICS:
        register(name, fn, description=description, kind=MetricKind.TEXT)
    for name, fn, description in _LABEL_LIST_METRICS:
        register(name, fn, description=description, kind=MetricKind.LABEL_LISTS)
