"""What a user reads is a message, not a Python warning: the CLI shows optprompt's own
warnings as one ``optprompt: WARNING: ...`` line; a library user still gets a warning of a
category to filter."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import yaml

from optprompt.cli.notices import warnings_as_messages
from optprompt.errors import ExperimentalWarning, OptpromptWarning


def test_the_cli_prints_an_experimental_strategy_notice_as_one_line(study_dict: dict, tmp_path: Path) -> None:
    study_dict["strategy"] = {"name": "evolution", "population": 2, "generations": 1, "operators": "edit"}
    study_file = tmp_path / "study.yaml"
    study_file.write_text(yaml.safe_dump(study_dict))
    env = {**os.environ, "PYTHONWARNINGS": "default"}
    run = subprocess.run(
        [sys.executable, "-m", "optprompt.cli.main", "run", str(study_file), "-q"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stderr.splitlines()
    notice = [line for line in lines if "strategy 'evolution' is experimental" in line]
    expected = "optprompt: WARNING: strategy 'evolution' is experimental: its options and stored attributes may change"
    assert notice == [expected]
    assert "ExperimentalWarning" not in run.stderr
    assert "return cls(config, context)" not in run.stderr
    assert "strategies/base.py" not in run.stderr


def test_library_users_get_a_warning_category_to_filter(study_dict: dict, tiny_model) -> None:  # type: ignore[no-untyped-def]
    from optprompt.config import spec_from_dict
    from optprompt.study import StudyRunner

    study_dict["strategy"] = {"name": "evolution", "population": 2, "generations": 1, "operators": "edit"}
    runner = StudyRunner(spec_from_dict(study_dict), model=tiny_model, progress=False)
    with pytest.warns(ExperimentalWarning, match="strategy 'evolution' is experimental"):
        runner.setup()
    assert issubclass(ExperimentalWarning, OptpromptWarning) and issubclass(OptpromptWarning, UserWarning)


def test_only_optprompt_warnings_become_messages(caplog: pytest.LogCaptureFixture) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        original = warnings.showwarning
        with caplog.at_level(logging.WARNING, logger="optprompt"), warnings_as_messages():
            warnings.warn("a notice for the user", OptpromptWarning, stacklevel=1)
            warnings.warn("a library's own warning", DeprecationWarning, stacklevel=1)
        assert warnings.showwarning is original  # put back on the way out
    assert [r.getMessage() for r in caplog.records] == ["a notice for the user"]
    assert [str(w.message) for w in caught] == ["a library's own warning"]  # shown as Python shows it


def test_auto_is_stable_and_says_nothing_about_it(study_dict: dict, tiny_model) -> None:  # type: ignore[no-untyped-def]
    from optprompt.config import spec_from_dict
    from optprompt.study import StudyRunner

    study_dict["strategy"] = {"name": "auto", "trials": 2, "evolution": False, "soft_prompt": False}
    runner = StudyRunner(spec_from_dict(study_dict), model=tiny_model, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", OptpromptWarning)
        runner.setup()
