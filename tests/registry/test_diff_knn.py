"""Card diffs show how demonstrations are retrieved per input, without loading a model."""

from __future__ import annotations

import numpy as np

from optprompt.kinds.prompt import PromptCard
from optprompt.prompts.retrieval import encode_vectors, normalise
from optprompt.registry.diff import diff_cards


def _knn_card(k: int) -> PromptCard:
    pool = [{"id": f"t{i}", "input": f"text {i}", "answer": "good", "options": [], "label": "pos"} for i in range(3)]
    return PromptCard(
        instruction="Classify.",
        template="Input: {input}\nAnswer:",
        demos=[],
        verbalizer={"pos": "good", "neg": "bad"},
        task_type="classification",
        retrieval={
            "k": k,
            "mmr": 1.0,
            "balance": False,
            "order": "closest_last",
            "embedder": {"ref": "no-such-model", "fingerprint": "x", "task_model": True},
            "pool": pool,
            "vectors": encode_vectors(normalise(np.eye(3, 4))),
        },
    )


def test_diff_of_knn_cards_names_the_retrieval_and_loads_no_model() -> None:
    fixed = PromptCard(
        instruction="Classify.",
        template="Input: {input}\nAnswer:",
        demos=[],
        verbalizer={"pos": "good", "neg": "bad"},
        task_type="classification",
    )
    out = diff_cards(fixed, _knn_card(2))
    assert "+[2 demonstrations retrieved for the input from 3 examples]" in out
    assert "demonstrations retrieved per input: - -> k=2 mmr=1.0" in out
    assert "k=2" in diff_cards(_knn_card(2), _knn_card(3)) and "k=3" in diff_cards(_knn_card(2), _knn_card(3))
    assert diff_cards(_knn_card(2), _knn_card(2)).startswith("no differences")
    assert "retrieval" not in fixed.to_dict()  # cards with fixed demonstrations are written as before
    assert PromptCard.from_dict(_knn_card(2).to_dict()) == _knn_card(2)
    lexical = _knn_card(2)
    lexical.retrieval.update(similarity="lexical", embedder=None, vectors=None)
    assert "similarity=embedding" in diff_cards(_knn_card(2), lexical)
    assert "similarity=lexical embedder=- vectors=" in diff_cards(_knn_card(2), lexical)


def test_a_card_with_a_broken_retrieval_block_is_named() -> None:
    import pytest

    from optprompt.errors import OptpromptError

    data = _knn_card(2).to_dict()
    del data["retrieval"]["vectors"]
    data["retrieval"]["neighbours"] = 3
    with pytest.raises(
        OptpromptError, match=r"x.json: retrieval: missing key\(s\) vectors; unknown key\(s\) neighbours"
    ):
        PromptCard.from_dict(data, source="x.json")
