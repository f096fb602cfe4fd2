"""The example third-party plugin (plugins/examples/optprompt-example-strategy), installed
for real: built by pip into a separate directory, found through its entry point by
``optprompt plugins`` and ``optprompt run`` in fresh processes, and passing its own
conformance tests there."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from optprompt_testplugins import install_plugin, plugin_env

from optprompt.testing import TinyStudyEnv, make_tiny_study_env
from optprompt.testing.fixtures import scratch_dir

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "plugins" / "examples" / "optprompt-example-strategy"
SOURCE = "from entry point optprompt:keyword_instructions in optprompt-example-strategy 0.1.0"


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with scratch_dir("optprompt-example-") as tmp:
        yield Path(tmp)


@pytest.fixture(scope="module")
def site(scratch: Path) -> Path:
    """The plugin pip-installed into its own directory (offline: no deps, no isolation).

    pip builds in the source tree, so it builds a copy, not the repository's files.
    """
    src = shutil.copytree(EXAMPLE, scratch / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return install_plugin(src, scratch / "site")


@pytest.fixture(scope="module")
def tiny(scratch: Path) -> TinyStudyEnv:
    return make_tiny_study_env(scratch / "tiny")


def _run(args: list[str], site: Path, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = plugin_env(site, OPTPROMPT_HOME=str(cwd / "home"), OPTPROMPT_SCORE_CACHE=str(cwd / "scores.sqlite"))
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def test_plugins_command_lists_the_strategy_and_its_entry_point(site: Path, scratch: Path) -> None:
    out = _run(["-m", "optprompt.cli.main", "plugins"], site, scratch).stdout
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.split()[:1] == ["keyword_instructions"])
    assert "most telling words" in lines[at]
    assert lines[at + 1].strip() == SOURCE


def test_a_study_runs_with_the_installed_strategy(site: Path, scratch: Path, tiny: TinyStudyEnv) -> None:
    work = scratch / "study"
    work.mkdir()
    spec = tiny.study_dict(
        "keyword_instructions", {"trials": 4, "max_keywords": 3}, output=work / "out", cache=work / "scores.sqlite"
    )
    (work / "study.yaml").write_text(yaml.safe_dump(spec))
    _run(["-m", "optprompt.cli.main", "run", "study.yaml", "-q"], site, work)
    result = json.loads((work / "out" / "result.json").read_text())
    assert result["strategy"]["name"] == "keyword_instructions"
    assert result["n_scored"] == 4
    keywords = result["strategy_summary"]["keywords"]
    assert set(keywords) == {"negative", "neutral", "positive"}
    assert all(0 < len(words) <= 3 for words in keywords.values())


def test_its_own_conformance_suite_passes(site: Path, scratch: Path) -> None:
    tests = scratch / "src" / "tests"
    out = _run(["-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)], site, scratch, timeout=400).stdout
    assert "7 passed" in out, out[-2000:]
