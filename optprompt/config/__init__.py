"""Study configuration: typed specs and the YAML loader."""

from optprompt.config.loading import load_spec, spec_from_dict
from optprompt.config.served import ServedModelSpec, served_model_field
from optprompt.config.spec import DistillSpec, PruningSpec, ScoringSpec, SplitSpec, StrategySpec, StudySpec, TaskSpec

__all__ = [
    "load_spec",
    "DistillSpec",
    "spec_from_dict",
    "PruningSpec",
    "ScoringSpec",
    "ServedModelSpec",
    "served_model_field",
    "SplitSpec",
    "StrategySpec",
    "StudySpec",
    "TaskSpec",
]
