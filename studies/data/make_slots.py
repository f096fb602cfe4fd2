"""Write the slot-filling data set with long free-form names: ``slots.jsonl``.

Short requests to a music and shopping assistant whose spans are titles: songs, albums,
playlists and products of 3 to 8 words (function words inside them: "of", "the", "to",
"my", "for"), and artists of 1 to 4 words. Such names have no capital-letter or
single-token shape a model can lean on: the words around them (``add ... to my ...
playlist``) decide where a span starts and ends. About a third of the requests are typed
in lower case, as voice assistants transcribe them. Every request comes from a
hand-written template whose slots are filled from hand-written pools of made-up titles;
a few requests name nothing.

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
POOLS: dict[str, list[str]] = {
    "SONG": [
        "Paper Lanterns Over the Harbour", "Letters I Never Sent to You", "Slow Dancing in the Laundromat",
        "The Night the River Froze", "Seven Miles of Empty Road", "Nobody Waters the Garden Anymore",
        "Goodbye to the Summer House", "Running Late for My Own Life", "A Lighthouse With No Keeper",
        "Static on the Kitchen Radio", "Half a Heart and a Bicycle", "Count the Stars Above Lisbon",
        "Under the Orange Street Lamps", "Tell Me When the Rain Stops", "Copper Wire and Cold Coffee",
        "The Last Bus to Nowhere", "Waiting for the Tide to Turn", "My Neighbour Plays the Trumpet",
        "Dust on the Piano Keys", "Wild Geese Flying Home Tonight", "Every Window in the City",
        "Borrowed Coat in December", "Songs My Grandmother Used to Hum", "Postcards from a Quiet Planet",
        "Nothing Left to Say Tonight", "The Ferry Leaves at Midnight", "Lemon Trees and Broken Radios",
        "Pocket Full of Rainy Days", "Walking Home Along the Canal", "Hold the Door for the Morning",
        "Ghosts in the Vending Machine", "Don't Wake the Sleeping Dog", "Blue Paint on the Ceiling",
        "We Were Kings of the Parking Lot", "A Small Boat on a Big Sea", "Candles for the Power Cut",
        "When the Train Comes Back", "Sunday Morning at the Bakery", "Faster Than My Shadow Runs",
        "The Girl Who Sold Umbrellas", "Frost on the Kitchen Window", "Lost My Keys in Barcelona",
        "Left My Umbrella on the Number Nine Bus",
    ],
    "ALBUM": [
        "Maps of Places That Never Were", "Songs from the Lower Deck", "The Year We Painted Everything Gold",
        "Quiet Hours at the Observatory", "Letters from the Other Side", "Field Notes on Falling Asleep",
        "A Museum of Small Disasters", "Rooftops and Other Hiding Places", "The Long Way Round the Lake",
        "Salt Water and Summer Rain", "Music for Empty Train Stations", "Everything Is Borrowed Except the Sky",
        "Radio Signals from the Valley", "The Architecture of Goodbye", "Harbour Lights in Black and White",
        "Notes from a Kitchen Table", "Weather Reports for Lonely People", "Ten Stories About the Moon",
        "Gardens We Forgot to Water", "Midnight at the Roller Rink", "The Cartographer's Daughter",
        "Postcards to My Younger Self", "Sleeping Under the Ferris Wheel", "Loud Songs for Quiet Towns",
        "Old Photographs of New Cities", "The Lighthouse Keeper Retires", "Strangers on the Night Ferry",
        "Winter Coats and Warm Hands", "Inside the Clockmaker's Shop", "Maybe Tomorrow the Sun Returns",
        "Chasing Foxes Through the Snow", "A House Made of Records", "All the Things We Said in the Dark",
    ],
    "PLAYLIST": [
        "Songs for a Rainy Tuesday Morning", "Late Night Drive Along the Coast", "Coffee and Crosswords on Sunday",
        "Music to Fold Laundry To", "Deep Focus for Long Study Sessions", "Road Trip with the Windows Down",
        "Quiet Songs for Falling Asleep", "Cooking Dinner for Six People", "Dancing Alone in the Kitchen",
        "Gym Mix for Leg Day", "Sad Songs for Happy People", "Old Favourites from the Nineties",
        "Morning Run by the River", "Cleaning the Whole House Mix", "Chill Beats for the Office",
        "Summer Evenings on the Balcony", "Party Starters for Saturday Night", "Slow Jazz for Rainy Evenings",
        "Acoustic Covers to Sing Along", "Campfire Songs for the Whole Family", "Songs That Make Me Cry",
        "Homework Help for Tired Students", "Walking the Dog in Autumn", "Best of the Local Bands",
        "Wedding Reception First Dance Ideas", "Throwback Hits for the Car", "Piano Music for Reading Books",
        "My Favourite Songs of All Time", "Bedtime Stories and Lullabies", "Friday Afternoon Wind Down",
        "Instrumental Music for Deep Work", "Songs for the Long Flight Home",
        "Songs to Listen to While Doing the Dishes",
    ],
    "PRODUCT": [
        "Stainless Steel Travel Coffee Mug", "Wireless Noise Cancelling Over Ear Headphones",
        "Bamboo Cutting Board with Juice Groove", "Cast Iron Skillet with Lid", "Kids Waterproof Rain Boots",
        "Portable Bluetooth Speaker for the Shower", "Memory Foam Pillow for Side Sleepers",
        "Electric Toothbrush with Travel Case", "Organic Green Tea Sampler Box", "Foldable Laptop Stand for Desk",
        "Ceramic Plant Pot with Drainage Tray", "Reusable Silicone Food Storage Bags",
        "USB C Charging Cable Three Pack", "Wool Hiking Socks for Winter", "LED Desk Lamp with Dimmer",
        "Cordless Handheld Vacuum Cleaner", "Glass Water Bottle with Sleeve", "Non Stick Frying Pan Set",
        "Vinyl Record Cleaning Kit", "Turntable with Built In Speakers", "Insulated Lunch Box for Adults",
        "Baby Monitor with Night Vision", "Yoga Mat with Carrying Strap", "Smart Plug with Energy Monitoring",
        "Waterproof Phone Pouch for Swimming", "Digital Kitchen Scale with Timer", "Scented Soy Candle Gift Set",
        "Mechanical Keyboard with Quiet Switches", "Adjustable Dumbbell Pair for Home Gym",
        "Cotton Bath Towel Set of Four", "Hard Shell Carry On Suitcase", "French Press Coffee Maker",
        "Heavy Duty Garden Hose with Spray Nozzle Attachment",
    ],
    "ARTIST": [
        "Mara Quinlan", "The Velvet Lanterns", "Oskar Brandt", "Juniper and the Owls", "Tessa Morrow",
        "The Harbour Kids", "Nico Alvarez", "Little Paper Moons", "Ruth Okonkwo", "The Night Ferry Band",
        "Elias Varga", "Saltwater Choir", "June Halloway", "The Copper Foxes", "Benji Lark",
        "Delta Nine Orchestra", "Priya Sandhu", "Wolves in Cardigans", "Felix Amsel", "The Quiet Neighbours",
        "Hanna Solberg", "Mister Tuesday",
    ],
}

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


def _request(template: str, rng: random.Random) -> tuple[str, list[dict[str, object]]]:
    """The template with its slots filled (two slots of one type get different values)."""
    text, entities, used, pos = "", [], set(), 0
    for m in _SLOT.finditer(template):
        text += template[pos : m.start()]
        kind = m.group(1)
        value = rng.choice([v for v in POOLS[kind] if v not in used])
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
