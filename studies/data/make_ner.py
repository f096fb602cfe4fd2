"""Write the named-entity demo data set: ``ner.jsonl`` (character spans) and ``ner.conll`` (BIO tags).

Deterministic: the same seed writes byte-identical files. Every sentence comes from a
hand-written template of one domain (news, sport, science, business, travel, culture,
technology, health, politics, weather) whose slots are filled from hand-written pools of
fictional-but-plausible people and organisations, real places, and made-up events, works,
products and nationality adjectives. A slot used twice in one template is the same entity
(a repeated mention); some templates have no entities at all.

    python studies/data/make_ner.py            # writes next to this file
    python studies/data/make_ner.py --check    # fails if the shipped files differ from a fresh run
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

SEED = 15
N_SENTENCES = 360

# fmt: off
FIRST = [
    "Amara", "Lena", "Kenji", "Sofia", "Tomasz", "Priya", "Mateo", "Ingrid", "Kwame", "Elif", "Rosa",
    "Dmitri", "Hana", "Oscar", "Yusuf", "Clara", "Rafael", "Noor", "Henrik", "Mei", "Jonas", "Adaeze",
    "Luca", "Freya", "Arjun", "Beatriz", "Tariq", "Ines", "Malik", "Astrid",
]
LAST = [
    "Okafor", "Brandt", "Watanabe", "Marquez", "Nowak", "Raman", "Ferreira", "Halvorsen", "Mensah",
    "Yilmaz", "Castell", "Volkov", "Sato", "Lindqvist", "Haddad", "Moreau", "Quintero", "Karimi",
    "Dahl", "Chen", "Weber", "Eze", "Romano", "Sorensen", "Iyer", "Carvalho", "Aziz", "Duval",
    "Baptiste", "Holm",
]
POOLS: dict[str, list[str]] = {
    "ORG:company": [
        "Norvale Bank", "Brightwater Labs", "Kestrel Airlines", "Fenwick Motors", "Solent Energy",
        "Corvid Systems", "Marlow & Finch", "Tessaly Foods", "Orbis Freight", "Halcyon Pharma",
        "Redfern Steel", "Lumen Telecom", "Ashgrove Insurance", "Pelham Retail", "Quarry Hill Capital",
    ],
    "ORG:club": [
        "Halden United", "Riverside Rovers", "FC Morava", "Porto Azul", "Westbrook Athletic",
        "Kingsford City", "Real Sarena", "Dunmore Wanderers", "Nordvik FK", "Atletico Colmar",
    ],
    "ORG:institute": [
        "Meridian Institute", "University of Castlebay", "Halvard Observatory", "Northgate Medical School",
        "Linden Research Centre", "Aldmere University", "Institute for Coastal Studies",
    ],
    "ORG:public": [
        "Ministry of Transport", "National Health Board", "Green Coast Party", "Federal Audit Office",
        "Harbour Workers Union", "City Council", "Civic Reform League", "World Ocean Forum",
    ],
    "ORG:media": ["Morning Ledger", "Channel Nine Review", "Coastline Radio", "Daily Beacon"],
    "LOC:city": [
        "Lisbon", "Nairobi", "Oslo", "Valparaiso", "Krakow", "Osaka", "Marseille", "Accra", "Hamburg",
        "Cork", "Izmir", "Bergen", "Porto", "Montreal", "Hanoi", "Adelaide", "Seville", "Tbilisi",
    ],
    "LOC:country": [
        "Portugal", "Kenya", "Norway", "Chile", "Poland", "Japan", "Ghana", "Ireland", "Turkey", "Vietnam",
        "Canada", "Georgia", "Morocco", "Peru",
    ],
    "LOC:nature": [
        "Lake Garda", "the Atlas Mountains", "Patagonia", "the Danube", "Table Mountain", "Loch Ness",
        "the Dolomites", "Lake Victoria", "the Baltic Sea", "Mount Kenya",
    ],
    "MISC:nationality": [
        "Portuguese", "Kenyan", "Norwegian", "Chilean", "Polish", "Japanese", "Ghanaian", "Irish", "Turkish",
        "Canadian",
    ],
    "MISC:race": ["Coastal Marathon", "Northern Cup", "Winter Games", "Grand Valley Rally", "Lakeside Half Marathon"],
    "MISC:festival": ["Harbour Jazz Festival", "Autumn Book Fair", "Lantern Film Festival", "Baltic Poetry Week"],
    "MISC:conference": ["Helix Conference", "Summit on Clean Water", "Polar Science Forum", "Open Genome Meeting"],
    "MISC:work": [
        "The Silent Harbour", "Salt and Iron", "A Map of Small Rivers", "Midnight in Krakow",
        "The Glass Orchard", "Letters to the Tide",
    ],
    "MISC:product": [
        "Aurora X2", "Pulse Mini", "Terra 5", "Nimbus Pro", "Falcon E", "Orbit Watch", "Velo One",
    ],
}

# fmt: on

# Slots: {TYPE:pool} or {TYPE:pool#k} (k tells two entities of one pool apart; the same
# slot twice is the same entity). {PER} / {PER#k} are people. {n} is a number, {day} a weekday.
TEMPLATES: dict[str, list[str]] = {
    "news": [
        "{PER}, the mayor of {LOC:city}, announced a new housing plan on {day}.",
        "Protesters gathered outside the offices of {ORG:company} in {LOC:city} on {day}.",
        "{PER} was elected to lead the {ORG:public} after a close vote.",
        "A {MISC:nationality} delegation met {PER} in {LOC:city} to discuss fishing rights.",
        "Police in {LOC:city} said {n} people were hurt when a bus left the road.",
        "The {ORG:media} reported that {PER} will step down at the end of the year.",
        "Firefighters worked through the night to save homes near {LOC:nature}.",
        "{PER} told the {ORG:media} that talks with the {ORG:public} had broken down.",
    ],
    "sport": [
        "{PER} scored twice as {ORG:club#1} beat {ORG:club#2} 3-1 in {LOC:city}.",
        "{PER} won the {MISC:race} for the second year running.",
        "{ORG:club} have signed the {MISC:nationality} striker {PER} on a three-year deal.",
        "The {MISC:race} starts in {LOC:city} on {day} with {n} riders.",
        "{PER} beat {PER#2} in straight sets to reach the final.",
        "Coach {PER} said {ORG:club} must defend better after a 0-4 defeat.",
        "Rain stopped play after {n} overs and the match was abandoned.",
        "{PER} finished the {MISC:race} in {LOC:country} in just over two hours.",
    ],
    "science": [
        "Researchers at the {ORG:institute} in {LOC:city} have mapped the genome of a rare orchid.",
        "{PER} presented the results at the {MISC:conference} in {LOC:city}.",
        "A team led by {PER} found microplastics in fish from {LOC:nature}.",
        "The {ORG:institute} will build a new telescope in {LOC:country}.",
        "{PER} and {PER#2} of the {ORG:institute} measured the glacier's retreat for {n} years.",
        "Scientists say the new material conducts heat twice as well as copper.",
        "Samples from {LOC:nature} were sent to the {ORG:institute} for analysis.",
    ],
    "business": [
        "{ORG:company} reported record profits, said chief executive {PER}.",
        "{ORG:company} will open a factory near {LOC:city} and hire {n} workers.",
        "Shares in {ORG:company#1} rose after it agreed to buy {ORG:company#2}.",
        "{PER} joined {ORG:company} as finance director in {LOC:city}.",
        "{ORG:company} cut its forecast, blaming weak demand in {LOC:country}.",
        "Investors expect interest rates to stay high until the spring.",
        "{ORG:company} and {ORG:company#2} signed a supply deal worth {n} million euros.",
        "The {MISC:nationality} regulator fined {ORG:company} for misleading customers.",
    ],
    "travel": [
        "Ferries from {LOC:city#1} to {LOC:city#2} run twice a day in summer.",
        "{ORG:company} adds direct flights between {LOC:city#1} and {LOC:city#2} next month.",
        "Hikers in {LOC:nature} are advised to carry water and a map.",
        "The old town of {LOC:city} is best explored on foot.",
        "{PER} walked across {LOC:country} in {n} days and wrote about every village.",
        "Book early if you want a cabin with a view of {LOC:nature}.",
        "Trains from {LOC:city} to the coast are cheaper on weekdays.",
        "{LOC:city} has more cafes per street than anywhere in {LOC:country}, says guide writer {PER}.",
    ],
    "culture": [
        "{PER}'s novel {MISC:work} has won the {MISC:festival} prize.",
        "The {MISC:festival} returns to {LOC:city} in June with {n} concerts.",
        "{PER} will direct a film version of {MISC:work}.",
        "The {MISC:nationality} painter {PER} opens a show at a gallery in {LOC:city}.",
        "Tickets for the opera sold out within an hour.",
        "Critics praised {PER} for her role in {MISC:work}.",
        "{PER} read from {MISC:work} at the {MISC:festival#2} in {LOC:city}.",
    ],
    "technology": [
        "{ORG:company} unveiled the {MISC:product} phone at an event in {LOC:city}.",
        "The {MISC:product} goes on sale in {LOC:country} on {day}.",
        "{PER}, who founded {ORG:company}, says the {MISC:product} will cost less than its rival.",
        "A software update fixed the battery problem on the {MISC:product}.",
        "Engineers at {ORG:company} moved the data centre from {LOC:city#1} to {LOC:city#2}.",
        "Reviewers found the new laptop fast but noisy.",
        "{ORG:company} hired {PER} to run its research lab in {LOC:city}.",
    ],
    "health": [
        "Doctors at {ORG:institute} in {LOC:city} tested a new flu vaccine on {n} volunteers.",
        "The {ORG:public} urged parents to vaccinate children before winter.",
        "{PER} of the {ORG:public} said waiting times had fallen by a third.",
        "Nurses in {LOC:city} will strike on {day} over pay.",
        "A study by {PER} links poor sleep to heart disease.",
        "Drinking enough water matters more in hot weather.",
    ],
    "politics": [
        "{PER} of the {ORG:public} called for an early election.",
        "The prime minister of {LOC:country}, {PER}, will visit {LOC:country#2} next week.",
        "{MISC:nationality} voters go to the polls on {day}.",
        "{PER} and {PER#2} clashed over taxes in a televised debate.",
        "The {ORG:public} wants a new rail line from {LOC:city#1} to {LOC:city#2}.",
        "Parliament passed the budget by {n} votes.",
        "{PER}, a former minister, joined the {ORG:public} in {LOC:city}.",
    ],
    "weather": [
        "Heavy snow closed roads around {LOC:nature} on {day}.",
        "Forecasters expect temperatures of {n} degrees in {LOC:city} this weekend.",
        "Strong winds are expected across the region tomorrow.",
        "Floods along {LOC:nature} forced {n} families from their homes.",
        "{PER} of the {ORG:institute} warned that summers in {LOC:country} are getting drier.",
    ],
}
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_SLOT = re.compile(r"\{(PER|ORG|LOC|MISC)(?::(\w+))?(?:#(\d))?\}|\{(n|day)\}")
_TOKEN = re.compile(r"'s\b|\w+(?:[-.&]\w+)*|&|[^\w\s]")


def _fill(template: str, rng: random.Random) -> tuple[str, list[dict]]:
    chosen: dict[str, str] = {}
    used: set[str] = set()
    parts: list[str] = []
    entities: list[dict] = []
    pos = 0
    length = 0
    for m in _SLOT.finditer(template):
        literal = template[pos : m.start()]
        parts.append(literal)
        length += len(literal)
        pos = m.end()
        if m.group(4) == "n":
            value = str(rng.choice([2, 3, 4, 5, 7, 8, 12, 15, 20, 24, 30, 40, 60, 120]))
        elif m.group(4) == "day":
            value = rng.choice(DAYS)
        else:
            etype, pool, k = m.group(1), m.group(2), m.group(3) or "1"
            key = f"{etype}:{pool}#{k}"
            if key not in chosen:
                while True:
                    if etype == "PER":
                        value = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
                    else:
                        value = rng.choice(POOLS[f"{etype}:{pool}"])
                    if value not in used:
                        break
                chosen[key] = value
                used.add(value)
            value = chosen[key]
            start = length
            if value.startswith("the ") and etype == "LOC":  # "the Danube": the article is not part of the name
                start += 4
            entities.append({"start": start, "end": length + len(value), "type": etype})
        parts.append(value)
        length += len(value)
    parts.append(template[pos:])
    text = "".join(parts)
    text = text[0].upper() + text[1:]
    for e in entities:
        e["text"] = text[e["start"] : e["end"]]
    return text, entities


def to_conll(text: str, entities: list[dict]) -> list[tuple[str, str]]:
    """Tokens (words, numbers, punctuation, possessive 's) with BIO tags."""
    rows = []
    for m in _TOKEN.finditer(text):
        tag = "O"
        for e in entities:
            if e["start"] <= m.start() and m.end() <= e["end"]:
                tag = ("B-" if m.start() == e["start"] else "I-") + e["type"]
            elif m.start() < e["end"] and e["start"] < m.end():
                raise SystemExit(f"entity {e['text']!r} cuts token {m.group()!r} in {text!r}")
        rows.append((m.group(), tag))
    return rows


def build(seed: int = SEED, n: int = N_SENTENCES) -> list[dict]:
    rng = random.Random(seed)
    domains = sorted(TEMPLATES)
    rows: list[dict] = []
    seen: set[str] = set()
    attempts = 0
    while len(rows) < n:
        attempts += 1
        if attempts > 50 * n:
            raise SystemExit(f"could not write {n} distinct sentences")
        domain = domains[len(rows) % len(domains)]
        text, entities = _fill(rng.choice(TEMPLATES[domain]), rng)
        if text in seen:
            continue
        seen.add(text)
        rows.append({"id": f"ner-{len(rows) + 1:04d}", "domain": domain, "text": text, "entities": entities})
    rng.shuffle(rows)
    return rows


def render(rows: list[dict]) -> tuple[str, str]:
    jsonl = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    blocks = ["\n".join(f"{tok} {tag}" for tok, tag in to_conll(r["text"], r["entities"])) for r in rows]
    return jsonl, "\n\n".join(blocks) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    ap.add_argument("--check", action="store_true", help="compare with the files in --out instead of writing")
    args = ap.parse_args(argv)
    jsonl, conll = render(build())
    targets = {args.out / "ner.jsonl": jsonl, args.out / "ner.conll": conll}
    if args.check:
        stale = [str(p) for p, text in targets.items() if not p.is_file() or p.read_text(encoding="utf-8") != text]
        if stale:
            print(f"out of date: {', '.join(stale)} (run {Path(__file__).name})", file=sys.stderr)
            return 1
        return 0
    for path, text in targets.items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
