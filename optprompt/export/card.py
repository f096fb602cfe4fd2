"""Prompt cards: the exported winner, loadable by any program.

A card is a JSON file (``prompt_card.json``) plus the rendered prompt as text
(``prompt.txt``). :meth:`PromptCard.format` rebuilds the exact text optprompt scored,
for any new input, without optprompt's model or data.
"""

from __future__ import annotations

import os
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optprompt._io import atomic_write_json, atomic_write_text, read_json
from optprompt._version import __version__
from optprompt.errors import OptpromptError

__all__ = [
    "PromptCard",
    "load_card",
    "export_card",
    "card_from_result",
    "card_from_description",
    "export_adapter",
    "CARD_FILE",
    "PROMPT_FILE",
]

CARD_FILE = "prompt_card.json"
PROMPT_FILE = "prompt.txt"
CARD_FORMAT = 1
_LETTERS = string.ascii_uppercase


@dataclass(frozen=True)
class PromptCard:
    """A winning prompt and everything needed to use and trust it.

    Attributes:
        instruction: The instruction with ``{labels}`` already filled in.
        template: Per-example format with ``{input}`` (and maybe ``{options}``).
        demos: Demonstrations: ``{"input", "answer", "options"}`` dicts, in order.
        verbalizer: Label -> the word the model says for it (classification).
        choice_format: ``text`` or ``letters`` (multiple choice).
        separator: Text between instruction, demonstrations and query.
        chat: Whether the prompt was scored as a user turn of the model's chat template.
    """

    instruction: str
    template: str
    demos: list[dict[str, Any]]
    verbalizer: dict[str, str]
    task_type: str
    choice_format: str = "text"
    separator: str = "\n\n"
    chat: bool = False
    calibration: dict[str, Any] = field(default_factory=lambda: {"method": "none", "offsets": None})
    model: dict[str, Any] = field(default_factory=dict)
    task: dict[str, Any] = field(default_factory=dict)
    scores: dict[str, Any] = field(default_factory=dict)
    baseline_scores: dict[str, Any] = field(default_factory=dict)
    comparison: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    seed: int = 0
    study: str = ""
    optprompt_version: str = __version__

    # --- using the prompt ---------------------------------------------------------
    def _options_block(self, options: list[str]) -> str:
        if self.choice_format == "letters":
            return "\n".join(f"{_LETTERS[i]}. {o}" for i, o in enumerate(options))
        return "\n".join(f"- {o}" for o in options)

    def _query(self, text: str, options: list[str] | None) -> str:
        out = self.template.replace("{input}", text)
        if "{options}" in out:
            out = out.replace("{options}", self._options_block(list(options or [])))
        return out

    def format(self, text: str, options: list[str] | None = None) -> str:
        """The full prompt for ``text`` (the user turn, when ``chat`` is true)."""
        parts = [self.instruction] if self.instruction.strip() else []
        for d in self.demos:
            parts.append(f"{self._query(d['input'], d.get('options'))} {d['answer']}")
        parts.append(self._query(text, options))
        return self.separator.join(parts)

    def messages(self, text: str, options: list[str] | None = None) -> list[dict[str, str]]:
        """The prompt as chat messages (one user turn)."""
        return [{"role": "user", "content": self.format(text, options)}]

    def render(self, text: str, tokenizer: Any = None, options: list[str] | None = None) -> str:
        """Exactly the text optprompt scored: through ``tokenizer``'s chat template when ``chat``."""
        if self.chat:
            if tokenizer is None:
                raise OptpromptError("this card was scored with a chat template: pass the model's tokenizer")
            return tokenizer.apply_chat_template(
                self.messages(text, options), tokenize=False, add_generation_prompt=True
            )
        return self.format(text, options)

    def answers(self, options: list[str] | None = None) -> dict[str, str]:
        """Answer word -> label (classification) or -> option (multiple choice)."""
        if self.task_type == "classification":
            return {w: lbl for lbl, w in self.verbalizer.items()}
        opts = list(options or [])
        if self.choice_format == "letters":
            return {_LETTERS[i]: o for i, o in enumerate(opts)}
        return {o: o for o in opts}

    def predict_from_logliks(self, logliks: dict[str, float]) -> str:
        """The label this card predicts from per-label log-likelihoods of the answer words.

        Applies the card's calibration exactly as optprompt did when it scored the card.
        """
        from optprompt.scoring.calibration import apply_offsets

        labels = list(self.verbalizer)
        missing = [lbl for lbl in labels if lbl not in logliks]
        if missing:
            raise OptpromptError(f"log-likelihoods missing for label(s) {missing}")
        values = [logliks[lbl] for lbl in labels]
        offsets = self.calibration.get("offsets")
        if offsets:
            values = apply_offsets(values, offsets)
        return labels[max(range(len(values)), key=values.__getitem__)]

    def parse(self, output: str, options: list[str] | None = None) -> str | None:
        """Map a model's generated answer back to a label/option (None when it matches none).

        For generation tasks: the answer extracted as optprompt did (the task's regex, or
        the first non-empty line), None on a format failure.
        """
        if self.task_type == "generation":
            from optprompt.scoring.text_metrics import extract_answer

            return extract_answer(output, (self.task.get("generation") or {}).get("extract"))
        head = output.strip().split("\n")[0].strip().strip(".").strip()
        answers = self.answers(options)
        if head in answers:
            return answers[head]
        low = {k.lower(): v for k, v in answers.items()}
        first = head.split(" ")[0].lower().strip(".,:;!") if head else ""
        return low.get(head.lower(), low.get(first))

    # --- files --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {"format": CARD_FORMAT, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "<card>") -> PromptCard:
        data = dict(data)
        fmt = data.pop("format", None)
        if fmt != CARD_FORMAT:
            raise OptpromptError(f"{source}: unsupported prompt card format {fmt!r} (expected {CARD_FORMAT})")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise OptpromptError(f"{source}: unknown prompt card key(s): {', '.join(unknown)}")
        try:
            return cls(**data)
        except TypeError as e:
            raise OptpromptError(f"{source}: invalid prompt card: {e}") from None

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``prompt_card.json`` and ``prompt.txt`` into ``directory`` (atomically)."""
        directory = Path(directory)
        atomic_write_json(directory / CARD_FILE, self.to_dict())
        atomic_write_text(directory / PROMPT_FILE, self.format("{input}") + "\n")
        return directory / CARD_FILE


def load_card(path: str | os.PathLike[str]) -> PromptCard:
    """Load a card from its JSON file or from the directory holding ``prompt_card.json``."""
    path = Path(path)
    if path.is_dir():
        path = path / CARD_FILE
    return PromptCard.from_dict(read_json(path, what="prompt card"), source=str(path))


def card_from_description(
    desc: dict[str, Any], task: dict[str, Any], *, calibration: dict[str, Any] | None = None, **fields: Any
) -> PromptCard:
    """A card from a candidate as result.json describes it (``candidate``, ``demos``,
    ``chat``: see :func:`optprompt.study.results.describe`) and the task's summary."""
    cand = desc["candidate"]
    verbalizer = {lbl: w for lbl, w in cand.get("verbalizer", [])}
    words = ", ".join(verbalizer.get(lbl, lbl) for lbl in task.get("labels", []))
    return PromptCard(
        instruction=cand["instruction"].replace("{labels}", words),
        template=cand["template"],
        demos=[
            {"input": d["input"], "answer": d["answer"], "options": d.get("options") or None} for d in desc["demos"]
        ],
        verbalizer=verbalizer,
        task_type=task["type"],
        choice_format=cand.get("choice_format", "text"),
        separator=cand.get("separator", "\n\n"),
        chat=bool(desc.get("chat")),
        calibration=calibration or {"method": "none", "offsets": None},
        task=task,
        **fields,
    )


