from __future__ import annotations

import base64
import html
import io
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import optuna
import pytest
from optprompt_plugins.template_search.strategy import TemplateSearch
from PIL import Image

from optprompt.config import spec_from_dict
from optprompt.errors import OptpromptError
from optprompt.plugins import hookimpl, load_plugins
from optprompt.plugins.manager import get_plugin_manager
from optprompt.report import REPORT_FILE, write_report
from optprompt.report.plots import confusion_matrix, param_importances, pareto_front
from optprompt.study import run_study
from optprompt.trials import keys as attrs

PNG_URI = "data:image/png;base64,"


class _Stumbling(TemplateSearch):
    """Template search that fails on trial 3 and is interrupted on the trial set by the test."""

    name = "stumbling_template_search"
    interrupt_at: int | None = None

    def propose(self, trial):  # type: ignore[no-untyped-def]
        if trial.number == 3:
            raise RuntimeError("boom <b>not bold</b>")
        if trial.number == self.interrupt_at:
            raise KeyboardInterrupt
        return super().propose(trial)


class _StumblingPlugin:
    @hookimpl
    def register_strategies(self, register):  # type: ignore[no-untyped-def]
        register(_Stumbling)


def _run(study_dict: dict, tiny_model) -> Path:
    """Run the study with the stumbling strategy; returns the output directory."""
    plugins = load_plugins(get_plugin_manager(extra_plugins=[_StumblingPlugin()]))
    spec = spec_from_dict({**study_dict, "strategy": {**study_dict["strategy"], "name": _Stumbling.name}})
    run_study(spec, plugins=plugins, model=tiny_model, progress=False)
    return Path(study_dict["output"])


@pytest.fixture
def finished(study_dict: dict, tiny_model) -> Path:
    """A finished study on the tiny model with one failed trial (its reason holds HTML)."""
    return _run(study_dict, tiny_model)


def _images(page: str) -> dict[str, bytes]:
    """The embedded PNGs by their data-plot name."""
    found = re.findall(r'<img class="plot" data-plot="([a-z_]+)"[^>]*src="data:image/png;base64,([^"]+)"', page)
    return {name: base64.b64decode(data, validate=True) for name, data in found}


