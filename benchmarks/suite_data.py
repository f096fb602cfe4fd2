"""The evaluation suite's tasks: written for this project, deterministic, offline.

None of these was used to tune optprompt (the demo's sentiment reviews are not among
them); none comes from BIG-bench or another benchmark. Each task is built from templates
and word lists with a seeded random generator, so a task is the same on every machine.

- ``intent``: 7 assistant intents with multi-token labels (``engine_data.intent_rows``).
- ``topic``: news headlines, 4 topics (sports, business, science, politics).
- ``emotion``: first-person sentences, 4 emotions (joy, anger, sadness, fear).
- ``spam``: short text messages, spam or ham.
- ``category``: multiple choice, "which of these is a {category}?" with 4 options.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from engine_data import fill, intent_rows

__all__ = ["TASKS", "rows"]

_TOPIC = {
    "sports": (
        "{team} beat {team2} {score} in {event} final",
        "{athlete} breaks {event} record in {city}",
        "{team} sign striker from {team2} for record fee",
        "Injury rules {athlete} out of {event}",
        "{team} coach sacked after fifth straight defeat",
        "{athlete} wins gold in the {event} at {city}",
    ),
    "business": (
        "{company} shares jump after profit beats forecasts",
        "{company} to cut {n} jobs as sales slow",
        "{company} agrees takeover of {company2} for ${n} million",
        "Central bank holds interest rates as inflation eases",
        "{company} opens new factory in {city}",
        "Oil prices fall as {country} raises output",
    ),
    "science": (
        "Astronomers spot {thing} orbiting distant star",
        "New study links {food} to longer life in mice",
        "Researchers in {city} build battery that charges in {n} seconds",
        "Fossil of giant {animal} found in {country}",
        "Telescope captures first image of {thing}",
        "Gene therapy restores sight in {animal} trial",
    ),
    "politics": (
        "{country} parliament votes on new {policy} law",
        "Prime minister of {country} faces no-confidence vote",
        "Opposition wins {city} mayoral election",
        "{country} and {country2} sign {policy} treaty",
        "Minister resigns over {policy} scandal",
        "Voters in {country} head to the polls on {policy} referendum",
    ),
}
_EMOTION = {
    "joy": (
        "I just found out I got the {job} and I can't stop smiling",
        "Best {day2} ever, my {person} and I laughed until we cried",
        "I passed my {exam} and I feel on top of the world",
        "Spending the {time} with my {person} made me so happy",
        "We finally {did} and I feel wonderful",
        "What a lovely surprise, my {person} sent me {gift}",
    ),
    "anger": (
        "I am furious that my {person} {bad} again",
        "The {service} charged me twice and nobody will fix it, I'm fuming",
        "It makes my blood boil when my {person} ignores me {day}",
        "The {service} kept me waiting for {n} hours and I'm livid",
        "How dare they {bad2} without asking me",
        "I'm so mad, someone {bad3} my {gift}",
    ),
    "sadness": (
        "I miss my {person} so much since they moved away",
        "I didn't get the {job} and I just feel empty",
        "Everything reminds me of my {person} {day2} and I can't stop crying",
        "I cried all {time} after I lost my {gift}",
        "Nobody came to my {event2} and I feel so alone",
        "It breaks my heart that my {pet} is gone",
    ),
    "fear": (
        "I'm terrified about the {exam} tomorrow",
        "I keep thinking someone is following me home from the {place2}",
        "My heart is pounding, the {person} hasn't called and it's past {time2}",
        "There's a strange noise in the {room} and I'm scared to look",
        "My hands are shaking before the {event2}",
        "I'm afraid my {person} won't come back from the {place}",
    ),
}
_SPAM = {
    "spam": (
        "WINNER! You have won a {prize}. Call {phone} now to claim",
        "Urgent: your {account} account is locked. Verify at {url} within {n} hours",
        "Get {n}% off {product} today only! Reply YES to order",
        "Congratulations {name}, you were selected for a free {prize}. Text CLAIM to {short}",
        "Earn ${n} a day from home, no experience needed. Visit {url}",
        "Your {account} payment failed. Update your card at {url} or lose access",
        "FREE {prize} for the first {n} callers! Ring {phone} before {time2}",
        "{name}, your parcel is held at customs. Pay the fee at {url}",
        "Hot singles in {city} want to meet you. Reply {short} to chat",
    ),
    "ham": (
        "Hey, are we still on for {meal} at {time2}?",
        "Can you pick up {food} on your way home?",
        "Running {n} minutes late, sorry! See you at the {place2}",
        "Happy birthday {name}! Hope you have a great day",
        "Did you finish the {chore}? Mum is asking",
        "{name} says the {meal} is moved to {time2}, is that ok?",
        "Left my {thing2} at yours, can I grab it {day}?",
        "Train is delayed, I'll be at the {place2} around {time2}",
        "Thanks for {meal} {day}, it was lovely to see you {name}",
    ),
}
_WORDS: dict[str, tuple[str, ...]] = {
    "team": ("Rovers", "United", "City", "Athletic", "Wanderers", "Rangers"),
    "team2": ("Albion", "Town", "County", "Harriers", "Olympic"),
    "score": ("2-1", "3-0", "1-0", "4-2"),
    "event": ("cup", "marathon", "league", "open", "relay", "sprint"),
    "athlete": ("Silva", "Okafor", "Novak", "Lindqvist", "Tanaka", "Moreau"),
    "city": ("Lisbon", "Nairobi", "Osaka", "Denver", "Krakow", "Lima"),
    "company": ("Norvex", "Halcyon Foods", "Brightline", "Tessaro", "Quanta Steel"),
    "company2": ("Pellam", "Orbis Retail", "Carrow", "Vitesse"),
    "n": ("12", "40", "250", "1,200", "30"),
    "country": ("Norway", "Chile", "Kenya", "Vietnam", "Portugal", "Canada"),
    "country2": ("Peru", "Ghana", "Finland", "Japan"),
    "thing": ("a comet", "an exoplanet", "a black hole", "a new moon"),
    "food": ("green tea", "olive oil", "broccoli", "dark chocolate"),
    "animal": ("penguin", "shark", "lizard", "dog", "crocodile"),
    "policy": ("climate", "tax", "housing", "trade", "pension"),
    "time": ("weekend", "evening", "night", "afternoon"),
    "person": ("sister", "best friend", "grandmother", "partner", "neighbour"),
    "did": ("paid off the house", "got engaged", "moved into our new flat"),
    "gift": ("flowers", "a letter", "a watch", "a painting"),
    "bad": ("lied to me", "forgot my birthday", "broke the window"),
    "service": ("bank", "airline", "call centre", "repair shop"),
    "bad2": ("cancel my order", "change the plan", "sell my seat"),
    "bad3": ("scratched", "stole", "broke"),
    "event2": ("party", "wedding", "interview"),
    "pet": ("cat", "dog", "old rabbit"),
    "exam": ("exam", "surgery", "job interview", "court hearing"),
    "room": ("attic", "basement", "garage"),
    "place": ("war zone", "hospital", "storm"),
    "prize": ("cruise", "new phone", "gift card", "holiday"),
    "phone": ("0800 555 0199", "09061 701 461"),
    "url": ("secure-login.example", "bit.ly/claim-now"),
    "product": ("watches", "diet pills", "designer bags"),
    "short": ("80888", "61200"),
    "meal": ("lunch", "dinner", "coffee"),
    "time2": ("6", "half past 7", "noon"),
    "place2": ("station", "cinema", "cafe"),
    "name": ("Sam", "Priya", "Jonas", "Ada"),
    "chore": ("washing up", "homework", "laundry", "hoovering", "shopping list"),
    "job": ("job", "scholarship", "promotion", "apartment", "part in the play"),
    "day2": ("weekend", "birthday", "holiday", "evening", "summer"),
    "account": ("bank", "Netflix", "PayPal", "email", "Amazon"),
    "thing2": ("charger", "umbrella", "keys", "scarf", "book"),
    "day": ("tomorrow", "on Sunday", "tonight", "after work", "on Friday"),
}
_CATEGORIES: dict[str, tuple[str, ...]] = {
    "fruit": ("apple", "banana", "cherry", "mango", "pear", "plum", "grape", "kiwi"),
    "animal": ("horse", "tiger", "rabbit", "eagle", "whale", "frog", "wolf", "goat"),
    "tool": ("hammer", "wrench", "saw", "screwdriver", "drill", "chisel", "pliers"),
    "colour": ("red", "blue", "green", "purple", "orange", "yellow", "brown"),
    "vehicle": ("car", "bicycle", "truck", "train", "boat", "bus", "tractor"),
    "country": ("France", "Brazil", "India", "Egypt", "Mexico", "Sweden", "Japan"),
    "musical instrument": ("violin", "piano", "flute", "drum", "guitar", "trumpet", "cello"),
}


def _labelled(templates: dict[str, tuple[str, ...]]) -> Callable[[int, int], list[dict]]:
    def make(n: int, seed: int) -> list[dict]:
        rng = random.Random(seed)
        labels = sorted(templates)
        out, seen, tries = [], set(), 0
        while len(out) < n:
            label = labels[len(out) % len(labels)]
            text = fill(rng, rng.choice(templates[label]), _WORDS)
            tries += 1
            if text in seen and tries < 50 * n:  # repeats only once the combinations run out
                continue
            seen.add(text)
            out.append({"id": f"{label}-{len(out)}", "text": text, "label": label})
        rng.shuffle(out)
        return out

    return make


def _category(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    names = sorted(_CATEGORIES)
    out = []
    for i in range(n):
        cat = names[i % len(names)]
        right = rng.choice(_CATEGORIES[cat])
        others = rng.sample([c for c in names if c != cat], 3)
        options = [right] + [rng.choice(_CATEGORIES[o]) for o in others]
        rng.shuffle(options)
        article = "an" if cat[0] in "aeiou" else "a"
        out.append(
            {
                "id": f"cat-{i}",
                "question": f"Which of these is {article} {cat}?",
                "options": options,
                "answer": options.index(right),
            }
        )
    rng.shuffle(out)
    return out


#: name -> (rows(n, seed), task keys for the study file)
TASKS: dict[str, tuple[Callable[[int, int], list[dict]], dict]] = {
    "intent": (
        lambda n, seed: intent_rows(n, seed=seed),
        {
            "type": "classification",
            "input": "text",
            "label": "label",
            "prompt": "Classify the user's request into one of these intents: {labels}.",
        },
    ),
    "topic": (
        _labelled(_TOPIC),
        {
            "type": "classification",
            "input": "text",
            "label": "label",
            "prompt": "What is the topic of this headline? Answer with one of: {labels}.",
        },
    ),
    "emotion": (
        _labelled(_EMOTION),
        {
            "type": "classification",
            "input": "text",
            "label": "label",
            "prompt": "Which emotion does the writer feel? Answer with one of: {labels}.",
        },
    ),
    "spam": (
        _labelled(_SPAM),
        {
            "type": "classification",
            "input": "text",
            "label": "label",
            "prompt": "Is this text message spam or ham? Answer with one of: {labels}.",
        },
    ),
    "category": (
        _category,
        {
            "type": "multiple_choice",
            "input": "question",
            "options": "options",
            "label": "answer",
            "prompt": "Answer the question with one of the options.",
            "template": "Question: {input}\nOptions:\n{options}\nAnswer:",
        },
    ),
}


def rows(task: str, n: int, seed: int = 0) -> list[dict]:
    """``n`` rows of ``task``."""
    return TASKS[task][0](n, seed)
