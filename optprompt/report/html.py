"""One self-contained HTML file per study: plots embedded as data URIs, no outside resources."""

from __future__ import annotations

import base64
import json
import os
import struct
import tempfile
from collections import Counter, defaultdict
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optprompt._io import _umask, atomic_write_text
from optprompt._version import __version__
from optprompt.report.plots import Plot, study_plots
from optprompt.report.source import StudySource, load_source
from optprompt.trials import TrialRecord, failure_reason

if TYPE_CHECKING:
    from optprompt.results import Interval, ResultEntry, StudyResult

__all__ = ["REPORT_FILE", "render_html", "write_report", "files_dir_for"]

REPORT_FILE = "report.html"

_CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d1d1f;
       max-width: 1100px; margin: 0 auto; padding: 24px; background: #fff; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
.status { color: #555; margin-top: 0; }
.note { background: #fff8e1; border-left: 4px solid #f2b600; padding: 8px 12px; }
.warning { background: #fdecea; border-left: 4px solid #d93025; padding: 6px 12px; margin: 4px 0; }
table { border-collapse: collapse; margin: 8px 0; }
th, td { border: 1px solid #ddd; padding: 4px 10px; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f5f5f7; }
dl.info { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; }
dl.info dt { font-weight: 600; } dl.info dd { margin: 0; }
figure { margin: 16px 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
pre { background: #f5f5f7; padding: 10px; white-space: pre-wrap; word-break: break-word; }
footer { margin-top: 2em; color: #777; font-size: 0.85em; }
"""


def files_dir_for(report: Path) -> Path:
    """Where the PNG copies of a report's plots go: ``report.html`` -> ``report_files/``."""
    return report.with_name(f"{report.stem}_files")


def _png_size(png: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    return struct.unpack(">II", png[16:24])


def _num(x: Any, signed: bool = False) -> str:
    if x is None:
        return "—"
    return f"{x:+.3f}" if signed else f"{x:.3f}"


def _interval(iv: Interval | None, signed: bool = False) -> str:
    if iv is None:
        return "—"
    return f"[{_num(iv.low, signed)}, {_num(iv.high, signed)}]"


def _families(result: StudyResult) -> str:
    """The families of a study spanning several, side by side: each one's best on dev,
    its dev and test scores and its paired test against the baseline."""
    metric = escape(result.metric)
    rows = []
    for name, fam in (result.families or {}).items():
        best = fam.best
        cmp_ = fam.comparison
        p = cmp_.p_value if cmp_ is not None else None
        rows.append(
            f'<tr data-family="{escape(name)}"><th>{escape(name)}</th><td class="num">{fam.trials}</td>'
            f'<td class="num">{best.trial if best else "—"}</td>'
            f'<td class="num">{_num(best.dev.value if best else None)}</td>'
            f'<td class="num">{_num(best.test.value if best and best.test else None)}</td>'
            f'<td class="num">{_interval(cmp_.difference if cmp_ is not None else None, True)}</td>'
            f'<td class="num">{format(p, ".3g") if p is not None else "—"}</td></tr>'
        )
    return (
        '<table id="families-table"><tr><th>family</th><th>trials</th><th>best trial</th>'
        f"<th>dev {metric}</th><th>test {metric}</th><th>test difference vs baseline (CI)</th><th>p</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _selection(result: StudyResult) -> str:
    """Held-out selection: the finalists' dev and held-out scores, and the decision."""
    sel = result.selection
    if sel is None:
        return ""
    metric = escape(result.metric)
    rows = []
    for f in sel.finalists:
        mark = " (winner)" if f.trial == result.best.trial else ""
        what = escape(f.combined or "")
        rows.append(
            f'<tr data-trial="{f.trial}"><th>{f.trial}{mark}</th><td>{what}</td>'
            f'<td class="num">{_num(f.dev)}</td><td class="num">{_num(f.holdout)}</td></tr>'
        )
    p = sel.p_value
    decision = (
        "kept the baseline (do no harm)"
        if sel.kept_baseline
        else f"picked trial {sel.picked} (one-sided p = {format(p, '.3g') if p is not None else '—'})"
    )
    return (
        f"<p>The search scored {sel.searched} dev examples; {sel.holdout} were held out. "
        f"Baseline on the held-out part: {_num(sel.baseline_holdout)}. Decision: {escape(decision)}.</p>"
        f'<table id="selection-table"><tr><th>trial</th><th>combined</th><th>dev {metric}</th>'
        f"<th>held-out {metric}</th></tr>" + "".join(rows) + "</table>"
    )


def _info(rows: list[tuple[str, Any]]) -> str:
    items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>" for k, v in rows if v not in (None, ""))
    return f'<dl class="info">{items}</dl>'


def _strategy(name: str | None, options: dict[str, Any]) -> str | None:
    return f"{name} {json.dumps(options, sort_keys=True)}" if name else None


def _study_info(source: StudySource) -> str:
    spec, result = source.spec, source.result
    if result is not None:
        m, t, s = result.model, result.task, result.strategy
        sizes = t.sizes
        rows = [
            ("model", m.ref),
            ("model fingerprint", m.fingerprint),
            ("device / dtype", f"{m.device} / {m.dtype}"),
            ("task data", t.source),
            ("task type", t.type),
            ("labels", ", ".join(t.labels)),
            ("metric", t.metric),
            ("examples", ", ".join(f"{k} {v}" for k, v in sizes.items())),
            ("strategy", _strategy(s.name, s.options) if s is not None else None),
            ("seed", result.seed),
            ("wall time", f"{result.wall_seconds:.0f} s"),
            ("optprompt", result.optprompt_version),
        ]
    else:
        task = spec.get("task") or {}
        strategy = dict(spec.get("strategy") or {})
        rows = [
            ("model", spec.get("model")),
            (
                "task data",
                json.dumps(task.get("data")) if isinstance(task.get("data"), dict) else task.get("data"),
            ),
            ("task type", task.get("type")),
            ("metric", source.metric),
            ("strategy", _strategy(strategy.pop("name", None), strategy)),
            ("seed", spec.get("seed")),
            ("optprompt", source.meta.get("optprompt_version")),
        ]
    rows.append(("storage", f"{source.meta['storage']} (study {source.meta['study_name']!r})"))
    return _info(rows)


def _comparison(result: StudyResult) -> str:
    metric = result.metric
    base, best = result.baseline, result.best
    cmp_ = result.comparison
    conf = cmp_.difference.confidence if cmp_ is not None else None
    ci_head = f"test {conf:.0%} CI" if conf is not None else "test CI"
    dev_diff = best.dev.value - base.dev.value
    base_test = base.test.value if base.test is not None else None
    best_test = best.test.value if best.test is not None else None
    test_diff = cmp_.difference.estimate if cmp_ is not None else None
    if test_diff is None and base_test is not None and best_test is not None:
        test_diff = best_test - base_test
    rows = [
        (
            "baseline",
            "baseline",
            str(base.trial),
            _num(base.dev.value),
            _num(base_test),
            _interval(cmp_.baseline if cmp_ is not None else None),
        ),
        (
            "winner",
            "best",
            str(best.trial),
            _num(best.dev.value),
            _num(best_test),
            _interval(cmp_.winner if cmp_ is not None else None),
        ),
        (
            "difference",
            "difference",
            "",
            _num(dev_diff, True),
            _num(test_diff, True),
            _interval(cmp_.difference if cmp_ is not None else None, True),
        ),
    ]
    body = "".join(
        f'<tr data-role="{role}"><th>{label}</th><td class="num" data-field="trial">{trial}</td>'
        f'<td class="num" data-field="dev">{dev}</td><td class="num" data-field="test">{test}</td>'
        f'<td class="num" data-field="ci">{ci}</td></tr>'
        for label, role, trial, dev, test, ci in rows
    )
    out = [
        f'<table id="comparison-table"><tr><th></th><th>trial</th><th>dev {escape(metric)}</th>'
        f"<th>test {escape(metric)}</th><th>{ci_head}</th></tr>{body}</table>"
    ]
    if cmp_ is not None:
        out.append(
            f'<p id="significance">Paired test on the same {cmp_.n} test examples: '
            f'{escape(cmp_.test)}, <span data-field="p_value">p = {cmp_.p_value:.3g}</span>.</p>'
        )
    metrics = sorted(set(base.dev.metrics) | set(base.test.metrics if base.test is not None else {}))
    if len(metrics) > 1:
        columns = ("metric", "baseline dev", "winner dev", "baseline test", "winner test")
        head = "<tr>" + "".join(f"<th>{c}</th>" for c in columns) + "</tr>"
        cells = "".join(
            f"<tr><th>{escape(m)}</th>"
            + "".join(
                f'<td class="num">{_num(score.metrics.get(m) if score is not None else None)}</td>'
                for score in (base.dev, best.dev, base.test, best.test)
            )
            + "</tr>"
            for m in metrics
        )
        out.append(f'<details><summary>all metrics</summary><table id="metrics-table">{head}{cells}</table></details>')
    out.append(_answers(result))
    return "".join(out)


def _answers(result: StudyResult) -> str:
    """Single-label tasks: per-label recall of the baseline and the winner on test, and each
    one's most common answer (a winner that answers one label for everything shows here)."""
    answers = result.answers
    if not answers:
        return ""
    base, best = answers["baseline"], answers["best"]
    rows = "".join(
        f'<tr data-label="{escape(label)}"><th>{escape(label)}</th>'
        f'<td class="num">{_num(base["recall"].get(label))}</td>'
        f'<td class="num">{_num(best["recall"].get(label))}</td></tr>'
        for label in base["recall"]
    )
    foot = (
        f'<tr><th>balanced accuracy</th><td class="num">{_num(base["balanced_accuracy"])}</td>'
        f'<td class="num">{_num(best["balanced_accuracy"])}</td></tr>'
        f"<tr><th>most common answer</th><td>{escape(base['top_answer'])} ({base['top_share']:.0%})</td>"
        f"<td>{escape(best['top_answer'])} ({best['top_share']:.0%})</td></tr>"
    )
    return (
        '<table id="recall-table"><tr><th>test recall per label</th><th>baseline</th><th>winner</th></tr>'
        f"{rows}{foot}</table>"
    )


def _trials(source: StudySource) -> str:
    trials = source.study.get_trials(deepcopy=False)
    states = Counter(t.state.name.lower() for t in trials)
    reused = sum(TrialRecord.from_frozen(t).is_repeat for t in trials)
    counts = ", ".join(f'<span data-state="{s}">{n} {s}</span>' for s, n in sorted(states.items()))
    out = [f'<p id="trial-counts">{len(trials)} trials: {counts or "none yet"}']
    if reused:
        out.append(f"; {reused} repeated an already scored candidate (score reused)")
    budget = (source.spec.get("strategy") or {}).get("trials")
    if budget is not None:
        out.append(f"; budget {budget} scored trials")
    dev_scored = source.result.dev_examples_scored if source.result is not None else None
    if dev_scored is not None:
        out.append(f"; {dev_scored} dev examples scored in all")
    out.append(".</p>")
    failed: dict[str, list[int]] = defaultdict(list)
    for t in trials:
        reason = failure_reason(t)
        if reason is not None:
            failed[reason.text[:500]].append(t.number)
    if failed:
        rows = "".join(
            f'<tr><td class="num">{len(nums)}</td><td>{", ".join(map(str, nums[:10]))}'
            f"{' …' if len(nums) > 10 else ''}</td><td>{escape(reason)}</td></tr>"
            for reason, nums in sorted(failed.items(), key=lambda kv: (-len(kv[1]), kv[1][0]))
        )
        out.append(
            '<table id="failure-table"><tr><th>count</th><th>trials</th>'
            f"<th>failed or pruned because</th></tr>{rows}</table>"
        )
    if source.result is not None and source.result.format_failures:
        out.append(
            "<p>Generated answers the extraction could not parse: "
            f"{escape(json.dumps(source.result.format_failures))}.</p>"
        )
    return "".join(out)


def _figure(plot: Plot) -> str:
    if plot.png is None:
        return (
            f'<section class="plot-skipped" id="{plot.name}"><h3>{escape(plot.title)}</h3>'
            f'<p class="note">Not drawn: {escape(plot.note)}.</p></section>'
        )
    w, h = _png_size(plot.png)
    data = base64.b64encode(plot.png).decode("ascii")
    return (
        f'<figure id="{plot.name}"><h3>{escape(plot.title)}</h3>'
        f'<img class="plot" data-plot="{plot.name}" width="{w}" height="{h}" '
        f'alt="{escape(plot.title)}" '
        f'src="data:image/png;base64,{data}"><figcaption>{escape(plot.note)}</figcaption></figure>'
    )


def _kinds():  # type: ignore[no-untyped-def]
    from optprompt.kinds.registry import candidate_kinds
    from optprompt.plugins.manager import load_plugins

    return candidate_kinds(load_plugins())


def _prompt(result_entry: ResultEntry, title: str, anchor: str) -> str:
    entry = result_entry.to_dict()
    cand = result_entry.candidate
    kind = _kinds().of_dict(cand)
    extras = [f"{what}: {text}" for what, text in kind.details(cand)]
    summary = kind.summary(cand)
    if summary:
        where = f" (saved in {result_entry.artifact})" if result_entry.artifact else ""
        extras.append(f"{kind.label}: {summary}{where}; the text below is what surrounds the input")
    cal = result_entry.calibration.method
    if cal != "none":
        extras.append(f"calibration: {cal}")
    if entry.get("chat") is not None:
        extras.append("rendered through the chat template" if entry["chat"] else "plain text, no chat template")
    extra = "".join(f"<li>{escape(x)}</li>" for x in extras)
    return (
        f'<section id="{anchor}"><h3>{escape(title)} (trial {result_entry.trial})</h3>'
        f'<pre class="prompt">{escape(result_entry.prompt)}</pre><ul>{extra}</ul></section>'
    )


def render_html(source: StudySource, plots: list[Plot], files_dir: str | None = None) -> str:
    """The report for ``source`` with ``plots`` embedded, as one HTML document."""
    result = source.result
    name = source.meta["study_name"]
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    status = "finished" if result is not None else "not finished"
    parts = [
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>optprompt report: {escape(name)}</title><style>{_CSS}</style></head><body>",
        f"<header><h1>optprompt report: {escape(name)}</h1>",
        f'<p class="status" data-status="{status.replace(" ", "-")}">Study {status} · written {now}</p></header>',
    ]
    if result is None:
        parts.append(
            f'<p class="note" id="unfinished">This study has not finished: there is no result.json '
            f"in {escape(str(source.output_dir))} yet. Shown are the trials so far; the test "
            "comparison, the winning prompt and its confusion matrix appear once the study "
            "ends (run the same study again to resume it).</p>"
        )
    parts.append(f'<section id="study"><h2>Study</h2>{_study_info(source)}</section>')
    if result is not None:
        parts.append(f'<section id="comparison"><h2>Baseline vs winner</h2>{_comparison(result)}</section>')
        if result.families:
            parts.append(f'<section id="families"><h2>Families</h2>{_families(result)}</section>')
        if result.selection:
            parts.append(f'<section id="selection"><h2>Selection on held-out dev</h2>{_selection(result)}</section>')
        warnings = result.warnings
        items = "".join(f'<div class="warning">{escape(w)}</div>' for w in warnings)
        parts.append(f'<section id="warnings"><h2>Warnings</h2>{items or "<p>None.</p>"}</section>')
    else:
        best = _best_so_far(source)
        if best:
            parts.append(f'<p id="best-so-far">{escape(best)}</p>')
    parts.append(f'<section id="trials"><h2>Trials</h2>{_trials(source)}</section>')
    parts.append('<section id="plots"><h2>Plots</h2>' + "".join(_figure(p) for p in plots) + "</section>")
    if result is not None:
        best, base = result.best, result.baseline
        same = best.hash is not None and best.hash == base.hash
        parts.append(
            '<section id="prompts"><h2>Prompts</h2>'
            + _prompt(best, "Winning prompt", "winning-prompt")
            + (
                '<p id="baseline-prompt">No candidate beat the baseline on dev: the winner is the baseline prompt.</p>'
                if same
                else _prompt(base, "Baseline prompt", "baseline-prompt")
            )
            + "</section>"
        )
    saved = f" PNG copies of the plots are in {escape(files_dir)}/." if files_dir else ""
    parts.append(f"<footer>Written by optprompt {escape(__version__)}.{saved}</footer></body></html>\n")
    return "".join(parts)


def _best_so_far(source: StudySource) -> str:
    from optuna.trial import TrialState

    if len(source.study.directions) != 1:
        return ""
    done = source.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not done:
        return ""
    best = max(done, key=lambda t: (t.values[0], -t.number))
    return f"Best dev {source.metric} so far: {best.values[0]:.3f} (trial {best.number})."


def _write_bytes(path: Path, data: bytes) -> None:
    """Like :func:`optprompt._io.atomic_write_text`, for bytes."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # as the other output files: follow the umask
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_report(output_dir: str | os.PathLike[str], to: str | os.PathLike[str] | None = None) -> Path:
    """Write the HTML report of the study in ``output_dir``; returns the file written.

    Works on a finished study and on one still running (then without the test comparison,
    the prompts and the confusion matrix). The PNGs are also saved next to the report,
    in ``report_files/`` for ``report.html``.

    Args:
        output_dir: The study's output directory (holds ``study.json``).
        to: The HTML file to write (a directory gets ``report.html``); default
            ``OUTPUT/report.html``.

    Raises:
        OptpromptError: ``output_dir`` is not a study's output directory.
    """
    source = load_source(output_dir)
    target = Path(to) if to is not None else source.output_dir / REPORT_FILE
    if target.is_dir():
        target = target / REPORT_FILE
    plots = study_plots(source)
    files = files_dir_for(target)
    files.mkdir(parents=True, exist_ok=True)
    for plot in plots:
        png = files / f"{plot.name}.png"
        if plot.png is not None:
            _write_bytes(png, plot.png)
        else:  # not drawn this time: drop a stale copy from an earlier report
            png.unlink(missing_ok=True)
    return atomic_write_text(target, render_html(source, plots, files_dir=files.name))
