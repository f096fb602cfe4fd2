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

NEW_STRATEGY = '''
import warnings

from optprompt.errors import ExperimentalWarning
from optprompt.plugins import hookimpl
from optprompt.strategies import BaseStrategy


class Fresh(BaseStrategy):
    """A third-party strategy that says it is new."""

    name = "fresh"

    def __init__(self, config, context):
        super().__init__(config, context)
        warnings.warn("strategy 'fresh' is experimental: its options may change", ExperimentalWarning, stacklevel=2)

    def propose(self, trial):
        return self.context.baseline


@hookimpl
def register_strategies(register):
    register(Fresh)
'''


def _site(tmp_path: Path) -> Path:
    """A directory holding a fake installed distribution whose strategy warns when built."""
    site = tmp_path / "site"
    info = site / "fresh_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fresh-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[optprompt]\nfresh = fresh_plugin\n")
    (site / "fresh_plugin.py").write_text(NEW_STRATEGY)
    return site


def test_the_cli_prints_an_experimental_strategy_notice_as_one_line(study_dict: dict, tmp_path: Path) -> None:
    study_dict["strategy"] = {"name": "fresh", "trials": 2}
    study_file = tmp_path / "study.yaml"
    study_file.write_text(yaml.safe_dump(study_dict))
    site = _site(tmp_path)
    env = {**os.environ, "PYTHONWARNINGS": "default", "PYTHONPATH": os.pathsep.join([str(site), *sys.path])}
    run = subprocess.run(
        [sys.executable, "-m", "optprompt.cli.main", "run", str(study_file), "-q"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stderr.splitlines()
    notice = [line for line in lines if "strategy 'fresh' is experimental" in line]
    assert notice == ["optprompt: WARNING: strategy 'fresh' is experimental: its options may change"]
    assert "ExperimentalWarning" not in run.stderr
    assert "warnings.warn(" not in run.stderr
    assert "fresh_plugin.py" not in run.stderr


def test_library_users_get_a_warning_category_to_filter(study_dict: dict, tiny_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import importlib

    from optprompt.config import spec_from_dict
    from optprompt.plugins.manager import load_plugins
    from optprompt.study import StudyRunner

    site = str(_site(tmp_path))
    sys.path.insert(0, site)
    importlib.invalidate_caches()
    try:
        plugins = load_plugins()  # the installed distribution's entry point, as for any user
        assert "fresh" in plugins.strategies
        study_dict["strategy"] = {"name": "fresh", "trials": 2}
        runner = StudyRunner(spec_from_dict(study_dict), model=tiny_model, progress=False, plugins=plugins)
        with pytest.warns(ExperimentalWarning, match="strategy 'fresh' is experimental"):
            runner.setup()
    finally:
        sys.path.remove(site)
        sys.modules.pop("fresh_plugin", None)
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
    """`auto` with its default families, evolution among them: no experimental notice."""
    from optprompt.config import spec_from_dict
    from optprompt.study import StudyRunner

    study_dict["strategy"] = {"name": "auto", "trials": 2}
    runner = StudyRunner(spec_from_dict(study_dict), model=tiny_model, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", OptpromptWarning)
        runner.setup()
