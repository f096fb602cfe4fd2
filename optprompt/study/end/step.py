"""The base of one step of the end of a study (:mod:`.pipeline` runs them in order)."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from optprompt.study.end.context import EndState, StudyEnd

__all__ = ["EndStep"]

T = TypeVar("T")


class EndStep(abc.ABC, Generic[T]):
    """One step of the end of a study."""

    def title(self, end: StudyEnd, state: EndState) -> str | None:
        """What the progress line shows while the step runs (None: nothing). A step that
        returns None found nothing to do: its line is not shown."""
        return None

    def applies(self, end: StudyEnd, state: EndState) -> bool:
        """Whether the step has anything to do in this study (default: always)."""
        return True

    @abc.abstractmethod
    def run(self, end: StudyEnd, state: EndState) -> T:
        """Do the step's job; return its part."""

    def result_fields(self, part: T) -> dict[str, Any]:
        """The :class:`~optprompt.results.StudyResult` fields ``part`` fills (default: none)."""
        return {}
