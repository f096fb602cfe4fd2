from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from optprompt.cli.registry_cmd import add_registry_parser
from optprompt.errors import OptpromptError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="optprompt")
    add_registry_parser(parser.add_subparsers(dest="command", required=True))
    return parser


def run(*argv: str) -> int:
    args = _parser().parse_args(["registry", *argv])
    return args.func(args)


def test_registry_commands_end_to_end(tmp_path: Path, make_card, capsys) -> None:
    root = str(tmp_path / "reg")
    make_card().save(tmp_path / "v1")
    make_card(
        instruction="Is the review negative or positive?",
        scores={
            "dev": {"value": 0.8, "metric": "accuracy"},
            "test": {"value": 0.7, "metric": "accuracy"},
        },
    ).save(tmp_path / "v2")

    assert run("--root", root, "add", str(tmp_path / "v1"), "--name", "sent") == 0
    assert capsys.readouterr().out.startswith("sent@1 added (hash ")
    assert run("add", str(tmp_path / "v2"), "--name", "sent", "--root", root) == 0  # --root after too
    assert capsys.readouterr().out.startswith("sent@2 added")
    assert run("--root", root, "add", str(tmp_path / "v1" / "prompt_card.json"), "--name", "sent") == 0
    assert capsys.readouterr().out.startswith("sent@1 unchanged: identical content")

    assert run("--root", root, "list") == 0
    assert capsys.readouterr().out == "sent\tversions=2\tlatest=2\tstages=-\n"

    assert run("--root", root, "promote", "sent@1") == 0
    assert capsys.readouterr().out == "sent@1 -> production (was unset)\n"
    assert run("--root", root, "promote", "sent@2", "--stage", "production") == 0
    assert capsys.readouterr().out == "sent@2 -> production (was sent@1)\n"
    assert run("--root", root, "promote", "sent@2") == 0
    assert capsys.readouterr().out == "sent@2 is already production\n"
    assert run("--root", root, "list") == 0
    assert capsys.readouterr().out == "sent\tversions=2\tlatest=2\tstages=production:2\n"

    assert run("--root", root, "list", "sent") == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[:4] for line in lines] == [
        ["sent@1", "stages=-", "dev=0.7000", "test=0.6500"],
        ["sent@2", "stages=production", "dev=0.8000", "test=0.7000"],
    ]

    assert run("--root", root, "show", "sent@production") == 0
    out = capsys.readouterr().out
    assert "ref: sent@2\n" in out and "stages: production\n" in out
    assert "model fingerprint: model-fp-1\n" in out and "data fingerprint: data-fp-1\n" in out
    assert "dev: 0.8000 (baseline 0.5000)\n" in out and "study: sentiment-demo\n" in out
    assert f"source: {(tmp_path / 'v2').resolve()}\n" in out
    assert out.endswith(make_card(instruction="Is the review negative or positive?").format("{input}") + "\n")

    assert run("--root", root, "diff", "sent@1", "sent@production") == 0
    out = capsys.readouterr().out
    assert "+Is the review negative or positive?" in out
    assert "scores.dev (accuracy): 0.7000 -> 0.8000 (+0.1000)" in out


def test_registry_root_from_environment(tmp_path: Path, make_card, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPTPROMPT_REGISTRY", str(tmp_path / "env-reg"))
    make_card().save(tmp_path / "card")
    assert run("add", str(tmp_path / "card")) == 0
    assert capsys.readouterr().out.startswith("sentiment-demo@1 added")
    assert (tmp_path / "env-reg" / "sentiment-demo" / "versions" / "1" / "prompt_card.json").is_file()


def test_registry_command_errors_are_optprompt_errors(tmp_path: Path, make_card) -> None:
    root = str(tmp_path / "reg")
    with pytest.raises(OptpromptError, match=r"no prompt named 'x' \(reference 'x@production'\)"):
        run("--root", root, "show", "x@production")
    with pytest.raises(OptpromptError, match="invalid prompt reference 'x@'"):
        run("--root", root, "diff", "x@", "x@1")
    with pytest.raises(OptpromptError, match="not found"):
        run("--root", root, "add", str(tmp_path / "nothing"))
    make_card().save(tmp_path / "card")
    run("--root", root, "add", str(tmp_path / "card"), "--name", "x")
    with pytest.raises(OptpromptError, match="'x' has no version 3"):
        run("--root", root, "promote", "x@3")
    with pytest.raises(SystemExit):  # argparse: an action is required
        _parser().parse_args(["registry"])
