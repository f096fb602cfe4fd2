"""Write the intent demo data set: ``intent.jsonl``, short assistant requests in 7 intents,
and ``intent-unlabeled.jsonl``, 280 more requests without labels (inputs a distilled
winner learns its answers on: ``studies/intent-distill.yaml``).

The labels are phrases of several tokens ("add to playlist", "movie showtimes"...), so the
prompt matters: how the instruction names them, which answer words it uses, which
demonstrations it shows. Every request is filled from templates and word lists written for
this project (no public data set); no text occurs twice, so no request is in two splits.
Deterministic: the same seed writes a byte-identical file.

    python studies/data/make_intent.py            # writes next to this file
    python studies/data/make_intent.py --check    # fails if a shipped file differs from a fresh run
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from _files import write_or_check

HERE = Path(__file__).resolve().parent
SEED = 2026
N_ROWS = 280
N_UNLABELED = 280

# fmt: off
WORDS = {
    "song": ["blue river", "midnight train", "paper hearts", "golden hour", "still waters", "northern lights",
             "summer rain", "city of stars", "slow dancing", "open road", "silver lining", "wild horses"],
    "artist": ["the kinks", "nina simone", "daft punk", "adele", "miles davis", "fleetwood mac", "bjork",
               "the roots", "dolly parton", "radiohead", "fela kuti", "billie eilish"],
    "list": ["road trip", "workout", "chill evening", "sunday morning", "focus", "party", "rainy day", "cooking"],
    "n": ["2", "3", "4", "5", "six", "two", "eight"],
    "place": ["the olive garden", "luigi's", "the harbour grill", "sakura house", "el patio", "the blue door",
              "casa mia", "the corner bistro"],
    "when": ["tonight", "tomorrow", "this weekend", "at 7 pm", "next friday", "on monday", "saturday night",
             "in the morning", "the day after tomorrow"],
    "food": ["thai", "italian", "vegan", "seafood", "korean", "mexican", "ethiopian", "french"],
    "city": ["lisbon", "chicago", "nairobi", "oslo", "osaka", "lima", "cairo", "denver", "hanoi", "dublin"],
    "genre": ["jazz", "techno", "folk", "classical", "hip hop", "reggae", "blues", "country"],
    "service": ["spotify", "the radio", "youtube", "my speaker", "the kitchen speaker"],
    "decade": ["sixties", "eighties", "nineties", "seventies"],
    "book": ["the silent sea", "a winter journey", "lost cities", "the glass garden", "salt and iron",
             "the last orchard", "night ferry", "a house of maps"],
    "author": ["maria lopez", "j. okafor", "t. nakamura", "ana petrova", "sam whitfield"],
    "work": ["dark harbour", "the long road", "star builders", "quiet fields", "hollow crown", "the drowned city",
             "paper moons", "echo valley", "the iron garden"],
    "medium": ["tv show", "video game", "album", "painting", "podcast", "documentary series", "novel series"],
    "cinema": ["the odeon", "central cinema", "the plaza", "cinema paradiso", "the roxy", "grand theatre"],
    "movie": ["the last voyage", "night shift", "red canyon", "little wonders", "glass mountain", "the outsiders club"],
    "weather": ["rain", "snow", "sunshine", "a storm", "fog", "strong wind"],
}
INTENTS = {
    "add to playlist": [
        "add {song} to my {list} playlist", "put {song} by {artist} on {list}",
        "please include {song} in the playlist called {list}", "can you save {artist}'s {song} to {list}",
        "stick {song} on my {list} list", "i want {song} in my {list} mix",
        "add this {artist} track to {list}", "throw {song} onto the {list} playlist please",
    ],
    "book a restaurant": [
        "book a table for {n} at {place} {when}", "reserve a spot at {place} for {n} people {when}",
        "i need a dinner reservation for {n} {when} somewhere {food}", "get me a table at a {food} restaurant {when}",
        "can you book {place} {when} for {n}", "find us a {food} place in {city} and reserve it for {n} {when}",
        "make a lunch booking at {place} {when}", "we are {n}, book somewhere {food} {when}",
    ],
    "weather forecast": [
        "what's the weather in {city} {when}", "will it rain in {city} {when}",
        "how cold is it going to be {when} in {city}", "forecast for {city} {when} please",
        "should i expect {weather} in {city} {when}", "is it going to be sunny {when} in {city}",
        "do i need an umbrella in {city} {when}", "what temperature will it be in {city} {when}",
    ],
    "play music": [
        "play {song} by {artist}", "put on some {genre} music", "i want to hear {artist} on {service}",
        "start playing {genre} from the {decade}", "play something by {artist}", "can you play {song} on {service}",
        "shuffle some {genre} for me", "turn on {artist}'s latest album",
    ],
    "rate a book": [
        "give {book} {n} out of 6 stars", "rate {book} a {n}", "i'd rate the novel {book} {n} points",
        "mark {book} by {author} as {n} stars", "my rating for {book} is {n}",
        "score {author}'s {book} {n} out of 6", "{book} deserves {n} stars", "put down {n} stars for {book}",
    ],
    "find a creative work": [
        "find the {medium} {work}", "look for the {medium} called {work}", "search for the {medium} {work}",
        "where can i find the {medium} {work}", "i'm looking for a {medium} named {work}",
        "show me the {medium} {work} by {artist}", "can you locate the {medium} {work}",
        "get me information on the {medium} {work}",
    ],
    "movie showtimes": [
        "what movies are playing at {cinema} {when}", "find showtimes for {movie} near {city}",
        "is {movie} showing at {cinema} {when}", "when does {movie} start at {cinema}",
        "which films are on in {city} {when}", "what time is {movie} on {when}",
        "list the screenings at {cinema} {when}", "are there any showings of {movie} in {city} {when}",
    ],
}
# fmt: on


def _fill(rng: random.Random, template: str) -> str:
    out = template
    for key, values in WORDS.items():
        while "{" + key + "}" in out:
            out = out.replace("{" + key + "}", rng.choice(values), 1)
    return out


def rows(seen: set[str] | None = None) -> list[dict]:
    """``N_ROWS`` distinct requests, intents balanced and interleaved; ``seen`` (when
    given) collects their texts."""
    rng = random.Random(SEED)
    labels = list(INTENTS)
    per_label = -(-N_ROWS // len(labels))
    texts: dict[str, list[str]] = {}
    seen = set() if seen is None else seen
    for label in labels:
        mine: list[str] = []
        for _ in range(200 * per_label):
            text = _fill(rng, rng.choice(INTENTS[label]))
            if text not in seen:
                seen.add(text)
                mine.append(text)
            if len(mine) == per_label:
                break
        texts[label] = mine
    return [
        {"id": f"req-{i + 1:04d}", "text": texts[labels[i % len(labels)]][i // len(labels)], "label": labels[i % 7]}
        for i in range(N_ROWS)
    ]


def unlabeled_rows(seen: set[str]) -> list[dict]:
    """Requests of every intent (in turn) whose texts are not in ``seen``, without labels."""
    rng = random.Random(SEED + 1)
    labels = list(INTENTS)
    out: list[dict] = []
    for i in range(200 * N_UNLABELED):
        text = _fill(rng, rng.choice(INTENTS[labels[i % len(labels)]]))
        if text not in seen:
            seen.add(text)
            out.append({"id": f"unl-{len(out) + 1:04d}", "text": text})
        if len(out) == N_UNLABELED:
            break
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true")
    args = p.parse_args(argv)
    seen: set[str] = set()
    files = {"intent.jsonl": rows(seen)}
    files["intent-unlabeled.jsonl"] = unlabeled_rows(seen)
    return write_or_check(files, check=args.check, script=Path(__file__).name)


if __name__ == "__main__":
    raise SystemExit(main())
