from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

import optprompt.cli.main as cli_main
from optprompt.cli.report_cmd import add_report_parser
from optprompt.config import spec_from_dict
from optprompt.study import run_study


@pytest.fixture
def main(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The CLI entry point, with ``report`` added when build_parser lacks it."""
    real = cli_main.build_parser

    def build_parser() -> argparse.ArgumentParser:
        parser = real()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        if "report" not in sub.choices:
            add_report_parser(sub)
        return parser

    monkeypatch.setattr(cli_main, "build_parser", build_parser)
    return cli_main.main


def test_report_command_writes_the_file_and_prints_its_path(
    main, study_dict: dict, tiny_model, tmp_path: Path, capsys
) -> None:
    run_study(spec_from_dict(study_dict), model=tiny_model, progress=False)
    out = Path(study_dict["output"])
    assert main(["report", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out / 'report.html'}"
    assert (out / "report.html").is_file() and (out / "report_files" / "optimization_history.png").is_file()

    to = tmp_path / "elsewhere" / "tiny.html"
    assert main(["report", str(out), "--to", str(to)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {to}"
    assert to.is_file() and (to.parent / "tiny_files" / "confusion_matrix.png").is_file()


def test_report_of_a_directory_that_is_not_a_study(main, tmp_path: Path, capsys) -> None:
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not a study output directory" in err and "study.json" in err


def test_report_parser_does_not_import_matplotlib() -> None:
    code = (
        "import argparse, sys\nfrom optprompt.cli.report_cmd import add_report_parser\n"
        "p = argparse.ArgumentParser(); add_report_parser(p.add_subparsers())\n"
        "print(sorted(m for m in ('matplotlib', 'optuna', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_report_help(main, capsys) -> None:
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    assert "--to FILE" in capsys.readouterr().out
