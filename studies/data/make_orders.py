"""Write a second, small extraction data set: ``orders.jsonl`` (customer messages about orders).

Not named entities: the spans are products, dates, amounts of money and order numbers in
short customer-service messages, so that a mechanism tuned on ``ner.jsonl`` can be
checked on text of another shape (numbers, codes, dates; several spans of one type).
Deterministic: the same seed writes a byte-identical file. Every message comes from a
hand-written template whose slots are filled from hand-written pools of made-up products;
some messages have no span at all.

    python studies/data/make_orders.py            # writes next to this file
    python studies/data/make_orders.py --check    # fails if the shipped file differs from a fresh run
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

SEED = 23
N_MESSAGES = 200

# fmt: off
POOLS: dict[str, list[str]] = {
    "PRODUCT": [
        "Arlo kettle", "Brisk 3 blender", "Cedar desk lamp", "Dune backpack", "Ember toaster", "Fjord rain jacket",
        "Glint smartwatch", "Harbor coffee grinder", "Iris reading light", "Juniper yoga mat", "Kite headphones",
        "Lumo phone case", "Moss wool blanket", "Nimbus air purifier", "Orca water bottle", "Pebble speaker",
        "Quill fountain pen", "Rowan hiking boots", "Sable office chair", "Tundra sleeping bag",
    ],
    "DATE": [
        "3 March", "12 April", "28 May", "1 June", "17 July", "9 August", "30 September", "14 October",
        "5 November", "21 December", "Monday", "Tuesday", "Friday", "next Wednesday", "last Thursday",
    ],
    "MONEY": [
        "$19.99", "$45", "$120.50", "EUR 39.90", "EUR 250", "GBP 12.75", "GBP 89", "$7.49", "EUR 18", "$310",
    ],
    "ORDER": [
        "A-10482", "A-22917", "B-30045", "B-47710", "C-51238", "C-60093", "D-71654", "D-88321", "E-90417",
        "E-93580",
    ],
}

TEMPLATES = [
    "My order {ORDER} with the {PRODUCT} has not arrived and it was due on {DATE}.",
    "I was charged {MONEY} twice for the {PRODUCT}.",
    "Can I return the {PRODUCT} I bought on {DATE}? It cost {MONEY}.",
    "Please cancel order {ORDER} before it ships.",
    "The {PRODUCT} in order {ORDER} arrived broken, I would like a refund of {MONEY}.",
    "Where is my parcel? The tracking page has not changed since {DATE}.",
    "I ordered a {PRODUCT} and a {PRODUCT} but only one came.",
    "Your site says {MONEY} for the {PRODUCT} but the app says {MONEY}.",
    "Thank you, the replacement arrived on {DATE} and works fine.",
    "Is the {PRODUCT} back in stock yet?",
    "I still have not received the refund for order {ORDER}.",
    "The delivery for {ORDER} was moved from {DATE} to {DATE} without any notice.",
    "How do I change the address on my account?",
    "Great service, thanks a lot!",
    "The discount code did not work and I paid {MONEY} instead of {MONEY}.",
    "Could you send an invoice for the {PRODUCT} from order {ORDER}?",
    "I would like to exchange the {PRODUCT} for a {PRODUCT}, same price.",
    "My card was refused although I have more than {MONEY} on it.",
]
# fmt: on

_SLOT = re.compile(r"\{([A-Z]+)\}")


def _message(template: str, rng: random.Random) -> tuple[str, list[dict[str, object]]]:
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


def rows(seed: int = SEED, n: int = N_MESSAGES) -> list[dict[str, object]]:
    rng = random.Random(seed)
    out, seen = [], set()
    while len(out) < n:
        text, entities = _message(rng.choice(TEMPLATES), rng)
        if text in seen:
            continue
        seen.add(text)
        out.append({"id": f"ord-{len(out) + 1:04d}", "text": text, "entities": entities})
    rng.shuffle(out)
    return out


def render(data: list[dict[str, object]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in data)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="fail if the shipped file differs from a fresh run")
    args = p.parse_args(argv)
    target = Path(__file__).resolve().parent / "orders.jsonl"
    text = render(rows())
    if args.check:
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            print(f"{target}: differs from a fresh run of {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target} ({len(text.splitlines())} messages)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
