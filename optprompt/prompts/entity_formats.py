"""Output formats of extraction tasks: how a prompt asks for entities and how answers are read.

A format writes gold entities as the answer a demonstration shows (and soft prompts train
on), says in words what the model should write (the instruction's ``{format}``), and
parses a model's output back into entities, tolerantly: junk lines, code fences, stray
quotes and unknown types are skipped; output with nothing readable in it is a *format
failure* (:func:`parse_entities` returns None), which the scorer counts and scores 0.

Types are written with the candidate's verbalizer (type -> word, e.g. ``PER -> person``)
and read back through it (case-insensitively). Entities named by their text are placed in
the input with :func:`optprompt.tasks.entities.locate` (left to right, an occurrence not
used yet). A name of three words or more that is not in the input as written is snapped
to the input's span whose words match it best (:func:`~optprompt.tasks.entities.nearest_span`:
a small model copying a long title drops, adds or changes a word: "a Friday afternoon
wind down" for "friday afternoon wind down"); other text that is not in the input keeps
the span ``(-1, -1)`` and matches no gold.

Formats (:data:`ENTITY_FORMATS`):

- ``lines``: one ``TYPE: text`` per line; ``none`` when there is no entity.
- ``json``: a JSON list of ``{"type": ..., "text": ...}`` objects; ``[]`` when there is none.
- ``inline``: the input with each entity wrapped in tags, ``met<PER> Ada Lovelace</PER>``
  (the tag before the name's leading space: the answer keeps the input's tokens).
- ``spans``: one ``text (TYPE)`` per line, the span before its type; ``none`` when there
  is no entity. A model writes the type after the words it names, so it decides the type
  with the span in view (with ``lines`` it commits to a type first).
"""

from __future__ import annotations

import abc
import json
import re
from collections.abc import Callable, Mapping, Sequence

from optprompt.errors import ConfigError
from optprompt.tasks.entities import Entity, locate, nearest_span

__all__ = [
    "ENTITY_FORMATS",
    "EntityFormat",
    "entity_format",
    "describe_format",
    "describe_types",
    "parse_entities",
    "serialize_entities",
]

_NONE_WORDS = {"none", "no entities", "nothing", "n/a", "-", "[]", "{}", "no entity", "none."}
_FENCE = re.compile(r"```[a-zA-Z]*")
_LINE = re.compile(r"^\s*(?:[-*•]\s*|\d+[.)]\s*)?([A-Za-z][\w /&.-]{0,40}?)\s*(?::|=|\s[-–]\s)\s*(.+?)\s*$")
_SPAN_LINE = re.compile(r"^\s*(?:[-*•]\s*|\d+[.)]\s*)?(.+?)\s*[(\[]\s*([A-Za-z][\w /&.-]{0,40}?)\s*[)\]]\s*[.,;]?\s*$")
_TAG = re.compile(r"<\s*([A-Za-z][\w-]{0,40})\s*>(.*?)<\s*/\s*\1\s*>", re.S)
_QUOTES = "\"'`“”‘’«»"


class EntityFormat(abc.ABC):
    """One output format: what the prompt says about it, how gold entities are written in
    it, and how (type word, text) pairs are read from a model's output.

    :meth:`pairs` returns ``[]`` for an explicit "no entities" answer and None when it
    finds nothing of its format in the output; ``asked`` says whether this is the format
    the prompt asked for (or one tried after it)."""

    name: str = ""
    description: str = ""

    @abc.abstractmethod
    def serialize(self, text: str, entities: Sequence[Entity], words: Mapping[str, str]) -> str:
        """The gold ``entities`` of ``text`` written in this format (demonstrations, training)."""

    @abc.abstractmethod
    def pairs(self, output: str, text: str, asked: bool) -> list[tuple[str, str]] | None:
        """(type word, text) pairs read from ``output``; see the class docstring."""


def _clean(value: str) -> str:
    value = value.strip().strip(_QUOTES).strip()
    return value.rstrip(",;").strip().strip(_QUOTES).strip()


def _is_none(output: str) -> bool:
    return output.strip().lower().strip(".") in _NONE_WORDS


