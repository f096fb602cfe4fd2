"""The multi-label task type: labels read from lists or separated strings, the model's
written list read back tolerantly, set F1 and exact match by hand, the study end to end on
the tiny model, and the serving exports (JSON schema array of enum values, GBNF list
grammar) checked by a strict schema validator and a grammar recogniser."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import optprompt
from optprompt.config import spec_from_dict
from optprompt.errors import ConfigError, DataError
from optprompt.export.serving import label_list_grammar, label_list_schema
from optprompt.scoring.text_metrics import label_exact_match, label_f1
from optprompt.tasks.types import parse_label_list
from optprompt.testing import TinyStudyEnv, make_tiny_study_env

LABELS = ["billing", "login", "shipping", "refund", "bug", "account"]
TICKETS = Path(__file__).resolve().parents[2] / "studies" / "data" / "tickets.jsonl"


# --- reading the model's list ----------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("billing, login", ["billing", "login"]),
        (" Billing;LOGIN | refund", ["billing", "login", "refund"]),
        ('["bug", "account"]', ["bug", "account"]),
        ("- shipping\n- refund", ["shipping", "refund"]),
        ("shipping and refund.", ["shipping", "refund"]),
        ("billing, billing, login", ["billing", "login"]),
        ("billing, weather", ["billing"]),  # not in the closed set: dropped
        ("none", []),
        ("", None),
        (None, None),
        ("[not json", ["not json"]),
    ],
)
def test_parse_label_list(text: str | None, expected: list[str] | None) -> None:
    labels = None if expected == ["not json"] else LABELS
    assert parse_label_list(text, labels) == expected


def test_set_f1_and_exact_match_by_hand() -> None:
    # gold {billing, login}; predicted {billing, refund}: 1 hit, 2 + 2 items -> 2*1/4
    assert label_f1("billing, refund", "billing, login") == pytest.approx(0.5)
    # gold {billing, login, bug}; predicted {login}: 2*1/(1+3)
    assert label_f1("Login", "billing, login, bug") == pytest.approx(0.5)
    assert label_f1("login, billing", "billing, login") == 1.0
    assert label_f1('["login", "billing"]', "billing, login") == 1.0
    assert label_f1("none", "none") == 1.0 and label_f1("billing", "none") == 0.0
    assert label_f1("", "billing") == 0.0
    assert label_exact_match("login; billing", "billing, login") == 1.0
    assert label_exact_match("billing", "billing, login") == 0.0
    assert label_exact_match("", "none") == 0.0  # an unreadable answer is no empty set


# --- reading the data ------------------------------------------------------------------
def _task(tmp_path: Path, rows: list[dict], **task) -> object:  # type: ignore[type-arg]
    from optprompt.plugins.manager import load_plugins
    from optprompt.tasks import build_task

    tmp_path.mkdir(parents=True, exist_ok=True)
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = spec_from_dict(
        {
            "name": "ml",
            "model": "x",
            "output": str(tmp_path / "o"),
            "task": {"data": str(data), "type": "multi_label", "input": "text", "label": "labels", **task},
            "strategy": {"name": "template_search", "trials": 2},
        }
    )
    return build_task(spec.task, plugins=load_plugins(), seed=0)


def _rows(n: int = 30, sep: str | None = None) -> list[dict]:  # type: ignore[type-arg]
    out = []
    for i in range(n):
        labels = [LABELS[i % 6], *([LABELS[(i + 2) % 6]] if i % 3 == 0 else [])]
        out.append({"text": f"ticket number {i}", "labels": sep.join(labels) if sep else labels})
    return out


def test_labels_from_lists_and_from_separated_strings_agree(tmp_path: Path) -> None:
    a = _task(tmp_path / "a", _rows())
    b = _task(tmp_path / "b", _rows(sep="|"), label_separator="|")
    assert a.labels == b.labels == tuple(sorted(LABELS))
    targets = sorted(e.target for e in [*a.train, *a.dev, *a.test])
    assert targets == sorted(e.target for e in [*b.train, *b.dev, *b.test])
    assert "billing, shipping" in targets  # written in the label set's order, as the model should write it
    assert a.summary()["labels"] == sorted(LABELS)


def test_bad_labels_are_reported_with_the_row(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"row 1.*\['weather'\] not in task.labels"):
        _task(tmp_path / "c", [{"text": "x", "labels": ["weather"]}, *_rows()], labels=LABELS)
    with pytest.raises(DataError, match="an empty label"):
        _task(tmp_path / "d", [{"text": "x", "labels": "billing||login"}, *_rows()], label_separator="|")
    with pytest.raises(ConfigError, match="label_separator splits a cell into several labels: it needs type: "):
        spec_from_dict(
            {
                "name": "c",
                "model": "x",
                "task": {"data": "d.jsonl", "type": "classification", "label_separator": "|"},
                "strategy": {"name": "template_search", "trials": 2},
            }
        )


# --- serving exports ---------------------------------------------------------------------
def gbnf_regex(grammar: str) -> re.Pattern[str]:
    """The GBNF subset the exports use (literals, rule names, ``|``, ``?``, ``*``, groups)
    as a Python regex, each rule inlined (no rule may refer to itself)."""
    rules: dict[str, str] = {}
    for line in grammar.strip().splitlines():
        m = re.fullmatch(r"([a-z][a-z0-9-]*) ::= (.+)", line)
        assert m, f"not a GBNF rule: {line!r}"
        assert m.group(1) not in rules, f"rule {m.group(1)} defined twice"
        rules[m.group(1)] = m.group(2)

    def body(name: str, depth: int = 0) -> str:
        assert depth < 10, "recursive grammar"
        src, out, i = rules[name], [], 0
        while i < len(src):
            ch = src[i]
            if ch == " ":
                i += 1
            elif ch == '"':
                j, lit = i + 1, []
                while src[j] != '"':
                    if src[j] == "\\":
                        esc = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}
                        assert src[j + 1] in esc, f"bad escape in {line!r}"
                        lit.append(esc[src[j + 1]])
                        j += 2
                    else:
                        lit.append(src[j])
                        j += 1
                out.append(re.escape("".join(lit)))
                i = j + 1
            elif ch in "|?*()":
                out.append(ch)
                i += 1
            else:
                m = re.match(r"[a-z][a-z0-9-]*", src[i:])
                assert m and m.group() in rules, f"unknown rule at {src[i:]!r}"
                out.append(f"(?:{body(m.group(), depth + 1)})")
                i += m.end()
        return "".join(out).replace("(", "(?:").replace("(?:?:", "(?:")

    return re.compile(body("root"))


def test_the_list_grammar_accepts_exactly_label_lists() -> None:
    rx = gbnf_regex(label_list_grammar(LABELS))
    for good in ["billing", "billing, login", "bug, account, refund", "none"]:
        assert rx.fullmatch(good), good
    for bad in ["", "Billing", "billing,login", "billing, ", "weather", "billing, none", "billing login"]:
        assert not rx.fullmatch(bad), bad
    spaced = gbnf_regex(label_list_grammar(LABELS, leading_space=True))
    assert spaced.fullmatch(" login, bug") and spaced.fullmatch("login")


def test_the_list_schema_accepts_lists_of_labels() -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="the strict schema check needs jsonschema (dev extra)")
    schema = label_list_schema(LABELS)
    jsonschema.Draft202012Validator.check_schema(schema)
    v = jsonschema.Draft202012Validator(schema)
    assert all(v.is_valid(x) for x in [[], ["billing"], ["login", "bug", "refund"], LABELS])
    assert not any(v.is_valid(x) for x in [[*LABELS, "billing"], ["weather"], "billing", [1], None])
    # no uniqueItems (vLLM refuses the keyword): a repeat is valid, and read once
    assert v.is_valid(["billing", "billing"]) and "uniqueItems" not in schema
    assert parse_label_list('["billing", "billing"]', LABELS) == ["billing"]


# --- the study, end to end on the tiny model ------------------------------------------------
@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> TinyStudyEnv:
    return make_tiny_study_env(tmp_path_factory.mktemp("multilabel"))


@pytest.fixture(scope="module")
def study(env: TinyStudyEnv) -> Path:
    task = {"data": str(TICKETS), "type": "multi_label", "input": "text", "label": "labels_text",
            "label_separator": "|", "id": "id", "max_examples": 60, "max_new_tokens": 8}  # fmt: skip
    return env.run_study("template_search", {"trials": 3, "max_demos": 2, "demo_pool": 4}, task=task)


def test_the_study_scores_label_lists_and_measures_constrained_generation(study: Path) -> None:
    result = json.loads((study / "result.json").read_text())
    assert result["task"]["type"] == "multi_label" and result["task"]["metric"] == "label_f1"
    assert result["task"]["labels"] == sorted(LABELS)
    best = result["best"]["test"]
    assert set(best["metrics"]) >= {"label_f1", "label_exact_match"}
    # the recorded score is the mean of the per-ticket set F1 of what the winner wrote
    preds = [json.loads(line) for line in (study / "predictions.jsonl").read_text().splitlines()]
    mine = [p for p in preds if p["role"] == "best"]
    by_hand = sum(label_f1(p["pred"] or "", p["gold"]) if p["pred"] else 0.0 for p in mine) / len(mine)
    assert best["value"] == pytest.approx(by_hand)
    served = result["constrained_generation"]
    assert served["metric"] == "label_f1" and served["n"] == len(mine) and 0 <= served["value"] <= 1


def test_the_export_serves_the_label_list(study: Path, env: TinyStudyEnv, tmp_path: Path) -> None:
    from optprompt.kinds.prompt.constrained import constrained_predict

    to = tmp_path / "export"
    optprompt.export_card(study, to)
    serving = json.loads((to / "serving.json").read_text())
    assert serving["answer_form"] == "label list" and sorted(serving["answers"]) == sorted(LABELS)
    assert json.loads((to / "answers.schema.json").read_text()) == label_list_schema(sorted(LABELS))
    grammar = (to / "answers.gbnf").read_text()
    rx = gbnf_regex(grammar)
    predictor = optprompt.load(to, env.model)
    texts = [json.loads(line)["text"] for line in TICKETS.read_text().splitlines()[:5]]
    generated = constrained_predict(predictor, texts)
    # what the constrained decoder writes is in the exported grammar's language
    assert all(rx.fullmatch(g) for g in generated), generated
    result = json.loads((study / "result.json").read_text())
    assert optprompt.load_card(to).scores["constrained_generation"]["value"] == pytest.approx(
        result["constrained_generation"]["value"]
    )


def test_evaluate_scores_the_card_on_new_data_with_constrained_generation(
    study: Path, env: TinyStudyEnv, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from optprompt.cli.main import main

    to = tmp_path / "export"
    optprompt.export_card(study, to)
    new = tmp_path / "new.jsonl"
    new.write_text("".join(TICKETS.read_text().splitlines(keepends=True)[150:170]))
    # the card's study read "labels_text" split by "|"; the new data's list column needs no separator
    report = optprompt.evaluate(
        to,
        new,
        model=str(env.model_dir),
        columns={"input": "text", "label": "labels"},
        constrained=True,
        output=tmp_path / "e.json",
    )
    assert report.task_type == "multi_label" and report.metric == "label_f1" and report.n == 20
    assert set(report.target.metrics) >= {"label_f1", "label_exact_match"}
    assert report.target.constrained is not None and 0 <= report.target.constrained.value <= 1
    argv = ["evaluate", str(to), "--data", str(new), "--model", str(env.model_dir), "--input", "text",
            "--label", "labels_text", "--label-separator", "|", "--output", str(tmp_path / "cli.json")]  # fmt: skip
    assert main(argv) == 0
    assert "20 examples (multi_label), label_f1" in capsys.readouterr().out
    assert json.loads((tmp_path / "cli.json").read_text())["target"]["value"] == pytest.approx(report.target.value)
