"""Held-out selection and do-no-harm: the search sees part of dev, the winner is picked on the rest."""

from __future__ import annotations

import contextlib
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
from optprompt_testdata import write_sentiment_jsonl

from optprompt.config import spec_from_dict
from optprompt.config.spec import SelectionSpec
from optprompt.errors import ConfigError
from optprompt.stats import one_sided_p
from optprompt.study import StudyRunner
from optprompt.study.end.selection import select_winner
from optprompt.tasks.sampling import holdout_split
from optprompt.tasks.task import Example
from optprompt.trials import TrialRecord
from optprompt.trials import keys as attrs


def _examples(labels: list[str]) -> list[Example]:
    return [Example(id=str(i), input=f"x{i}", target=lbl, target_index=0, row=str(i)) for i, lbl in enumerate(labels)]


def test_holdout_split_is_stratified_disjoint_and_keeps_order() -> None:
    exs = _examples(["a"] * 20 + ["b"] * 10)
    kept, held = holdout_split(exs, 0.3)
    assert len(held) == 9 and sum(e.target == "a" for e in held) == 6 and sum(e.target == "b" for e in held) == 3
    assert {e.id for e in kept} | {e.id for e in held} == {e.id for e in exs}
    assert not {e.id for e in kept} & {e.id for e in held}
    assert [int(e.id) for e in kept] == sorted(int(e.id) for e in kept)
    assert holdout_split(exs, 0.0) == (exs, [])


def _ev(scores: list[float], examples: list[Example] | None = None):  # type: ignore[no-untyped-def]
    """An evaluation of 0/1 answers: gold choice 1, predicted 1 when the score is 1."""
    from optprompt.scoring.evaluate import Evaluation, ExamplePrediction

    ids = [e.id for e in examples] if examples is not None else [str(i) for i in range(len(scores))]
    return Evaluation(
        candidate_hash="x",
        split="selection",
        metric="accuracy",
        metrics={"accuracy": sum(scores) / len(scores)},
        predictions=[ExamplePrediction(i, 1, int(s), float(s)) for i, s in zip(ids, scores)],
    )


def test_one_sided_p() -> None:
    base = _ev([0.0] * 20 + [1.0] * 10)
    better = _ev([1.0] * 20 + [1.0] * 10)
    assert one_sided_p(base, better) < 0.001
    assert one_sided_p(better, base) > 0.99
    assert one_sided_p(base, base) == 1.0


def _numbered(number: int, value: float, name: str) -> TrialRecord:
    t = optuna.trial.create_trial(value=value, user_attrs={attrs.CANDIDATE: {"name": name}, attrs.HASH: name})
    t.number = number
    return TrialRecord.from_frozen(t)


class _Kinds:
    """Candidates are their names; each example's score is fixed per candidate (by position in
    the held-out part, then in train); ``shown`` are a candidate's demonstrations (not fresh)."""

    def __init__(self, scores: dict[str, list[float]], shown: dict[str, set[str]] | None = None) -> None:
        self.scores = scores
        self.shown = shown or {}
        self.scored: list[str] = []

    def from_dict(self, data: dict) -> str:
        return data["name"]

    def of(self, cand: str):  # type: ignore[no-untyped-def]
        kinds = self

        class _Kind:
            @contextlib.contextmanager
            def scorer(self, c, ctx):  # type: ignore[no-untyped-def]
                yield SimpleNamespace(evaluate=lambda c, exs, split, offsets=None: kinds._eval(c, exs))

            def fresh(self, c, ctx, train):  # type: ignore[no-untyped-def]
                return [ex for ex in train if ex.id not in kinds.shown.get(c, set())]

        return _Kind()

    def _eval(self, cand: str, examples):  # type: ignore[no-untyped-def]
        self.scored.append(cand)
        position = {e.id: i for i, e in enumerate(HOLDOUT + TRAIN)}
        return _ev([self.scores[cand][position[e.id]] for e in examples], list(examples))


