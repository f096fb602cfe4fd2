"""Write the multi-label demo data set: ``tickets.jsonl``, support tickets tagged with 1 to 3
of 6 topics (billing, login, shipping, refund, bug, account).

Each ticket joins one sentence per topic it is tagged with, drawn from templates and word
lists written for this project (no public data set), in a shuffled order, sometimes with a
greeting or a closing line that names no topic. Labels are written as a list in ``labels``
and as a "|"-separated string in ``labels_text`` (for ``task.label_separator``). No text
occurs twice. Deterministic: the same seed writes a byte-identical file.

    python studies/data/make_tickets.py            # writes next to this file
    python studies/data/make_tickets.py --check    # fails if a shipped file differs from a fresh run

It also writes ``tickets-unlabeled.jsonl``: 240 more tickets without labels (inputs a
distilled winner labels, ``studies/tickets-distill.yaml``).
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from _files import write_or_check

HERE = Path(__file__).resolve().parent
SEED = 2026
N_ROWS = 200
N_UNLABELED = 240
TOPICS = ("billing", "login", "shipping", "refund", "bug", "account")

# fmt: off
WORDS = {
    "month": ["march", "april", "may", "june", "july", "august", "september", "october"],
    "amount": ["$12.99", "$49", "$7.50", "$120", "$23.40", "$89.99", "$5"],
    "item": ["headphones", "desk lamp", "yoga mat", "phone case", "coffee grinder", "backpack", "keyboard",
             "water bottle", "winter jacket", "blender"],
    "days": ["three days", "a week", "ten days", "two weeks", "five days"],
    "page": ["checkout page", "settings screen", "search bar", "order history page", "app on android",
             "app on my iphone", "dashboard", "wishlist"],
    "device": ["my laptop", "my phone", "the tablet", "a new computer", "my work pc"],
    "field": ["email address", "phone number", "display name", "billing address", "profile picture"],
}

SENTENCES = {
    "billing": [
        "I was charged {amount} twice on my card in {month}.",
        "My invoice for {month} shows {amount} but my plan costs less.",
        "Why did my subscription price go up to {amount} this month?",
        "There is a charge of {amount} I do not recognise on my statement.",
        "The payment for {month} failed and now I see a late fee of {amount}.",
        "Can you send me a corrected invoice for {month}?",
    ],
    "login": [
        "I cannot log in from {device}, it says my password is wrong.",
        "The password reset email never arrives.",
        "Two-factor codes are not accepted when I sign in on {device}.",
        "I get locked out every time I try to sign in.",
        "Sign-in keeps looping back to the login screen on {device}.",
        "My verification code expired before it reached me and now I cannot get in.",
    ],
    "shipping": [
        "My {item} has not arrived after {days}.",
        "The tracking number for my {item} shows no updates for {days}.",
        "The courier says my {item} was delivered but it is not here.",
        "Can I change the delivery address for my {item} order?",
        "My {item} was sent to the wrong address.",
        "Delivery of the {item} was promised in {days} and it is still in transit.",
    ],
    "refund": [
        "I returned the {item} {days} ago and still have no refund.",
        "I would like my money back for the {item}.",
        "Please refund the {amount} for the order I cancelled.",
        "The refund for my {item} was only partial.",
        "How long does a refund take after you receive the {item}?",
        "I was promised a refund of {amount} and it never came.",
    ],
    "bug": [
        "The {page} crashes every time I open it.",
        "Buttons on the {page} do nothing when I tap them.",
        "The {page} shows an error 500 since the last update.",
        "Images do not load on the {page}.",
        "The {page} freezes and I have to restart the app.",
        "Prices on the {page} are displayed as NaN.",
    ],
    "account": [
        "How do I change the {field} on my account?",
        "Please delete my account and all my data.",
        "I want to merge my two accounts into one.",
        "My {field} is shown wrongly on my profile.",
        "I need to update the {field} linked to my account.",
        "How can I close my account for good?",
    ],
}

OPENERS = ["Hi,", "Hello team,", "Hey,", "Good morning,", "", "", "", ""]
CLOSERS = ["Thanks.", "Please help.", "This is urgent.", "Thank you in advance.", "", "", "", ""]
# fmt: on


def _fill(rng: random.Random, template: str) -> str:
    out = template
    for key, values in WORDS.items():
        while "{" + key + "}" in out:
            out = out.replace("{" + key + "}", rng.choice(values), 1)
    return out


def rows(seed: int = SEED, n: int = N_ROWS) -> list[dict[str, object]]:
    """``n`` distinct tickets: 1 topic in about half, 2 in a third, 3 in the rest."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[dict[str, object]] = []
    while len(out) < n:
        k = rng.choices([1, 2, 3], weights=[5, 3, 2])[0]
        topics = rng.sample(TOPICS, k)
        parts = [_fill(rng, rng.choice(SENTENCES[t])) for t in topics]
        text = " ".join(p for p in [rng.choice(OPENERS), *parts, rng.choice(CLOSERS)] if p)
        if text in seen:
            continue
        seen.add(text)
        labels = sorted(topics, key=TOPICS.index)
        out.append({"id": f"t{len(out):03d}", "text": text, "labels": labels, "labels_text": "|".join(labels)})
    return out


def unlabeled_rows(seed: int = SEED, n: int = N_UNLABELED) -> list[dict[str, object]]:
    """``n`` more tickets from the same generator, after the labelled ones (none of their
    texts among them), with ids ``u000``... and no labels: inputs a distilled winner labels."""
    more = rows(seed, N_ROWS + n)[N_ROWS:]
    return [{"id": f"u{i:03d}", "text": r["text"]} for i, r in enumerate(more)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="fail if the shipped files differ from a fresh run")
    args = p.parse_args(argv)
    files = {"tickets.jsonl": rows(), "tickets-unlabeled.jsonl": unlabeled_rows()}
    return write_or_check(files, check=args.check, script=Path(__file__).name)


if __name__ == "__main__":
    sys.exit(main())
