"""Without the optional extra, tracking.mlflow is refused before a study starts, naming the
extra (these run whether or not MLflow is installed)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

from optprompt.cli.main import main


def _hide_mlflow(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None if name == "mlflow" or name.startswith("mlflow.") else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def test_a_tracked_study_without_mlflow_is_refused_before_it_runs(
    study_dict: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _hide_mlflow(monkeypatch)
    study_file = tmp_path / "study.yaml"
    study_file.write_text(yaml.safe_dump({**study_dict, "tracking": {"mlflow": "http://127.0.0.1:1"}}))
    assert main(["run", str(study_file), "-q"]) == 2
    assert "tracking.mlflow needs MLflow: pip install 'optprompt[mlflow]'" in capsys.readouterr().err
    assert not (Path(study_dict["output"]) / "result.json").exists()


def test_an_unknown_tracking_key_is_an_error(study_dict: dict, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    study_file = tmp_path / "study.yaml"
    study_file.write_text(yaml.safe_dump({**study_dict, "tracking": {"mlfow": "x"}}))
    assert main(["run", str(study_file), "-q"]) == 2
    assert "tracking.mlfow" in capsys.readouterr().err