HOLDOUT = _examples(["a", "b"] * 20)
TRAIN = [Example(id=f"t{i}", input=f"t{i}", target="a", target_index=0, row=f"t{i}") for i in range(40)]
_BY_ID = {e.id: e for e in HOLDOUT + TRAIN}
CTX = SimpleNamespace(
    dev=_examples(["a"] * 50),
    note=lambda text: None,
    seed=0,
    task=SimpleNamespace(generates=False, has_fixed_labels=False, example=lambda i: _BY_ID[i]),
    evaluator=SimpleNamespace(measure=lambda exs, preds: {"accuracy": sum(p == 1 for p in preds) / len(preds)}),
)


def test_the_winner_is_picked_on_the_held_out_part_not_on_dev() -> None:
    base, overfit, solid = _numbered(0, 0.60, "base"), _numbered(1, 0.95, "overfit"), _numbered(2, 0.80, "solid")
    kinds = _Kinds(
        {"base": [0.0] * 30 + [1.0] * 10, "overfit": [0.0] * 28 + [1.0] * 12, "solid": [1.0] * 36 + [0.0] * 4}
    )
    chosen = select_winner(SelectionSpec(), [base, overfit, solid], base, HOLDOUT, kinds, CTX)
    assert chosen.winner.number == 2 and not chosen.kept_baseline
    assert chosen.info.picked == 2 and chosen.info.p_value < 0.1
    assert [f.trial for f in chosen.info.finalists] == [1, 2]  # best on dev first
    assert chosen.info.holdout == 40 and chosen.info.searched == 50


def test_do_no_harm_keeps_the_baseline_without_a_significant_win() -> None:
    base, close = _numbered(0, 0.60, "base"), _numbered(1, 0.90, "close")
    kinds = _Kinds({"base": [1.0] * 20 + [0.0] * 20, "close": [1.0] * 22 + [0.0] * 18})
    chosen = select_winner(SelectionSpec(), [base, close], base, HOLDOUT, kinds, CTX)
    assert chosen.winner.number == 0 and chosen.kept_baseline
    assert "do no harm" in chosen.why and "trial 1" in chosen.why
    # Off: the best finalist on the held-out part wins, significant or not.
    chosen = select_winner(SelectionSpec(do_no_harm=False), [base, close], base, HOLDOUT, kinds, CTX)
    assert chosen.winner.number == 1 and not chosen.kept_baseline


def test_finalists_are_distinct_and_capped() -> None:
    trials = [_numbered(0, 0.5, "base")] + [_numbered(i, 0.9 - i / 100, f"c{i % 3}") for i in range(1, 10)]
    kinds = _Kinds({n: [1.0] * 40 for n in ("base", "c0", "c1", "c2")})
    chosen = select_winner(SelectionSpec(finalists=2), trials, trials[0], HOLDOUT, kinds, CTX)
    assert [f.trial for f in chosen.info.finalists] == [1, 2]
    assert sorted(kinds.scored) == ["base", "c1", "c2"]


def test_train_rows_that_did_not_choose_a_finalist_are_its_evidence() -> None:
    """A 40-example held-out part alone cannot tell a 5-point gain from noise; with the 40
    train rows that are not its demonstrations it can. Rows it shows are never its evidence."""
    base, good = _numbered(0, 0.5, "base"), _numbered(1, 0.8, "good")
    # held out: baseline 20/40, good 22/40; train: baseline 10/40, good 30/40 (rows t0-t9 its demos)
    scores = {
        "base": [1.0] * 20 + [0.0] * 20 + [1.0] * 10 + [0.0] * 30,
        "good": [1.0] * 22 + [0.0] * 18 + [1.0] * 30 + [0.0] * 10,
    }
    kinds = _Kinds(scores, shown={"good": {f"t{i}" for i in range(10)}})
    alone = select_winner(SelectionSpec(), [base, good], base, HOLDOUT, kinds, CTX)
    assert alone.kept_baseline and alone.info.train == 0
    spec = SelectionSpec(train=100)
    chosen = select_winner(spec, [base, good], base, HOLDOUT, kinds, CTX, train=TRAIN)
    assert not chosen.kept_baseline and chosen.winner.number == 1
    (row,) = chosen.info.finalists
    assert row.evidence == 40 + 30 and chosen.info.evidence == 70 and chosen.info.train == 40
    # gain on the 70 shared examples: good (22 + 20) vs baseline (20 + 0) of them
    assert row.gain == pytest.approx((42 - 20) / 70)
    assert chosen.info.test == "max-T sign-flip permutation over 1 finalists"
    # a train cap: a seeded sample of that many rows
    capped = select_winner(SelectionSpec(train=12), [base, good], base, HOLDOUT, kinds, CTX, train=TRAIN)
    assert capped.info.train == 12


