"""Variation operators: LLM rewrites (EvoPrompt) and model-free phrase edits (GrIPS).

Every operator takes a seeded :class:`random.Random` (or a seed) and is deterministic
given it. Edit operators return ``None`` when they do not apply to a text (nothing to
delete in a one-phrase instruction, no word with a synonym...).
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from optprompt_plugins.evolution.junk import normalize

from optprompt.tasks import builtin_task_types

if TYPE_CHECKING:
    from optprompt.strategies import TextGenerator

__all__ = [
    "derive_seed",
    "split_phrases",
    "join_phrases",
    "PhraseEditor",
    "Rewriter",
    "DEFAULT_PHRASES",
    "DEFAULT_SYNONYMS",
    "demo_crossover",
    "demo_mutate",
    "random_demos",
]

#: The phrases phrase edits add, by task type: each type's ``instruction_phrases`` (the
#: study uses its task's own type, a plugin's too; this table holds the built-in ones).
DEFAULT_PHRASES: dict[str, tuple[str, ...]] = {t.name: t.instruction_phrases for t in builtin_task_types()}
DEFAULT_SYNONYMS: tuple[tuple[str, ...], ...] = (
    ("classify", "categorize", "label"),
    ("review", "text", "passage"),
    ("sentiment", "tone", "opinion"),
    ("determine", "decide", "identify"),
    ("answer", "reply", "respond"),
    ("choose", "pick", "select"),
    ("read", "consider", "look at"),
    ("carefully", "closely", "attentively"),
    ("correct", "right", "best"),
    ("short", "brief", "concise"),
    ("question", "query"),
)

_PHRASE = re.compile(r"[^,;.!?]+[,;.!?]*")


def derive_seed(*parts: object) -> int:
    """A stable 31-bit seed from any parts (the study seed, generation, slot, attempt...)."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def split_phrases(text: str) -> list[str]:
    """Phrases of an instruction (GrIPS edits phrases): runs of text ending at ``, ; . ! ?``;
    a run of fewer than two words (``{labels}.``) stays with the phrase before it."""
    phrases: list[str] = []
    for p in _PHRASE.findall(text):
        p = p.strip()
        if not p:
            continue
        if phrases and len(p.replace("{", " ").split()) < 2:
            phrases[-1] = f"{phrases[-1]} {p}"
        else:
            phrases.append(p)
    return phrases


def join_phrases(phrases: Sequence[str]) -> str:
    """Phrases back into text: case fixed at the seams, ending in a full stop."""
    out: list[str] = []
    for p in (p.strip() for p in phrases):
        if not p:
            continue
        if out and out[-1][-1] in ",;" and p[:1].isupper() and p[1:2].islower():
            p = p[0].lower() + p[1:]  # "carefully, Answer" -> "carefully, answer"
        elif (not out or out[-1][-1] in ".!?") and p[:1].islower():
            p = p[0].upper() + p[1:]
        out.append(p)
    text = re.sub(r"[,;:]$", ".", " ".join(out))
    if text and text[-1] not in ".!?":
        text += "."
    return text


def _key(phrase: str) -> str:
    return normalize(phrase.replace("{labels}", " labels "))


