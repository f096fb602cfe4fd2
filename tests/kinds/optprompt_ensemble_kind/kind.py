"""The ``ensemble`` kind: candidates, scoring, export and loading back."""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from optprompt.errors import OptpromptError
from optprompt.kinds import CandidateKind, KindContext, mark_export
from optprompt.kinds.ensemble import MembersMixin
from optprompt.kinds.prompt import CardPredictor, card_from_description, load_card, load_card_model
from optprompt.prompts import PromptCandidate

MEMBERS_FILE = "ensemble.json"


@dataclass(frozen=True)
class EnsembleCandidate:
    """Discrete prompts whose answer log-likelihoods are summed."""

    kind: ClassVar[str] = "ensemble"

    members: tuple[PromptCandidate, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "members": [m.to_dict() for m in self.members]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EnsembleCandidate:
        return cls(tuple(PromptCandidate.from_dict(m) for m in data["members"]))

    @property
    def hash(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


def _argmax(values: Sequence[float]) -> int:
    return max(range(len(values)), key=values.__getitem__)


class _Scorer:
    def __init__(self, kind: EnsembleKind, ctx: KindContext) -> None:
        self.kind, self.ctx = kind, ctx

    def evaluate(self, candidate: EnsembleCandidate, examples: Sequence[Any], split: str = "dev", offsets: Any = None):  # type: ignore[no-untyped-def]
        return self.kind.evaluate(candidate, examples, split, self.ctx)


class EnsembleKind(MembersMixin, CandidateKind):
    """Several prompts voting with their summed answer log-likelihoods."""

    name = EnsembleCandidate.kind
    candidate_class = EnsembleCandidate
    label = "prompt ensemble"
    column = "ensemble"
    export_label = "member prompt cards"

    def summary(self, data: dict[str, Any]) -> str:
        return f"{len(data['members'])} prompts"

    def evaluate(self, candidate: EnsembleCandidate, examples: Sequence[Any], split: str, ctx: KindContext):  # type: ignore[no-untyped-def]
        from optprompt.scoring.evaluate import Evaluation, ExamplePrediction

        started = time.perf_counter()
        member_logliks = [
            ctx.evaluator.backend.loglikelihoods(ctx.renderer.requests(m, examples)) for m in candidate.members
        ]
        predictions = []
        for i, ex in enumerate(examples):
            summed = [sum(col) for col in zip(*(ll[i] for ll in member_logliks))]
            pred = _argmax(summed)
            predictions.append(
                ExamplePrediction(ex.id, ex.target_index, pred, float(pred == ex.target_index), tuple(summed))
            )
        accuracy = sum(p.score for p in predictions) / max(1, len(predictions))
        return Evaluation(
            candidate.hash,
            split,
            "accuracy",
            {"accuracy": accuracy},
            predictions,
            seconds=time.perf_counter() - started,
        )

    def score(self, trial, candidate: EnsembleCandidate, ctx: KindContext, *, prunable: bool = True):  # type: ignore[no-untyped-def]
        return self.evaluate(candidate, ctx.dev, "dev", ctx)

    @contextlib.contextmanager
    def scorer(self, candidate: EnsembleCandidate, ctx: KindContext) -> Iterator[_Scorer]:
        yield _Scorer(self, ctx)

    def export(self, result: Any, output: Path, to: Path, member: Any = None) -> Path:
        chosen = (member or result.best).to_dict()
        model = result.model.model_dump(mode="json")
        names = []
        for i, desc in enumerate(chosen["members"]):
            card = card_from_description(desc, dict(result.task), model=model, study=result.name)
            card.save(to / f"member-{i}")
            names.append(f"member-{i}")
        (to / MEMBERS_FILE).write_text(json.dumps({"members": names}))
        mark_export(to, self.name)
        return to / MEMBERS_FILE

    def load(self, path: Path, model: Any = None, **options: Any) -> EnsemblePredictor:
        names = json.loads((path / MEMBERS_FILE).read_text())["members"]
        cards = [load_card(path / n) for n in names]
        loaded = load_card_model(cards[0], model, **options)
        return EnsemblePredictor([CardPredictor(c, loaded) for c in cards])


class EnsemblePredictor:
    """The exported ensemble on its model."""

    def __init__(self, members: list[CardPredictor]) -> None:
        if not members:
            raise OptpromptError("an ensemble needs at least one member")
        self.members = members

    def predict(self, texts: Sequence[str], options: Any = None) -> list[str]:
        per_member = [m.loglikelihoods(texts) for m in self.members]
        labels = list(self.members[0].card.verbalizer)
        return [labels[_argmax([sum(col) for col in zip(*(ll[i] for ll in per_member))])] for i in range(len(texts))]
