"""`optprompt new-plugin NAME` writes a package that installs, is listed with its options,
and passes the conformance suite as it is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from optprompt_testplugins import install_plugin, plugin_env

from optprompt.cli.main import main
from optprompt.testing.fixtures import scratch_dir


def test_the_scaffold_installs_and_passes_the_conformance_suite(capsys: pytest.CaptureFixture[str]) -> None:
    with scratch_dir("optprompt-scaffold-") as tmp:
        tmp = Path(tmp)
        assert main(["new-plugin", "cue_search", "--dir", str(tmp)]) == 0
        root = tmp / "optprompt-cue-search"
        assert f"wrote {root}/" in capsys.readouterr().out
        env = plugin_env(install_plugin(root, tmp / "site"))
        listed = subprocess.run(
            [sys.executable, "-m", "optprompt.cli.main", "plugins", "cue_search"],
            env=env, capture_output=True, text=True, timeout=120, cwd=tmp,
        )  # fmt: skip
        assert listed.returncode == 0, listed.stderr
        assert "from entry point optprompt:cue_search in optprompt-cue-search 0.1.0" in listed.stdout
        assert "max_demos" in listed.stdout and "Most demonstrations" in listed.stdout
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(root / "tests")],
            env=env, capture_output=True, text=True, timeout=500, cwd=tmp,
        )  # fmt: skip
        assert run.returncode == 0 and "5 passed" in run.stdout, run.stdout[-3000:] + run.stderr[-2000:]


def test_bad_names_and_existing_directories_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new-plugin", "My-Strategy", "--dir", str(tmp_path)]) == 2
    assert "use a lower-case Python identifier" in capsys.readouterr().err
    assert main(["new-plugin", "class", "--dir", str(tmp_path)]) == 2
    capsys.readouterr()
    assert main(["new-plugin", "ok_name", "--dir", str(tmp_path)]) == 0
    assert main(["new-plugin", "ok_name", "--dir", str(tmp_path)]) == 2
    assert "exists already" in capsys.readouterr().err
