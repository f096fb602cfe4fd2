"""The registered candidate kinds, as the rest of optprompt uses them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from optprompt.errors import OptpromptError
from optprompt.kinds.base import DEFAULT_KIND, CandidateKind

if TYPE_CHECKING:
    from optprompt.plugins.manager import Plugins, Registry

__all__ = ["CandidateKinds", "candidate_kinds"]


class CandidateKinds:
    """Name -> one :class:`CandidateKind` instance; finds the kind of a candidate or of its dict."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._instances: dict[str, CandidateKind] = {}

    def get(self, name: str) -> CandidateKind:
        """The kind registered as ``name`` (an error naming the known kinds otherwise)."""
        if name not in self._instances:
            self._instances[name] = self.registry.get(name).obj()
        return self._instances[name]

    def of(self, candidate: Any) -> CandidateKind:
        """The kind of a candidate object (its class's ``kind``)."""
        name = getattr(type(candidate), "kind", None)
        if not isinstance(name, str):
            raise OptpromptError(f"{type(candidate).__qualname__} is not a candidate: it has no `kind` name")
        return self.get(name)

    def of_dict(self, data: dict[str, Any]) -> CandidateKind:
        """The kind of a candidate as a dict (no ``kind`` key: a discrete prompt)."""
        return self.get(data.get("kind", DEFAULT_KIND))

    def from_dict(self, data: dict[str, Any]) -> Any:
        """The candidate ``data`` describes, read by its kind."""
        return self.of_dict(data).from_dict(data)

    def summary(self, data: dict[str, Any]) -> str:
        """A candidate dict's kind-specific description ("" when its kind adds nothing)."""
        return self.of_dict(data).summary(data)

    def names(self) -> list[str]:
        return self.registry.names()


def candidate_kinds(plugins: Plugins) -> CandidateKinds:
    """The candidate kinds of ``plugins`` (one instance of each kind per loaded plugins)."""
    return plugins.view("candidate_kinds", lambda: CandidateKinds(plugins.kinds))
