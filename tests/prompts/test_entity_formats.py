"""Output formats of extraction tasks: writing gold entities, reading model output tolerantly."""

from __future__ import annotations

import pytest

from optprompt.errors import ConfigError
from optprompt.prompts.entity_formats import ENTITY_FORMATS, parse_entities, serialize_entities
from optprompt.tasks.entities import Entity

TEXT = "Ada Lovelace joined Acme Corp in Paris."
GOLD = (Entity(0, 12, "PER", "Ada Lovelace"), Entity(20, 29, "ORG", "Acme Corp"), Entity(33, 38, "LOC", "Paris"))
WORDS = {"PER": "person", "ORG": "organization", "LOC": "location"}


def test_serialize_each_format() -> None:
    assert serialize_entities(TEXT, GOLD, "lines", WORDS) == (
        "person: Ada Lovelace\norganization: Acme Corp\nlocation: Paris"
    )
    assert serialize_entities(TEXT, GOLD, "json", WORDS) == (
        '[{"type": "person", "text": "Ada Lovelace"}, {"type": "organization", "text": "Acme Corp"}, '
        '{"type": "location", "text": "Paris"}]'
    )
    assert serialize_entities(TEXT, GOLD, "inline", WORDS) == (
        "<person> Ada Lovelace</person> joined<organization> Acme Corp</organization> in<location> Paris</location>."
    )
    assert serialize_entities(TEXT, GOLD, "spans", WORDS) == (
        "Ada Lovelace (person)\nAcme Corp (organization)\nParis (location)"
    )
    assert serialize_entities(TEXT, (), "spans", WORDS) == "none"
    assert serialize_entities(TEXT, (), "lines", WORDS) == "none"
    assert serialize_entities(TEXT, (), "json", WORDS) == "[]"
    assert serialize_entities(TEXT, (), "inline", WORDS) == TEXT


def test_inline_tags_keep_the_input_tokens_of_each_name() -> None:
    """A tagged name is spelt with the tokens it has in the input (the word's leading space
    included), so an adapter trained on the answer copies the input token for token."""
    from optprompt.testing.fixtures import tiny_tokenizer

    text = "play the song running late for wild geese by priya alvarez"
    gold = (Entity(14, 41, "SONG", "running late for wild geese"), Entity(45, 58, "ARTIST", "priya alvarez"))
    tok = tiny_tokenizer([text] * 20 + ["<SONG> </SONG> <ARTIST> </ARTIST>"] * 5, chat=False, bos=False)

    def ids(s: str) -> list[int]:
        return tok(s, add_special_tokens=False)["input_ids"]

    answer = serialize_entities(text, gold, "inline", {})
    assert answer == "play the song<SONG> running late for wild geese</SONG> by<ARTIST> priya alvarez</ARTIST>"
    answer_ids, input_ids = ids(" " + answer), ids(" " + text)
    for e in gold:
        name = ids(" " + e.text)
        assert any(answer_ids[i : i + len(name)] == name for i in range(len(answer_ids)))
    # the tags are insertions between the input's tokens: without them the answer is the input
    tags = {t for tag in ("<SONG>", "</SONG>", "<ARTIST>", "</ARTIST>") for t in ids(tag)}
    assert [t for t in answer_ids if t not in tags] == input_ids
    assert parse_entities(answer, text, "inline", {"SONG": "SONG", "ARTIST": "ARTIST"}) == gold


@pytest.mark.parametrize("fmt", sorted(ENTITY_FORMATS))
def test_every_format_reads_back_what_it_writes(fmt: str) -> None:
    assert parse_entities(serialize_entities(TEXT, GOLD, fmt, WORDS), TEXT, fmt, WORDS) == GOLD
    assert parse_entities(serialize_entities(TEXT, (), fmt, WORDS), TEXT, fmt, WORDS) == ()


