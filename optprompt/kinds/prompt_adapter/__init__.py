"""The ``prompt_adapter`` candidate kind: a discrete winner's prompt with an adapter trained under it.

A search finds the prompt (instruction, template, demonstrations, answer words); a soft
prompt or LoRA adapter is then trained with exactly that text around every train input,
and the pair is scored, exported and loaded back as one prompt card + adapter
(``optprompt.load(path).predict(texts)`` predicts what the study measured). The
``soft_prompt`` strategy proposes these candidates when its ``template`` is not the
baseline (``best``: the best discrete prompt of the study so far; a finished study; a
prompt written in the study file), or through :meth:`SoftPrompt.use_template
<optprompt_plugins.soft_prompt.SoftPrompt.use_template>`.
"""

from optprompt.kinds.prompt_adapter.candidate import PromptAdapterCandidate, parent_of, prompt_adapter_summary
from optprompt.kinds.prompt_adapter.kind import PromptAdapterKind
from optprompt.plugins.hookspecs import hookimpl

__all__ = ["PromptAdapterCandidate", "PromptAdapterKind", "parent_of", "prompt_adapter_summary"]


@hookimpl
def register_candidate_kinds(register):  # type: ignore[no-untyped-def]
    register(PromptAdapterKind)