def test_picking_the_best_of_several_is_paid_for() -> None:
    """Ten noise finalists: the best of them looks significant on its own, not after the pick."""
    import random

    from optprompt.stats import max_t_sign_flip

    rng = random.Random(3)
    base_scores = [float(rng.random() < 0.5) for _ in range(40)]
    names = [f"n{k}" for k in range(10)]
    scores = {"base": base_scores, **{n: [float(rng.random() < 0.5) for _ in range(40)] for n in names}}
    trials = [_numbered(0, 0.5, "base")] + [_numbered(k + 1, 0.9, n) for k, n in enumerate(names)]
    chosen = select_winner(SelectionSpec(finalists=10, ensemble=0), trials, trials[0], HOLDOUT, _Kinds(scores), CTX)
    picked = chosen.info.picked
    top = [float(a) - float(b) for a, b in zip(scores[names[picked - 1]], base_scores)]
    alone = max_t_sign_flip([{str(i): d for i, d in enumerate(top)}], 0)
    assert chosen.info.p_value > alone  # the adjusted p-value is larger than the top's own
    assert chosen.info.test == "max-T sign-flip permutation over 10 finalists"


def _study(tmp_path: Path, tiny_model_dir: Path, n: int = 96, **extra) -> dict:  # type: ignore[no-untyped-def]
    data = write_sentiment_jsonl(tmp_path / "data.jsonl", n=n)
    return {
        "name": "sel",
        "model": str(tiny_model_dir),
        "output": str(tmp_path / "out"),
        "task": {"data": str(data), "input": "text", "label": "label", "id": "id"},
        "strategy": {"name": "template_search", "trials": 5, "max_demos": 2, "demo_pool": 4},
        "scoring": {"device": "cpu"},
        **extra,
    }


def test_a_study_never_scores_the_held_out_part_during_the_search(tmp_path, tiny_model_dir, tiny_model, capsys) -> None:  # type: ignore[no-untyped-def]
    spec = spec_from_dict(_study(tmp_path, tiny_model_dir))
    runner = StudyRunner(spec, model=tiny_model, progress=False)
    result = runner.run().to_dict()
    held = {e.id for e in runner.holdout}
    assert held and not held & {e.id for e in runner.dev}
    assert len(held) + len(runner.dev) == len(runner.task.dev)
    sel = result["selection"]
    assert sel["holdout"] == len(held) and sel["searched"] == len(runner.dev)
    study = optuna.load_study(study_name="sel", storage=f"sqlite:///{tmp_path / 'out' / 'study.db'}")
    for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        if attrs.CACHED_FROM not in t.user_attrs and t.user_attrs.get(attrs.ROLE) != "combined":
            assert t.user_attrs[attrs.DEV_SCORED] == len(runner.dev)
    # The rule: a finalist wins only with a significant held-out gain over the baseline.
    won = not sel["kept_baseline"]
    assert won == (
        sel.get("p_value", 1.0) < sel["alpha"] and max(f["holdout"] for f in sel["finalists"]) > sel["baseline_holdout"]
    )
    assert (result["best"]["trial"] == 0) == sel["kept_baseline"]
    from optprompt.cli.output import print_result

    print_result(result)
    shown = " ".join(capsys.readouterr().out.split())  # the summary wraps to the terminal
    assert f"re-scored on {len(held)} held-out dev examples" in shown
    from optprompt.report import write_report

    page = write_report(spec.output).read_text()
    assert 'id="selection-table"' in page
    assert all(f'data-trial="{f["trial"]}"' in page for f in sel["finalists"])
    if sel["kept_baseline"]:
        assert any("do no harm" in w for w in result["warnings"])


