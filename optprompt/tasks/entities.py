"""Entity spans for extraction tasks: the gold annotation, BIO conversion and validation.

An :class:`Entity` is a typed character span of the example's text. Three shapes of data
become entities (:func:`entities_from_value`):

- CoNLL-style token/tag rows (the ``conll`` loader joins the tokens with single spaces and
  turns the BIO tags into spans with :func:`bio_to_spans`);
- JSONL rows with character spans: ``[{"start": 0, "end": 5, "type": "PER"}, ...]`` or
  ``[[0, 5, "PER"], ...]``;
- JSONL rows with a list of entities by text: ``[{"text": "Ada", "type": "PER"}, ...]``
  (each found in the text, left to right).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from optprompt.errors import DataError

__all__ = [
    "Entity",
    "bio_to_spans",
    "entities_from_value",
    "join_tokens",
    "locate",
    "nearest_span",
    "spans_to_bio",
]


@dataclass(frozen=True, order=True)
class Entity:
    """A typed span ``text[start:end]`` of an example's input.

    Attributes:
        start / end: Character offsets (end exclusive). ``start == end == -1`` for an
            entity a model named that is not in the text (it can never match gold).
        type: The entity type (a label of the task, e.g. ``PER``).
        text: The span's text.
    """

    start: int
    end: int
    type: str
    text: str

    @property
    def key(self) -> tuple[int, int, str]:
        """What exact matching compares: span and type."""
        return (self.start, self.end, self.type)

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "text": self.text, "start": self.start, "end": self.end}


def join_tokens(tokens: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
    """Tokens joined by single spaces, with each token's character offsets."""
    offsets = []
    pos = 0
    for tok in tokens:
        offsets.append((pos, pos + len(tok)))
        pos += len(tok) + 1
    return " ".join(tokens), offsets


def bio_to_spans(
    tokens: Sequence[str], tags: Sequence[str], *, where: str = "<tags>", strict: bool = True
) -> tuple[str, list[Entity]]:
    """The text (tokens joined by spaces) and the entity spans of BIO (or IOB1) tags.

    ``B-X`` starts an entity of type X, ``I-X`` continues one of the same type, ``O`` is
    outside. An ``I-X`` that does not continue an X entity (after ``O`` or another type)
    starts a new one, as in IOB1 and as seqeval reads it. ``E-``/``S-`` (BIOES) are read too.

    Raises:
        DataError: a tag that is none of these (with ``strict``), or token and tag counts
            that differ; the message names ``where``.
    """
    if len(tokens) != len(tags):
        raise DataError(f"{where}: {len(tokens)} tokens but {len(tags)} tags")
    text, offsets = join_tokens(tokens)
    spans: list[Entity] = []
    start = -1
    etype = ""
    end_tok = -1

    def close() -> None:
        nonlocal start, etype
        if start >= 0:
            s, e = offsets[start][0], offsets[end_tok][1]
            spans.append(Entity(s, e, etype, text[s:e]))
        start, etype = -1, ""

    for i, tag in enumerate(tags):
        tag = tag.strip()
        if tag == "O" or tag == "":
            close()
            continue
        prefix, sep, kind = tag.partition("-")
        if not sep or prefix not in ("B", "I", "E", "S") or not kind:
            if strict:
                raise DataError(f"{where}: token {i + 1} ({tokens[i]!r}) has tag {tag!r}; expected O, B-TYPE or I-TYPE")
            close()
            continue
        if prefix in ("B", "S") or kind != etype or start < 0:
            close()
            start, etype = i, kind
        end_tok = i
        if prefix in ("E", "S"):
            close()
    close()
    return text, spans


def spans_to_bio(text: str, entities: Sequence[Entity]) -> tuple[list[str], list[str]]:
    """Whitespace tokens of ``text`` and their BIO tags (inverse of :func:`bio_to_spans`).

    A token belongs to an entity when it lies inside the span. Spans that do not start and
    end on token boundaries cannot be written as BIO tags.

    Raises:
        DataError: an entity that cuts a token, or overlapping entities.
    """
    tokens: list[str] = []
    offsets: list[tuple[int, int]] = []
    pos = 0
    for tok in text.split():
        s = text.index(tok, pos)
        tokens.append(tok)
        offsets.append((s, s + len(tok)))
        pos = s + len(tok)
    tags = ["O"] * len(tokens)
    for ent in sorted(entities):
        inside = [i for i, (s, e) in enumerate(offsets) if s >= ent.start and e <= ent.end]
        if not inside or offsets[inside[0]][0] != ent.start or offsets[inside[-1]][1] != ent.end:
            raise DataError(f"entity {ent.text!r} ({ent.start}-{ent.end}) does not start and end on token boundaries")
        if any(tags[i] != "O" for i in inside):
            raise DataError(f"entity {ent.text!r} ({ent.start}-{ent.end}) overlaps another entity")
        tags[inside[0]] = f"B-{ent.type}"
        for i in inside[1:]:
            tags[i] = f"I-{ent.type}"
    return tokens, tags


def _is_boundary(text: str, start: int, end: int) -> bool:
    before = start == 0 or not text[start - 1].isalnum()
    after = end == len(text) or not text[end].isalnum()
    return before and after


