"""A prompt card on its model: predicts exactly what the study measured.

:class:`CardPredictor` renders each input through the card (the same format functions the
study scored with, through the model's chat template when the card says so), ranks the
answers by log-likelihood, applies the card's calibration offsets and returns the label
(classification), the option (multiple choice) or the extracted answer (generation).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from optprompt.errors import OptpromptError
from optprompt.prompts.render import SENTINEL, ScoreRequest, split_request
from optprompt.tasks.types import GENERATION_SETTINGS_KEY

if TYPE_CHECKING:
    from optprompt.kinds.prompt.card import PromptCard
    from optprompt.models.loading import LoadedModel
    from optprompt.plugins.manager import Plugins
    from optprompt.scoring.backends.base import Backend, GenerationSettings

__all__ = ["CardPredictor", "load_card_model"]


def load_card_model(
    card: PromptCard,
    model: str | LoadedModel | None,
    *,
    device: str = "auto",
    dtype: str = "auto",
    plugins: Plugins | None = None,
) -> LoadedModel:
    """The model a card was scored on: ``model`` when it is loaded, else the reference
    given (or the card's own), loaded with ``plugins``' model loaders (discovered when None)."""
    from optprompt.models.loading import LoadedModel, load_model
    from optprompt.models.served import ServedModel
    from optprompt.plugins.manager import load_plugins

    if isinstance(model, (LoadedModel, ServedModel)):
        return model  # type: ignore[return-value]
    ref = model or card.model.get("ref")
    if not ref:
        raise OptpromptError("this prompt card names no model: pass model=...")
    return load_model(ref, plugins or load_plugins(), device=device, dtype=dtype, progress=False)


def plain_card(card: PromptCard, plain: bool) -> PromptCard:
    """``card`` as a plain prompt (its text without the chat template) when ``plain``: for a
    model without a chat template. That is not what the study scored; evaluations say so."""
    return dataclasses.replace(card, chat=False) if plain and card.chat else card


class CardPredictor:
    """A prompt card and a backend on its model: score, predict and generate with it.

    Args:
        card: The card (its format, verbalizer, calibration and task).
        loaded: The model it was scored on.
        backend: Scores and generates; the model's own backend when None.
        plugins: Where that backend is registered (discovered when None).
    """

    def __init__(
        self, card: PromptCard, loaded: LoadedModel, backend: Backend | None = None, plugins: Plugins | None = None
    ) -> None:
        self.card = card
        self.loaded = loaded
        if backend is None:
            from optprompt.plugins.manager import load_plugins
            from optprompt.scoring.backends.factory import make_backend

            backend = make_backend(loaded, plugins or load_plugins())
        self.backend = backend
        if (
            card.retrieval is not None
            and card.similarity != "lexical"  # lexical: words only, no model
            and (card.retrieval.get("embedder") or {}).get("task_model", True)
        ):
            from optprompt.scoring.embedding import ModelEmbedder

            card.use_embedder(
                ModelEmbedder(loaded, pooling=card.pooling)
            )  # demonstrations retrieved with the task model itself

    # --- the prompt text ------------------------------------------------------------
    def _chat_formatter(self):  # type: ignore[no-untyped-def]
        if not self.card.chat:
            return None
        if not self.loaded.has_chat_template:
            raise OptpromptError(
                "this card was scored with a chat template, but the model has none (to score its text as a "
                "plain prompt on this model, load it with plain=True: `optprompt evaluate --plain`)"
            )
        return self.loaded.chat_formatter()

    def request(self, text: str, options: Sequence[str] | None = None) -> ScoreRequest:
        """The scoring request of ``text``: exactly what the study scored."""
        opts = list(options) if options is not None else None
        body = self.card.body(text, SENTINEL, opts)
        words = [] if self.card.resolve_task_type().generates else list(self.card.answers(opts))
        return split_request("input", body, text, words, self._chat_formatter())

    def prompt(self, text: str, options: Sequence[str] | None = None) -> str:
        """The full prompt text for ``text``, as the model reads it."""
        r = self.request(text, options)
        return r.prefix + r.suffix

    # --- using it -------------------------------------------------------------------
    def loglikelihoods(self, texts: Sequence[str], options: Sequence[Sequence[str]] | None = None) -> list[list[float]]:
        """Log-likelihood of each answer (label words / options) after each text."""
        self._check_open()
        if self.card.resolve_task_type().generates:
            raise OptpromptError(f"{self.card.task_type} prompts have no answers to rank; use generate()")
        opts = list(options) if options is not None else [None] * len(texts)
        return self.backend.loglikelihoods([self.request(t, o) for t, o in zip(texts, opts)])

    @property
    def calibrates_options(self) -> bool:
        """Whether the card is calibrated per input (multiple choice, content free), as
        :meth:`Evaluator.option_offsets <optprompt.scoring.evaluate.Evaluator.option_offsets>` did."""
        method = (self.card.calibration or {}).get("method", "none")
        task_type = self.card.resolve_task_type()
        return method == "content_free" and task_type.ranks_answers and not task_type.has_fixed_labels

    def option_offsets(self, texts: Sequence[str], options: Sequence[Sequence[str]] | None) -> list[list[float]]:
        """Per text, the content-free offsets of its options (the study's per-example calibration)."""
        from optprompt.scoring.calibration import CONTENT_FREE_INPUTS, mean_offsets

        if options is None:
            raise OptpromptError("this card calibrates each question's own options: pass options=[...] per text")
        rows: list[list[list[float]]] = [[] for _ in texts]
        for free in CONTENT_FREE_INPUTS:
            for j, ll in enumerate(self.loglikelihoods([free] * len(texts), options)):
                rows[j].append(ll)
        return [mean_offsets(r) for r in rows]

    def predict(self, texts: Sequence[str], options: Sequence[Sequence[str]] | None = None) -> list[Any]:
        """The label (classification), option (multiple choice) or extracted answer
        (generation) for each text, calibrated as the study calibrated it. Extraction: the
        list of entities (``{"type", "text", "start", "end"}`` dicts) of each text, or None
        where the output could not be read (a format failure), as the study recorded it."""
        from optprompt.scoring.calibration import apply_offsets

        task_type = self.card.resolve_task_type()
        if task_type.extracts_entities:
            return [self.card.parse(out, text=t) for t, out in zip(texts, self.generate(texts))]
        if task_type.generates:
            return [self.card.parse(out) or "" for out in self.generate(texts)]
        opts = list(options) if options is not None else [None] * len(texts)
        offsets = (self.card.calibration or {}).get("offsets")
        own = self.option_offsets(texts, options) if self.calibrates_options else None
        out = []
        for i, (ll, o) in enumerate(zip(self.loglikelihoods(texts, options), opts)):
            scores = apply_offsets(ll, offsets) if offsets else ll
            if own is not None:
                scores = apply_offsets(ll, own[i])
            answers = list(self.card.answers(list(o) if o is not None else None).values())
            out.append(answers[max(range(len(scores)), key=scores.__getitem__)])
        return out

    def generate(
        self, texts: Sequence[str], *, max_new_tokens: int | None = None, stop: Sequence[str] | None = None
    ) -> list[str]:
        """Greedy continuations of each text's prompt, with the study's decoding settings."""
        self._check_open()
        return self.backend.generate([self.prompt(t) for t in texts], self._settings(max_new_tokens, stop))

    def _settings(self, max_new_tokens: int | None, stop: Sequence[str] | None) -> GenerationSettings:
        from optprompt.scoring.backends.base import GenerationSettings

        task = self.card.task if isinstance(self.card.task, dict) else {}
        gen: dict[str, Any] = task.get(GENERATION_SETTINGS_KEY) or {}
        return GenerationSettings(
            max_new_tokens=max_new_tokens or int(gen.get("max_new_tokens", 32)),
            stop=tuple(stop if stop is not None else gen.get("stop", ("\n",))),
        )

    def _check_open(self) -> None:
        """Subclasses that can be closed raise here once closed."""