def test_a_small_dev_set_skips_the_default_holdout_and_says_so(tmp_path, tiny_model_dir, tiny_model) -> None:  # type: ignore[no-untyped-def]
    spec = spec_from_dict(_study(tmp_path, tiny_model_dir, n=20))
    result = StudyRunner(spec, model=tiny_model, progress=False).run().to_dict()
    assert "selection" not in result
    assert any("too few to hold" in w for w in result["warnings"])
    explicit = spec_from_dict(
        _study(tmp_path, tiny_model_dir, n=20, selection={"holdout": 0.3}, output=str(tmp_path / "o2"))
    )
    with pytest.raises(ConfigError, match="selection.holdout: 0.3 of the"):
        StudyRunner(explicit, model=tiny_model, progress=False).run().to_dict()


def test_selection_settings_are_validated() -> None:
    with pytest.raises(ConfigError, match="holdout"):
        spec_from_dict(
            {
                "name": "x",
                "model": "m",
                "output": "o",
                "task": {"data": "d"},
                "strategy": {"name": "s"},
                "selection": {"holdout": 1.5},
            }
        )


def test_the_finalists_compete_as_an_ensemble_that_exports_and_predicts_exactly(
    tmp_path, tiny_model_dir, tiny_model
) -> None:  # type: ignore[no-untyped-def]
    import optprompt
    from optprompt.kinds.ensemble import EnsembleCandidate, EnsembleKind
    from optprompt.results import StudyResult

    raw = _study(tmp_path, tiny_model_dir, selection={"do_no_harm": False, "finalists": 3, "ensemble": 2})
    raw["strategy"]["trials"] = 6
    runner = StudyRunner(spec_from_dict(raw), model=tiny_model, progress=False)
    result = runner.run().to_dict()
    study = optuna.load_study(study_name="sel", storage=f"sqlite:///{tmp_path / 'out' / 'study.db'}")
    combined = [t for t in study.trials if t.user_attrs.get(attrs.ROLE) == "combined"]
    assert len(combined) == 1  # the two best distinct prompts on dev, as one candidate
    ens = EnsembleCandidate.from_dict(combined[0].user_attrs[attrs.CANDIDATE])
    finalists = [f for f in result["selection"]["finalists"] if "combined" not in f]
    first_two = [study.trials[f["trial"]].user_attrs[attrs.HASH] for f in finalists[:2]]
    assert [m.hash for m in ens.members] == first_two
    assert any(f.get("combined") == "prompt ensemble" for f in result["selection"]["finalists"])
    assert result["n_scored"] == 6  # the combined candidate does not use up the budget

    # Scored on test as the study scores, exported, loaded back: the same predictions.
    ctx = runner.kind_context
    kind = EnsembleKind()
    with kind.scorer(ens, ctx) as scorer:
        test = scorer.evaluate(ens, runner.task.test, "test")
    best = {**result["best"], **kind.describe(ens, ctx), "test": test.to_dict(), "trial": combined[0].number}
    typed = StudyResult.from_dict({**result, "best": best})
    kind.export(typed, tmp_path / "out", tmp_path / "ens")
    overview = (tmp_path / "ens" / "prompt.txt").read_text()  # `optprompt export` names it
    for i in range(2):
        assert (tmp_path / "ens" / f"member-{i}" / "prompt.txt").read_text() in overview
    loaded = optprompt.load(tmp_path / "ens", model=tiny_model)
    predicted = loaded.predict([ex.input for ex in runner.task.test])
    labels = runner.task.labels
    assert predicted == [labels[p.pred] for p in test.predictions]
    probs = loaded.probabilities([ex.input for ex in runner.task.test[:3]])
    assert all(abs(sum(p) - 1) < 1e-6 for p in probs)


