from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from optprompt.cli.main import main


def test_help_imports_no_heavy_library() -> None:
    """`optprompt --help` stays well under a second because it imports none of these."""
    heavy = ("torch", "transformers", "optuna", "pandas", "numpy", "datasets", "peft", "matplotlib")
    code = (
        "import sys\nfrom optprompt.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_plugins_command_lists_sources(capsys) -> None:
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "template_search" in out and "entry point optprompt:template_search" in out
    assert "accuracy" in out and "smollm2-135m-instruct" in out


def test_bad_study_file_exit_code_and_message(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "s.yaml"
    bad.write_text("name: x\nmodel: [\n")
    assert main(["run", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "YAML syntax error" in err and "s.yaml, line" in err


def test_run_show_export_on_tiny_model(study_dict: dict, tmp_path: Path, capsys) -> None:
    study_file = tmp_path / "study.yaml"
    study_file.write_text(yaml.safe_dump(study_dict))
    assert main(["run", str(study_file), "-q", "--trials", "4"]) == 0
    out = capsys.readouterr().out
    assert "BASELINE PROMPT" in out and "WINNING PROMPT" in out and "test accuracy" in out
    result = json.loads((Path(study_dict["output"]) / "result.json").read_text())
    assert result["n_scored"] == 4
    assert main(["show", study_dict["output"]]) == 0
    shown = capsys.readouterr().out
    assert "baseline" in shown and "trial" in shown
    assert main(["export", study_dict["output"], "--to", str(tmp_path / "card")]) == 0
    assert (tmp_path / "card" / "prompt_card.json").is_file()


def test_show_of_missing_directory(tmp_path: Path, capsys) -> None:
    assert main(["show", str(tmp_path / "none")]) == 2
    assert "study.json" in capsys.readouterr().err


def test_models_pull_unknown_name(capsys) -> None:
    assert main(["models", "pull", "gpt-17"]) == 2
    assert "smollm2-135m-instruct" in capsys.readouterr().err