@pytest.mark.parametrize(
    ("output", "fmt", "expected"),
    [
        # junk around the answer, bullets, upper-case type words, quotes, trailing commas
        ('Sure! Here:\n- PERSON: "Ada Lovelace",\n2. Location = Paris\n', "lines", ["Ada Lovelace", "Paris"]),
        # a code fence and the type's own name instead of its word
        ("```\nPER: Ada Lovelace\n```", "lines", ["Ada Lovelace"]),
        # two values on one line
        ("person: Ada Lovelace; Paris", "lines", ["Ada Lovelace", "Paris"]),
        # JSON cut off mid-list: the complete objects count
        ('[{"type": "person", "text": "Ada Lovelace"}, {"type": "location", "te', "json", ["Ada Lovelace"]),
        # objects without the list around them, with a stray closing brace
        (
            '{"type": "person", "text": "Ada Lovelace"}, {"type": "organization", "text": "Acme Corp"}}',
            "json",
            ["Ada Lovelace", "Acme Corp"],
        ),
        # a mapping type -> texts
        ('{"person": ["Ada Lovelace"], "location": "Paris"}', "json", ["Ada Lovelace", "Paris"]),
        # asked for lines, answered in JSON: still read
        ('[{"type": "location", "text": "Paris"}]', "lines", ["Paris"]),
        # unbalanced inline tags: only closed ones count
        ("<person>Ada Lovelace</person> joined <organization>Acme Corp in Paris.", "inline", ["Ada Lovelace"]),
        # unknown types are dropped, known ones kept
        ("animal: Ada Lovelace\nlocation: Paris", "lines", ["Paris"]),
        # span first: bullets, brackets, quotes, a trailing full stop, junk lines skipped
        ('Entities:\n- "Ada Lovelace" (PERSON)\n2. Paris [location].\nthat is all', "spans", ["Ada Lovelace", "Paris"]),
        # asked for spans, answered as TYPE: text lines: still read
        ("person: Ada Lovelace\norganization: Acme Corp", "spans", ["Ada Lovelace", "Acme Corp"]),
        # asked for lines, answered span first: still read
        ("Acme Corp (organization)", "lines", ["Acme Corp"]),
    ],
)
def test_tolerant_parsing(output: str, fmt: str, expected: list[str]) -> None:
    found = parse_entities(output, TEXT, fmt, WORDS)
    assert found is not None
    assert [e.text for e in found] == expected
    assert all(TEXT[e.start : e.end] == e.text for e in found)


@pytest.mark.parametrize(
    ("output", "fmt"),
    [
        ("", "lines"),
        ("   \n ", "json"),
        ("I don't know.", "lines"),
        ("Ada Lovelace", "lines"),
        ("{{{", "json"),
        ("The weather is nice today.", "inline"),
    ],  # fmt: skip
)
def test_unreadable_output_is_a_format_failure_not_a_crash(output: str, fmt: str) -> None:
    assert parse_entities(output, TEXT, fmt, WORDS) is None


@pytest.mark.parametrize("output", ["none", "None.", "[]", TEXT])
def test_an_explicit_empty_answer_is_no_entities(output: str) -> None:
    assert parse_entities(output, TEXT, "inline" if output == TEXT else "lines", WORDS) == ()


def test_text_that_is_not_in_the_input_keeps_no_span() -> None:
    found = parse_entities("person: Grace Hopper\nlocation: paris", TEXT, "lines", WORDS)
    assert found == (Entity(-1, -1, "PER", "Grace Hopper"), Entity(33, 38, "LOC", "Paris"))


def test_a_repeated_mention_is_placed_on_the_next_occurrence() -> None:
    text = "Paris beat Lyon, then Paris lost."
    found = parse_entities("LOC: Paris\nLOC: Paris", text, "lines", {"LOC": "LOC"})
    assert [(e.start, e.end) for e in found] == [(0, 5), (22, 27)]


def test_unknown_format_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown output format 'yaml'; known: lines, json, inline"):
        serialize_entities(TEXT, GOLD, "yaml", WORDS)


@pytest.mark.parametrize(
    ("output", "fmt"),
    [
        ("Text: Ada Lovelace joined Acme Corp in Paris.\nEntities:", "lines"),  # the template echoed
        ("Pulse Mini: Acme Corp", "lines"),  # only unknown types
        (TEXT, "lines"),  # the input echoed when lines were asked for
        ('[{"type": "company", "text": "Acme Corp"}]', "json"),
        ("Acme Corp (company)", "spans"),
        (TEXT, "spans"),
    ],
)
def test_output_without_a_known_type_or_a_none_is_a_failure(output: str, fmt: str) -> None:
    assert parse_entities(output, TEXT, fmt, WORDS) is None


def test_a_none_value_on_a_line_means_no_entities() -> None:
    assert parse_entities("Entities: none", TEXT, "lines", WORDS) == ()


def test_a_long_name_copied_with_a_word_changed_is_placed_on_the_input_span() -> None:
    # a small model copying a long title adds, drops or rewrites a word
    text = "add the album maps of frozen rivers to my friday afternoon wind down playlist"
    words = {"ALBUM": "ALBUM", "PLAYLIST": "PLAYLIST"}
    found = parse_entities(
        "maps of the frozen rivers (ALBUM)\na Friday afternoon wind down (PLAYLIST)", text, "spans", words
    )
    assert [(e.text, e.type) for e in found] == [
        ("maps of frozen rivers", "ALBUM"),
        ("friday afternoon wind down", "PLAYLIST"),
    ]
    assert all(text[e.start : e.end] == e.text for e in found)


def test_short_names_and_loose_paraphrases_are_not_snapped() -> None:
    found = parse_entities("person: Ada Lovelaces\norganization: the big Acme company", TEXT, "lines", WORDS)
    assert [(e.start, e.end) for e in found] == [(-1, -1), (-1, -1)]
