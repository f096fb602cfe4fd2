"""`optprompt plugins`: broken and empty entry points are listed with the reason (naming
the entry point and its distribution) while everything else still loads; `optprompt
plugins NAME` shows a strategy's options with defaults and descriptions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from optprompt.cli.main import main
from optprompt.errors import PluginError
from optprompt.plugins import hookimpl
from optprompt.plugins.manager import get_plugin_manager

UNMARKED = '''
from optprompt.strategies import BaseStrategy

class Forgotten(BaseStrategy):
    """Never registered."""
    name = "forgotten"
    def propose(self, trial):
        return self.context.baseline

def register_strategies(register):  # no @hookimpl
    register(Forgotten)
'''

TYPO = """
from optprompt.plugins import hookimpl

@hookimpl
def register_strategy(register):  # not a hook name
    pass
"""


def _site(tmp_path: Path) -> Path:
    """A directory holding a fake installed distribution with three broken entry points."""
    site = tmp_path / "site"
    info = site / "broken_plugins-0.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugins\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text(
        "[optprompt]\nmissing = no_such_module_for_optprompt\nunmarked = unmarked_plugin\ntypo = typo_plugin\n"
    )
    (site / "unmarked_plugin.py").write_text(UNMARKED)
    (site / "typo_plugin.py").write_text(TYPO)
    return site


def test_broken_entry_points_are_listed_and_the_rest_loads(tmp_path: Path) -> None:
    site = _site(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *sys.path])}
    proc = subprocess.run(
        [sys.executable, "-m", "optprompt.cli.main", "plugins"], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "template_search" in out  # the working plugins still load
    problems = out[out.index("entry points that registered nothing:") :]
    assert "optprompt:missing = no_such_module_for_optprompt  (distribution broken-plugins 0.3)" in problems
    assert "import failed: ModuleNotFoundError: No module named 'no_such_module_for_optprompt'" in problems
    assert "optprompt:unmarked = unmarked_plugin" in problems
    assert "defines register_strategies without @hookimpl" in problems
    assert "unknown hook 'register_strategy' (did you mean 'register_strategies'" in problems
    assert "forgotten" not in out.split("entry points that registered nothing:")[0]
    # other commands warn on stderr and carry on
    proc = subprocess.run(
        [sys.executable, "-m", "optprompt.cli.main", "plugins", "template_search"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "plugin skipped: entry point optprompt:missing" in proc.stderr


def test_a_plugin_registered_in_code_without_hookimpl_is_an_error() -> None:
    class Unmarked:
        def register_strategies(self, register):  # type: ignore[no-untyped-def]
            pass

    with pytest.raises(PluginError, match=r"defines register_strategies without @hookimpl"):
        get_plugin_manager(extra_plugins=[Unmarked()])

    class Marked:
        @hookimpl
        def register_strategies(self, register):  # type: ignore[no-untyped-def]
            pass

    get_plugin_manager(extra_plugins=[Marked()])


def test_plugin_help_shows_options_with_defaults_and_descriptions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "template_search"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("template_search (strategy, from entry point optprompt:template_search in optprompt ")
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert "40" in rows["trials"] and "Trials to run" in rows["trials"]
    assert "4" in rows["max_demos"].split() and "Most demonstrations" in rows["max_demos"]


def test_plugin_help_for_an_unknown_name_suggests(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "template_serch"]) == 2
    assert "did you mean 'template_search'" in capsys.readouterr().err
