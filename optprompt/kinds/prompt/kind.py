"""The discrete-prompt kind: instruction, demonstrations, format and verbalizer."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optprompt.kinds.base import CandidateKind, KindContext, mark_export
from optprompt.kinds.prompt.card import CARD_FILE, card_from_result, load_card
from optprompt.prompts.candidate import PromptCandidate

if TYPE_CHECKING:
    from optprompt.kinds.prompt.predictor import CardPredictor
    from optprompt.models.loading import LoadedModel
    from optprompt.prompts.render import PromptRenderer
    from optprompt.results import ResultEntry, StudyResult
    from optprompt.tasks.task import Example

__all__ = ["PromptKind", "describe"]


def _demo(renderer: PromptRenderer, candidate: PromptCandidate, ex: Example) -> dict[str, Any]:
    word = renderer.answer_words(candidate, ex)[max(ex.target_index, 0)]
    return {"id": ex.id, "input": ex.input, "answer": word, "options": list(ex.options)}


def describe_retrieval(renderer: PromptRenderer, candidate: PromptCandidate) -> dict[str, Any]:
    """What a card needs to retrieve a candidate's demonstrations per input: the settings,
    the embedding model, the pool (with answers and balance labels) and its vectors (none
    when the pool is compared by its words only: ``similarity: lexical``)."""
    from optprompt.prompts.retrieval import encode_vectors

    settings = candidate.retrieval
    if settings is None:
        raise ValueError("this candidate shows fixed demonstrations; it retrieves none")
    pool = renderer.retrievers_for().pool(settings, renderer.task)
    out: dict[str, Any] = {
        **settings.settings(),
        "embedder": None,  # lexical: rebuilt from the pool's inputs, no model
        "pooling": settings.pooling,
        "pool": [
            {**_demo(renderer, candidate, ex), "label": renderer.task.task_type.balance_key(ex)}
            for ex in renderer.pool(candidate)
        ],
        "vectors": None,
    }
    if settings.similarity != "embedding":
        out["similarity"] = settings.similarity
    if pool.uses_model:
        embedder = pool.embedder
        out["embedder"] = {
            # what rebuilds it: a model reference, or a served endpoint's settings (never its key)
            "ref": getattr(embedder, "reference", embedder.ref),
            "fingerprint": embedder.fingerprint,
            "task_model": settings.embedder is None,
        }
        out["vectors"] = encode_vectors(pool.vectors)
    return out


def describe(renderer: PromptRenderer, chat: bool, candidate: PromptCandidate) -> dict[str, Any]:
    """A prompt candidate as result.json shows it: rendered prompt and resolved demonstrations
    (a candidate retrieving them per input: ``retrieval``, see :func:`describe_retrieval`)."""
    demos = (
        [] if candidate.retrieval is not None else [_demo(renderer, candidate, ex) for ex in renderer.demos(candidate)]
    )
    return {
        "candidate": candidate.to_dict(),
        "hash": candidate.hash,
        "chat": chat,
        "prompt": renderer.render_text(candidate),
        "demos": demos,
        **({"retrieval": describe_retrieval(renderer, candidate)} if candidate.retrieval is not None else {}),
    }


def _demos_column(data: dict[str, Any]) -> Any:
    """Fixed demonstrations: their number; retrieved per input: ``kNN k``."""
    r = data.get("retrieval")
    return f"kNN {r['k']}" if r else len(data.get("demo_ids", []))


class PromptKind(CandidateKind):
    """Discrete prompts, scored by the study's scorer and exported as prompt cards."""

    name = PromptCandidate.kind
    candidate_class = PromptCandidate
    label = "prompt"
    export_label = "prompt card"
    text_only = True

    def columns(self, data: dict[str, Any]) -> dict[str, Any]:
        """Demonstrations, template, answer words, calibration (extraction: output format) and instruction."""
        columns = {
            "demos": _demos_column(data),
            "template": (data.get("template") or "").replace("\n", "⏎"),
            "answers": "/".join(w for _, w in data.get("verbalizer", [])) or data.get("choice_format", ""),
            "calibration": data.get("calibration", "none"),
            "instruction": data.get("instruction") or "",  # show and the report fit it to their width
        }
        if data.get("output_format"):  # extraction: the answer format instead of a calibration
            columns.pop("calibration")
            columns = {**columns, "format": data["output_format"]}
        return columns

    def details(self, data: dict[str, Any]) -> list[tuple[str, str]]:
        """The answer words (classification), the output format and type words (extraction)
        or how options are scored (multiple choice), and how demonstrations are retrieved
        per input."""
        out = []
        if data.get("output_format"):
            words = ", ".join(f"{lbl} -> {w!r}" for lbl, w in data.get("verbalizer", []))
            out.append(("output format", f"{data['output_format']}; entity types: {words}"))
        elif data.get("verbalizer"):
            out.append(("answers", ", ".join(f"{lbl} -> {w!r}" for lbl, w in data["verbalizer"])))
        elif data.get("choice_format"):
            out.append(("options scored as", str(data["choice_format"])))
        r = data.get("retrieval")
        if r:
            out.append(
                (
                    "demonstrations",
                    f"{r['k']} retrieved per input from {len(r['pool'])} examples (mmr {r['mmr']}, "
                    f"balance {'on' if r['balance'] else 'off'}, order {r['order']}, "
                    + (
                        "compared by their words: TF-IDF over the pool)"
                        if r.get("similarity") == "lexical"
                        else f"embedder {r.get('embedder') or 'the task model'}, pooling {r.get('pooling', 'mean')}"
                        + (", averaged with TF-IDF over the pool)" if r.get("similarity") == "hybrid" else ")")
                    ),
                )
            )
        return out

    def fresh(self, candidate: PromptCandidate, ctx: KindContext, train: Sequence[Example]) -> list[Example]:
        """Train rows other than its demonstrations (a candidate retrieving demonstrations per
        input never retrieves the input itself, so every train row is fresh for it)."""
        shown = set(candidate.demo_ids)
        return [ex for ex in train if ex.id not in shown]

    def check(self, candidate: PromptCandidate, ctx: KindContext, examples: Sequence[Example]) -> None:
        super().check(candidate, ctx, examples)
        ctx.renderer.render_text(candidate)

    def describe(self, candidate: PromptCandidate, ctx: KindContext) -> dict[str, Any]:
        return describe(ctx.renderer, ctx.chat, candidate)

    def constrained_answers(
        self, candidate: PromptCandidate, ctx: KindContext, examples: Sequence[Example]
    ) -> list[Any] | None:
        """Greedy generation constrained to the answers, through the card the winner exports
        (no calibration); None for tasks that generate free text or entities, or models
        that are not causal."""
        from optprompt.kinds.prompt.card import card_from_description
        from optprompt.kinds.prompt.constrained import constrained_predict, supports_constrained
        from optprompt.kinds.prompt.predictor import CardPredictor

        if not ctx.task.closed_answers:
            return None
        card = card_from_description(
            describe(ctx.renderer, ctx.chat, candidate), ctx.task.summary(), task_type=ctx.task.task_type
        )
        predictor = CardPredictor(card, ctx.model)
        if not supports_constrained(predictor):
            return None
        options = [list(ex.options) for ex in examples] if any(ex.options for ex in examples) else None
        return constrained_predict(predictor, [ex.input for ex in examples], options)

    def export(self, result: StudyResult, output: Path, to: Path, member: ResultEntry | None = None) -> Path:
        path = card_from_result(result, member).save(to)
        mark_export(to, self.name)
        return path

    def load(self, path: Path, model: str | LoadedModel | None = None, **options: Any) -> CardPredictor:
        from optprompt.kinds.prompt.predictor import CardPredictor, load_card_model, plain_card

        plugins = options.pop("plugins", None)
        card = plain_card(load_card(path), options.pop("plain", False))
        loaded = load_card_model(card, model, plugins=plugins, **options)
        return CardPredictor(card, loaded, plugins=plugins)

    def detect(self, path: Path) -> bool:
        return (path / CARD_FILE).is_file() or (path.is_file() and path.suffix == ".json")
