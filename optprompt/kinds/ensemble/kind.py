"""The ``prompt_ensemble`` kind: candidates, scoring, export and loading back.

Each member prompt's answer log-likelihoods are normalised over the choices, calibrated
with the offsets that member was scored with on dev (if it was calibrated), turned into
probabilities, and averaged over the members; the most probable answer wins. The study and
the exported predictor share :func:`average_probabilities`, so predictions match exactly.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from optprompt._io import atomic_write_json, atomic_write_text, contained_path, read_json
from optprompt.errors import CandidateRejected, OptpromptError
from optprompt.kinds.base import CandidateKind, KindContext, mark_export
from optprompt.kinds.prompt.card import PROMPT_FILE, card_from_description, load_card
from optprompt.kinds.prompt.kind import PromptKind
from optprompt.prompts.candidate import PromptCandidate
from optprompt.scoring.calibration import apply_offsets, normalise

if TYPE_CHECKING:
    from optprompt.kinds.prompt.predictor import CardPredictor
    from optprompt.models.loading import LoadedModel
    from optprompt.results import ResultEntry, StudyResult
    from optprompt.scoring.evaluate import Evaluation
    from optprompt.tasks.task import Example

__all__ = [
    "ENSEMBLE_FILE",
    "EnsembleCandidate",
    "EnsembleKind",
    "EnsemblePredictor",
    "MembersMixin",
    "average_probabilities",
]

#: The ensemble's manifest in its export directory (member card folders and offsets).
ENSEMBLE_FILE = "ensemble.json"


@dataclass(frozen=True)
class EnsembleCandidate:
    """Discrete prompts voting with their averaged (calibrated) answer probabilities.

    Attributes:
        members: The prompts.
        offsets: Per member, the calibration offsets it was scored with on dev (None:
            uncalibrated); they stay fixed on held-out data and test, as for one prompt.
    """

    kind: ClassVar[str] = "prompt_ensemble"

    members: tuple[PromptCandidate, ...]
    offsets: tuple[tuple[float, ...] | None, ...] = ()

    def __post_init__(self) -> None:
        if len(self.members) < 2:
            raise OptpromptError("a prompt ensemble needs at least two members")
        if not self.offsets:
            object.__setattr__(self, "offsets", (None,) * len(self.members))
        if len(self.offsets) != len(self.members):
            raise OptpromptError(f"{len(self.offsets)} offset lists for {len(self.members)} ensemble members")

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "members": [m.to_dict() for m in self.members],
            "offsets": [list(o) if o is not None else None for o in self.offsets],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EnsembleCandidate:
        members = tuple(PromptCandidate.from_dict(m) for m in data["members"])
        offsets = tuple(tuple(o) if o is not None else None for o in data.get("offsets") or [None] * len(members))
        return cls(members, offsets)

    @property
    def hash(self) -> str:
        """The members' hashes, in order. The offsets are left out: they are measured from the
        members on dev, and their last digits vary with the CPU threads torch was given
        (a resumed study must name the ensemble as the uninterrupted one did)."""
        identity = {"kind": self.kind, "members": [m.hash for m in self.members]}
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def average_probabilities(
    member_logliks: Sequence[Sequence[Sequence[float]]],
    offsets: Sequence[Sequence[float] | None],
    per_example: Sequence[Sequence[Sequence[float]] | None] = (),
) -> list[list[float]]:
    """Per example, the members' answer probabilities averaged.

    Args:
        member_logliks: ``[member][example][choice]`` raw log-likelihoods.
        offsets: Per member, calibration offsets (None: uncalibrated).
        per_example: Per member, ``[example][choice]`` offsets of a member calibrated per
            example (options of their own, content free), else None; they replace ``offsets``.
    """
    out: list[list[float]] = []
    for i in range(len(member_logliks[0])):
        total: list[float] | None = None
        for m, rows in enumerate(member_logliks):
            own = per_example[m] if per_example else None
            off = own[i] if own is not None else offsets[m]
            scores = apply_offsets(rows[i], off) if off is not None else normalise(rows[i])
            probs = [math.exp(x) for x in normalise(scores)]
            total = probs if total is None else [a + b for a, b in zip(total, probs)]
        out.append([p / len(member_logliks) for p in total or []])
    return out


def _argmax(values: Sequence[float]) -> int:
    return max(range(len(values)), key=values.__getitem__)


class _Scorer:
    """Scores an ensemble the way :class:`~optprompt.scoring.evaluate.Evaluator` scores a prompt."""

    def __init__(self, ctx: KindContext) -> None:
        self.ctx = ctx

    def evaluate(
        self,
        candidate: EnsembleCandidate,
        examples: Sequence[Example],
        split: str = "dev",
        offsets: Any = None,
    ) -> Evaluation:
        from optprompt.scoring.evaluate import Evaluation, ExamplePrediction

        ctx = self.ctx
        if not ctx.task.ranks_answers:
            raise CandidateRejected("prompt ensembles rank answers: classification and multiple choice only")
        started = time.perf_counter()
        backend = ctx.evaluator.backend
        member_logliks = [backend.loglikelihoods(ctx.renderer.requests(m, examples)) for m in candidate.members]
        evaluator = ctx.evaluator
        per_example = [
            evaluator.option_offsets(m, examples) if evaluator.calibrates_options(m) else None
            for m in candidate.members
        ]
        probs = average_probabilities(member_logliks, candidate.offsets, per_example)
        preds = []
        for ex, p in zip(examples, probs):
            best = _argmax(p)
            logs = tuple(math.log(max(x, 1e-300)) for x in p)
            preds.append(ExamplePrediction(ex.id, ex.target_index, best, float(best == ex.target_index), logs))
        values = ctx.evaluator.measure(examples, [p.pred for p in preds])
        return Evaluation(candidate.hash, split, ctx.task.metric, values, preds, seconds=time.perf_counter() - started)


class MembersMixin:
    """For kinds whose candidates are several prompts (``candidate.members``): prompt
    tokens, checks and the description, member by member."""

    def prompt_tokens(self, candidate: Any, ctx: KindContext, example: Example | None = None) -> int:
        prompts = PromptKind()
        return sum(prompts.prompt_tokens(m, ctx, example) for m in candidate.members)

    def fresh(self, candidate: Any, ctx: KindContext, train: Sequence[Example]) -> list[Example]:
        """Train rows no member shows as a demonstration."""
        shown = {i for m in candidate.members for i in m.demo_ids}
        return [ex for ex in train if ex.id not in shown]

    def check(self, candidate: Any, ctx: KindContext, examples: Sequence[Example]) -> None:
        for m in candidate.members:
            PromptKind().check(m, ctx, examples)

    def describe(self, candidate: Any, ctx: KindContext) -> dict[str, Any]:
        members = [PromptKind().describe(m, ctx) for m in candidate.members]
        return {
            "candidate": candidate.to_dict(),
            "hash": candidate.hash,
            "chat": ctx.chat,
            "prompt": "\n--- and ---\n".join(m["prompt"] for m in members),
            "members": members,
        }


class EnsembleKind(MembersMixin, CandidateKind):
    """Several prompts averaging their calibrated answer probabilities."""

    name = EnsembleCandidate.kind
    candidate_class = EnsembleCandidate
    label = "prompt ensemble"
    column = "ensemble"
    export_label = "prompt ensemble (member prompt cards)"
    exports_front_members = False

    def summary(self, data: dict[str, Any]) -> str:
        return f"{len(data['members'])} prompts, averaged answer probabilities"

    def constrained_answers(
        self, candidate: EnsembleCandidate, ctx: KindContext, examples: Sequence[Example]
    ) -> list[Any] | None:
        """What serving the ensemble by guided decoding gives: each member prompt answers by
        greedy generation constrained to the answers (uncalibrated), and the answer most
        members gave wins (a tie goes to the best member on dev, the first); None when a
        member cannot be measured so."""
        prompts = PromptKind()
        votes = [prompts.constrained_answers(m, ctx, examples) for m in candidate.members]
        if any(v is None for v in votes):
            return None
        out = []
        for answers in zip(*votes):
            counts = {a: answers.count(a) for a in answers}
            out.append(max(answers, key=lambda a: (counts[a], -answers.index(a))))
        return out

    def combine(self, finalists: Sequence[tuple[Any, Any]], ctx: KindContext, limit: int) -> EnsembleCandidate | None:
        """The best ``limit`` discrete finalists (two at least) as one ensemble."""
        if not ctx.task.ranks_answers:
            return None
        # Discrete prompts only (trained candidates subclass PromptCandidate but are not text alone).
        chosen = [(c, o) for c, o in finalists if getattr(c, "kind", None) == PromptCandidate.kind][:limit]
        if len(chosen) < 2:
            return None
        return EnsembleCandidate(
            tuple(c for c, _ in chosen), tuple(tuple(o) if o is not None else None for _, o in chosen)
        )

    def score(self, trial: Any, candidate: EnsembleCandidate, ctx: KindContext, *, prunable: bool = True) -> Evaluation:
        ev = _Scorer(ctx).evaluate(candidate, ctx.dev, "dev")
        ev.extra["dev_scored"] = len(ctx.dev) * len(candidate.members)
        return ev

    @contextlib.contextmanager
    def scorer(self, candidate: EnsembleCandidate, ctx: KindContext) -> Iterator[_Scorer]:
        yield _Scorer(ctx)

    def export(self, result: StudyResult, output: Path, to: Path, member: ResultEntry | None = None) -> Path:
        chosen = (member or result.best).to_dict()
        cand = EnsembleCandidate.from_dict(chosen["candidate"])
        model = result.model.model_dump(mode="json", exclude_unset=True)
        names = []
        for i, (desc, m, off) in enumerate(zip(chosen["members"], cand.members, cand.offsets)):
            card = card_from_description(
                desc,
                result.task.model_dump(mode="json", exclude_unset=True),
                calibration={"method": m.calibration, "offsets": list(off) if off is not None else None},
                model=model,
                study=result.name,
                seed=result.seed,
            )
            card.save(to / f"member-{i}")
            names.append(f"member-{i}")
        # One file to read the whole ensemble by, as a single prompt's export has one.
        parts = [f"=== {name} ===\n{(to / name / PROMPT_FILE).read_text()}" for name in names]
        header = f"A prompt ensemble: the answer probabilities of these {len(names)} prompts are averaged.\n\n"
        atomic_write_text(to / PROMPT_FILE, header + "\n".join(parts))
        scores = {"dev": chosen["dev"], "test": chosen.get("test")}
        path = atomic_write_json(to / ENSEMBLE_FILE, {"members": names, "scores": scores})
        mark_export(to, self.name)
        return path

    def load(self, path: Path, model: str | LoadedModel | None = None, **options: Any) -> EnsemblePredictor:
        from optprompt.kinds.prompt.predictor import CardPredictor, load_card_model, plain_card

        manifest = read_json(Path(path) / ENSEMBLE_FILE, what="prompt ensemble manifest")
        where = f"{Path(path) / ENSEMBLE_FILE}: members"
        folders = [contained_path(path, name, what=where) for name in manifest.get("members", [])]
        cards = [load_card(folder) for folder in folders]
        if len(cards) < 2:
            raise OptpromptError(f"{Path(path) / ENSEMBLE_FILE}: a prompt ensemble needs at least two member cards")
        plugins = options.pop("plugins", None)
        plain = options.pop("plain", False)
        cards = [plain_card(c, plain) for c in cards]
        loaded = load_card_model(cards[0], model, plugins=plugins, **options)
        first = CardPredictor(cards[0], loaded, plugins=plugins)
        return EnsemblePredictor([first] + [CardPredictor(c, loaded, first.backend) for c in cards[1:]])

    def detect(self, path: Path) -> bool:
        return (Path(path) / ENSEMBLE_FILE).is_file()


class EnsemblePredictor:
    """An exported prompt ensemble on its model: predicts as the study scored it."""

    def __init__(self, members: list[CardPredictor]) -> None:
        self.members = members

    def probabilities(self, texts: Sequence[str], options: Sequence[Sequence[str]] | None = None) -> list[list[float]]:
        """Per text, the averaged probability of each answer."""
        logliks = [m.loglikelihoods(texts, options) for m in self.members]
        offsets = [(m.card.calibration or {}).get("offsets") for m in self.members]
        per_example = [m.option_offsets(texts, options) if m.calibrates_options else None for m in self.members]
        return average_probabilities(logliks, offsets, per_example)

    def predict(self, texts: Sequence[str], options: Sequence[Sequence[str]] | None = None) -> list[str]:
        """The label (classification) or option (multiple choice) for each text."""
        opts = list(options) if options is not None else [None] * len(texts)
        card = self.members[0].card
        out = []
        for p, o in zip(self.probabilities(texts, options), opts):
            answers = list(card.answers(list(o) if o is not None else None).values())
            out.append(answers[_argmax(p)])
        return out
