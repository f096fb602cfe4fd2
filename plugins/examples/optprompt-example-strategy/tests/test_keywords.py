"""The keyword ranking on its own (no model)."""

from __future__ import annotations

from optprompt_example_strategy.keywords import label_keywords, words


def test_words_are_lowercased_distinct_and_long_enough() -> None:
    assert words("Great, GREAT food -- it's a well-made dish 42", min_length=3) == {
        "great",
        "food",
        "it's",
        "well-made",
        "dish",
    }


def test_keywords_are_the_words_typical_of_each_label() -> None:
    examples = [
        ("great food, friendly staff", "pos"),
        ("great room and friendly service", "pos"),
        ("awful food, rude staff", "neg"),
        ("rude service, awful room", "neg"),
        ("it was fine", "neg"),
    ]
    ranked = label_keywords(examples, min_count=2)
    assert ranked == {"pos": ["friendly", "great"], "neg": ["awful", "rude"]}
    # food, staff, room and service appear under both labels: not telling, left out
    assert label_keywords(examples, min_count=2, exclude=["great"])["pos"] == ["friendly"]
    assert label_keywords(examples, min_count=3) == {"pos": [], "neg": []}
