"""An example optprompt strategy plugin: ``keyword_instructions``.

optprompt finds this module through the ``optprompt`` entry-point group in
pyproject.toml and calls its hook implementations.
"""

from optprompt.plugins import hookimpl
from optprompt_example_strategy.keywords import label_keywords
from optprompt_example_strategy.strategy import KeywordInstructions, KeywordInstructionsConfig

__all__ = ["KeywordInstructions", "KeywordInstructionsConfig", "label_keywords"]


@hookimpl
def register_strategies(register):  # type: ignore[no-untyped-def]
    register(KeywordInstructions)
