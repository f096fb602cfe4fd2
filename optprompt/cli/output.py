"""What the CLI prints: results, leaderboards, plugin lists."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from optprompt._io import read_json

if TYPE_CHECKING:
    from optprompt.plugins.manager import Plugins
    from optprompt.results import StudyResult

__all__ = ["print_result", "print_families", "print_teacher", "print_distillation", "print_plugins", "leaderboard"]


def _kinds(plugins: Plugins | None = None):  # type: ignore[no-untyped-def]
    from optprompt.kinds.registry import candidate_kinds
    from optprompt.plugins.manager import load_plugins

    return candidate_kinds(plugins or load_plugins())


def trials_line(result: StudyResult) -> str:
    """How many trials ran, and how many used up the budget: ``strategy.trials`` counts the
    baseline's trial and each distinct candidate scored; repeats, interrupted or rejected
    trials and the ensemble combined from the finalists do not count (``optprompt show``
    says which is which)."""
    options = result.strategy.options if result.strategy is not None else {}
    budget = options.get("budget")
    minutes = budget.get("minutes") if isinstance(budget, dict) else None
    trials = (result.strategy.budget if result.strategy is not None else {}).get("trials")
    if minutes is not None:
        of = f" in the {minutes:g}-minute budget"
    else:
        of = f" of the budget of {trials}" if trials else " of the budget"
    return f"{result.n_trials} trials ({result.n_scored}{of}, the baseline included)"


def print_result(
    result: StudyResult | dict[str, Any],
    *,
    output: str | None = None,
    plugins: Plugins | None = None,
    width: int | None = None,
    wide: bool = False,
) -> None:
    """Baseline and winner, their prompts and dev/test scores, and the paired comparison,
    fitted to the terminal as ``show`` fits its table: sentences wrap, prompt lines and
    candidate fields longer than the width end in "…", tables share the width.

    Args:
        result: The study's result (as :func:`run_study` returns it, or loaded).
        output: The output directory, to say where the files are.
        plugins: The loaded plugins whose candidate kinds describe the candidates
            (discovered when None).
        width: Columns to fit (the terminal's when None).
        wide: Print every field in full, whatever the width.
    """
    from optprompt.cli.fit import clip, format_table, terminal_width, wrap
    from optprompt.results import StudyResult

    result = StudyResult.from_dict(result)
    cols: int | None = None if wide else (terminal_width() if width is None else width)

    def say(text: str = "") -> None:
        print("\n".join(wrap(part, cols) if part else part for part in text.split("\n")))

    def table(rows: list[dict[str, Any]], fixed: tuple[str, ...], indent: str = "  ") -> None:
        lines, hidden = format_table(rows, None if cols is None else cols - len(indent), fixed=fixed)
        print("\n".join(indent + line for line in lines))
        if hidden:
            say(f"{indent}(columns hidden at this width: {', '.join(hidden)})")

    kinds = _kinds(plugins)
    metric = result.metric
    base, best = result.baseline, result.best
    say(f"\nstudy {result.name!r}: {trials_line(result)}, model {result.model.ref}, {result.wall_seconds:.0f} s")
    sizes = result.task.sizes
    say(f"task: {result.task.source} (train {sizes['train']}, dev {sizes['dev']}, test {sizes['test']})")
    if result.task.bad_rows:
        from optprompt.tasks.bad_rows import describe

        say(f"task.bad_rows: skip: {describe(result.task.bad_rows)}")
    cut = False
    for title, e in (("BASELINE PROMPT", base), ("WINNING PROMPT", best)):
        test = f"{e.test.value:.3f}" if e.test is not None else "-"
        say(f"\n=== {title} (trial {e.trial}) — dev {metric} {e.dev.value:.3f}, test {metric} {test} ===")
        lines = [*e.prompt.splitlines()]
        kind = kinds.of_dict(e.candidate)
        lines += [f"--- {what}: {text}".replace("\n", "⏎") for what, text in kind.details(e.candidate)]
        summary = kind.summary(e.candidate)
        if summary:
            lines.append(
                f"--- {kind.column or kind.label}: {summary}".replace("\n", "⏎")
                + (f" ({e.artifact})" if e.artifact else "")
            )
        if e.calibration.method != "none":
            lines.append(f"--- calibration: {e.calibration.method} (label offsets {e.calibration.offsets})")
        for line in lines:
            shown = clip(line, cols)
            cut = cut or shown != line
            print(shown)
    if cut:
        where = f"`optprompt show {output} --trial N`" if output else "`optprompt show DIR --trial N`"
        say(f"(lines longer than {cols} columns cut with …; {where} or `--wide` prints them in full)")
    front = result.pareto or []
    if front:
        names = result.objectives
        say(f"\nPareto front ({len(front)} prompts; objectives {', '.join(names)}; select {result.select!r}):")
        table(
            [
                {
                    " ": "*" if m.trial == best.trial else "",
                    "trial": m.trial,
                    **{n: f"{m.objectives[n]:.4g}" for n in names},
                }
                for m in front
            ],
            fixed=(" ", "trial", *names),
        )
    if result.families:
        print_families(result, width=cols)
    selection = result.selection
    if selection is not None and selection.finalists:
        say(
            f"\nselection: {len(selection.finalists)} finalists re-scored on {selection.holdout} held-out dev "
            f"examples (the search scored {selection.searched})"
            + (f" and up to {selection.train} train rows that did not choose them" if selection.train else "")
            + f"; baseline on held-out dev {selection.baseline_holdout:.3f}"
        )
        table(
            [
                {
                    " ": "*" if f.trial == best.trial else "",
                    "trial": f.trial,
                    "dev": f"{f.dev:.3f}",
                    "held-out": f"{f.holdout:.3f}",
                    **({"top answer": f"{f.top_answer} {f.top_share:.0%}"} if f.top_answer is not None else {}),
                    "combined": f"{f.combined} of the best finalists" if f.combined else "",
                }
                for f in selection.finalists
            ],
            fixed=(" ", "trial", "dev", "held-out"),
        )
        if not selection.kept_baseline and selection.p_value is not None:
            test = f"; {selection.test}" if selection.test else ""
            say(
                f"  picked trial {selection.picked} on {selection.evidence or selection.holdout} fresh examples "
                f"(one-sided p = {selection.p_value:.3g} against the baseline{test})"
            )
    cmp_ = result.comparison
    if cmp_ is not None:
        for label, iv in (("baseline", cmp_.baseline), ("winner", cmp_.winner)):
            say(f"test {metric} {label}: {iv.estimate:.3f} (95% CI [{iv.low:.3f}, {iv.high:.3f}])")
        d = cmp_.difference
        say(
            f"\ntest {metric}: baseline {base.test.value:.3f} -> winner {best.test.value:.3f} "
            f"(difference {d.estimate:+.3f}, 95% CI [{d.low:+.3f}, {d.high:+.3f}], "
            f"{cmp_.test} p = {cmp_.p_value:.3g}, n = {cmp_.n})"
        )
    answers = result.answers
    if answers:
        for side, label in (("baseline", "baseline"), ("best", "winner")):
            a = answers[side]
            recall = ", ".join(f"{k} {v:.2f}" for k, v in a["recall"].items() if v is not None)
            say(
                f"test answers of the {label}: {a['top_answer']!r} for {a['top_share']:.0%}; balanced accuracy "
                f"{a['balanced_accuracy']:.3f}; recall per label: {recall}"
            )
    served = result.constrained_generation
    if served:
        iv = served["interval"]
        say(
            f"test {served['metric']} of the winner answering by greedy generation constrained to the answer set "
            f"(as a serving stack does; uncalibrated): {served['value']:.3f} (95% CI [{iv['low']:.3f}, "
            f"{iv['high']:.3f}]); it answers as the study's scored prediction on {served['agreement']:.0%} of test"
        )
    if result.teacher:
        print_teacher(result, width=cols)
    if result.distillation:
        print_distillation(result, width=cols)
    context = result.context
    if context is not None and context.truncated_examples:
        say(
            f"\ncontext: {context.truncated_examples} example(s) cut to fit the model's {context.limit} tokens "
            f"(task.truncate: {context.truncate}; up to {context.max_tokens_cut} input tokens cut)"
        )
    reasons = result.failure_reasons or {}
    if reasons:
        counted = ", ".join(f"{n} {kind}" for kind, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))
        say(f"\nfailed or pruned trials: {counted}")
    for w in result.warnings:
        say(f"warning: {w}")
    if output:
        say(
            f"\nresults in {output}/result.json; `optprompt show {output}` for the leaderboard, "
            f"`optprompt export {output} --to DIR` for the {kinds.of_dict(best.candidate).export_label}"
            + (" and its distilled form (DIR/distilled)" if result.distillation else "")
        )


def print_teacher(result: StudyResult, width: int | None = None) -> None:
    """Distillation: teacher, student (the winner) and the student's baseline on test
    (lines wrapped to ``width``; None: as they are)."""
    from optprompt.cli.fit import print_wrapped

    t = result.teacher
    if t is None:
        return
    metric = result.metric
    extra = f", {t.dropped} left out" if t.dropped else ""
    print_wrapped(
        f"\nteacher {t.ref}: labelled {t.train_labelled} train and {t.unlabeled_labelled} unlabelled inputs{extra}",
        width,
    )
    for label, c in (("student baseline -> teacher", t.comparison), ("teacher -> student", t.student_vs_teacher)):
        if c is None:
            continue
        d = c.difference
        print_wrapped(
            f"test {metric} {label}: {c.baseline.estimate:.3f} -> {c.winner.estimate:.3f} "
            f"(difference {d.estimate:+.3f}, 95% CI [{d.low:+.3f}, {d.high:+.3f}], {c.test} p = {c.p_value:.3g})",
            width,
        )


def print_distillation(result: StudyResult, width: int | None = None) -> None:
    """``distill``: the winner and its distilled form on test: tokens per prediction, score, paired test
    (sentences wrapped to ``width``; None: as they are)."""
    from optprompt.cli.fit import print_wrapped

    d = result.distillation
    if d is None:
        return
    metric = result.metric
    c = d.comparison
    diff = c.difference
    reused = " (recorded earlier: read back, not trained again)" if d.reused else ""
    took = f" in {d.seconds:.0f} s" if d.seconds is not None and not d.reused else ""
    print_wrapped(
        f"\ndistilled the winner into {d.method} under a short prompt{took}{reused}: "
        f"learnt its answers on {d.distilled_inputs} train and unlabelled inputs; adapter in {d.artifact}",
        width,
    )
    print(f"  {'':<10} {'tokens/prediction':>17} {'test ' + metric:>14}")
    for label, side in (("winner", d.winner), ("distilled", d.distilled)):
        print(f"  {label:<10} {side.tokens_per_prediction:>17.1f} {side.test.value:>14.3f}")
    print_wrapped(
        f"  {d.token_ratio:.2f}x fewer tokens per prediction; test {metric} distilled - winner {diff.estimate:+.3f} "
        f"(95% CI [{diff.low:+.3f}, {diff.high:+.3f}], {c.test} p = {c.p_value:.3g}, n = {c.n})",
        width,
    )


def print_families(result: StudyResult, width: int | None = None) -> None:
    """The families of a study spanning several, side by side: best on dev, dev and test, p-value
    (fitted to ``width``; None: as they are)."""
    from optprompt.cli.fit import format_table, print_wrapped

    metric = result.metric
    print_wrapped(f"\nfamilies (best of each on dev, scored on test against the baseline; {metric}):", width)
    rows = []
    for name, fam in (result.families or {}).items():
        best = fam.best
        p = fam.comparison.p_value if best is not None and fam.comparison is not None else None
        rows.append(
            {
                "family": name,
                "trials": fam.trials,
                "trial": best.trial if best is not None else "-",
                "dev": f"{best.dev.value:.3f}" if best is not None else "-",
                "test": f"{best.test.value:.3f}" if best is not None and best.test is not None else "-",
                "p": f"{p:.3g}" if p is not None else "-",
            }
        )
    lines, _ = format_table(rows, None if width is None else width - 2, fixed=("trials", "trial", "dev", "test", "p"))
    print("\n".join("  " + line for line in lines))
    schedule = (result.strategy_summary or {}).get("schedule") or {}
    if schedule.get("kind") == "halving":
        dropped = ", ".join(f"{f} after rung {r + 1}" for f, r in schedule.get("eliminated_after_rung", {}).items())
        print_wrapped(
            f"  successive halving: rung {schedule['rung'] + 1} of {schedule['rungs']}, "
            f"still in: {', '.join(schedule['survivors'])}" + (f"; dropped: {dropped}" if dropped else ""),
            width,
            indent="    ",
        )
    promoted = schedule.get("promoted") or {}
    if promoted:
        pairs = ", ".join(f"trial {full} <- {low}" for full, low in promoted.items())
        print_wrapped(f"  full runs retraining a low-fidelity configuration: {pairs}", width, indent="    ")


def leaderboard(output_dir: str | Path, top: int = 10):  # type: ignore[no-untyped-def]
    """A pandas DataFrame of the study's trials, best first."""
    import pandas as pd

    from optprompt.study.runner import SPEC_FILE
    from optprompt.study.storage import open_study
    from optprompt.trials import TrialRecord

    meta = read_json(Path(output_dir) / SPEC_FILE, what=f"study directory file {SPEC_FILE}")
    study = open_study(meta["storage"], meta["study_name"], create=False)
    kinds = _kinds()
    rows = []
    order: list[str] = []  # the kinds' columns, merged in the order each kind gives them
    for t in study.get_trials(deepcopy=False):
        record = TrialRecord.from_frozen(t)
        cand = record.candidate or {}
        described = kinds.of_dict(cand).columns(cand)
        previous = None
        for col in described:
            if col not in order:
                order.insert(order.index(previous) + 1 if previous else len(order), col)
            previous = col
        rows.append(
            {
                "trial": t.number,
                "state": t.state.name.lower(),
                "dev": t.values[0] if t.values else None,
                "role": record.role.value if record.role else "",
                "family": record.family or "",
                **described,
                "note": getattr(record.failure, "text", "")
                or (f"same as trial {record.cached_from}" if record.is_repeat else ""),
            }
        )
    fixed = ["trial", "state", "dev", "role"]
    if any(r["family"] for r in rows):  # a study spanning several families (the auto strategy)
        fixed.append("family")
    rows = [{c: r.get(c, "") for c in [*fixed, *order, "note"]} for r in rows]
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    df = df.sort_values(["dev", "trial"], ascending=[False, True], na_position="last")
    return df.head(top).reset_index(drop=True)


def print_plugins() -> None:
    """Every registered plugin with its source (kept here for callers of the old place)."""
    from optprompt.cli.plugins_cmd import print_plugins as _print

    _print()