def test_average_probabilities_by_hand() -> None:
    import math

    from optprompt.kinds.ensemble import average_probabilities

    # member 0: logliks log(0.2), log(0.6) of an unnormalised 0.8 -> probs 0.25, 0.75;
    # member 1, calibrated with offsets (log 0.5, log 0.5): its normalised probs 0.5, 0.5 stay.
    m0 = [[math.log(0.2), math.log(0.6)]]
    m1 = [[math.log(0.1), math.log(0.1)]]
    probs = average_probabilities([m0, m1], [None, [math.log(0.5), math.log(0.5)]])
    assert probs[0] == pytest.approx([(0.25 + 0.5) / 2, (0.75 + 0.5) / 2])
    # Calibration moves the answer: offsets favouring choice 1 shift member 1's vote to 0.
    probs = average_probabilities([m1], [[math.log(0.2), math.log(0.8)]])
    assert probs[0][0] > probs[0][1]


def test_adjust_off_is_the_unadjusted_test_of_the_pick() -> None:
    """``adjust: false`` (the rule before fresh evidence): the picked finalist's own paired test."""
    base, solid = _numbered(0, 0.6, "base"), _numbered(1, 0.8, "solid")
    kinds = _Kinds({"base": [1.0] * 20 + [0.0] * 20, "solid": [1.0] * 27 + [0.0] * 13})
    adjusted = select_winner(SelectionSpec(), [base, solid], base, HOLDOUT, kinds, CTX)
    plain = select_winner(SelectionSpec(adjust=False), [base, solid], base, HOLDOUT, kinds, CTX)
    assert "not adjusted" in plain.info.test and "max-T" in adjusted.info.test
    # one finalist: both test the same pick, McNemar's exact p vs the permutation's
    assert 0 < plain.info.p_value < 0.05 and 0 < adjusted.info.p_value < 0.05


def test_an_ensemble_is_named_by_its_members_not_by_the_last_digits_of_its_offsets() -> None:
    """Offsets are measured on dev; their last digits vary with the CPU threads torch had
    (1 or 2 gave -8.3170444 and -8.3170450 here). A resumed study must name the ensemble
    as the uninterrupted one did."""
    from optprompt.kinds.ensemble import EnsembleCandidate
    from optprompt.prompts import PromptCandidate

    a = PromptCandidate(instruction="Classify.", template="Input: {input}\nAnswer:", calibration="mean")
    b = PromptCandidate(instruction="Label it.", template="Text: {input}\nLabel:")
    one = EnsembleCandidate((a, b), ((-8.317044401309236, -7.454904858411695), None))
    other = EnsembleCandidate((a, b), ((-8.317044960293126, -7.4549052512250595), None))
    assert one.hash == other.hash
    assert EnsembleCandidate((b, a), (None, one.offsets[0])).hash != one.hash  # members and their order name it


# --- no constant winners ------------------------------------------------------------------

# Fresh evidence where 'a' is the majority 2:1 (test, in the data set this mimics, flips it
# to 'b': a candidate answering 'a' for everything would score 0.667 here and 0.333 there).
FLIP = _examples(["a", "a", "b"] * 20)  # relabelled below: target_index 0 for "a", 1 for "b"
_FLIP_BY_ID = {e.id: e for e in FLIP}


def _labelled(answers: dict[str, list[int]]):  # type: ignore[no-untyped-def]
    """Kinds whose candidates answer fixed label indices on FLIP; the ctx of a two-label task."""
    from optprompt.scoring.evaluate import Evaluation, ExamplePrediction
    from optprompt.scoring.metrics import accuracy

    def evaluate(cand, examples, split, offsets=None):  # type: ignore[no-untyped-def]
        preds = [answers[cand][int(e.id)] for e in examples]
        gold = [e.target_index for e in examples]
        return Evaluation(
            candidate_hash=cand,
            split=split,
            metric="accuracy",
            metrics={"accuracy": accuracy(gold, preds, 2)},
            predictions=[ExamplePrediction(e.id, g, p, float(g == p)) for e, g, p in zip(examples, gold, preds)],
        )

    class _Kind:
        label = "prompt ensemble"

        @contextlib.contextmanager
        def scorer(self, c, ctx):  # type: ignore[no-untyped-def]
            yield SimpleNamespace(evaluate=evaluate)

        def fresh(self, c, ctx, train):  # type: ignore[no-untyped-def]
            return []

    kinds = SimpleNamespace(from_dict=lambda d: d["name"], of=lambda c: _Kind(), of_dict=lambda d: _Kind())
    ctx = SimpleNamespace(
        dev=FLIP,
        note=lambda text: None,
        seed=0,
        task=SimpleNamespace(
            generates=False, has_fixed_labels=True, labels=("a", "b"), example=lambda i: _FLIP_BY_ID[i]
        ),
        evaluator=SimpleNamespace(
            measure=lambda exs, preds: {"accuracy": accuracy([e.target_index for e in exs], preds, 2)}
        ),
    )
    return kinds, ctx