class _Cells(HTMLParser):
    """Text of ``<td data-field=...>`` cells by (row data-role, field)."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[tuple[str, str], str] = {}
        self._role = self._field = None

    def handle_starttag(self, tag, attrs_):  # type: ignore[no-untyped-def]
        a = dict(attrs_)
        if tag == "tr" and "data-role" in a:
            self._role = a["data-role"]
        elif tag == "td" and "data-field" in a:
            self._field = a["data-field"]
            self.cells[(self._role, self._field)] = ""

    def handle_endtag(self, tag):  # type: ignore[no-untyped-def]
        if tag == "td":
            self._field = None

    def handle_data(self, data):  # type: ignore[no-untyped-def]
        if self._field is not None:
            self.cells[(self._role, self._field)] += data


def test_report_of_a_finished_study(finished: Path) -> None:
    path = write_report(finished)
    assert path == finished / REPORT_FILE
    page = path.read_text(encoding="utf-8")
    result = json.loads((finished / "result.json").read_text())

    # Three plots, each a real PNG of a sane size, and nothing loaded from outside.
    assert page.count(PNG_URI) == 3
    images = _images(page)
    assert set(images) == {"optimization_history", "param_importances", "confusion_matrix"}
    for name, png in images.items():
        with Image.open(io.BytesIO(png)) as im:
            im.verify()
        with Image.open(io.BytesIO(png)) as im:
            assert im.format == "PNG" and 300 <= im.width <= 1600 and 250 <= im.height <= 1600, (
                name,
                im.size,
            )
            assert np.asarray(im.convert("L")).std() > 10  # not a blank canvas
        assert (finished / "report_files" / f"{name}.png").read_bytes() == png
    assert not re.search(r'(src|href)="(https?:)?//', page)

    # The baseline-vs-winner table holds result.json's numbers.
    parser = _Cells()
    parser.feed(page)
    cells, cmp_ = parser.cells, result["comparison"]
    for role, key, iv in (("baseline", "baseline", "baseline"), ("best", "best", "winner")):
        entry = result[key]
        assert cells[(role, "trial")] == str(entry["trial"])
        assert cells[(role, "dev")] == f"{entry['dev']['value']:.3f}"
        assert cells[(role, "test")] == f"{entry['test']['value']:.3f}"
        assert cells[(role, "ci")] == f"[{cmp_[iv]['low']:.3f}, {cmp_[iv]['high']:.3f}]"
    d = cmp_["difference"]
    # Per-label recall of both on test (a classification study), from result.json's answers.
    answers = result["answers"]
    assert 'id="recall-table"' in page
    for label, recall in answers["best"]["recall"].items():
        row = re.search(rf'<tr data-label="{re.escape(label)}">(.*?)</tr>', page).group(1)
        assert f"{recall:.3f}" in row if recall is not None else "—" in row or "-" in row
    assert cells[("difference", "test")] == f"{d['estimate']:+.3f}"
    assert cells[("difference", "ci")] == f"[{d['low']:+.3f}, {d['high']:+.3f}]"
    assert f"p = {cmp_['p_value']:.3g}" in page and cmp_["test"] in page
    assert f"{cmp_['n']} test examples" in page

    # Warnings, trial counts, the failure with its (escaped) reason, prompt, model and task.
    for w in result["warnings"]:
        assert html.escape(w) in page
    assert f'<span data-state="fail">{result["trial_states"]["fail"]} fail</span>' in page
    assert "RuntimeError: boom &lt;b&gt;not bold&lt;/b&gt;" in page and "<b>not bold</b>" not in page
    assert html.escape(result["best"]["prompt"]) in page
    assert result["model"]["ref"] in page and result["model"]["fingerprint"] in page
    assert ", ".join(result["task"]["labels"]) in page
    assert 'data-status="finished"' in page and 'id="unfinished"' not in page


def test_report_of_a_study_still_running(study_dict: dict, tiny_model, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_Stumbling, "interrupt_at", 5)
    with pytest.raises(KeyboardInterrupt):
        _run(study_dict, tiny_model)
    out = Path(study_dict["output"])
    assert not (out / "result.json").exists()

    page = write_report(out).read_text(encoding="utf-8")
    assert 'id="unfinished"' in page and 'data-status="not-finished"' in page
    assert set(_images(page)) == {"optimization_history", "param_importances"}
    assert page.count(PNG_URI) == 2
    assert 'id="confusion_matrix"' in page and "Not drawn: the study has not finished" in page
    assert 'id="comparison"' not in page and 'id="prompts"' not in page
    assert "interrupted by the user" in page and "Best dev accuracy so far" in page
    assert not (out / "report_files" / "confusion_matrix.png").exists()


def test_not_a_study_directory(tmp_path: Path) -> None:
    with pytest.raises(OptpromptError, match="not a directory"):
        write_report(tmp_path / "missing")
    with pytest.raises(OptpromptError, match=r"not a study output directory \(no study.json"):
        write_report(tmp_path)
    (tmp_path / "study.json").write_text(
        json.dumps({"storage": f"sqlite:///{tmp_path / 'study.db'}", "study_name": "x"})
    )
    with pytest.raises(OptpromptError, match="does not exist"):
        write_report(tmp_path)
    assert not (tmp_path / "study.db").exists()  # not created by looking
    (tmp_path / "study.json").write_text("{")
    with pytest.raises(OptpromptError, match="not valid JSON"):
        write_report(tmp_path)


# --- multi-objective studies (Pareto front) and plots that cannot be drawn --------------


def _candidate_attrs(i: int, role: str | None = None) -> dict:
    out = {
        attrs.HASH: f"h{i}",
        attrs.CANDIDATE: {"instruction": f"Instruction {i}", "template": "{input}"},
        attrs.METRICS: {"accuracy": 0.5},
    }
    if role:
        out[attrs.ROLE] = role
    return out


def test_pareto_front_of_a_two_objective_study(tmp_path: Path) -> None:
    from optuna.distributions import CategoricalDistribution, IntDistribution
    from optuna.trial import create_trial

    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="two", storage=url, directions=["maximize", "minimize"])
    study.set_metric_names(["dev accuracy", "prompt tokens"])
    study.add_trial(create_trial(values=[0.5, 40.0], user_attrs=_candidate_attrs(0, "baseline")))
    dists = {
        "instruction": CategoricalDistribution(["a", "b", "c"]),
        "n_demos": IntDistribution(0, 4),
    }
    points = [
        (0.7, 120.0, "a", 2),
        (0.6, 60.0, "b", 1),
        (0.8, 200.0, "c", 4),
        (0.55, 90.0, "a", 3),
        (0.65, 30.0, "b", 0),
        (0.4, 150.0, "c", 4),
    ]
    for i, (acc, tokens, ins, demos) in enumerate(points, start=1):
        study.add_trial(
            create_trial(
                values=[acc, tokens],
                params={"instruction": ins, "n_demos": demos},
                distributions=dists,
                user_attrs=_candidate_attrs(i),
            )
        )

    plot = pareto_front(study)
    assert plot is not None and plot.drawn, plot
    assert plot.note.startswith(f"{len(study.best_trials)} of 7 completed trials are on the front")
    assert pareto_front(optuna.create_study()) is None  # single objective: no Pareto plot

    # The whole report of such a study (no result.json: the runner writes none yet).
    (tmp_path / "study.json").write_text(
        json.dumps({"spec": {"task": {"type": "classification"}}, "storage": url, "study_name": "two"})
    )
    page = write_report(tmp_path).read_text(encoding="utf-8")
    assert set(_images(page)) == {"optimization_history", "param_importances", "pareto_front"}
    assert "prompt tokens: minimize" in page and "(the first of the study&#x27;s objectives)" in page
    assert "Best dev" not in page  # no single best for two objectives
    assert "strategy" not in page.split('id="study"')[1].split("</section>")[0]  # not in study.json


def test_param_importances_left_out_with_a_reason() -> None:
    from optuna.distributions import CategoricalDistribution, IntDistribution
    from optuna.trial import create_trial

    study = optuna.create_study(direction="maximize")
    study.add_trial(create_trial(value=0.5, user_attrs=_candidate_attrs(0, "baseline")))
    plot = param_importances(study)
    assert not plot.drawn and "at least 2 completed trials with parameters; there are 0" in plot.note
    dist = {"instruction": CategoricalDistribution(["a", "b"])}
    for i, ins in enumerate("abab", start=1):
        study.add_trial(
            create_trial(
                value=0.5 + 0.1 * (ins == "a"),
                params={"instruction": ins},
                distributions=dist,
                user_attrs=_candidate_attrs(i),
            )
        )
    plot = param_importances(study)
    assert not plot.drawn and "at least 2 searched parameters; the trials have 1" in plot.note

    same = optuna.create_study(direction="maximize")  # two parameters, every trial scores alike
    dists = {**dist, "n_demos": IntDistribution(0, 2)}
    for i, (ins, n) in enumerate(zip("abab", (0, 1, 2, 0), strict=True)):
        same.add_trial(
            create_trial(
                value=0.5,
                params={"instruction": ins, "n_demos": n},
                distributions=dists,
                user_attrs=_candidate_attrs(i),
            )
        )
    plot = param_importances(same)
    assert not plot.drawn and "equally important" in plot.note


def test_confusion_matrix_of_multiple_choice_names_positions() -> None:
    rows = [{"role": "best", "gold": g, "pred": p} for g, p in ((0, 0), (1, 1), (2, 0), (3, 3), (1, 2))]
    rows += [{"role": "baseline", "gold": 0, "pred": 1}]
    plot = confusion_matrix(rows, [])
    assert plot.drawn and plot.note == "3 of 5 test examples answered correctly"
    assert not confusion_matrix(rows, ["a", "b"], role="nobody").drawn


# --- the report in a real browser ---------------------------------------------------------

_CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

_CHECK_SCRIPT = """<script>
window.addEventListener('load', () => {
  const height = document.documentElement.scrollHeight;
  const images = [...document.querySelectorAll('img.plot')].map(img => {
    const r = img.getBoundingClientRect();
    return {plot: img.dataset.plot, complete: img.complete, naturalWidth: img.naturalWidth,
            naturalHeight: img.naturalHeight, clientWidth: img.clientWidth,
            clientHeight: img.clientHeight,
            x: r.left + window.scrollX + img.clientLeft, y: r.top + window.scrollY + img.clientTop};
  });
  const pre = document.createElement('pre');
  pre.id = 'img-check';
  pre.textContent = JSON.stringify({images, height});
  document.body.appendChild(pre);
});
</script>"""


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert _CHROMIUM is not None
    cmd = [
        _CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        f"--user-data-dir={tmp / 'chromium-profile'}",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)


@pytest.mark.skipif(
    _CHROMIUM is None,
    reason="chromium is not installed (Debian: apt-get install chromium; "
    "the Makefile's test target installs it where apt-get is available)",
)
def test_report_renders_in_headless_chromium(finished: Path, tmp_path: Path) -> None:
    report = write_report(finished)
    embedded = _images(report.read_text(encoding="utf-8"))

    # 1. Load a copy with a script that records every plot's decoded size and position.
    probe = tmp_path / "probe.html"
    probe.write_text(
        report.read_text(encoding="utf-8").replace("</body>", _CHECK_SCRIPT + "</body>"),
        encoding="utf-8",
    )
    dom = _chromium(tmp_path, "--window-size=1280,4000", "--dump-dom", probe.as_uri()).stdout
    m = re.search(r'<pre id="img-check">(.*?)</pre>', dom, re.S)
    assert m, f"the check script did not run; chromium printed:\n{dom[:2000]}"
    check = json.loads(html.unescape(m.group(1)))
    shown = {img["plot"]: img for img in check["images"]}
    assert set(shown) == set(embedded) == {"optimization_history", "param_importances", "confusion_matrix"}
    for name, img in shown.items():
        with Image.open(io.BytesIO(embedded[name])) as im:
            size = im.size
        assert img["complete"] and (img["naturalWidth"], img["naturalHeight"]) == size, img
        assert (img["clientWidth"], img["clientHeight"]) == size, img  # shown at 1:1

    # 2. Screenshot the report itself, tall enough for the whole page.
    shot = tmp_path / "shot.png"
    height = max(4000, int(check["height"]) + 50)
    _chromium(tmp_path, f"--window-size=1280,{height}", f"--screenshot={shot}", report.as_uri())
    with Image.open(shot) as im:
        page = np.asarray(im.convert("RGB"), dtype=np.int16)
    assert page.shape[:2] == (height, 1280)
    assert len(np.unique(page.reshape(-1, 3), axis=0)) > 200  # text, tables and plots, not a blank page

    # 3. Each plot's region of the screenshot shows that plot's pixels.
    for name, img in shown.items():
        with Image.open(io.BytesIO(embedded[name])) as im:
            rgba = im.convert("RGBA")
            want = Image.new("RGB", rgba.size, "white")
            want.paste(rgba, mask=rgba.getchannel("A"))
        want_px = np.asarray(want, dtype=np.int16)
        x, y = round(img["x"]), round(img["y"])
        got = page[y : y + want_px.shape[0], x : x + want_px.shape[1]]
        assert got.shape == want_px.shape, (name, got.shape, want_px.shape)
        assert got.std() > 10, f"{name}: the region is blank"
        diff = np.abs(got - want_px).mean()
        assert diff < 4, f"{name}: screenshot region differs from the plot (mean abs diff {diff:.1f})"