def locate(text: str, needle: str, *, after: int = 0, taken: set[tuple[int, int]] | None = None) -> tuple[int, int]:
    """Where ``needle`` occurs in ``text``: the first occurrence at or after ``after`` that is
    not ``taken``, else the first anywhere that is not; whole words preferred over parts of
    words, case-sensitive before case-insensitive. ``(-1, -1)`` when it is not there."""
    taken = taken or set()
    if not needle:
        return (-1, -1)
    for haystack, probe in ((text, needle), (text.lower(), needle.lower())):
        hits = []
        i = haystack.find(probe)
        while i >= 0:
            hits.append((i, i + len(probe)))
            i = haystack.find(probe, i + 1)
        free = [h for h in hits if h not in taken]
        for pool in ([h for h in free if _is_boundary(text, *h)], free):
            for h in [h for h in pool if h[0] >= after] + pool:
                return h
    return (-1, -1)


_WORD = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]")


def _words(text: str) -> list[tuple[str, int, int]]:
    """Words and punctuation marks of ``text``, lower-cased, with their character offsets."""
    return [(m.group().lower(), m.start(), m.end()) for m in _WORD.finditer(text)]


def nearest_span(
    text: str, needle: str, *, taken: set[tuple[int, int]] | None = None, min_words: int = 3, min_ratio: float = 0.8
) -> tuple[int, int]:
    """The span of ``text`` whose words best match ``needle``'s, for a long name a model
    did not copy exactly (a word left out, doubled or changed: "Letters I Never Sent You"
    for "Letters I Never Sent to You"). Only needles of ``min_words`` words or more, and
    only a span whose word sequence matches with a similarity ratio of ``min_ratio`` or
    more (:class:`difflib.SequenceMatcher` over words; ties: the shorter span, then the
    earlier) that overlaps no span in ``taken``; ``(-1, -1)`` otherwise. Short names are
    never snapped: one changed word of a two-word name is another name."""
    probe = [w for w, _, _ in _words(needle)]
    if len(probe) < min_words:
        return (-1, -1)
    words = _words(text)
    taken = taken or set()
    best: tuple[float, int, int] | None = None
    best_span = (-1, -1)
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2(probe)
    for n in range(max(1, len(probe) - 2), len(probe) + 3):
        for i in range(0, len(words) - n + 1):
            window = words[i : i + n]
            if not window[0][0][0].isalnum() or not window[-1][0][-1].isalnum():
                continue  # a span starts and ends with a word
            span = (window[0][1], window[-1][2])
            if any(a < span[1] and span[0] < b for a, b in taken):
                continue  # overlaps a name already placed
            matcher.set_seq1([w for w, _, _ in window])
            ratio = matcher.ratio()
            key = (ratio, -n, -i)
            if ratio >= min_ratio and (best is None or key > best):
                best, best_span = key, span
    return best_span


def _int(value: Any, *, where: str, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise DataError(f"{where}: entity {what} must be an integer, got {value!r}")
    return int(value)


def entities_from_value(value: Any, text: str, *, where: str) -> tuple[Entity, ...]:
    """The gold entities of one row, from any of the shapes the module docstring lists.

    Raises:
        DataError: a shape that is none of those, offsets outside the text, a span whose
            ``text`` disagrees with the input, or an entity text not found in the input;
            the message names ``where`` (file and row) and the entity's position.
    """
    if value is None:
        return ()
    if isinstance(value, str):
        import json

        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise DataError(f"{where}: the entities must be a list (or a JSON string of one), got {value!r}") from None
    if not isinstance(value, (list, tuple)):
        raise DataError(f"{where}: the entities must be a list, got {type(value).__name__}")
    out: list[Entity] = []
    taken: set[tuple[int, int]] = set()
    cursor = 0
    for k, item in enumerate(value):
        at = f"{where} entity {k + 1}"
        if isinstance(item, (list, tuple)) and len(item) == 3:
            item = {"start": item[0], "end": item[1], "type": item[2]}
        if not isinstance(item, dict):
            raise DataError(f"{at}: expected {{start, end, type}}, {{text, type}} or [start, end, type], got {item!r}")
        item = {k: v for k, v in item.items() if v is not None}  # datasets fills keys other rows have with None
        etype = item.get("type", item.get("label"))
        if not isinstance(etype, str) or not etype.strip():
            raise DataError(f"{at}: needs a non-empty 'type'")
        if "start" in item or "end" in item:
            start = _int(item.get("start"), where=at, what="start")
            end = _int(item.get("end"), where=at, what="end")
            if not 0 <= start < end <= len(text):
                raise DataError(f"{at}: span {start}-{end} is outside the text (length {len(text)})")
            if "text" in item and item["text"] != text[start:end]:
                raise DataError(f"{at}: 'text' is {item['text']!r} but the span {start}-{end} is {text[start:end]!r}")
        elif isinstance(item.get("text"), str) and item["text"].strip():
            start, end = locate(text, item["text"], after=cursor, taken=taken)
            if start < 0:
                raise DataError(f"{at}: entity text {item['text']!r} is not in the input {text!r}")
        else:
            raise DataError(f"{at}: needs 'start' and 'end', or 'text'")
        taken.add((start, end))
        cursor = end
        out.append(Entity(start, end, etype.strip(), text[start:end]))
    return tuple(sorted(set(out)))