def _relabel(examples: list[Example]) -> list[Example]:
    import dataclasses

    return [dataclasses.replace(e, target_index=0 if e.target == "a" else 1) for e in examples]


FLIP = _relabel(FLIP)
_FLIP_BY_ID = {e.id: e for e in FLIP}


def test_a_constant_answer_is_never_declared_better() -> None:
    """The baseline answers the minority label for every input (0.333), a finalist the
    majority label (0.667): +0.333, hugely significant on accuracy, and still not a win."""
    gold = [e.target_index for e in FLIP]
    kinds, ctx = _labelled({"base": [1] * 60, "const": [0] * 60})
    base, const = _numbered(0, 0.33, "base"), _numbered(1, 0.67, "const")
    chosen = select_winner(SelectionSpec(), [base, const], base, FLIP, kinds, ctx)
    assert chosen.kept_baseline and chosen.winner.number == 0
    assert "trial 1 answers 'a' for 100% of its 60 fresh examples (where 67% are 'a')" in chosen.why
    (row,) = chosen.info.finalists
    assert row.gain == pytest.approx(1 / 3) and row.top_answer == "a" and row.top_share == 1.0
    assert row.balanced_gain == pytest.approx(0.0)  # both constant: 0.5 balanced accuracy each
    assert chosen.info.baseline_answers["top_answer"] == "b"
    # With do no harm off the constant answer is still not the pick.
    assert select_winner(SelectionSpec(do_no_harm=False), [base, const], base, FLIP, kinds, ctx).kept_baseline
    assert sum(g == 0 for g in gold) == 40


def test_a_finalist_that_reads_its_input_wins_over_a_constant_one() -> None:
    # 'reader' gets every 'b' right and 30 of the 40 'a's (0.833, balanced 0.875); 'const'
    # answers 'a' everywhere (0.667); both beat the baseline (0.333) on accuracy.
    reader = [(1 if e.target == "b" else (0 if int(e.id) % 4 else 1)) for e in FLIP]
    kinds, ctx = _labelled({"base": [1] * 60, "const": [0] * 60, "reader": reader})
    base, const, read = _numbered(0, 0.33, "base"), _numbered(1, 0.9, "const"), _numbered(2, 0.8, "reader")
    chosen = select_winner(SelectionSpec(), [base, const, read], base, FLIP, kinds, ctx)
    assert not chosen.kept_baseline and chosen.winner.number == 2
    rows = {f.trial: f for f in chosen.info.finalists}
    assert rows[2].balanced_gain > 0 and rows[1].top_share == 1.0
    # A weaker reader (every 'b', 10 of the 40 'a's: 0.5, gain +0.167, balanced 0.625) still
    # wins over the constant answer's larger gain (+0.333), which is named as passed over.
    weak = [(1 if e.target == "b" else (0 if int(e.id) % 4 == 0 else 1)) for e in FLIP]
    kinds2, ctx2 = _labelled({"base": [1] * 60, "const": [0] * 60, "reader": weak})
    again = select_winner(SelectionSpec(do_no_harm=False), [base, const, read], base, FLIP, kinds2, ctx2)
    assert again.winner.number == 2 and {f.trial: f.gain for f in again.info.finalists}[2] == pytest.approx(
        1 / 6, abs=1e-5
    )
    assert "passed over: trial 1 answers 'a' for 100%" in again.why


