from __future__ import annotations

from pathlib import Path

import pytest

from optprompt.config import load_spec, spec_from_dict
from optprompt.errors import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "study.yaml"
    p.write_text(text)
    return p


GOOD = """
name: s
model: smollm2-135m-instruct
output: runs/s
task:
  data: data.jsonl
  prompt: "Classify."
strategy:
  name: template_search
  trials: 5
"""


def test_valid_yaml_loads_with_defaults_and_base_dir(tmp_path: Path) -> None:
    spec = load_spec(_write(tmp_path, GOOD))
    assert spec.seed == 0
    assert spec.task.split.dev == 0.25
    assert spec.strategy.name == "template_search"
    assert spec.strategy.options() == {"trials": 5}
    assert spec.base_dir == str(tmp_path.resolve())


def test_unknown_key_is_named_with_its_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        load_spec(_write(tmp_path, GOOD.replace("  prompt:", "  promtp:")))
    assert "task.promtp: unknown key (did you mean 'prompt'?)" in str(e.value)
    assert "study.yaml" in str(e.value)


def test_unknown_keys_get_suggestions_from_their_own_level(tmp_path: Path) -> None:
    from optprompt.config import spec_from_dict

    data = load_spec(_write(tmp_path, GOOD)).model_dump()
    data["task"]["split"] = {"tran": 0.5, "dev": 0.25, "test": 0.25}
    data["scorng"] = {}
    data["workers"] = {"grace": 3}
    data["task"]["xyzzy"] = 1
    with pytest.raises(ConfigError) as e:
        spec_from_dict(data, source="s.yaml")
    msg = str(e.value)
    assert "s.yaml: task.split.tran: unknown key (did you mean 'train'?)" in msg
    assert "s.yaml: scorng: unknown key (did you mean 'scoring' or 'storage'?)" in msg
    assert "s.yaml: workers.grace: unknown key (did you mean 'grace_period'?)" in msg
    assert "s.yaml: task.xyzzy: unknown key\n" in msg + "\n"  # nothing close: no suggestion


def test_missing_key_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"(?m)^.*: model: missing required key"):
        load_spec(_write(tmp_path, GOOD.replace("model: smollm2-135m-instruct\n", "")))


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD + "strategy: [unclosed\n")
    with pytest.raises(ConfigError, match=r"YAML syntax error in .*study.yaml, line 1[0-9]"):
        load_spec(path)


def test_missing_study_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="study file not found"):
        load_spec(tmp_path / "nope.yaml")


def test_template_without_input_placeholder() -> None:
    with pytest.raises(ConfigError, match=r"task.template: .*no \{input\} placeholder"):
        spec_from_dict(
            {
                "name": "s",
                "model": "m",
                "output": "o",
                "strategy": {"name": "x"},
                "task": {"data": "d.jsonl", "template": "Review: \nSentiment:"},
            }
        )


def test_split_fractions_must_sum_to_one() -> None:
    with pytest.raises(ConfigError, match="task.split"):
        spec_from_dict(
            {
                "name": "s",
                "model": "m",
                "output": "o",
                "strategy": {"name": "x"},
                "task": {"data": "d.jsonl", "split": {"train": 0.5, "dev": 0.3, "test": 0.3}},
            }
        )


def test_multiple_choice_needs_options_column() -> None:
    with pytest.raises(ConfigError, match="options"):
        spec_from_dict(
            {
                "name": "s",
                "model": "m",
                "output": "o",
                "strategy": {"name": "x"},
                "task": {"data": "d.jsonl", "type": "multiple_choice"},
            }
        )
