"""Entity spans: BIO <-> spans, the CoNLL loader, JSONL entity shapes, extraction tasks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from optprompt.config import spec_from_dict
from optprompt.errors import ConfigError, DataError
from optprompt.tasks import build_task
from optprompt.tasks.entities import Entity, bio_to_spans, entities_from_value, locate, nearest_span, spans_to_bio
from optprompt.tasks.loaders import load_rows_conll

STUDIES = Path(__file__).resolve().parents[2] / "studies"


def test_bio_to_spans_gives_character_offsets_of_the_joined_tokens() -> None:
    tokens = ["Ada", "Lovelace", "met", "Charles", "Babbage", "in", "London", "."]
    tags = ["B-PER", "I-PER", "O", "B-PER", "I-PER", "O", "B-LOC", "O"]
    text, spans = bio_to_spans(tokens, tags)
    assert text == "Ada Lovelace met Charles Babbage in London ."
    assert spans == [Entity(0, 12, "PER", "Ada Lovelace"), Entity(17, 32, "PER", "Charles Babbage"),
                     Entity(36, 42, "LOC", "London")]  # fmt: skip
    assert [text[e.start : e.end] for e in spans] == ["Ada Lovelace", "Charles Babbage", "London"]


def test_adjacent_b_tags_are_two_entities_and_a_stray_i_tag_starts_one() -> None:
    tokens = ["Paris", "Berlin", "and", "Rome", "Milan"]
    text, spans = bio_to_spans(tokens, ["B-LOC", "B-LOC", "O", "I-LOC", "I-ORG"])
    assert [(e.text, e.type) for e in spans] == [("Paris", "LOC"), ("Berlin", "LOC"), ("Rome", "LOC"), ("Milan", "ORG")]


def test_bioes_tags_are_read() -> None:
    _, spans = bio_to_spans(["New", "York", "Times", "Oslo"], ["B-ORG", "I-ORG", "E-ORG", "S-LOC"])
    assert [(e.text, e.type) for e in spans] == [("New York Times", "ORG"), ("Oslo", "LOC")]


def test_spans_to_bio_inverts_bio_to_spans() -> None:
    tokens = ["The", "Acme", "Corp", "office", "in", "Lagos", "opened", "."]
    tags = ["O", "B-ORG", "I-ORG", "O", "O", "B-LOC", "O", "O"]
    text, spans = bio_to_spans(tokens, tags)
    assert spans_to_bio(text, spans) == (tokens, tags)


def test_spans_to_bio_refuses_a_span_that_cuts_a_token() -> None:
    with pytest.raises(DataError, match="token boundaries"):
        spans_to_bio("Lovelace", [Entity(0, 4, "PER", "Love")])


def test_bad_tags_name_where_they_are() -> None:
    with pytest.raises(DataError, match=r"f\.conll line 3: token 2 \('x'\) has tag 'PERSON'"):
        bio_to_spans(["a", "x"], ["O", "PERSON"], where="f.conll line 3")
    with pytest.raises(DataError, match="2 tokens but 1 tags"):
        bio_to_spans(["a", "b"], ["O"])


def test_conll_loader_reads_sentences_and_names_a_bad_line(tmp_path: Path) -> None:
    f = tmp_path / "d.conll"
    f.write_text("-DOCSTART- O\n\nAda B-PER\nLovelace I-PER\nwrote O\n\n\nOslo B-LOC\nis O\ncold O\n")
    rows = load_rows_conll(str(f))
    assert [r["input"] for r in rows] == ["Ada Lovelace wrote", "Oslo is cold"]
    assert rows[0]["label"] == [{"type": "PER", "text": "Ada Lovelace", "start": 0, "end": 12}]
    bad = tmp_path / "bad.conll"
    bad.write_text("Ada B-PER\nLovelace\n")
    with pytest.raises(DataError, match=r"bad\.conll line 2: expected a token and its tag"):
        load_rows_conll(str(bad))


def test_entities_from_value_reads_spans_triples_and_texts() -> None:
    text = "Ada met Ada in Oslo"
    spans = entities_from_value([{"start": 15, "end": 19, "type": "LOC"}], text, where="w")
    triples = entities_from_value([[0, 3, "PER"]], text, where="w")
    by_text = entities_from_value([{"text": "Ada", "type": "PER"}, {"text": "Ada", "type": "PER"}], text, where="w")
    assert spans == (Entity(15, 19, "LOC", "Oslo"),)
    assert triples == (Entity(0, 3, "PER", "Ada"),)
    assert by_text == (Entity(0, 3, "PER", "Ada"), Entity(8, 11, "PER", "Ada"))  # left to right, not twice the first


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([{"start": 0, "end": 99, "type": "PER"}], "data.jsonl row 4 entity 1: span 0-99 is outside the text"),
        ([{"start": 0, "end": 3, "type": "PER", "text": "Bob"}], "'text' is 'Bob' but the span 0-3 is 'Ada'"),
        ([{"text": "Zed", "type": "PER"}], "entity text 'Zed' is not in the input"),
        ([{"start": 0, "end": 3}], "needs a non-empty 'type'"),
        ([{"type": "PER"}], "needs 'start' and 'end', or 'text'"),
        ("nonsense", "must be a list"),
        ([{"start": "a", "end": 3, "type": "PER"}], "start must be an integer"),
    ],
)
def test_bad_entities_name_row_and_entity(value: object, message: str) -> None:
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        entities_from_value(value, "Ada met Bob", where="data.jsonl row 4")


def test_locate_prefers_whole_words_and_unused_occurrences() -> None:
    text = "Parisian hotels in Paris and Paris, Texas"
    assert locate(text, "Paris") == (19, 24)
    assert locate(text, "Paris", taken={(19, 24)}) == (29, 34)
    assert locate(text, "paris") == (19, 24)  # case-insensitive when no exact match
    assert locate(text, "Lyon") == (-1, -1)


def _spec(data: object, **task: object) -> object:
    return spec_from_dict(
        {
            "name": "x",
            "model": "m",
            "output": "o",
            "task": {"data": data, "type": "extraction", **task},
            "strategy": {"name": "template_search"},
        }
    )


def test_extraction_task_takes_types_from_the_data_and_descriptions_from_the_study(plugins) -> None:  # type: ignore[no-untyped-def]
    spec = _spec(str(STUDIES / "data" / "ner.conll"), descriptions={"PER": "people", "LOC": "places"})
    task = build_task(spec.task, plugins=plugins, seed=0)
    assert task.type == "extraction" and task.metric == "entity_f1"
    assert set(task.labels) == {"PER", "ORG", "LOC", "MISC"}
    assert task.descriptions == {"PER": "people", "LOC": "places"}
    assert task.verbalizer == {t: t for t in task.labels}
    assert spec.task.stop == ["\n\n"] and spec.task.max_new_tokens == 64  # extraction's defaults
    assert len(task.train) + len(task.dev) + len(task.test) == 360
    assert all(e.text == ex.input[e.start : e.end] for ex in task.dev for e in ex.entities)


def test_shipped_conll_and_jsonl_hold_the_same_entities(plugins) -> None:  # type: ignore[no-untyped-def]
    conll = load_rows_conll(str(STUDIES / "data" / "ner.conll"))
    jsonl = [json.loads(line) for line in (STUDIES / "data" / "ner.jsonl").read_text().splitlines()]
    assert len(conll) == len(jsonl) == 360
    for c, j in zip(conll, jsonl):
        assert [(e["type"], e["text"]) for e in c["label"]] == [(e["type"], e["text"]) for e in j["entities"]]


def test_shipped_data_is_what_the_generator_writes() -> None:
    import subprocess
    import sys

    script = STUDIES / "data" / "make_ner.py"
    subprocess.run([sys.executable, str(script), "--check"], check=True)


def test_types_outside_task_labels_and_unknown_descriptions_are_errors(tmp_path: Path, plugins) -> None:  # type: ignore[no-untyped-def]
    f = tmp_path / "d.jsonl"
    rows = [{"text": f"Ada went to Oslo {i}", "ents": [{"text": "Ada", "type": "PER"}, {"text": "Oslo", "type": "LOC"}]}
            for i in range(12)]  # fmt: skip
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError, match=r"d\.jsonl row \d+: entity 'Oslo' has type 'LOC', not in task.labels"):
        build_task(_spec(str(f), input="text", label="ents", labels=["PER"]).task, plugins=plugins)
    with pytest.raises(ConfigError, match="task.descriptions.ORG: 'ORG' is not an entity type"):
        build_task(
            _spec(str(f), input="text", label="ents", labels=["PER", "LOC"], descriptions={"ORG": "x"}).task,
            plugins=plugins,
        )
    with pytest.raises(DataError, match=r"d\.jsonl row 1 column 'ents' entity 1: entity text 'Ada' is not"):
        bad = tmp_path / "bad.jsonl"
        bad.write_text(json.dumps({"text": "Bob", "ents": [{"text": "Ada", "type": "PER"}]}) + "\n")
        build_task(_spec(str(bad), input="text", label="ents").task, plugins=plugins)


def test_shipped_emotion_data_is_what_its_generator_writes() -> None:
    import subprocess
    import sys

    subprocess.run([sys.executable, str(STUDIES / "data" / "make_emotion.py"), "--check"], check=True)


def test_shipped_slots_data_is_what_its_generator_writes() -> None:
    import subprocess
    import sys

    subprocess.run([sys.executable, str(STUDIES / "data" / "make_slots.py"), "--check"], check=True)


def test_nearest_span_finds_a_long_name_copied_with_a_word_changed() -> None:
    text = "Add Letters I Never Sent to You to my Songs for a Rainy Tuesday Morning playlist."

    def got(needle: str, **kw: Any) -> str | None:
        start, end = nearest_span(text, needle, **kw)
        return text[start:end] if start >= 0 else None

    assert got("Letters I Never Sent You") == "Letters I Never Sent to You"  # a word left out
    assert got("songs for rainy tuesday morning") == "Songs for a Rainy Tuesday Morning"  # case, a word left out
    assert got("the Songs for a Rainy Tuesday Morning") == "Songs for a Rainy Tuesday Morning"  # a word added
    assert got("Rainy Day") is None  # names under three words are never snapped
    assert got("Letters Never Sent Home") is None  # too different
    assert got("Letters I Never Sent You", taken={(4, 31)}) is None  # that span is already someone's
