"""Write the slot-filling data set with long free-form names: ``slots.jsonl``.

Short requests to a music and shopping assistant whose spans are titles: songs, albums,
playlists and products of 3 to 8 words (function words inside them: "of", "the", "to",
"my", "for"), and artists of 1 to 4 words. Such names have no capital-letter or
single-token shape a model can lean on: the words around them (``add ... to my ...
playlist``) decide where a span starts and ends. Names are composed from hand-written
parts (``Letters to {NP}``, ``{MATERIAL} {ITEM} with {FEATURE}``), so most of them occur
once and the test split's names are mostly new to a model trained on the train split.
About a third of the requests are typed in lower case, as voice assistants transcribe
them. Every request comes from a hand-written template; a few requests name nothing.

Deterministic: the same seed writes a byte-identical file.

    python studies/data/make_slots.py            # writes next to this file
    python studies/data/make_slots.py --check    # fails if the shipped file differs from a fresh run
"""

from __future__ import annotations

import argparse
import random
import re
from pathlib import Path

from _files import write_or_check

SEED = 32
N_ROWS = 360
LOWER_SHARE = 0.33

# fmt: off
# Names are composed from hand-written parts with hand-written patterns, so that most names
# occur once: a model cannot learn the names by heart and must find their edges in context.
PARTS: dict[str, list[str]] = {
    "NP": [
        "Paper Lanterns", "the Harbour", "Cold Coffee", "the Kitchen Radio", "Empty Roads", "My Own Shadow",
        "the Summer House", "Broken Radios", "the Night Ferry", "Lemon Trees", "a Quiet Planet",
        "the Laundromat", "Copper Wire", "the Orange Street Lamps", "Wild Geese", "the Piano Keys", "Rainy Days",
        "the Parking Lot", "a Small Boat", "the Power Cut", "Borrowed Coats", "the Old Canal", "Umbrellas",
        "the City Lights", "My Grandmother's Garden", "the Last Bus", "Frozen Rivers", "the Vending Machine",
        "Sleeping Dogs", "the Blue Ceiling", "Salt Water", "the Roller Rink", "Foxes in the Snow",
        "the Other Side", "Open Windows", "the Lighthouse", "Old Photographs", "the Ferris Wheel",
    ],
    "SONG": [
        "{NP}", "{NP} Over {NP}", "Letters to {NP}", "Waiting for {NP}", "Dancing with {NP}", "{NP} and {NP}",
        "Nobody Remembers {NP}", "Goodbye to {NP}", "Dreaming of {NP} Tonight", "Counting {NP} in the Dark",
        "Tell Me About {NP}", "All the Way to {NP}", "Running Late for {NP}", "Don't Wake {NP}",
        "When {NP} Comes Back", "Half a Heart and {NP}",
    ],
    "ALBUM": [
        "{NP}", "{NP} and Other Stories", "Songs from {NP}", "A Museum of {NP}", "Notes on {NP}", "The Year of {NP}",
        "Maps of {NP}", "Music for {NP}", "Everything Except {NP}", "Field Recordings from {NP}",
        "The Architecture of {NP}", "Postcards from {NP}", "Ten Stories About {NP}",
    ],
    "MOOD": ["Chill", "Sad", "Happy", "Quiet", "Upbeat", "Lazy", "Cozy", "Loud", "Mellow", "Dreamy"],
    "GENRE": [
        "Jazz", "Beats", "Piano Music", "Acoustic Covers", "Indie Songs", "Disco Hits", "Folk Tunes",
        "Love Songs", "Guitar Instrumentals", "Old Favourites",
    ],
    "ACTIVITY": [
        "a Rainy Tuesday Morning", "Long Study Sessions", "Leg Day", "the Drive Home", "Cooking Dinner",
        "Cleaning the House", "Walking the Dog", "Falling Asleep", "the Long Flight Home", "Sunday Brunch",
        "Friday Night", "Folding Laundry", "Deep Work", "the Beach", "Reading in Bed",
    ],
    "PLAYLIST": [
        "{MOOD} {GENRE} for {ACTIVITY}", "{GENRE} for {ACTIVITY}", "Songs for {ACTIVITY}",
        "My {MOOD} {GENRE} Collection", "{MOOD} Songs to Sing Along", "Music for {ACTIVITY}",
        "{ACTIVITY} with {MOOD} {GENRE}",
    ],
    "MATERIAL": [
        "Stainless Steel", "Bamboo", "Cast Iron", "Ceramic", "Glass", "Wool", "Silicone", "Cotton", "Oak Wood",
    ],
    "ITEM": [
        "Travel Mug", "Cutting Board", "Frying Pan", "Water Bottle", "Desk Lamp", "Lunch Box", "Phone Case",
        "Plant Pot", "Storage Bags", "Hiking Socks", "Yoga Mat", "Bath Towel", "Laptop Stand",
        "Bluetooth Speaker", "Kitchen Scale", "Memory Foam Pillow", "Electric Toothbrush", "Coffee Maker",
    ],
    "FEATURE": [
        "Lid", "Carrying Strap", "Juice Groove", "Drainage Tray", "Dimmer", "Timer", "Travel Case",
        "Night Vision", "Built In Speakers", "Quiet Switches", "Two Year Warranty", "Spare Filters",
    ],
    "ADJ": ["Portable", "Foldable", "Waterproof", "Wireless", "Reusable", "Adjustable", "Insulated", "Compact"],
    "USER": ["Side Sleepers", "Kids", "Adults", "Home Gyms", "Small Kitchens", "the Shower", "Long Trips", "Beginners"],
    "PRODUCT": [
        "{MATERIAL} {ITEM} with {FEATURE}", "{ADJ} {ITEM} for {USER}", "{ADJ} {MATERIAL} {ITEM}",
        "{ITEM} Set of Four", "{ADJ} {ITEM} with {FEATURE}", "{MATERIAL} {ITEM} for {USER}",
    ],
    "FIRST": ["Mara", "Oskar", "Tessa", "Nico", "Ruth", "Elias", "June", "Benji", "Priya", "Felix", "Hanna", "Tomas"],
    "LAST": ["Quinlan", "Brandt", "Morrow", "Alvarez", "Okonkwo", "Varga", "Halloway", "Lark", "Sandhu", "Amsel"],
    "BAND": ["Lanterns", "Owls", "Neighbours", "Foxes", "Moons", "Cardigans", "Ferries", "Pilots", "Sparrows"],
    "ARTIST": ["{FIRST} {LAST}", "The {MOOD} {BAND}", "{FIRST} and the {BAND}", "{LAST} and the {MOOD} {BAND}"],
}
MIN_WORDS = {"ARTIST": 2}  # names of other types have 3 to 8 words

