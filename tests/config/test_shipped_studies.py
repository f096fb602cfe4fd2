"""Every study file shipped in studies/ is valid as written: its keys, its strategy's options
(validated by the strategy's own config class, as `optprompt run` does before training) and
its data file."""

from __future__ import annotations

from pathlib import Path

import pytest

from optprompt.config.loading import load_spec
from optprompt.plugins import load_plugins

STUDIES = Path(__file__).resolve().parents[2] / "studies"


def _options(spec) -> dict:  # type: ignore[no-untyped-def]
    return spec.strategy.model_dump(exclude={"name"}, exclude_unset=True)


@pytest.mark.parametrize("path", sorted(STUDIES.glob("*.yaml")), ids=lambda p: p.name)
def test_a_shipped_study_file_validates(path: Path) -> None:
    spec = load_spec(path)
    plugins = load_plugins()
    cls = plugins.strategies.get(spec.strategy.name).obj
    classes = [plugins.strategies.get(n).obj for n in plugins.strategies.names()]
    cls.config_class_for(classes).model_validate(_options(spec))
    data = spec.task.data
    if isinstance(data, str):
        assert (path.parent / data).exists(), f"{path.name}: task.data {data} is not in studies/"


@pytest.mark.parametrize("name", ["ner.yaml", "slots.yaml"])
def test_the_extraction_recipes_answer_inline(name: str) -> None:
    """NER and slot filling ship one recipe: the text repeated with its entities tagged."""
    options = _options(load_spec(STUDIES / name))
    assert options["template"]["output_format"] == "inline"
    assert load_spec(STUDIES / name).task.max_new_tokens >= 96
