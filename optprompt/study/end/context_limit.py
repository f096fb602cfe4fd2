"""What fitting prompts to the model's context cut (``task.truncate``)."""

from __future__ import annotations

from typing import Any

from optprompt.prompts.context import ContextLimitedRenderer
from optprompt.results import ContextInfo
from optprompt.study.end.context import EndState, StudyEnd
from optprompt.study.end.step import EndStep

__all__ = ["ContextLimit"]


class ContextLimit(EndStep[ContextInfo]):
    """The context limit, the policy and the examples cut, when the study fits prompts to it."""

    def applies(self, end: StudyEnd, state: EndState) -> bool:
        return isinstance(end.kind_context.renderer, ContextLimitedRenderer)

    def run(self, end: StudyEnd, state: EndState) -> ContextInfo:
        return ContextInfo(**end.kind_context.renderer.summary())  # type: ignore[attr-defined]

    def result_fields(self, part: ContextInfo) -> dict[str, Any]:
        return {"context": part}
