"""Study files of the ``auto`` tests that train: template search and soft prompts on the tiny
model, with low fidelity in the first rung."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from optprompt_testdata import write_sentiment_jsonl


@pytest.fixture
def training_auto_study(tmp_path: Path, tiny_model_dir: Path) -> Callable[..., dict[str, Any]]:
    """``build(name, **strategy)``: a study dict of ``auto`` over template search and soft
    prompt tuning (evolution off), on 64 sentiment rows; ``strategy`` keys override the
    defaults (``budget``, ``soft_prompt``, ``low_fidelity``...)."""
    data = write_sentiment_jsonl(tmp_path / "d.jsonl", n=64)

    def build(name: str, **strategy: Any) -> dict[str, Any]:
        return {
            "name": name,
            "model": str(tiny_model_dir),
            "output": str(tmp_path / "out"),
            "task": {"data": str(data), "input": "text", "label": "label", "id": "id"},
            "pruning": {"pruner": "none"},
            "selection": {"holdout": 0},
            "scoring": {"device": "cpu"},
            "strategy": {
                "name": "auto",
                "trials": 40,
                "budget": {"dev_examples": 600},
                "template_search": {"max_demos": 1, "demo_pool": 4},
                "evolution": False,
                "soft_prompt": {"methods": ["prompt_tuning"], "virtual_tokens": [2], "epochs": [2, 2], "min_steps": 0},
                **strategy,
            },
        }

    return build
