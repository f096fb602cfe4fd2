"""A synthetic, deterministic classification workload for the scoring benchmark.

Review-sentiment tasks with 2 to 7 labels (some answer words are several tokens, such
as "very positive"), candidates with an instruction, a label guide and four
demonstrations (a 300-500 token shared prefix once rendered) and dev inputs of 20 to 80
tokens. Requests are rendered by optprompt's own :class:`PromptRenderer` through the
model's chat template, so they are exactly what a study scores.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from optprompt.prompts import PromptCandidate, PromptRenderer, ScoreRequest
from optprompt.tasks import Example, Task

__all__ = ["Workload", "build_workload", "PREFIX_TOKENS", "INPUT_TOKENS"]

PREFIX_TOKENS = (300, 500)
INPUT_TOKENS = (20, 80)
N_DEMOS = 4
N_TRAIN = 40

# Label sets by size; each label has a polarity bucket used to write matching text.
_LABEL_SETS: dict[int, tuple[str, ...]] = {
    2: ("negative", "positive"),
    3: ("negative", "neutral", "positive"),
    4: ("very negative", "negative", "positive", "very positive"),
    5: ("very negative", "negative", "neutral", "positive", "very positive"),
    6: ("very negative", "negative", "neutral", "positive", "very positive", "mixed"),
    7: ("very negative", "negative", "neutral", "positive", "very positive", "mixed", "sarcastic"),
}
# Two verbalizer styles; both contain multi-token words.
_VERBALIZERS: tuple[dict[str, str], ...] = (
    {lbl: lbl for lbl in _LABEL_SETS[7]},
    {
        "very negative": "very bad",
        "negative": "bad",
        "neutral": "so-so",
        "positive": "good",
        "very positive": "very good",
        "mixed": "mixed feelings",
        "sarcastic": "sarcastic",
    },
)
_GUIDE = {
    "very negative": "the writer is angry or deeply disappointed and would warn others away",
    "negative": "the writer is unhappy overall, even if a few things were acceptable",
    "neutral": "the writer reports facts or has no clear opinion either way",
    "positive": "the writer is satisfied overall, perhaps with small reservations",
    "very positive": "the writer is enthusiastic and recommends it without hesitation",
    "mixed": "strong praise and strong criticism are both present and roughly balanced",
    "sarcastic": "the literal words are positive but the meaning is clearly negative",
}
_INSTRUCTIONS = (
    "You are an expert annotator of customer reviews. Read the review carefully and decide "
    "which category best describes the overall opinion the writer expresses about the "
    "product, service or work being reviewed. Consider the whole text rather than single "
    "words, pay attention to negation and to comparisons with earlier experiences, and "
    "ignore details that do not reveal an opinion. Answer with exactly one of: {labels}.",
    "Classify the sentiment of the review below. Possible answers: {labels}.",
    "We are building a dataset of labelled product and service reviews. For each review, "
    "give the label that a careful human reader would choose. Reply with the label only, "
    "one of {labels}, and nothing else.",
)
_TEMPLATES = (
    "Input: {input}\nAnswer:",  # optprompt's default classification template
    "Review:\n{input}\nSentiment:",
    "Text: {input}\nLabel:",
)

_SUBJECTS = (
    "The hotel",
    "This laptop",
    "The new phone",
    "Our waiter",
    "The sequel",
    "This blender",
    "The airline",
    "The latest app update",
    "The concert",
    "This novel",
    "The delivery service",
    "The rental car",
    "The museum tour",
    "This pair of headphones",
    "The customer support team",
    "The gym",
    "The pizza place on Main Street",
    "This vacuum cleaner",
    "The online course",
)
_PHRASES = {
    "very negative": (
        "was an absolute disaster from start to finish",
        "broke after two days and nobody cared",
        "is the worst purchase I have made in years",
        "ruined our whole weekend",
    ),
    "negative": (
        "was disappointing and overpriced",
        "did not live up to the description",
        "felt slow and clumsy most of the time",
        "left us waiting far too long",
    ),
    "neutral": (
        "arrived on Tuesday as scheduled",
        "comes in three colours and two sizes",
        "is located next to the train station",
        "has a menu that changes every season",
    ),
    "positive": (
        "was pleasant and well organised",
        "works well for everyday use",
        "had friendly staff and fair prices",
        "is a solid choice for the money",
    ),
    "very positive": (
        "was simply outstanding in every way",
        "exceeded every expectation I had",
        "is the best thing I have bought this year",
        "made the whole trip unforgettable",
    ),
    "mixed": (
        "looked fantastic but fell apart within a month",
        "had brilliant food and rude staff",
        "is fast and beautiful yet painfully loud",
        "started wonderfully and ended in chaos",
    ),
    "sarcastic": (
        "was great, if you enjoy waiting three hours for cold soup",
        "is wonderful, assuming you like your screen cracking on day one",
        "was a real treat, especially the part where they lost our luggage",
        "is just perfect for people who love customer service hold music",
    ),
}
_DETAILS = (
    "we stayed there for three nights in March",
    "after two weeks of daily use",
    "my sister recommended it to me",
    "I paid the full price",
    "we went on a busy Saturday",
    "it was my second visit",
    "I compared it with two other brands first",
    "the reviews online had been very mixed",
    "we booked it for a family celebration",
)


@dataclass
class Workload:
    """Candidates and their requests, in scoring order."""

    requests: list[list[ScoreRequest]]  # per candidate
    n_labels: list[int]  # per candidate
    templates: list[str]  # per candidate
    prefix_tokens: list[int]  # per candidate
    input_tokens: list[int]  # per dev example, over all candidates

    @property
    def all_requests(self) -> list[ScoreRequest]:
        return [r for reqs in self.requests for r in reqs]


def _sentence(rng: random.Random, label: str) -> str:
    return f"{rng.choice(_SUBJECTS)} {rng.choice(_PHRASES[label])}; {rng.choice(_DETAILS)}."


def _review(rng: random.Random, label: str, count: Callable[[str], int]) -> str:
    """A review of ``label`` whose token count lies in :data:`INPUT_TOKENS`."""
    lo, hi = INPUT_TOKENS
    for _ in range(100):
        target = rng.randint(lo, hi)
        text = _sentence(rng, label)
        while count(text) < target:
            text += " " + _sentence(rng, label)
        words = text.split(" ")
        while len(words) > 1 and count(" ".join(words)) > target:
            words.pop()
        text = " ".join(words).rstrip(",;.") + "."
        if lo <= count(text) <= hi:
            return text
    raise RuntimeError(f"could not write a {label!r} review of {lo}-{hi} tokens")


def _task(n_labels: int, n_dev: int, seed: int, count: Callable[[str], int]) -> Task:
    labels = _LABEL_SETS[n_labels]
    rng = random.Random(f"optprompt-bench:{seed}:task{n_labels}")

    def examples(split: str, n: int) -> list[Example]:
        out = []
        for i in range(n):
            k = rng.randrange(n_labels)
            out.append(
                Example(
                    id=f"{split}{i}",
                    input=_review(rng, labels[k], count),
                    target=labels[k],
                    target_index=k,
                    row=f"synthetic {split} {i}",
                )
            )
        return out

    return Task(
        name=f"reviews{n_labels}",
        type="classification",
        train=examples("train", N_TRAIN),
        dev=examples("dev", n_dev),
        test=[],
        labels=labels,
        verbalizer={lbl: lbl for lbl in labels},
        source="synthetic",
    )


def _candidate(rng: random.Random, task: Task, template: str) -> PromptCandidate:
    style = _VERBALIZERS[rng.randrange(len(_VERBALIZERS))]
    verbalizer = tuple((lbl, style[lbl]) for lbl in task.labels)
    guide = "\n".join(f"- {style[lbl]}: {_GUIDE[lbl]}" for lbl in task.labels)
    instruction = f"{rng.choice(_INSTRUCTIONS)}\nLabel guide:\n{guide}"
    demo_ids = tuple(ex.id for ex in rng.sample(task.train, N_DEMOS))
    return PromptCandidate(instruction=instruction, template=template, demo_ids=demo_ids, verbalizer=verbalizer)


def labels_for(candidate: int, n_candidates: int) -> int:
    """Label counts spread evenly over 2..7 across the candidates (2 and 7 for two)."""
    lo, hi = min(_LABEL_SETS), max(_LABEL_SETS)
    if n_candidates == 1:
        return lo
    return lo + round((hi - lo) * candidate / (n_candidates - 1))


def build_workload(
    tokenizer,
    chat_formatter,
    *,
    n_candidates: int,
    n_examples: int,  # type: ignore[no-untyped-def]
    seed: int = 0,
) -> Workload:
    """Render ``n_candidates`` x ``n_examples`` requests; same seed, same requests."""

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False).input_ids)

    tasks: dict[int, Task] = {}
    requests, n_labels, templates, prefix_tokens = [], [], [], []
    for c in range(n_candidates):
        k = labels_for(c, n_candidates)
        if k not in tasks:
            tasks[k] = _task(k, n_examples, seed, count)
        task = tasks[k]
        template = _TEMPLATES[c % len(_TEMPLATES)]
        renderer = PromptRenderer(task, chat_formatter)
        rng = random.Random(f"optprompt-bench:{seed}:candidate{c}")
        for _ in range(100):
            cand = _candidate(rng, task, template)
            reqs = renderer.requests(cand, task.dev)
            n_prefix = count(reqs[0].prefix)
            if PREFIX_TOKENS[0] <= n_prefix <= PREFIX_TOKENS[1]:
                break
        else:
            raise RuntimeError(f"candidate {c}: no prompt with a {PREFIX_TOKENS} token prefix in 100 draws")
        requests.append(reqs)
        n_labels.append(k)
        templates.append(template)
        prefix_tokens.append(n_prefix)
    input_tokens = [count(ex.input) for c in range(n_candidates) for ex in tasks[n_labels[c]].dev]
    return Workload(requests, n_labels, templates, prefix_tokens, input_tokens)
