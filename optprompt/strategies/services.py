"""What the study lends a strategy besides the task: text generation with a model.

Strategies that rewrite prompts with an LLM (evolution, paraphrasing) ask for a
:class:`TextGenerator`; the model is loaded once, on first use, and the task model is
reused when no other one is named. Generations go through the persistent score cache,
so a resumed run replays the same rewrites without model time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from optprompt.errors import OptpromptError

if TYPE_CHECKING:
    from optprompt.models.loading import LoadedModel

__all__ = ["StrategyServices", "TextGenerator"]


class TextGenerator:
    """Generates text with one model: chat-formatted when the model has a chat template."""

    def __init__(self, backend: Any, loaded: LoadedModel) -> None:
        self.backend = backend
        self.loaded = loaded
        self.ref = loaded.ref
        self._chat = loaded.chat_formatter() if loaded.has_chat_template else None

    def generate(
        self,
        prompts: Sequence[str],
        *,
        max_new_tokens: int = 64,
        stop: Sequence[str] = (),
        temperature: float = 0.0,
        seed: int = 0,
        chat: bool = True,
    ) -> list[str]:
        """Continue each prompt (as a user turn when ``chat`` and the model has a template)."""
        from optprompt.scoring.backends.base import GenerationSettings

        texts = [self._chat([{"role": "user", "content": p}]) if chat and self._chat else p for p in prompts]
        settings = GenerationSettings(
            max_new_tokens=max_new_tokens, stop=tuple(stop), temperature=temperature, seed=seed
        )
        return self.backend.generate(texts, settings)


class StrategyServices:
    """Lazily loads generator models for a strategy.

    Args:
        load: ``ref -> (backend, loaded model)``; the study passes its own loader so
            devices, dtypes and the score cache match the study's settings.
        default_ref: The task model's reference (used when a strategy names none).
    """

    def __init__(self, load: Callable[[str], tuple[Any, LoadedModel]], default_ref: str) -> None:
        self._load = load
        self.default_ref = default_ref
        self._generators: dict[str, TextGenerator] = {}

    def generator(self, ref: str | None = None) -> TextGenerator:
        """A :class:`TextGenerator` for ``ref`` (default: the task model)."""
        ref = ref or self.default_ref
        if ref not in self._generators:
            backend, loaded = self._load(ref)
            if loaded.family == "masked":
                raise OptpromptError(f"model {ref!r} is a masked LM and cannot generate rewrites")
            self._generators[ref] = TextGenerator(backend, loaded)
        return self._generators[ref]
