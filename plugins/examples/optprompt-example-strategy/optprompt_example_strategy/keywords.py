"""Which words tell the labels apart: smoothed log-odds over a labelled train split."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable

__all__ = ["DEFAULT_STOPWORDS", "label_keywords", "words"]

DEFAULT_STOPWORDS: tuple[str, ...] = tuple(
    "a an and are as at be been but by can could did do does for from had has have he her his i if in "
    "into is it its just me my no not of on or our she so than that the their them then there these "
    "they this to too us very was we were what when which who will with would you your".split()
)

_WORD = re.compile(r"[^\W\d_]+(?:['-][^\W\d_]+)*")


def words(text: str, *, min_length: int = 3) -> set[str]:
    """The distinct lower-cased words of ``text`` (letters, inner ' and -) of ``min_length`` or more."""
    return {w for w in _WORD.findall(text.lower()) if len(w) >= min_length}


def label_keywords(
    examples: Iterable[tuple[str, str]],
    *,
    min_count: int = 2,
    min_length: int = 3,
    stopwords: Iterable[str] = DEFAULT_STOPWORDS,
    exclude: Iterable[str] = (),
) -> dict[str, list[str]]:
    """The words most typical of each label, best first.

    A word's score for a label is the log odds ratio of it appearing in a text of that
    label versus a text of any other label, with add-0.5 smoothing; each text counts a
    word once. Words seen in fewer than ``min_count`` texts of the label, or with a
    score of zero or less, are left out. Ties are broken alphabetically, so the result
    depends on the data only.

    Args:
        examples: ``(text, label)`` pairs, e.g. a task's train split.
        min_count: Fewest texts of the label a keyword must appear in.
        min_length: Shortest word considered.
        stopwords: Words never used (compared lower-cased).
        exclude: More words never used (e.g. the labels' answer words).
    """
    skip = {w.lower() for w in stopwords} | {w.lower() for w in exclude}
    per_label: dict[str, Counter[str]] = {}
    texts: Counter[str] = Counter()
    for text, label in examples:
        texts[label] += 1
        per_label.setdefault(label, Counter()).update(words(text, min_length=min_length) - skip)
    overall: Counter[str] = sum(per_label.values(), Counter())
    total = sum(texts.values())
    out: dict[str, list[str]] = {}
    for label in sorted(per_label):
        n_in, n_out = texts[label], total - texts[label]
        scored = []
        for word, c_in in per_label[label].items():
            if c_in < min_count:
                continue
            c_out = overall[word] - c_in
            p_in = (c_in + 0.5) / (n_in + 1)
            p_out = (c_out + 0.5) / (n_out + 1)
            score = math.log(p_in / (1 - p_in)) - math.log(p_out / (1 - p_out))
            if score > 0:
                scored.append((-score, word))
        out[label] = [w for _, w in sorted(scored)]
    return out
