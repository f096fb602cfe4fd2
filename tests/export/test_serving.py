"""Serving-ready exports: chat messages / completion prompt, the closed answer set as a JSON
schema (validated by jsonschema) and as a GBNF grammar (checked by a strict parser of the
GBNF subset written here, which also computes the grammar's language), and greedy
generation constrained to the answer set."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import optprompt
from optprompt.export.serving import answer_grammar, answer_schema, gbnf_literal, label_list_grammar
from optprompt.kinds.prompt.constrained import constrained_predict
from optprompt.testing import TinyStudyEnv, make_tiny_study_env

# --- a strict parser for the GBNF subset the exports use ----------------------------------
_RULE = re.compile(r"^([a-z][a-z0-9-]*) ::= (.+)$")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}


def _tokens(body: str) -> list[str]:
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch == " ":
            i += 1
        elif ch == '"':
            j, lit = i + 1, []
            while body[j] != '"':
                if body[j] == "\\":
                    nxt = body[j + 1]
                    if nxt == "x":
                        lit.append(chr(int(body[j + 2 : j + 4], 16)))
                        j += 4
                        continue
                    assert nxt in _ESCAPES, f"bad escape \\{nxt}"
                    lit.append(_ESCAPES[nxt])
                    j += 2
                    continue
                assert body[j] not in "\n\r", "raw newline in a literal"
                lit.append(body[j])
                j += 1
            out.append("S" + "".join(lit))
            i = j + 1
        elif ch in "|?":
            out.append(ch)
            i += 1
        else:
            m = re.match(r"[a-z][a-z0-9-]*", body[i:])
            assert m, f"unexpected {body[i:]!r}"
            out.append("R" + m.group())
            i += m.end()
    return out


def gbnf_language(grammar: str) -> set[str]:
    """Every string the (finite, non-recursive) grammar accepts from ``root``."""
    rules = {}
    for line in grammar.strip().splitlines():
        m = _RULE.match(line)
        assert m, f"not a GBNF rule: {line!r}"
        assert m.group(1) not in rules, f"rule {m.group(1)} defined twice"
        rules[m.group(1)] = _tokens(m.group(2))
    assert "root" in rules

    def lang(name: str, depth: int = 0) -> set[str]:
        assert depth < 20, "recursive grammar"
        alternatives: list[list[str]] = [[]]
        for tok in rules[name]:
            if tok == "|":
                alternatives.append([])
            else:
                alternatives[-1].append(tok)
        out: set[str] = set()
        for seq in alternatives:
            strings = {""}
            k = 0
            while k < len(seq):
                tok = seq[k]
                optional = k + 1 < len(seq) and seq[k + 1] == "?"
                part = {tok[1:]} if tok[0] == "S" else lang(tok[1:], depth + 1)
                if optional:
                    part = part | {""}
                strings = {a + b for a in strings for b in part}
                k += 2 if optional else 1
            out |= strings
        return out

    return lang("root")


def test_gbnf_literals_escape_what_must_be_escaped() -> None:
    tricky = ['say "yes"', "back\\slash", "two\nlines", "tab\there", "bell\x07", "plain"]
    assert gbnf_language(answer_grammar(tricky)) == set(tricky)
    assert gbnf_literal('a"b') == '"a\\"b"'
    assert gbnf_language(answer_grammar(["yes", "no"], leading_space=True)) == {"yes", "no", " yes", " no"}
    with pytest.raises(ValueError):
        answer_grammar([])


def test_the_json_schema_accepts_exactly_the_answers() -> None:
    jsonschema = pytest.importorskip("jsonschema", reason="the strict schema check needs jsonschema (dev extra)")
    schema = answer_schema(["negative", "neutral", "positive"])
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert all(validator.is_valid(a) for a in ["negative", "neutral", "positive"])
    assert not any(validator.is_valid(a) for a in ["Negative", " negative", "", 1, None])


def _guided(grammar: str, fmt: str = "gbnf"):  # type: ignore[no-untyped-def]
    """``accepts(text)``: whether llguidance's matcher, built from ``grammar`` as guided
    decoding builds it, takes ``text``'s tokens (from a real byte-level BPE tokenizer) and
    may stop there."""
    import llguidance
    import llguidance.hf

    from optprompt.testing.fixtures import tiny_tokenizer

    tokenizer = tiny_tokenizer(["billing login bug none positive negative say yes"] * 3, chat=False, bos=False)
    lltok = llguidance.hf.from_tokenizer(tokenizer)
    compiled = llguidance.grammar_from(fmt, grammar)
    error = llguidance.LLMatcher.validate_grammar(compiled, lltok)
    assert not error, f"llguidance refuses the exported grammar: {error}\n{grammar}"

    def accepts(text: str) -> bool:
        matcher = llguidance.LLMatcher(lltok, compiled, log_level=0)
        taken = matcher.consume_tokens(tokenizer(text, add_special_tokens=False).input_ids)
        return taken and not matcher.is_error() and matcher.is_accepting()

    return accepts


def test_guided_decoding_takes_the_exported_grammars_and_schema_as_written() -> None:
    """llguidance, the grammar engine of vLLM's guided decoding (and an option of llama.cpp's),
    compiles the GBNF grammars and the JSON schema the exports write, and its matcher
    accepts exactly the answers: each answer (after one optional space where the grammar
    allows it), label lists joined by ", ", and nothing else."""
    tricky = ['say "yes"', "back\\slash", "two\nlines", "tab\there", "plain"]
    accepts = _guided(answer_grammar(tricky))
    assert all(accepts(a) for a in tricky)
    assert not any(accepts(a) for a in ["say yes", "plain ", "two", "back\\\\slash"])
    accepts = _guided(answer_grammar(["negative", "positive"], leading_space=True))
    assert all(accepts(a) for a in ["positive", " negative"])
    assert not any(accepts(a) for a in ["neutral", "  positive", "positive, negative", "Positive"])
    labels = ["billing", "login issue", "bug"]
    for leading_space in (False, True):
        accepts = _guided(label_list_grammar(labels, leading_space=leading_space))
        assert all(accepts(a) for a in ["billing", "billing, bug", "login issue, billing, bug", "none"])
        assert accepts(" billing") == leading_space
        assert not any(accepts(a) for a in ["bill", "billing,bug", "billing, none", "login", "maybe"])
    accepts = _guided(json.dumps(answer_schema(["negative", "positive"])), "json_schema")
    assert accepts('"positive"') and accepts('"negative"')
    assert not any(accepts(a) for a in ['"neutral"', "positive", '"Positive"'])


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> TinyStudyEnv:
    return make_tiny_study_env(tmp_path_factory.mktemp("serving"))


@pytest.fixture(scope="module")
def export(env: TinyStudyEnv) -> Path:
    out = env.run_study("template_search", {"trials": 4, "max_demos": 2, "demo_pool": 4})
    to = env.root / "export"
    optprompt.export_card(out, to)
    (to / "study").symlink_to(out)
    return to


def test_export_writes_messages_schema_and_grammar(export: Path) -> None:
    card = optprompt.load_card(export)
    serving = json.loads((export / "serving.json").read_text())
    assert serving["format_version"] == 1 and serving["chat"] is True
    assert serving["messages"] == [{"role": "user", "content": card.template_text()}]
    assert serving["prompt"] is None
    assert serving["messages"][0]["content"].replace("{input}", "great food") == card.format("great food")
    turns = serving["messages_with_turns"]
    assert turns[-1]["role"] == "user" and "{input}" in turns[-1]["content"]
    assert [t["role"] for t in turns[1:-1]] == ["user", "assistant"] * len(card.demos)
    words = list(card.answers(None))
    assert serving["answers"] == card.answers(None)
    schema = json.loads((export / serving["json_schema"]).read_text())
    assert schema["enum"] == words and schema["type"] == "string"
    assert gbnf_language((export / serving["grammar"]).read_text()) == set(words)  # chat: no leading space


def test_constrained_generation_matches_a_reference_decoder(env: TinyStudyEnv, export: Path) -> None:
    import torch

    predictor = optprompt.load(export, env.model)
    texts = [json.loads(line)["text"] for line in env.data.read_text().splitlines()[:6]]
    got = constrained_predict(predictor, texts)
    labels = set(predictor.card.answers(None).values())
    assert set(got) <= labels

    tok, model = env.model.tokenizer, env.model.model
    words = list(predictor.card.answers(None))
    seqs = [tok(w, add_special_tokens=False).input_ids for w in words]  # chat: answers follow as they are

    def reference(text: str) -> str:
        prompt = tok(predictor.prompt(text), add_special_tokens=False).input_ids
        if tok.bos_token_id is not None and tok("a").input_ids[:1] == [tok.bos_token_id]:
            if not predictor.prompt(text).startswith(tok.bos_token):
                prompt = [tok.bos_token_id, *prompt]
        out: list[int] = []
        while True:
            with torch.no_grad():
                logits = model(torch.tensor([prompt + out])).logits[0, -1]
            live = [s for s in seqs if s[: len(out)] == out]
            done = [s for s in live if len(s) == len(out)]
            nxt = {s[len(out)] for s in live if len(s) > len(out)}
            if done and (not nxt or logits[tok.eos_token_id] >= max(logits[t] for t in nxt)):
                return predictor.card.answers(None)[words[seqs.index(done[0])]]
            out.append(max(nxt, key=lambda t: float(logits[t])))

    assert got == [reference(t) for t in texts]


def test_evaluate_reports_constrained_accuracy_beside_the_ranked(env: TinyStudyEnv, export: Path) -> None:
    report = optprompt.evaluate(export, env.data, columns={"input": "text"}, constrained=True)
    rows = [json.loads(line) for line in env.data.read_text().splitlines()]
    predictor = optprompt.load(export)
    generated = constrained_predict(predictor, [r["text"] for r in rows])
    expected = sum(g == r["label"] for g, r in zip(generated, rows, strict=True)) / len(rows)
    assert report.target.constrained is not None
    assert report.target.constrained.value == pytest.approx(expected)
    ranked = predictor.predict([r["text"] for r in rows])
    agreement = sum(a == b for a, b in zip(ranked, generated, strict=True)) / len(rows)
    assert report.target.constrained.agreement == pytest.approx(agreement)


def test_the_study_reports_constrained_generation_in_result_summary_and_card(
    env: TinyStudyEnv, export: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from optprompt.cli.output import print_result
    from optprompt.results import load_result

    study = (export / "study").resolve()
    result = load_result(study / "result.json")
    served = result.constrained_generation
    assert served is not None and served["n"] == result.task.sizes["test"] and served["calibrated"] is False
    rows = {r["id"]: r for r in map(json.loads, env.data.read_text().splitlines())}
    test_ids = [p["id"] for p in map(json.loads, (study / "predictions.jsonl").read_text().splitlines())
                if p["role"] == "best"]  # fmt: skip
    generated = constrained_predict(optprompt.load(export, env.model), [rows[i]["text"] for i in test_ids])
    expected = sum(g == rows[i]["label"] for g, i in zip(generated, test_ids, strict=True)) / len(test_ids)
    assert served["value"] == pytest.approx(expected)
    card = optprompt.load_card(export)
    assert card.scores["constrained_generation"]["value"] == pytest.approx(expected)
    print_result(result)
    assert "greedy generation constrained to the answer set" in " ".join(capsys.readouterr().out.split())


def test_an_ensemble_served_by_guided_decoding_takes_its_members_majority(study_dict, tiny_model) -> None:  # type: ignore[no-untyped-def]
    """The constrained-generation figure of an ensemble winner: each member answers by
    constrained greedy generation, the answer most members gave wins, a tie the first's."""
    from optprompt.config import spec_from_dict
    from optprompt.kinds.ensemble import EnsembleCandidate, EnsembleKind
    from optprompt.kinds.prompt.kind import PromptKind
    from optprompt.prompts import PromptCandidate
    from optprompt.study import StudyRunner

    runner = StudyRunner(spec_from_dict(study_dict), model=tiny_model, progress=False)
    runner.setup()
    ctx, test = runner.kind_context, runner.task.test
    good_bad = (("neg", "bad"), ("pos", "good"))
    a = PromptCandidate("Is the review good or bad?", "Review: {input}\nAnswer:", verbalizer=good_bad)
    b = PromptCandidate("Sentiment?", "{input}\nSentiment:", verbalizer=(("neg", "negative"), ("pos", "positive")))
    alone = {c: PromptKind().constrained_answers(c, ctx, test) for c in (a, b)}
    assert alone[a] is not None and alone[b] is not None
    assert alone[a] != alone[b]  # they disagree somewhere, so the rule is seen at work
    kind = EnsembleKind()
    # two members: where they disagree the first (best on dev) decides
    assert kind.constrained_answers(EnsembleCandidate((a, b)), ctx, test) == alone[a]
    # a, b, b: b's answer has the majority everywhere
    assert kind.constrained_answers(EnsembleCandidate((a, b, b)), ctx, test) == alone[b]


def test_a_winner_that_guided_decoding_serves_worse_gets_a_warning() -> None:
    from optprompt.study.end.constrained import constrained_warnings

    served = {"value": 0.15, "interval": {"estimate": 0.15, "low": 0.09, "high": 0.21, "confidence": 0.95}}
    (warning,) = constrained_warnings(served, ranked=0.707)
    assert "0.150 on test against 0.707 ranked" in warning and "predict_from_logliks" in warning
    assert constrained_warnings(served, ranked=0.20) == []  # within the interval: no warning
    assert constrained_warnings(None, ranked=0.9) == []
