"""Tasks whose answers are facts learnable only from train: invented entity -> category.

Written for this project (seeded, offline; no benchmark suite's data). Every entity is
invented (product codes, people's names), and each is assigned a category at random, so
no model can know the answer from pretraining and no surface cue in the text gives it
away: the only way to answer is to have learnt the mapping from the train split, where
every entity occurs several times in different sentences. Prompting alone stays near
chance (a fixed demonstration shows the query's entity only by luck); an adapter trained
on train can memorise the mapping.

- ``codes``: "Which department handles item KX-204?" -> garden / kitchen / toys / tools.
- ``teams``: "Which team is Talvin Orsk on?" -> falcons / otters / lynx / herons.

``rows(task, n, seed)`` draws ``n`` rows; the entity -> category mapping depends on the
task alone (not on ``seed``), so every split of a task, drawn with any seed, agrees.
"""

from __future__ import annotations

import random

__all__ = ["FACT_TASKS", "rows", "mapping"]

_CODES = [
    "KX-204", "VR-881", "QM-517", "TZ-392", "BL-046", "HN-733", "PW-159", "DF-620",
    "JC-975", "RY-318", "GS-487", "LU-062", "MO-846", "EA-291", "NI-704", "WB-553",
]  # fmt: skip
_NAMES = [
    "Talvin Orsk", "Mirelle Dunco", "Brannoc Tey", "Ysolde Farrin", "Quillan Mabe",
    "Odessa Vrenn", "Casimir Loath", "Perrin Ashgrove", "Linnea Corva", "Tobiah Strell",
    "Averil Nask", "Jorund Pellow", "Saskia Umbre", "Emrys Calloway", "Neve Throssel",
    "Dariel Quint",
]  # fmt: skip

FACT_TASKS: dict[str, dict] = {
    "codes": {
        "entities": _CODES,
        "labels": ["garden", "kitchen", "toys", "tools"],
        "templates": [
            "Which department handles item {e}?",
            "A customer wants to return {e}. Where should the return go?",
            "The order for {e} is late; which department do we call?",
            "Restock request: {e}. Which department owns it?",
            "Where in the store is {e} sold?",
            "Price check on {e}, please. Which department?",
        ],
        "prompt": "Which store department does the item belong to?",
    },
    "teams": {
        "entities": _NAMES,
        "labels": ["falcons", "otters", "lynx", "herons"],
        "templates": [
            "Which team is {e} on?",
            "{e} missed practice today. Which team should be told?",
            "Send the match schedule to {e}'s team. Which team is that?",
            "{e} scored twice last weekend. For which team?",
            "Who does {e} play for?",
            "Which team's jersey does {e} wear?",
        ],
        "prompt": "Which team does the player belong to?",
    },
}


def mapping(task: str) -> dict[str, str]:
    """The task's entity -> category assignment (balanced; fixed per task)."""
    spec = FACT_TASKS[task]
    entities = list(spec["entities"])
    labels = spec["labels"]
    rng = random.Random(f"facts:{task}")
    rng.shuffle(entities)
    return {e: labels[i % len(labels)] for i, e in enumerate(entities)}


def rows(task: str, n: int, seed: int = 0) -> list[dict]:
    """``n`` rows ``{id, text, label}``; entities cycle so each occurs about equally often."""
    spec = FACT_TASKS[task]
    facts = mapping(task)
    rng = random.Random(f"facts:{task}:{seed}")
    entities = list(facts)
    out = []
    for i in range(n):
        if i % len(entities) == 0:
            rng.shuffle(entities)
        e = entities[i % len(entities)]
        text = rng.choice(spec["templates"]).format(e=e)
        out.append({"id": f"{task}-{seed}-{i}", "text": text, "label": facts[e]})
    return out
