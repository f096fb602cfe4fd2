"""Per-input demonstrations compared by words as well: template search's default
``knn.similarity: [embedding, hybrid]`` against ``[embedding]`` (the default before).

Per task (a shipped study file, its data, splits and 4-minute budget as they are) and seed,
two arms run template search on the embedded SmolLM2-135M-Instruct:

- ``embedding``: ``knn: {similarity: [embedding]}``: inputs and pool compared by the cosine
  of the model's mean-pooled hidden states;
- ``default``: the study as shipped: ``embedding`` and ``hybrid`` (the mean of that cosine
  and the TF-IDF cosine over the pool's words and word pairs) searched, dev picking.

Each run has its own cold score cache; the arms of one task and seed run one after the
other. Each study picks its winner on dev and fresh evidence alone; test is scored once,
after. The tables (``auto_budget``'s): per run baseline and winner on test with the
one-sided paired p-value, trials, wall time, load; per task and seed the ``default`` arm's
winner against the ``embedding`` arm's on the same test examples (exact McNemar), and the
mean difference with a sign-flip p-value. Rows go to
``benchmarks/results/retrieval_similarity.json`` (``winner_similarity``: how the winner's
demonstrations were retrieved; None: fixed demonstrations).

    .venv/bin/python benchmarks/retrieval_similarity.py --tasks intent --seeds 0
    .venv/bin/python benchmarks/retrieval_similarity.py --table
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from auto_budget import ROOT, STUDIES, TASKS, arms_main  # noqa: E402

OUT = HERE / "results" / "retrieval_similarity.json"
ARMS = {"embedding": {"similarity": ["embedding"]}, "default": {}}


def _spec(task: str, arm: str, seed: int, where: Path) -> dict:
    spec = yaml.safe_load((STUDIES / TASKS[task]).read_text())
    spec["task"]["data"] = str((STUDIES / spec["task"]["data"]).resolve())
    spec.update(name=f"similarity-{task}-{arm}-s{seed}", seed=seed, output=str(where))
    knn = {**spec["strategy"].get("knn", {}), **ARMS[arm]}
    if knn:
        spec["strategy"]["knn"] = knn
    return spec


if __name__ == "__main__":
    arms_main(__doc__, list(ARMS), ROOT / "runs" / "retrieval-similarity", OUT, _spec, "embedding")
