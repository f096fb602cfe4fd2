"""One registered prompt version: where its card lives and where it came from."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optprompt.kinds.prompt.card import CARD_FILE, PromptCard, load_card

__all__ = ["RegistryVersion", "card_hash", "provenance_of"]


def card_hash(card: PromptCard) -> str:
    """SHA-256 of the card's canonical JSON: equal cards, equal hashes."""
    text = json.dumps(card.to_dict(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _value(split: Any) -> float | None:
    return split.get("value") if isinstance(split, dict) else None


def provenance_of(card: PromptCard) -> dict[str, Any]:
    """What a version records about its origin, taken from the card itself."""
    scores, base = card.scores or {}, card.baseline_scores or {}
    metric = next(
        (s["metric"] for s in (scores.get("dev"), scores.get("test")) if isinstance(s, dict) and s.get("metric")),
        None,
    )
    return {
        "study": card.study,
        "model": {"ref": card.model.get("ref"), "fingerprint": card.model.get("fingerprint")},
        "data": {"task": card.task.get("name"), "fingerprint": card.task.get("fingerprint")},
        "scores": {
            "metric": metric,
            "dev": _value(scores.get("dev")),
            "test": _value(scores.get("test")),
            "baseline_dev": _value(base.get("dev")),
            "baseline_test": _value(base.get("test")),
        },
        "optprompt_version": card.optprompt_version,
    }


@dataclass(frozen=True)
class RegistryVersion:
    """A version of a registered prompt and its provenance.

    Attributes:
        name: The prompt name.
        version: The version number (1, 2, 3... per name).
        hash: SHA-256 of the card's content (see :func:`card_hash`).
        created: When it was registered (UTC, ISO 8601).
        source: The study output directory or card file it was added from (None when
            a :class:`PromptCard` object was added).
        study: The study that produced it.
        model: ``{"ref", "fingerprint"}`` of the model it was scored with.
        data: ``{"task", "fingerprint"}``: the task name and data fingerprint.
        scores: ``{"metric", "dev", "test", "baseline_dev", "baseline_test"}`` values.
        optprompt_version: The optprompt version that exported the card.
        stages: The stages (``production``...) that point at this version now.
        path: The version's directory (``prompt_card.json`` and ``prompt.txt``).
        added: True on the object :meth:`PromptRegistry.add` returns when that call
            registered it; False when identical content was already registered.
    """

    name: str
    version: int
    hash: str
    created: str
    source: str | None
    study: str
    model: dict[str, Any]
    data: dict[str, Any]
    scores: dict[str, Any]
    optprompt_version: str
    stages: tuple[str, ...]
    path: Path
    added: bool = field(default=False, compare=False)

    @property
    def ref(self) -> str:
        """``NAME@VERSION``."""
        return f"{self.name}@{self.version}"

    def load_card(self) -> PromptCard:
        """The version's prompt card, ready to format inputs."""
        return load_card(self.path / CARD_FILE)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-serialisable), as ``registry show`` prints it."""
        return {
            "name": self.name,
            "version": self.version,
            "ref": self.ref,
            "hash": self.hash,
            "created": self.created,
            "source": self.source,
            "study": self.study,
            "model": dict(self.model),
            "data": dict(self.data),
            "scores": dict(self.scores),
            "optprompt_version": self.optprompt_version,
            "stages": list(self.stages),
            "path": str(self.path),
        }

    @classmethod
    def from_entry(
        cls, name: str, entry: dict[str, Any], stages: tuple[str, ...], versions_dir: Path
    ) -> RegistryVersion:
        """Build from one ``versions`` entry of a name's ``index.json``."""
        n = int(entry["version"])
        return cls(
            name=name,
            version=n,
            hash=entry["hash"],
            created=entry["created"],
            source=entry.get("source"),
            study=entry.get("study", ""),
            model=dict(entry.get("model") or {}),
            data=dict(entry.get("data") or {}),
            scores=dict(entry.get("scores") or {}),
            optprompt_version=entry.get("optprompt_version", ""),
            stages=stages,
            path=versions_dir / str(n),
        )
