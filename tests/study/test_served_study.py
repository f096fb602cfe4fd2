"""Whole studies through a served model (a stand-in server backed by the tiny model): the
same result as in-process, the server lost mid-study, and families that train."""

from __future__ import annotations

from pathlib import Path

import pytest
from served_standin import StandIn
from tcp_proxy import Proxy

from optprompt.config import spec_from_dict
from optprompt.errors import ConfigError, ServerUnavailable
from optprompt.study.runner import run_study
from optprompt.trials import records


@pytest.fixture
def standin(tiny_model, tiny_model_dir):
    server = StandIn(tiny_model, root=str(tiny_model_dir)).start()
    yield server
    server.stop()


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


def test_a_study_through_a_server_scores_as_in_process(study_dict: dict, standin: StandIn, tmp_path: Path) -> None:
    local = run_study(spec_from_dict({**study_dict, "output": str(tmp_path / "local")}), progress=False)
    spec = spec_from_dict({**study_dict, "model": {"url": standin.url}, "output": str(tmp_path / "served")})
    served = run_study(spec, progress=False)
    assert served.model.ref == standin.url and served.model.family == "served"
    assert served.best.test is not None and local.best.test is not None
    assert served.best.hash == local.best.hash
    assert served.best.test.value == pytest.approx(local.best.test.value)
    assert served.baseline.dev.value == pytest.approx(local.baseline.dev.value)


def test_a_server_lost_mid_study_voids_the_trial_and_a_second_run_resumes(
    study_dict: dict, standin: StandIn, tmp_path: Path
) -> None:
    import optuna

    proxy = Proxy(_port(standin.url)).start()
    try:
        # Prompt log-probabilities: one request per scoring here, so the cut falls mid-study.
        model = {"url": f"http://127.0.0.1:{proxy.port}/v1", "retries": 1, "ranking": "prompt_logprobs"}
        spec = spec_from_dict({**study_dict, "model": model})
        proxy.cut_after(b"POST /v1/completions", 4)  # the probe, the baseline, two trials
        with pytest.raises(ServerUnavailable, match="optprompt run"):
            run_study(spec, progress=False)
        storage = f"sqlite:///{Path(spec.output) / 'study.db'}"
        before = records(optuna.load_study(study_name=spec.name, storage=storage))
        lost = [t for t in before if t.fail_reason and t.fail_reason.startswith("server lost")]
        assert len(lost) == 1 and lost[0].is_void, [(t.number, t.state, t.fail_reason) for t in before]
        finished = {t.number for t in before if t.is_complete}
        assert finished
        proxy.restore()
        result = run_study(spec, progress=False)
        after = records(optuna.load_study(study_name=spec.name, storage=storage))
        assert finished <= {t.number for t in after if t.is_complete}
        assert result.n_void == 1 and result.n_scored == 6
    finally:
        proxy.stop()


def test_a_strategy_that_trains_needs_the_weights(study_dict: dict, standin: StandIn, tiny_model_dir) -> None:
    soft = {"name": "soft_prompt", "trials": 2, "epochs": 1}
    spec = spec_from_dict({**study_dict, "model": {"url": standin.url}, "strategy": soft})
    with pytest.raises(ConfigError, match=r"trains on the model's weights.*weights: DIR"):
        run_study(spec, progress=False)


def test_auto_skips_the_families_that_train_without_weights(
    study_dict: dict, standin: StandIn, tiny_model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from optprompt.plugins import load_plugins
    from optprompt.study.models import ModelPool
    from optprompt.study.session import build_strategy
    from optprompt.tasks import build_task

    spec = spec_from_dict({**study_dict, "model": {"url": standin.url}, "strategy": {"name": "auto", "trials": 6}})
    plugins = load_plugins()
    task = build_task(spec.task, plugins=plugins, name=spec.name)
    strategy = build_strategy(spec, task, plugins, ModelPool(spec, plugins, progress=False))
    assert strategy.families and not any(s.trains for s in strategy.families.values())
    assert "skipped: they train on the model's weights" in caplog.text
    with_weights = spec_from_dict(
        {**study_dict, "model": {"url": standin.url, "weights": str(tiny_model_dir)}, "strategy": {"name": "auto"}}
    )
    strategy = build_strategy(with_weights, task, plugins, ModelPool(with_weights, plugins, progress=False))
    assert any(s.trains for s in strategy.families.values())


def test_a_served_model_generates_for_a_strategy(study_dict: dict, standin: StandIn, tiny_model) -> None:
    """A strategy's rewriter may be a served model (a strong one rewriting for a small one)."""
    from optprompt.plugins import load_plugins
    from optprompt.scoring.backends import ServedBackend
    from optprompt.strategies.services import StrategyServices
    from optprompt.study.models import ModelPool

    spec = spec_from_dict(study_dict)
    pool = ModelPool(spec, load_plugins(), model=tiny_model, progress=False)
    services = StrategyServices(pool.for_strategy, default_ref=spec.model)
    served, local = services.generator(standin.url), services.generator(None)
    assert isinstance(served.backend.backend, ServedBackend)  # behind the study's score cache
    prompts = ["Rewrite the instruction: classify the review."]
    assert served.generate(prompts, max_new_tokens=6) == local.generate(prompts, max_new_tokens=6)


def test_the_constrained_figure_comes_from_the_servers_guided_decoding(
    study_dict: dict, standin: StandIn, tmp_path: Path
) -> None:
    spec = spec_from_dict({**study_dict, "model": {"url": standin.url}, "output": str(tmp_path / "guided")})
    result = run_study(spec, progress=False)
    assert result.constrained_generation is not None
    guided = [r for r in standin.requests if (r["body"] or {}).get("structured_outputs")]
    assert guided and all(set(r["body"]["structured_outputs"]["choice"]) == {"positive", "negative"} for r in guided)


def test_per_input_demonstrations_by_words_need_no_embedding_model(
    study_dict: dict, standin: StandIn, tmp_path: Path
) -> None:
    """A served model has no hidden states to pool: without an ``embedder`` its per-input
    demonstrations compare words (``similarity: lexical``, the default there), and the same
    study in-process, asked for lexical retrieval, picks the same demonstrations."""
    knn = {"k": [2], "pool": 12}
    strategy = {**study_dict["strategy"], "trials": 4, "demos": ["knn"]}
    base = {**study_dict, "selection": {"holdout": 0}}
    lexical = {**strategy, "knn": {**knn, "similarity": ["lexical"]}}
    local = run_study(spec_from_dict({**base, "strategy": lexical, "output": str(tmp_path / "l")}), progress=False)
    served_study = {**base, "strategy": {**strategy, "knn": knn}, "model": {"url": standin.url}}
    served = run_study(spec_from_dict({**served_study, "output": str(tmp_path / "served")}), progress=False)
    assert served.best.candidate["retrieval"]["similarity"] == "lexical"
    assert served.best.hash == local.best.hash
    assert served.best.test.value == pytest.approx(local.best.test.value)
