"""Small data sets the tests write (importable from any test folder)."""

from __future__ import annotations

import json
import random
from pathlib import Path

WORDS = (
    "great awful good bad fine terrible lovely poor movie food service hotel staff room price "
    "quality the a was is and but very not really would never again recommend"
).split()


def write_sentiment_jsonl(path: Path, n: int = 40, seed: int = 0) -> Path:
    """A small balanced positive/negative data set of random short texts."""
    rng = random.Random(seed)
    pos = ["great", "good", "lovely", "fine"]
    neg = ["awful", "bad", "terrible", "poor"]
    with path.open("w") as f:
        for i in range(n):
            label = "positive" if i % 2 == 0 else "negative"
            words = rng.choices(WORDS, k=rng.randint(3, 12)) + [rng.choice(pos if label == "positive" else neg)]
            rng.shuffle(words)
            f.write(json.dumps({"id": f"ex{i}", "text": " ".join(words), "label": label}) + "\n")
    return path


def soft_study_dict(data: Path, model_dir: Path, output: Path, **strategy: object) -> dict:
    """A soft_prompt study spec (as loaded from YAML) on a local model and data file."""
    return {
        "name": "soft",
        "model": str(model_dir),
        "seed": 0,
        "output": str(output),
        "task": {
            "data": str(data),
            "type": "classification",
            "input": "text",
            "label": "label",
            "id": "id",
            "prompt": "Classify the sentiment of the review.",
        },
        # min_steps 0: these tests fix their epochs (the default raises them on a small split)
        "strategy": {"name": "soft_prompt", "min_steps": 0, **strategy},
        "scoring": {"device": "cpu", "cache": False},
    }


def export_lora(runner, to: Path, *, lr: float = 0.02, rank: int = 4) -> Path:  # type: ignore[no-untyped-def]
    """Train a small LoRA adapter under a set-up soft_prompt study's baseline prompt (one
    epoch on its train split) and export it to ``to`` as a study exports its winner."""
    from optprompt.adapters.artifact import read_manifest
    from optprompt.adapters.candidate import SoftCandidate
    from optprompt.kinds.prompt.card import PromptCard
    from optprompt.kinds.soft import SoftKind

    kind = SoftKind()
    params = {"lora_r": rank, "lr": lr, "epochs": 1, "batch_size": 8}
    trained = kind.train(SoftCandidate.create(runner.baseline, "lora", params), runner.kind_context, runner.task.train)
    kind.export_adapter(trained.directory, to, PromptCard.from_dict(read_manifest(trained.directory)["card"]))
    return to
