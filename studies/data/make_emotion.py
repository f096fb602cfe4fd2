"""Write the emotion data set: ``emotion.jsonl``, 400 short chat messages in 4 emotions
(joy, sadness, anger, fear), written the way people type them: lower case, typos,
stretched words, slang, missing punctuation, a few messages whose cues point two ways, and
about 7% of labels flipped to a neighbouring emotion (annotators disagree on short texts).
The labels are imbalanced (joy 35%, sadness 25%, anger 25%, fear 15%), so a prompt that
answers one label for everything scores well above 1 / 4 on accuracy and exactly 1 / 4 on
balanced accuracy.

Every message is filled from templates and word lists written for this project (no public
data set); no text occurs twice. Deterministic: the same seed writes a byte-identical file.

    python studies/data/make_emotion.py            # writes next to this file
    python studies/data/make_emotion.py --check    # fails if the shipped file differs from a fresh run
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from _files import write_or_check

SEED = 4217
N_ROWS = 400
SHARES = {"joy": 0.35, "sadness": 0.25, "anger": 0.25, "fear": 0.15}
#: Label noise: a flipped label goes to a neighbouring emotion, as annotators confuse them.
NOISE = 0.07
NEIGHBOURS = {"joy": ["sadness", "fear"], "sadness": ["fear", "anger"], "anger": ["sadness", "fear"],
              "fear": ["sadness", "anger"]}  # fmt: skip

# fmt: off
WORDS = {
    "thing": ["the interview", "my exam", "the new job", "the trip", "my test results", "the date", "the move",
              "the surgery", "the presentation", "my visa", "the match", "the audition", "the offer", "my flight"],
    "who": ["my sister", "my boss", "mum", "my roommate", "my ex", "the landlord", "my best friend", "dad",
            "the neighbour", "my coach", "my team lead", "grandma"],
    "when": ["today", "tonight", "this morning", "all week", "since monday", "right now", "again", "tomorrow"],
    "place": ["work", "the hospital", "school", "the airport", "home", "the office", "the station", "the gym"],
}

TEMPLATES = {
    "joy": [
        "i got {thing}!!! cant believe it", "{who} surprised me {when} and i'm grinning like an idiot",
        "best day everrr {thing} went perfectly", "finally finished {thing} and it feels amazing",
        "omg {who} just called with the best news", "so happy rn, {thing} worked out",
        "laughing so hard at {who} {when} lol", "we won {when}!! what a night",
        "cant stop smiling after {thing}", "{who} said yes!!! 🎉", "feeling on top of the world {when}",
        "this is the nicest surprise, thank u {who}", "yessss {thing} is done and it went great",
        "had the loveliest time with {who} {when}",
    ],
    "sadness": [
        "miss {who} so much {when}", "{thing} didnt work out. just want to stay in bed",
        "everything feels heavy {when}", "cried at {place} again, so embarassing",
        "{who} moved away and the house is so quiet", "i dont know why i even try anymore",
        "lost {thing}. feel empty", "another lonely night, nobody texted", "{who} forgot my birthday {when}",
        "sat in the car outside {place} for an hour just staring", "it's been a year and it still hurts",
        "cant shake this low feeling {when}", "nothing helps. tired of everything", "said goodbye to {who} today",
    ],
    "anger": [
        "{who} did it AGAIN. unbelievable", "so done with {place}, they messed up {thing}",
        "who parks like that?? blocked me in {when}", "third time they cancelled {thing}, i'm furious",
        "{who} took credit for my work {when}", "stop. calling. me. at. 6am", "i am LIVID about {thing}",
        "they charged me twice and hung up on me", "{who} just lied to my face",
        "waited 2 hours at {place} for nothing. ridiculous", "seriously who designed this stupid form",
        "cant believe {who} read my messages", "ugh {who} is so rude {when}", "sick of being ignored at {place}",
    ],
    "fear": [
        "{thing} is {when} and i cant breathe", "heard noises downstairs, home alone, terrified",
        "what if {thing} goes wrong", "heart racing, waiting for {thing}",
        "{who} hasnt answered in 6 hours im scared", "dreading going to {place} {when}",
        "hands shaking before {thing}", "the doctor wants to see me again, im so nervous",
        "someone followed me from {place}", "scared to open the email about {thing}",
        "panic attack at {place} {when}", "cant sleep, keep thinking about {thing}",
    ],
}
# fmt: on

STRETCH = {"so": "soooo", "happy": "happyyy", "scared": "scaredddd", "sad": "saaad", "done": "dooone"}
TYPOS = [("the", "teh"), ("just", "jsut"), ("really", "realy"), ("because", "becuase"), ("about", "abt"),
         ("you", "u"), ("tonight", "tonite"), ("going", "goin")]  # fmt: skip
TAILS = ["", "", "", " lol", " ugh", " tbh", " idk", " smh", "...", " :(", " :)", " !!", " rn"]


def _noisy(text: str, rng: random.Random) -> str:
    """Type it as a person would: a typo, a stretched word, a tail, sometimes capitals."""
    words = text.split(" ")
    for i, w in enumerate(words):
        if w in STRETCH and rng.random() < 0.3:
            words[i] = STRETCH[w]
        for right, wrong in TYPOS:
            if w == right and rng.random() < 0.1:
                words[i] = wrong
    text = " ".join(words) + rng.choice(TAILS)
    if rng.random() < 0.15:
        text = text[:1].upper() + text[1:]
    return text


def _mixed(label: str, rng: random.Random) -> str:
    """A message whose cues point two ways ("happy but scared"): the label is its main one."""
    other = rng.choice([e for e in TEMPLATES if e != label])
    first = rng.choice(TEMPLATES[label])
    second = rng.choice(TEMPLATES[other]).split(",")[0].split(".")[0]
    return f"{first} but also {second}"


def rows() -> list[dict[str, str]]:
    rng = random.Random(SEED)
    counts = {label: round(N_ROWS * share) for label, share in SHARES.items()}
    plan = [label for label, n in counts.items() for _ in range(n)]
    rng.shuffle(plan)
    seen: set[str] = set()
    out: list[dict[str, str]] = []
    for label in plan:
        while True:
            template = _mixed(label, rng) if rng.random() < 0.12 else rng.choice(TEMPLATES[label])
            text = _noisy(template.format(**{k: rng.choice(v) for k, v in WORDS.items()}), rng)
            if text not in seen:
                seen.add(text)
                break
        given = rng.choice(NEIGHBOURS[label]) if rng.random() < NOISE else label
        out.append({"id": f"msg-{len(out) + 1:04d}", "text": text, "label": given})
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true")
    args = p.parse_args(argv)
    return write_or_check({"emotion.jsonl": rows()}, check=args.check, script=Path(__file__).name)


if __name__ == "__main__":
    raise SystemExit(main())