def _per_line(output: str, read: Callable[[str], list[tuple[str, str]] | None]) -> list[tuple[str, str]] | None:
    """(type, text) pairs of an answer written one entity per line; ``read`` gives a line's
    pairs, or None for a line that says there are none. None: nothing readable (and JSON,
    which the JSON format reads)."""
    if output.lstrip().startswith(("[", "{")):  # JSON answers read as JSON, not line by line
        return None
    pairs: list[tuple[str, str]] = []
    said_none = False
    for line in output.splitlines():
        got = None if _is_none(line) else read(line)
        if got is None:
            said_none = True
        else:
            pairs += got
    return pairs if pairs or said_none else None


class LinesFormat(EntityFormat):
    name = "lines"
    description = 'Write one entity per line as TYPE: text. Write "none" if there are no entities.'

    def serialize(self, text: str, entities: Sequence[Entity], words: Mapping[str, str]) -> str:
        return "\n".join(f"{words.get(e.type, e.type)}: {e.text}" for e in sorted(entities)) or "none"

    def pairs(self, output: str, text: str, asked: bool) -> list[tuple[str, str]] | None:
        def read(line: str) -> list[tuple[str, str]] | None:
            m = _LINE.match(line)
            if not m:
                return []
            if _is_none(m.group(2)):  # "Entities: none"
                return None
            # "PER: Ada; Bob" names two
            return [(m.group(1).strip(), _clean(v)) for v in m.group(2).split(";") if _clean(v)]

        return _per_line(output, read)


def _json_items(value: object) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    if isinstance(value, dict):
        if "type" in value and "text" in value:
            return [(str(value["type"]), str(value["text"]))]
        for key, item in value.items():  # {"PER": ["Ada", ...], ...}
            for text in item if isinstance(item, list) else [item]:
                if isinstance(text, (str, int, float)):
                    pairs.append((str(key), str(text)))
        return pairs
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and "type" in item and "text" in item:
                pairs.append((str(item["type"]), str(item["text"])))
            elif isinstance(item, (list, tuple)) and len(item) == 2:
                pairs.append((str(item[0]), str(item[1])))
    return pairs


class JsonFormat(EntityFormat):
    name = "json"
    description = 'Answer with a JSON list of {"type": TYPE, "text": text} objects; [] if there are no entities.'

    def serialize(self, text: str, entities: Sequence[Entity], words: Mapping[str, str]) -> str:
        items = [{"type": words.get(e.type, e.type), "text": e.text} for e in sorted(entities)]
        return json.dumps(items, ensure_ascii=False)

    def pairs(self, output: str, text: str, asked: bool) -> list[tuple[str, str]] | None:
        # Every JSON value in the output, one after the other: small models often write
        # objects separated by commas without the list around them, or stop mid-list.
        decoder = json.JSONDecoder()
        found: list[tuple[str, str]] = []
        readable = False
        i = 0
        while i < len(output):
            if output[i] not in "[{":
                i += 1
                continue
            try:
                value, end = decoder.raw_decode(output, i)
            except json.JSONDecodeError:
                i += 1
                continue
            readable = True
            found.extend((t, _clean(x)) for t, x in _json_items(value) if _clean(x))
            i = end
        if readable:
            return found
        return [] if _is_none(output) else None


class InlineFormat(EntityFormat):
    name = "inline"
    description = "Repeat the text with every entity wrapped in tags, like <TYPE>text</TYPE>."

    def serialize(self, text: str, entities: Sequence[Entity], words: Mapping[str, str]) -> str:
        """The text with each entity tagged; the opening tag goes *before* the space in
        front of the name (``the song<SONG> Blue Moon</SONG> by``), so the answer repeats
        the input's own tokens with tags between them: a byte-level or SentencePiece
        tokenizer spells a word with its leading space (" Blue"), and ``<SONG>Blue``
        would spell the name's first word with another token than the input does. A name
        at the start of the text gets the space the template puts before the input."""
        out, pos = [], 0
        for e in sorted(entities):
            if e.start < pos:  # nested or overlapping spans cannot be tagged inline: the first is kept
                continue
            w = words.get(e.type, e.type)
            lead = e.start - 1 if e.start > pos and text[e.start - 1] == " " else e.start
            space = " " if e.start == 0 else text[lead : e.start]
            out.append(f"{text[pos:lead]}<{w}>{space}{e.text}</{w}>")
            pos = e.end
        out.append(text[pos:])
        return "".join(out)

    def pairs(self, output: str, text: str, asked: bool) -> list[tuple[str, str]] | None:
        pairs = [(m.group(1), _clean(m.group(2))) for m in _TAG.finditer(output)]
        if pairs:
            return [p for p in pairs if p[1]]
        if _is_none(output):
            return []
        # Asked to tag the text and repeated it without tags: no entities. Anything else
        # (and an echo of the input under another format) is unreadable.
        stripped = output.strip()
        return [] if asked and stripped and stripped.split()[:3] == text.split()[:3] else None


