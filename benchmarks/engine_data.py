"""Synthetic, deterministic data sets for the scoring-engine benchmark (written here, not
taken from any benchmark suite).

- ``intent``: 7 intents whose labels are 3 to 6 tokens (``add_to_playlist``,
  ``search_screening_event``...), short assistant requests built from templates.
- ``choice``: multiple choice, 4 sentence-long options per question, one of them the
  fact the question asks about.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

__all__ = ["INTENTS", "intent_rows", "choice_rows", "write_jsonl", "fill"]

INTENTS: dict[str, tuple[str, ...]] = {
    "add_to_playlist": (
        "add {song} to my {list} playlist",
        "put {song} by {artist} on {list}",
        "please include {song} in the playlist called {list}",
        "can you save {artist}'s {song} to {list}",
    ),
    "book_restaurant": (
        "book a table for {n} at {place} {when}",
        "reserve a spot at {place} for {n} people {when}",
        "i need a dinner reservation for {n} {when} somewhere {food}",
        "get me a table at a {food} restaurant {when}",
    ),
    "get_weather": (
        "what's the weather in {city} {when}",
        "will it rain in {city} {when}",
        "how cold is it going to be {when} in {city}",
        "forecast for {city} {when} please",
    ),
    "play_music": (
        "play {song} by {artist}",
        "put on some {genre} music",
        "i want to hear {artist} on {service}",
        "start playing {genre} from the {decade}",
    ),
    "rate_book": (
        "give {book} {n} out of 6 stars",
        "rate {book} a {n}",
        "i'd rate the novel {book} {n} points",
        "mark {book} by {author} as {n} stars",
    ),
    "search_creative_work": (
        "find the tv show {show}",
        "look for the game called {show}",
        "search for the album {song}",
        "where can i see the painting {show}",
    ),
    "search_screening_event": (
        "what movies are playing at {cinema} {when}",
        "find showtimes for {movie} near {city}",
        "is {movie} showing at {cinema} {when}",
        "when does {movie} start at the {cinema}",
    ),
}
_FILL = {
    "song": ["blue river", "midnight train", "paper hearts", "golden hour", "still waters", "northern lights"],
    "artist": ["the kinks", "nina simone", "daft punk", "adele", "miles davis", "fleetwood mac"],
    "list": ["road trip", "workout", "chill evening", "sunday morning", "focus"],
    "n": ["2", "3", "4", "5", "six"],
    "place": ["the olive garden", "luigi's", "the harbour grill", "sakura house"],
    "when": ["tonight", "tomorrow", "this weekend", "at 7 pm", "next friday", "on monday"],
    "food": ["thai", "italian", "vegan", "seafood", "korean"],
    "city": ["lisbon", "chicago", "nairobi", "oslo", "osaka", "lima"],
    "genre": ["jazz", "techno", "folk", "classical", "hip hop"],
    "service": ["spotify", "the radio", "youtube", "my speaker"],
    "decade": ["sixties", "eighties", "nineties"],
    "book": ["the silent sea", "a winter journey", "lost cities", "the glass garden"],
    "author": ["maria lopez", "j. okafor", "t. nakamura"],
    "show": ["dark harbour", "the long road", "star builders", "quiet fields"],
    "cinema": ["the odeon", "central cinema", "the plaza", "cinema paradiso"],
    "movie": ["the last voyage", "night shift", "red canyon", "little wonders"],
}

_SUBJECTS = ["The river", "The old bridge", "The library", "The market", "The museum", "The harbour", "The tower"]
_FACTS = [
    "was built from grey stone more than two hundred years ago",
    "opens every morning at eight and closes late in the evening",
    "is the place where most of the town's festivals take place",
    "was painted bright blue after the great storm of the last decade",
    "holds a collection of maps that sailors once used on long voyages",
    "is crossed by thousands of cyclists on their way to work each day",
    "was closed for repairs during the whole of the previous summer",
    "has a small garden on its roof where volunteers grow vegetables",
]


def fill(rng: random.Random, template: str, words: dict[str, tuple[str, ...]] | None = None) -> str:
    """``template`` with each ``{key}`` replaced by a seeded choice from ``words[key]``."""
    out = template
    for key, values in (_FILL if words is None else words).items():
        while "{" + key + "}" in out:
            out = out.replace("{" + key + "}", rng.choice(values), 1)
    return out


def intent_rows(n: int, seed: int = 0) -> list[dict]:
    """``n`` labelled requests, intents balanced."""
    rng = random.Random(f"engine-bench:intent:{seed}")
    labels = list(INTENTS)
    return [
        {"id": f"intent-{i:04d}", "text": fill(rng, rng.choice(INTENTS[labels[i % 7]])), "label": labels[i % 7]}
        for i in range(n)
    ]


def choice_rows(n: int, seed: int = 0) -> list[dict]:
    """``n`` questions, each with 4 sentence-long options and the index of the right one."""
    rng = random.Random(f"engine-bench:choice:{seed}")
    rows = []
    for i in range(n):
        subject = rng.choice(_SUBJECTS)
        facts = rng.sample(_FACTS, 4)
        answer = rng.randrange(4)
        question = (
            f"{subject} {facts[answer].split(' ', 2)[0]} what? Pick the sentence that is true of {subject.lower()}."
        )
        rows.append(
            {
                "id": f"choice-{i:04d}",
                "question": question,
                "options": [f"{subject} {f}." for f in facts],
                "answer": answer,
            }
        )
    return rows


def write_jsonl(rows: list[dict], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