class PhraseEditor:
    """GrIPS-style edits on phrases: delete, swap, add (from a phrase bank), paraphrase
    (a word replaced by another of its synonym group), plus phrase-level crossover and a
    set-based analogue of differential evolution.

    Args:
        ops: The edits :meth:`mutate` may choose from.
        phrases: The bank ``add`` draws from.
        synonyms: Groups of interchangeable words for ``paraphrase``.
    """

    def __init__(self, ops: Sequence[str], phrases: Sequence[str], synonyms: Sequence[Sequence[str]]) -> None:
        self.ops = tuple(ops)
        self.phrases = tuple(dict.fromkeys(p.strip() for p in phrases if p.strip()))
        self.synonyms = tuple(tuple(g) for g in synonyms)
        self._ops: dict[str, Callable[..., str | None]] = {
            "delete": self.delete,
            "swap": self.swap,
            "add": self.add,
            "paraphrase": self.paraphrase,
        }

    # --- single edits ---------------------------------------------------------------
    @staticmethod
    def delete(text: str, rng: random.Random, extra: Sequence[str] = ()) -> str | None:
        phrases = split_phrases(text)
        removable = [i for i, p in enumerate(phrases) if "{" not in p]
        if len(phrases) < 2 or not removable:
            return None
        i = rng.choice(removable)
        return join_phrases(phrases[:i] + phrases[i + 1 :])

    @staticmethod
    def swap(text: str, rng: random.Random, extra: Sequence[str] = ()) -> str | None:
        phrases = split_phrases(text)
        if len(phrases) < 2:
            return None
        i, j = sorted(rng.sample(range(len(phrases)), 2))
        phrases[i], phrases[j] = phrases[j], phrases[i]
        return join_phrases(phrases)

    def add(self, text: str, rng: random.Random, extra: Sequence[str] = ()) -> str | None:
        phrases = split_phrases(text)
        have = {_key(p) for p in phrases}
        bank = [p for p in dict.fromkeys([*self.phrases, *extra]) if _key(p) and _key(p) not in have]
        if "{labels}" in text:
            bank = [p for p in bank if "{labels}" not in p]
        if not bank:
            return None
        phrase = rng.choice(bank)
        if phrase[-1] not in ".!?,;:":
            phrase += "."
        phrases.insert(rng.randint(0, len(phrases)), phrase)
        return join_phrases(phrases)

    def paraphrase(self, text: str, rng: random.Random, extra: Sequence[str] = ()) -> str | None:
        hits = []
        for group in self.synonyms:
            for word in group:
                for m in re.finditer(rf"(?<![\w{{]){re.escape(word)}(?![\w}}])", text, re.I):
                    hits.append((m.start(), m.end(), group, word))
        if not hits:
            return None
        start, end, group, word = rng.choice(sorted(hits))
        choice = rng.choice([w for w in group if w.lower() != word.lower()])
        found = text[start:end]
        if found[:1].isupper():
            choice = choice[:1].upper() + choice[1:]
        return text[:start] + choice + text[end:]

    def mutate(self, text: str, rng: random.Random, extra: Sequence[str] = ()) -> tuple[str, str] | None:
        """One applicable edit, chosen at random: ``(new text, edit name)`` or None."""
        ops = list(self.ops)
        rng.shuffle(ops)
        for op in ops:
            out = self._ops[op](text, rng, extra)
            if out is not None and normalize(out) != normalize(text):
                return out, op
        return None

    # --- recombination --------------------------------------------------------------
    @staticmethod
    def crossover(a: str, b: str, rng: random.Random) -> str | None:
        """One-point crossover on phrases: a prefix of ``a`` and a suffix of ``b``."""
        pa, pb = split_phrases(a), split_phrases(b)
        options = [
            (i, j)
            for i in range(1, len(pa) + 1)
            for j in range(len(pb))
            if (i, j) != (len(pa), len(pb)) and not (i == len(pa) and j == 0)
        ]
        rng.shuffle(options)
        for i, j in options:
            child = pa[:i] + [p for p in pb[j:] if _key(p) not in {_key(q) for q in pa[:i]}]
            text = join_phrases(child)
            if normalize(text) not in (normalize(a), normalize(b)):
                return text
        return None

    @staticmethod
    def differential(best: str, b: str, c: str, rng: random.Random, rate: float = 0.5) -> str | None:
        """``best + F * (b - c)`` on phrase sets: phrases only ``b`` has are added to ``best``,
        phrases only ``c`` has are removed from it, each with probability ``rate``."""
        pb, pc = split_phrases(b), split_phrases(c)
        kb, kc = {_key(p) for p in pb}, {_key(p) for p in pc}
        out = split_phrases(best)
        changed = False
        for p in pc:
            if _key(p) not in kb and "{" not in p and rng.random() < rate:
                keep = [q for q in out if _key(q) != _key(p)]
                changed |= len(keep) != len(out)
                out = keep
        for p in pb:
            if _key(p) not in kc and _key(p) not in {_key(q) for q in out} and rng.random() < rate:
                out.insert(rng.randint(0, len(out)), p)
                changed = True
        text = join_phrases(out)
        return text if changed and normalize(text) else None


class Rewriter:
    """The LLM operators: fill an operator template and sample the rewriter's reply.

    Args:
        generator: The rewriter model's text generator.
        templates: Operator name -> prompt template (``{prompt}``, ``{prompt1}``...).
        show: How an instruction is shown to the rewriter (``{labels}`` filled in).
    """

    def __init__(
        self,
        generator: TextGenerator,
        templates: dict[str, str],
        *,
        temperature: float,
        max_new_tokens: int,
        show: Callable[[str], str] = lambda s: s,
    ) -> None:
        self.generator = generator
        self.templates = templates
        self.temperature = temperature
        self.max_new_tokens = max_new_tokens
        self.show = show
        self.calls = 0

    def prompt(self, op: str, **fields: str) -> str:
        """The operator prompt with ``fields`` filled in (literally, in one pass)."""
        shown = {k: self.show(v) for k, v in fields.items()}
        return re.sub(
            r"\{(prompt|prompt1|prompt2|best)\}",
            lambda m: shown.get(m.group(1), m.group(0)),
            self.templates[op],
        )

    def __call__(self, op: str, seed: int, **fields: str) -> str:
        self.calls += 1
        return self.generator.generate(
            [self.prompt(op, **fields)],
            max_new_tokens=self.max_new_tokens,
            temperature=self.temperature,
            seed=seed,
        )[0]


# --- demonstration sets ------------------------------------------------------------
def random_demos(pool: Sequence[str], rng: random.Random, max_demos: int) -> tuple[str, ...]:
    k = rng.randint(0, min(max_demos, len(pool)))
    return tuple(rng.sample(list(pool), k))


def demo_crossover(a: Sequence[str], b: Sequence[str], rng: random.Random) -> tuple[str, ...]:
    """Demonstrations drawn from both parents' sets, as many as one of them has."""
    merged = list(dict.fromkeys([*a, *b]))
    k = min(rng.choice([len(a), len(b)]), len(merged))
    return tuple(rng.sample(merged, k))


def demo_mutate(ids: Sequence[str], rng: random.Random, pool: Sequence[str], max_demos: int) -> tuple[str, ...]:
    """Add, drop or replace one demonstration."""
    ids = list(ids)
    unused = [i for i in pool if i not in ids]
    moves = [
        m
        for m, ok in (
            ("add", len(ids) < max_demos and unused),
            ("drop", ids),
            ("replace", ids and unused),
        )
        if ok
    ]
    if not moves:
        return tuple(ids)
    move = rng.choice(moves)
    if move == "add":
        ids.insert(rng.randint(0, len(ids)), rng.choice(unused))
    elif move == "drop":
        ids.pop(rng.randrange(len(ids)))
    else:
        ids[rng.randrange(len(ids))] = rng.choice(unused)
    return tuple(ids)