class SpansFormat(EntityFormat):
    name = "spans"
    description = 'Write one entity per line as: text (TYPE). Write "none" if there are no entities.'

    def serialize(self, text: str, entities: Sequence[Entity], words: Mapping[str, str]) -> str:
        return "\n".join(f"{e.text} ({words.get(e.type, e.type)})" for e in sorted(entities)) or "none"

    def pairs(self, output: str, text: str, asked: bool) -> list[tuple[str, str]] | None:
        def read(line: str) -> list[tuple[str, str]]:
            m = _SPAN_LINE.match(line)
            return [(m.group(2).strip(), _clean(m.group(1)))] if m and _clean(m.group(1)) else []

        return _per_line(output, read)


#: The output formats by name (a format's parser falls back on the others, in this order).
ENTITY_FORMATS: dict[str, EntityFormat] = {
    f.name: f for f in (LinesFormat(), JsonFormat(), InlineFormat(), SpansFormat())
}


def entity_format(name: str) -> EntityFormat:
    """The format called ``name``.

    Raises:
        ConfigError: no such format (the known ones are named).
    """
    try:
        return ENTITY_FORMATS[name]
    except KeyError:
        raise ConfigError(f"unknown output format {name!r}; known: {', '.join(ENTITY_FORMATS)}") from None


def describe_format(name: str) -> str:
    """What the prompt's ``{format}`` placeholder becomes for format ``name``."""
    return entity_format(name).description


def describe_types(words: Sequence[str], descriptions: Mapping[str, str]) -> str:
    """The ``{types}`` placeholder: each type word with its description (when it has one)."""
    return ", ".join(f"{w} ({descriptions[w]})" if descriptions.get(w) else w for w in words)


def serialize_entities(text: str, entities: Sequence[Entity], fmt: str, words: Mapping[str, str]) -> str:
    """The answer for ``entities`` of ``text`` in format ``fmt``, types written as ``words[type]``."""
    return entity_format(fmt).serialize(text, entities, words)


def parse_entities(output: str, text: str, fmt: str, words: Mapping[str, str]) -> tuple[Entity, ...] | None:
    """The entities an output names, placed in ``text``; None when nothing in it is readable.

    Every format's parser falls back on the others (a model asked for lines may answer in
    JSON). Types are mapped back from their words (``words``: type -> word)
    case-insensitively; a pair whose type is no known type is dropped. Output that names
    no entity of a known type and does not say "none" (e.g. an echo of the input or of
    the template) is a format failure.
    """
    output = _FENCE.sub("", output or "")
    first = entity_format(fmt)
    by_word = {}
    for etype, word in words.items():
        by_word.setdefault(word.lower(), etype)
        by_word.setdefault(etype.lower(), etype)
    known = None
    for f in [first, *(f for f in ENTITY_FORMATS.values() if f is not first)]:
        pairs = f.pairs(output, text, f is first)
        if pairs is None:
            continue
        typed = [(by_word[w.strip().lower()], v) for w, v in pairs if w.strip().lower() in by_word]
        if typed or not pairs:  # entities of known types, or an explicit "none"
            known = typed
            break
    if known is None:
        return None
    out: list[Entity] = []
    taken: set[tuple[int, int]] = set()
    cursor = 0
    for etype, value in known:
        start, end = locate(text, value, after=cursor, taken=taken)
        if start < 0:  # a long name not copied exactly: the input's span whose words match it best
            start, end = nearest_span(text, value, taken=taken)
        if start < 0:
            out.append(Entity(-1, -1, etype, value))
            continue
        taken.add((start, end))
        cursor = end
        out.append(Entity(start, end, etype, text[start:end]))
    return tuple(dict.fromkeys(out))
