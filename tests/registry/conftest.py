"""Prompt cards built directly (no model) for the registry tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from optprompt.export import PromptCard


def build_card(**overrides: Any) -> PromptCard:
    fields: dict[str, Any] = {
        "instruction": "Classify the sentiment of the review as negative or positive.",
        "template": "Review: {input}\nSentiment:",
        "demos": [{"input": "the food was awful", "answer": "negative", "options": None}],
        "verbalizer": {"negative": "negative", "positive": "positive"},
        "task_type": "classification",
        "calibration": {"method": "none", "offsets": None},
        "model": {
            "ref": "smollm2-135m-instruct",
            "fingerprint": "model-fp-1",
            "device": "cpu",
            "dtype": "float32",
        },
        "task": {
            "name": "sentiment",
            "type": "classification",
            "labels": ["negative", "positive"],
            "metric": "accuracy",
            "fingerprint": "data-fp-1",
        },
        "scores": {
            "dev": {"value": 0.7, "metric": "accuracy", "n": 20},
            "test": {"split": "test", "metric": "accuracy", "value": 0.65, "n": 20},
        },
        "baseline_scores": {
            "dev": {"value": 0.5, "metric": "accuracy", "n": 20},
            "test": {"split": "test", "metric": "accuracy", "value": 0.55, "n": 20},
        },
        "seed": 0,
        "study": "sentiment-demo",
    }
    fields.update(overrides)
    return PromptCard(**fields)


@pytest.fixture
def make_card() -> Callable[..., PromptCard]:
    return build_card
