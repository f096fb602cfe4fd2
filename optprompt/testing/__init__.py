"""Tools for testing strategy plugins: the conformance suite and tiny fixtures.

A plugin author runs the checks optprompt runs on its own strategies::

    from optprompt.testing import StrategyConformanceTests

    class TestMyStrategy(StrategyConformanceTests):
        strategy_name = "my_strategy"
        strategy_options = {"trials": 6}

or calls the ``check_*`` functions directly. See docs/writing-a-strategy-plugin.md.
"""

from optprompt.testing.fixtures import (
    TinyStudyEnv,
    make_tiny_model_dir,
    make_tiny_study_env,
    write_labelled_jsonl,
)
from optprompt.testing.strategy_conformance import (
    ConformanceError,
    StrategyConformanceTests,
    check_proposes_valid_candidates,
    check_registration,
    check_reproducible_with_seed,
    check_respects_budget,
    check_survives_resume,
)

__all__ = [
    "ConformanceError",
    "StrategyConformanceTests",
    "TinyStudyEnv",
    "check_proposes_valid_candidates",
    "check_registration",
    "check_reproducible_with_seed",
    "check_respects_budget",
    "check_survives_resume",
    "make_tiny_model_dir",
    "make_tiny_study_env",
    "write_labelled_jsonl",
]
