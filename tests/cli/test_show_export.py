"""`optprompt show` fits the terminal (ellipsis; --wide, --trial N, --json) and its header
says which rows are repeats; `optprompt export --trial N` exports any scored candidate; a
study whose search space is exhausted ends early and says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from optprompt.cli.main import main
from optprompt.cli.show_cmd import fit_widths, format_table
from optprompt.errors import OptpromptError
from optprompt.export import export_trial
from optprompt.plugins import hookimpl
from optprompt.prompts import PromptCandidate
from optprompt.strategies import BaseStrategy

LONG = "Read the review below very carefully, weigh every sentence, and then say which label fits it best."


class _TwoInstructions(BaseStrategy):
    """Two instructions: three distinct candidates with the baseline (the README's example)."""

    name = "two_instructions_test"

    def propose(self, trial):  # type: ignore[no-untyped-def]
        instruction = trial.suggest_categorical("instruction", ["Classify.", LONG])
        task = self.context.task
        return PromptCandidate(
            instruction=instruction,
            template=task.template,
            verbalizer=tuple((label, task.verbalizer[label]) for label in task.labels),
        )


class _Plugin:
    @hookimpl
    def register_strategies(self, register):  # type: ignore[no-untyped-def]
        register(_TwoInstructions)


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from optprompt.plugins.manager import get_plugin_manager, load_plugins
    from optprompt.testing import make_tiny_study_env

    env = make_tiny_study_env(tmp_path_factory.mktemp("show"))
    plugins = load_plugins(get_plugin_manager(extra_plugins=[_Plugin()]))
    return env.run_study("two_instructions_test", {"trials": 4}, plugins=plugins)


def test_an_exhausted_space_ends_early_and_says_so(study: Path) -> None:
    result = json.loads((study / "result.json").read_text())
    assert result["n_scored"] == 3
    assert any(w.startswith("search space exhausted: after 12 proposals") for w in result["warnings"])


def test_show_header_counts_repeats_and_the_table_fits(
    study: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    assert main(["show", str(study), "--top", "20"]) == 0
    out = capsys.readouterr().out
    head, rest = out.split("\ntrial ", 1)
    assert " ".join(head.split()).startswith(
        "study 'conformance': 3 trials counted against a budget of 4; the table also lists "
        "9 repeats of scored candidates (note 'same as trial N'; not counted)"
    )
    table = ("trial " + rest).split("\n\n")[0].splitlines()
    assert len(table) == 13 and table[0].split()[:3] == ["trial", "state", "dev"]
    assert all(len(line) <= 60 for line in head.splitlines() + table)
    assert any("…" in line for line in table) and LONG not in out.split("study 'conformance': 3 trials,")[0]


def test_show_wide_prints_fields_in_full(study: Path, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("COLUMNS", "60")
    assert main(["show", str(study), "--wide"]) == 0
    table = capsys.readouterr().out.split("\n\n")[0]
    assert LONG in table and "…" not in table


def test_show_json_and_one_trial(study: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", str(study), "--json", "--top", "50"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["counts"]["repeats"] == 9 and data["counts"]["counted"] == 3 and len(data["rows"]) == 12
    long_trial = next(r["trial"] for r in data["rows"] if r["instruction"] == LONG and not r["note"])
    assert main(["show", str(study), "--trial", str(long_trial)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"trial {long_trial}: complete, dev ")
    assert f"instruction: {LONG}" in out
    assert main(["show", str(study), "--trial", "99"]) == 2
    assert "has no trial 99" in capsys.readouterr().err


def test_export_any_trial(study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = json.loads((study / "result.json").read_text())
    rows = json.loads(_capture(capsys, ["show", str(study), "--json", "--top", "50"]))["rows"]
    other = next(r["trial"] for r in rows if r["trial"] != result["best"]["trial"] and r["role"] != "baseline")
    expected = next(r["instruction"] for r in rows if r["trial"] == other)
    # the study's strategy is registered in code here, so export through Python with those plugins
    export_trial(study, other, tmp_path / "card", plugins=_plugins())
    card = json.loads((tmp_path / "card" / "prompt_card.json").read_text())
    assert card["instruction"] == expected
    assert card["scores"]["dev"]["value"] == pytest.approx(next(r["dev"] for r in rows if r["trial"] == other))
    assert card["scores"].get("test") is None  # only the winner was scored on test
    with pytest.raises(OptpromptError, match="the study has no trial 99"):
        export_trial(study, 99, tmp_path / "x", plugins=_plugins())


def test_export_trial_on_the_command_line(tmp_path: Path, study_dict: dict, capsys: pytest.CaptureFixture[str]) -> None:
    import yaml

    study_file = tmp_path / "study.yaml"
    study_file.write_text(yaml.safe_dump({**study_dict, "strategy": {**study_dict["strategy"], "trials": 3}}))
    assert main(["run", str(study_file), "-q"]) == 0
    out = study_dict["output"]
    best = json.loads((Path(out) / "result.json").read_text())["best"]["trial"]
    other = next(n for n in (1, 2) if n != best)
    assert main(["export", out, "--trial", str(other), "--to", str(tmp_path / "card")]) == 0
    assert "wrote" in capsys.readouterr().out
    card = json.loads((tmp_path / "card" / "prompt_card.json").read_text())
    assert card["study"] == "tiny-study" and card["scores"].get("test") is None
    assert main(["export", out, "--trial", "1", "--front", "--to", str(tmp_path / "y")]) == 2
    assert "does not combine with --pick or --front" in capsys.readouterr().err


def _plugins():  # type: ignore[no-untyped-def]
    from optprompt.plugins.manager import get_plugin_manager, load_plugins

    return load_plugins(get_plugin_manager(extra_plugins=[_Plugin()]))


def _capture(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    capsys.readouterr()
    assert main(argv) == 0
    return capsys.readouterr().out


def test_fit_widths_keeps_fixed_columns_and_shares_the_rest() -> None:
    widths = fit_widths([5, 40, 3, 90], [True, False, True, False], width=60)
    assert widths[0] == 5 and widths[2] == 3
    assert sum(widths) + 2 * 3 <= 60 and widths[1] == widths[3]
    assert fit_widths([5, 10], [True, False], width=200) == [5, 10]
    lines, hidden = format_table([{"trial": 1, "text": "x" * 100}], width=30)
    assert all(len(line) <= 30 for line in lines) and lines[1].endswith("…") and hidden == []
    lines, hidden = format_table([{"trial": 1, "a": "x" * 50, "b": "y" * 50, "note": "n"}], width=20)
    assert hidden == ["b"] and all(len(line) <= 20 for line in lines)