TEMPLATES = [
    "Add {SONG} to my {PLAYLIST} playlist.",
    "Please add the song {SONG} by {ARTIST} to {PLAYLIST}.",
    "Put {SONG} on the playlist called {PLAYLIST}.",
    "Can you add the album {ALBUM} to my {PLAYLIST} playlist?",
    "Play the album {ALBUM} by {ARTIST}.",
    "Play the song {SONG}.",
    "I want to hear {SONG} by {ARTIST} right now.",
    "Play {SONG} from the album {ALBUM}.",
    "Shuffle my {PLAYLIST} playlist.",
    "Start the playlist {PLAYLIST} from the beginning.",
    "Remove the song {SONG} from {PLAYLIST}.",
    "Create a new playlist called {PLAYLIST} and add {SONG} to it.",
    "Rename my playlist {PLAYLIST} to {PLAYLIST}.",
    "Who sings the song {SONG}?",
    "When did {ARTIST} release the album {ALBUM}?",
    "Queue the song {SONG} and then the song {SONG}.",
    "Play something by {ARTIST} that sounds like {SONG}.",
    "Order the {PRODUCT} for me.",
    "How much does the {PRODUCT} cost?",
    "Add the {PRODUCT} to my shopping cart.",
    "Is the {PRODUCT} still in stock?",
    "Compare the {PRODUCT} with the {PRODUCT}.",
    "Track my order for the {PRODUCT}, please.",
    "I would like to return the {PRODUCT} I bought last week.",
    "Buy the {PRODUCT} and put on the album {ALBUM} while I wait.",
    "Find me a cheaper {PRODUCT}.",
    "Save the album {ALBUM} to my library.",
    "Play the playlist {PLAYLIST} on the kitchen speaker.",
    "Skip this song.",
    "Turn the volume up a little.",
    "What is playing right now?",
    "Reorder the {PRODUCT}.",
]
# fmt: on

_SLOT = re.compile(r"\{([A-Z]+)\}")


def _compose(kind: str, rng: random.Random) -> str:
    """A name of ``kind``: one of its patterns with every part filled (two parts of one
    pattern differ), the first letter capitalised."""
    while True:
        pattern, used = rng.choice(PARTS[kind]), set()

        def fill(m: re.Match[str], used: set[str] = used) -> str:
            value = rng.choice([v for v in PARTS[m.group(1)] if v not in used])
            used.add(value)
            return value

        name = _SLOT.sub(fill, pattern)
        name = name[0].upper() + name[1:]
        if MIN_WORDS.get(kind, 3) <= len(name.split()) <= 8:
            return name


def _request(template: str, rng: random.Random) -> tuple[str, list[dict[str, object]]]:
    """The template with its slots filled by freshly composed names."""
    text, entities, used, pos = "", [], set(), 0
    for m in _SLOT.finditer(template):
        text += template[pos : m.start()]
        kind = m.group(1)
        value = _compose(kind, rng)
        while value in used:
            value = _compose(kind, rng)
        used.add(value)
        entities.append({"start": len(text), "end": len(text) + len(value), "type": kind, "text": value})
        text += value
        pos = m.end()
    return text + template[pos:], entities


def rows(seed: int = SEED, n: int = N_ROWS) -> list[dict[str, object]]:
    rng = random.Random(seed)
    out: list[dict[str, object]] = []
    seen: set[str] = set()
    empties = 0
    while len(out) < n:
        template = rng.choice(TEMPLATES)
        if "{" not in template:  # requests naming nothing: a few, not one in eleven
            if empties >= 12:
                continue
            empties += 1
        text, entities = _request(template, rng)
        if rng.random() < LOWER_SHARE:  # typed (or transcribed) in lower case; offsets do not move
            text = text.lower().rstrip(".")
            entities = [{**e, "text": text[e["start"] : e["end"]]} for e in entities]  # type: ignore[misc]
        if text in seen:
            continue
        seen.add(text)
        out.append({"id": f"slot-{len(out) + 1:04d}", "text": text, "entities": entities})
    rng.shuffle(out)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="fail if the shipped file differs from a fresh run")
    args = p.parse_args(argv)
    return write_or_check({"slots.jsonl": rows()}, check=args.check, script=Path(__file__).name)


if __name__ == "__main__":
    raise SystemExit(main())