def test_answer_profiles_and_balanced_accuracy() -> None:
    from optprompt.scoring.metrics import balanced_accuracy
    from optprompt.stats.answers import answer_profile, ignores_input

    gold = [0, 0, 1]
    assert balanced_accuracy(gold, [0, 0, 0], 2) == balanced_accuracy(gold, [1, 1, 1], 2) == 0.5
    assert balanced_accuracy(gold, [0, 0, 1], 2) == 1.0
    const = answer_profile(gold * 10, [0] * 30, ("neg", "pos"))
    assert (const.top_answer, const.top_share, const.recall) == ("neg", 1.0, {"neg": 1.0, "pos": 0.0})
    assert ignores_input(const)
    # Answering the majority as often as the gold has it is reading the input, not ignoring it.
    skewed = answer_profile([0] * 95 + [1] * 5, [0] * 95 + [1] * 5, ("neg", "pos"))
    assert not ignores_input(skewed)
    with pytest.raises(ValueError, match="paired answers"):
        answer_profile([0, 1], [0], ("a", "b"))


def _combined_record(number: int, value: float, name: str) -> TrialRecord:
    t = optuna.trial.create_trial(
        value=value, user_attrs={attrs.CANDIDATE: {"name": name}, attrs.HASH: name, attrs.ROLE: "combined"}
    )
    t.number = number
    return TrialRecord.from_frozen(t)


def test_an_ensemble_wins_only_when_it_beats_its_best_member_by_more_than_noise() -> None:
    gold = [e.target_index for e in FLIP]
    reader = [g if i % 5 else 1 - g for i, g in enumerate(gold)]  # 48 of 60 right
    close = [g if i % 5 or i < 15 else 1 - g for i, g in enumerate(gold)]  # 51 of 60: +3, not enough
    far = list(gold)  # 60 of 60: +12
    base, single = _numbered(0, 0.33, "base"), _numbered(1, 0.8, "reader")
    for answers, picked in ((close, 1), (far, 2)):
        kinds, ctx = _labelled({"base": [1] * 60, "reader": reader, "ens": answers})
        ens = _combined_record(2, 0.9, "ens")
        chosen = select_winner(SelectionSpec(), [base, single, ens], base, FLIP, kinds, ctx)
        assert chosen.winner.number == picked and not chosen.kept_baseline
        assert ("no more than noise, so the single prompt is picked" in chosen.why) == (picked == 1)


def test_a_study_records_the_answer_spread(tmp_path, tiny_model_dir, tiny_model) -> None:  # type: ignore[no-untyped-def]
    """Given splits whose majority label flips on test (2:1 positive in train and dev, 2:1
    negative in test): result.json's ``answers`` agree with predictions.jsonl, and a winner
    that answers one label on test is flagged whatever the tiny model picked."""
    import json

    from optprompt.stats.answers import answer_profile, ignores_input

    def write(name: str, labels: list[str]) -> str:
        path = tmp_path / f"{name}.jsonl"
        words = {"positive": "lovely great stay", "negative": "awful cold room"}
        path.write_text(
            "".join(
                json.dumps({"id": f"{name}{i}", "text": f"{words[lbl]} number {i}", "label": lbl}) + "\n"
                for i, lbl in enumerate(labels)
            )
        )
        return str(path)

    pos_major, neg_major = ["positive", "positive", "negative"] * 12, ["negative", "negative", "positive"] * 12
    raw = _study(tmp_path, tiny_model_dir)
    raw["task"] = {**raw["task"], "data": {"train": write("tr", pos_major), "dev": write("dv", pos_major),
                                            "test": write("te", neg_major)}}  # fmt: skip
    raw["selection"] = {"holdout": 0}
    spec = spec_from_dict(raw)
    runner = StudyRunner(spec, model=tiny_model, progress=False)
    result = runner.run()
    labels = runner.task.labels
    rows = [json.loads(line) for line in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    for side in ("baseline", "best"):
        mine = [r for r in rows if r["role"] == side]
        profile = answer_profile([r["gold"] for r in mine], [r["pred"] for r in mine], labels)
        assert result.answers[side] == profile.to_dict()
        if side == "best" and result.best.hash != result.baseline.hash:
            flagged = any("ignores its input" in w for w in result.warnings)
            assert flagged == ignores_input(profile)