def card_from_result(result: dict[str, Any], member: dict[str, Any] | None = None) -> PromptCard:
    """Build the card of a finished study's winner (or of one Pareto-front ``member``)
    from its ``result.json`` data. A member other than the winner has dev scores only."""
    best = result["best"] if member is None or member["trial"] == result["best"]["trial"] else member
    return card_from_description(
        best,
        result["task"],
        calibration=best.get("calibration"),
        model=result["model"],
        scores={
            "dev": best["dev"],
            "test": best.get("test"),
            **({"objectives": best["objectives"]} if "objectives" in best else {}),
        },
        baseline_scores={"dev": result["baseline"]["dev"], "test": result["baseline"]["test"]},
        comparison=result.get("comparison", {}),
        warnings=list(result.get("warnings", [])),
        seed=result["seed"],
        study=result["name"],
    )


def export_card(
    output_dir: str | os.PathLike[str], to: str | os.PathLike[str], *, pick: str | None = None, front: bool = False
) -> Path:
    """Export the winner of the finished study in ``output_dir`` into ``to``.

    Args:
        pick: Multi-objective studies: constraints choosing another Pareto-front prompt,
            e.g. ``"prompt_tokens<=200"`` (the best score that fits).
        front: Multi-objective studies: write every Pareto-front prompt into
            ``to/trial-N/`` plus ``to/pareto.json``; returns that index.
    """
    from optprompt.study.objectives import parse_rule, select
    from optprompt.study.results import RESULT_FILE

    result = read_json(Path(output_dir) / RESULT_FILE, what=f"finished study result ({RESULT_FILE})")
    pareto = result.get("pareto") or []
    if (pick or front) and not pareto:
        raise OptpromptError(
            f"{output_dir}: the study has a single objective, so there is no Pareto front to pick from"
        )
    if (pick or front) and any(m.get("candidate", {}).get("kind") == "soft" for m in pareto):
        raise OptpromptError(
            f"{output_dir}: the Pareto front holds trained adapters; --pick/--front export prompt cards "
            "only. Export the winner (no --pick/--front), or load any trial's adapter from "
            "OUTPUT/artifacts/adapters/<hash> with optprompt.load_adapter"
        )
    if front:
        index = []
        for m in pareto:
            card_from_result(result, m).save(Path(to) / f"trial-{m['trial']}")
            index.append(
                {
                    "trial": m["trial"],
                    "objectives": m["objectives"],
                    "card": f"trial-{m['trial']}/{CARD_FILE}",
                    "winner": m["trial"] == result["best"]["trial"],
                }
            )
        return atomic_write_json(Path(to) / "pareto.json", index)
    best_artifact = result["best"].get("artifact")
    if not pick and best_artifact and (Path(output_dir) / best_artifact).is_dir():
        return export_adapter(result, Path(output_dir) / best_artifact, to)
    member = None
    if pick:
        member = select(pareto, parse_rule(pick, result["objectives"], key="--pick"))
        if member is None:
            raise OptpromptError(
                f"no Pareto-front prompt meets {pick!r}; front: "
                + "; ".join(f"trial {m['trial']} {m['objectives']}" for m in pareto)
            )
    return card_from_result(result, member).save(to)


def export_adapter(result: dict[str, Any], adapter_dir: Path, to: str | os.PathLike[str]) -> Path:
    """Copy the winner's adapter (PEFT files + manifest, with the study's final scores)
    into ``to`` and write its prompt card beside it; returns the card's path."""
    import shutil

    from optprompt.adapters.artifact import read_manifest, result_fields, update_manifest

    read_manifest(adapter_dir)  # a clear error when the directory is not an adapter
    to = Path(to)
    to.mkdir(parents=True, exist_ok=True)
    for f in adapter_dir.iterdir():
        if f.is_file():
            shutil.copy2(f, to / f.name)
    card = card_from_result(result)
    update_manifest(to, card=card.to_dict(), **result_fields(result))
    return card.save(to)
