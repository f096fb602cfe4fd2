"""Instructions induced from the data (APE-style, Zhou et al. 2023, "Large Language Models
Are Human-Level Prompt Engineers"): the rewriter model reads a few train input/answer
pairs and says what the instruction was. Each induced instruction is cleaned by the same
junk filter evolution uses (rejected ones are counted, never used) and joins template
search's instruction choices. Greedy decoding through the persistent cache: a resumed
study induces the same instructions without model time.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from optprompt_plugins.evolution.junk import JunkFilter, normalize

from optprompt.tasks import Example, Task

__all__ = ["Induced", "induce_instructions", "induction_prompt"]

_HEAD = (
    "I gave a friend an instruction and some inputs. The friend read the instruction and "
    "wrote an output for every one of the inputs. Here are the input-output pairs:"
)
_TAIL = "What was the instruction? Reply with the instruction only, in one sentence."


def induction_prompt(pairs: Sequence[tuple[str, str]]) -> str:
    """The question put to the rewriter: the pairs, then "what was the instruction?"."""
    body = "\n\n".join(f"Input: {text}\nOutput: {answer}" for text, answer in pairs)
    return f"{_HEAD}\n\n{body}\n\n{_TAIL}"


@dataclass
class Induced:
    """What induction produced: usable instructions and the reasons others were dropped."""

    instructions: list[str] = field(default_factory=list)
    rejected: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"instructions": list(self.instructions), "rejected": dict(self.rejected)}


def _answer(task: Task, example: Example, words: dict[str, str]) -> str:
    return task.task_type.gold_answer(example, words)


def induce_instructions(
    task: Task,
    generator: Any,
    *,
    count: int,
    demos: int,
    seed: int,
    words: dict[str, str],
    known: Sequence[str] = (),
    max_new_tokens: int = 48,
) -> Induced:
    """Up to ``count`` new instructions, each induced from ``demos`` seeded train examples.

    Args:
        generator: A :class:`~optprompt.strategies.services.TextGenerator`.
        words: The answer word of each label (classification).
        known: Instructions already in the pool (an induced copy is dropped as ``unchanged``).
    """
    rng = random.Random(f"induce:{seed}")
    train = list(task.train)
    prompts = []
    for _ in range(count):
        chosen = rng.sample(train, min(demos, len(train)))
        prompts.append(induction_prompt([(ex.input, _answer(task, ex, words)) for ex in chosen]))
    outputs = generator.generate(prompts, max_new_tokens=max_new_tokens, stop=("\n\n",), seed=seed)
    junk = JunkFilter([ex.input for ex in (*task.train, *task.dev)], list(words.values()))
    out = Induced()
    seen = {normalize(k) for k in known}
    for raw in outputs:
        verdict = junk.check(raw)
        if not verdict.ok:
            out.rejected[verdict.rejected or "junk"] = out.rejected.get(verdict.rejected or "junk", 0) + 1
            continue
        text = verdict.text or ""
        if task.has_fixed_labels and "{labels}" not in text:
            text = f"{text.rstrip()} Answer with one of: {{labels}}."
        if normalize(text) in seen:
            out.rejected["unchanged"] = out.rejected.get("unchanged", 0) + 1
            continue
        seen.add(normalize(text))
        out.instructions.append(text)
    return out
