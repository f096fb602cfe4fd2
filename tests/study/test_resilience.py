"""Robust studies, tested for real: SIGKILL and resume, two workers on PostgreSQL,
trial timeouts, multi-fidelity pruning, corrupt storage."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest
import yaml
from optprompt_testdata import write_sentiment_jsonl

from optprompt.config import spec_from_dict
from optprompt.errors import OptpromptError
from optprompt.plugins import hookimpl, load_plugins
from optprompt.plugins.manager import get_plugin_manager
from optprompt.prompts import PromptCandidate
from optprompt.strategies import BaseStrategy
from optprompt.study import StudyRunner, attrs, run_study
from optprompt.study.interrupts import deferred_interrupts
from optprompt.study.resilience import reseed_sampler
from optprompt.study.trials import counts


def _study(tmp_path: Path, model_dir: Path, name: str, **extra) -> dict:
    data = write_sentiment_jsonl(tmp_path / "data.jsonl", n=96)
    return {
        "name": name,
        "model": str(model_dir),
        "seed": 3,
        "output": str(tmp_path / "out"),
        "task": {
            "data": str(data),
            "input": "text",
            "label": "label",
            "id": "id",
            "split": {"train": 0.25, "dev": 0.5, "test": 0.25},
        },
        "strategy": {"name": "template_search", "trials": 8, "max_demos": 3, "demo_pool": 6},
        "scoring": {"device": "cpu", "batch_tokens": 1024},
        "workers": {"heartbeat_interval": 1, "grace_period": 3},
        **extra,
    }


def _cli(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "optprompt.cli.main", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def _trials(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)


def test_sigkill_mid_trial_then_resume_equals_uninterrupted_run(tmp_path: Path, tiny_model_dir: Path) -> None:
    # Reference: the same study, never interrupted.
    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    ref_yaml = ref_dir / "study.yaml"
    slow = {"device": "cpu", "batch_tokens": 64}  # small batches: trials last long enough to be killed in
    ref_yaml.write_text(yaml.safe_dump(_study(ref_dir, tiny_model_dir, "killme", scoring=slow)))
    ref = _cli("run", str(ref_yaml), "-q")
    assert ref.wait(timeout=240) == 0, ref.stderr.read()

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    study_yaml = run_dir / "study.yaml"
    study_yaml.write_text(yaml.safe_dump(_study(run_dir, tiny_model_dir, "killme", scoring=slow)))
    url = f"sqlite:///{run_dir / 'out' / 'study.db'}"
    # A kill that lands between two trials (one just finished, the next not yet asked for)
    # leaves nothing running: the study is then resumed and killed again, up to 3 times.
    left_running: list[int] = []
    for _attempt in range(3):
        proc = _cli("run", str(study_yaml), "-q")
        deadline = time.time() + 180
        killed_running = None
        while time.time() < deadline and proc.poll() is None:
            try:
                trials = _trials(url, "killme")
            except Exception:
                time.sleep(0.05)
                continue
            done = sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
            running = [t.number for t in trials if t.state == optuna.trial.TrialState.RUNNING]
            if done >= 3 and running:
                proc.send_signal(signal.SIGKILL)
                killed_running = running[0]
                break
            time.sleep(0.02)
        proc.wait(timeout=30)
        assert killed_running is not None, "the run finished before it could be killed mid-trial"
        # The trial seen running may have finished between that read and the kill: the killed
        # trial is the one the storage still shows running.
        left_running = [t.number for t in _trials(url, "killme") if t.state == optuna.trial.TrialState.RUNNING]
        if left_running:
            break
    assert left_running, "the kill landed between two trials, three times"
    killed_running = left_running[0]
    assert not (run_dir / "out" / "result.json").exists()
    # No half-written file was left behind.
    assert not list((run_dir / "out").glob(".*.tmp"))

    resumed = _cli("run", str(study_yaml), "-q")
    assert resumed.wait(timeout=240) == 0, resumed.stderr.read()
    trials = _trials(url, "killme")
    dead = trials[killed_running]
    assert dead.state == optuna.trial.TrialState.FAIL and attrs.FAIL_REASON not in dead.user_attrs
    assert sum(counts(t) for t in trials) == 8  # the killed trial was re-run, not counted
    ref_trials = _trials(f"sqlite:///{ref_dir / 'out' / 'study.db'}", "killme")
    hashes = [
        t.user_attrs[attrs.HASH]
        for t in trials
        if t.state.is_finished() and counts(t) or attrs.CACHED_FROM in t.user_attrs
    ]
    ref_hashes = [t.user_attrs[attrs.HASH] for t in ref_trials if counts(t) or attrs.CACHED_FROM in t.user_attrs]
    assert hashes == ref_hashes
    got = json.loads((run_dir / "out" / "result.json").read_text())
    want = json.loads((ref_dir / "out" / "result.json").read_text())
    assert got["best"]["hash"] == want["best"]["hash"]
    assert got["best"]["test"]["metrics"] == want["best"]["test"]["metrics"]
    assert got["n_void"] == 1


def test_two_workers_on_postgresql_share_one_budget(tmp_path: Path, tiny_model_dir: Path, postgres_url: str) -> None:
    name = f"workers-{uuid.uuid4().hex[:8]}"
    spec = _study(tmp_path, tiny_model_dir, name)
    spec["strategy"]["trials"] = 12
    study_yaml = tmp_path / "study.yaml"
    study_yaml.write_text(yaml.safe_dump(spec))
    try:
        # The same command twice, as Optuna users do: each worker gets its own OUTPUT/workers/HOST-N.
        workers = [_cli("worker", str(study_yaml), "--storage", postgres_url, "-q") for _ in range(2)]
        outs = [w.communicate(timeout=300) for w in workers]
        assert [w.returncode for w in workers] == [0, 0], [o[1][-2000:] for o in outs]
        trials = _trials(postgres_url, name)
        assert sum(counts(t) for t in trials) == 12  # the budget, exactly once
        assert all(t.state.is_finished() for t in trials)
        shares = [int(o[0].split("this worker ran ")[1].split(" ")[0]) for o in outs]
        assert sum(shares) == len([t for t in trials if t.user_attrs.get(attrs.ROLE) != "combined"])
        assert len({t.number for t in trials}) == len(trials)
        own = sorted((tmp_path / "out" / "workers").iterdir())
        assert [p.name for p in own] == [f"{socket.gethostname()}-{i}" for i in (1, 2)]
        for folder in own:
            assert json.loads((folder / "result.json").read_text())["n_scored"] == 12
    finally:
        try:
            optuna.delete_study(study_name=name, storage=postgres_url)
        except KeyError:
            pass


class _Sleepy(BaseStrategy):
    """Every third proposal hangs."""

    name = "sleepy"

    def propose(self, trial):  # type: ignore[no-untyped-def]
        if trial.number % 3 == 2:
            time.sleep(30)
        return PromptCandidate(
            instruction=f"Say #{trial.number}.",
            template="Input: {input}\nAnswer:",
            verbalizer=tuple((lbl, lbl) for lbl in self.context.task.labels),
        )


class _SleepyPlugin:
    @hookimpl
    def register_strategies(self, register):  # type: ignore[no-untyped-def]
        register(_Sleepy)


def test_trial_timeout_fails_trial_and_study_goes_on(study_dict: dict, tiny_model) -> None:
    plugins = load_plugins(get_plugin_manager(extra_plugins=[_SleepyPlugin()]))
    spec = spec_from_dict({**study_dict, "strategy": {"name": "sleepy", "trials": 5}, "trial_timeout": 1.5})
    started = time.time()
    result = StudyRunner(spec, plugins=plugins, model=tiny_model, progress=False).run()
    assert time.time() - started < 20
    assert result["failure_reasons"] == {"TrialTimeout": 1}
    assert result["trial_states"]["fail"] == 1 and result["n_scored"] == 5


@pytest.mark.parametrize("pruner", ["median", "successive_halving", "wilcoxon"])
def test_pruning_saves_dev_scorings_and_pruned_never_win(tmp_path: Path, tiny_model, pruner: str) -> None:
    spec = _study(
        tmp_path,
        Path("unused"),
        f"prune-{pruner}",
        pruning={"pruner": pruner, "slices": 4, "warmup_trials": 1, "p_threshold": 0.5},
    )
    spec["strategy"]["trials"] = 14
    result = run_study(spec_from_dict(spec), model=tiny_model, progress=False)
    trials = _trials(f"sqlite:///{tmp_path / 'out' / 'study.db'}", spec["name"])
    pruned = [
        t
        for t in trials
        if t.state == optuna.trial.TrialState.PRUNED and t.user_attrs[attrs.FAIL_REASON].startswith("pruned")
    ]
    n_dev = result["task"]["sizes"]["dev"]
    assert pruned, "a random tiny model gives clearly worse candidates to prune"
    assert all(t.user_attrs[attrs.DEV_SCORED] < n_dev for t in pruned)
    assert result["best"]["trial"] not in {t.number for t in pruned}
    assert result["dev_examples_scored"] < result["n_scored"] * n_dev


def test_reseeded_sampler_replays_its_draws() -> None:
    for sampler_cls in (optuna.samplers.RandomSampler, optuna.samplers.TPESampler):
        draws = []
        for _ in range(2):
            sampler = sampler_cls(seed=1)
            study = optuna.create_study(sampler=sampler)
            assert reseed_sampler(sampler, 5, 3)
            draws.append(study.ask().suggest_float("x", 0, 1))
        assert draws[0] == draws[1]


def test_truncated_storage_is_a_clear_error(study_dict: dict, tiny_model) -> None:
    run_study(spec_from_dict(study_dict), model=tiny_model, progress=False)
    db = Path(study_dict["output"]) / "study.db"
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 3])
    with pytest.raises(OptpromptError, match="cannot open study storage|no study named"):
        run_study(spec_from_dict(study_dict), model=tiny_model, progress=False)


class _DiedBeforeHeartbeat(BaseException):
    """Stands for SIGKILL landing between asking for a trial and starting its heartbeat thread."""


def test_worker_killed_before_its_heartbeat_thread_leaves_a_stale_trial(
    tmp_path: Path, tiny_model_dir: Path, tiny_model, monkeypatch
) -> None:
    import threading

    from optprompt.study import runner as runner_module

    spec = spec_from_dict(_study(tmp_path, tiny_model_dir, "early"))
    real_enter = runner_module.Heartbeat.__enter__
    calls = {"n": 0}

    def dies_on_second(self):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:
            raise _DiedBeforeHeartbeat
        return real_enter(self)

    monkeypatch.setattr(runner_module.Heartbeat, "__enter__", dies_on_second)
    with pytest.raises(_DiedBeforeHeartbeat):
        StudyRunner(spec, model=tiny_model, progress=False).run()
    monkeypatch.setattr(runner_module.Heartbeat, "__enter__", real_enter)
    url = f"sqlite:///{tmp_path / 'out' / 'study.db'}"
    assert [t.state for t in _trials(url, "early")][-1] == optuna.trial.TrialState.RUNNING

    out: dict = {}
    resumed = threading.Thread(
        target=lambda: out.update(r=StudyRunner(spec, model=tiny_model, progress=False).run()), daemon=True
    )
    resumed.start()
    resumed.join(timeout=120)
    assert not resumed.is_alive(), "the resumed run waits forever for a trial that never beat"
    trials = _trials(url, "early")
    assert trials[1].state == optuna.trial.TrialState.FAIL  # went stale after the grace period
    assert out["r"]["n_scored"] == 8


def test_sigterm_is_handled_like_ctrl_c(tmp_path: Path, tiny_model_dir: Path) -> None:
    """A real process: SIGTERM mid-study exits 143 with a message, the running trial is
    recorded as interrupted, finished ones stay, and the same command completes the study."""
    study_yaml = tmp_path / "study.yaml"
    study_yaml.write_text(
        yaml.safe_dump(_study(tmp_path, tiny_model_dir, "term", scoring={"device": "cpu", "batch_tokens": 64}))
    )
    url = f"sqlite:///{tmp_path / 'out' / 'study.db'}"
    proc = _cli("run", str(study_yaml), "-q")
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        try:
            trials = _trials(url, "term")
        except Exception:
            time.sleep(0.05)
            continue
        if sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials) >= 2:
            proc.send_signal(signal.SIGTERM)
            break
        time.sleep(0.02)
    assert proc.wait(timeout=60) == 143, proc.stderr.read()
    assert "terminated (SIGTERM)" in proc.stderr.read()
    trials = _trials(url, "term")
    assert not any(t.state == optuna.trial.TrialState.RUNNING for t in trials)  # none left for a heartbeat to expire
    finished = [t.number for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(finished) >= 2
    resumed = _cli("run", str(study_yaml), "-q")
    assert resumed.wait(timeout=240) == 0, resumed.stderr.read()
    after = _trials(url, "term")
    assert all(after[n].state == optuna.trial.TrialState.COMPLETE for n in finished)  # nothing finished was lost
    assert json.loads((tmp_path / "out" / "result.json").read_text())["n_scored"] == 8


def test_postgresql_connections_killed_mid_study(tmp_path: Path, tiny_model_dir: Path, postgres_url: str) -> None:
    """pg_terminate_backend on every connection of a running worker, again and again at
    random moments from start-up to the end: the worker reconnects (or fails that one trial
    with its reason), exits 0, and the study completes its budget with no trial left running."""
    import random

    import sqlalchemy

    name = f"pgkill-{uuid.uuid4().hex[:8]}"
    spec = _study(tmp_path, tiny_model_dir, name, scoring={"device": "cpu", "batch_tokens": 64})
    spec["strategy"]["trials"] = 12
    study_yaml = tmp_path / "study.yaml"
    study_yaml.write_text(yaml.safe_dump(spec))
    admin = sqlalchemy.create_engine(postgres_url, poolclass=sqlalchemy.pool.NullPool)
    # The worker's connections carry a name of their own: only they are killed.
    worker_url = f"{postgres_url}?application_name={name}"
    kill = sqlalchemy.text(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = :app"
    ).bindparams(app=name)
    rng = random.Random(7)
    try:
        proc = _cli("worker", str(study_yaml), "--storage", worker_url, "-q", "--output", str(tmp_path / "w"))
        killed, mid_trial, deadline = 0, 0, time.time() + 240
        while time.time() < deadline and proc.poll() is None:
            time.sleep(rng.uniform(0.05, 0.5))
            with admin.connect() as conn:
                if conn.execute(kill).scalar():
                    killed += 1
                    try:
                        states = [t.state for t in _trials(postgres_url, name)]
                        mid_trial += optuna.trial.TrialState.RUNNING in states
                    except Exception:
                        pass  # not created yet
        assert proc.wait(timeout=240) == 0, proc.stderr.read()[-3000:]
        assert killed >= 2 and mid_trial >= 1, (killed, mid_trial)  # the study ran through real losses
        trials = _trials(postgres_url, name)
        assert sum(counts(t) for t in trials) == 12
        assert not any(t.state == optuna.trial.TrialState.RUNNING for t in trials)
        for t in trials:
            if t.state == optuna.trial.TrialState.FAIL:  # a failed trial says why
                assert attrs.FAIL_REASON in t.user_attrs
        assert (tmp_path / "w" / "result.json").exists()
    finally:
        try:
            optuna.delete_study(study_name=name, storage=postgres_url)
        except KeyError:
            pass


def test_reconnect_repeats_only_lost_connections_and_names_the_storage() -> None:
    import sqlalchemy.exc

    from optprompt.study.resilience import connection_lost, with_reconnect

    lost = sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))
    wrapped = optuna.exceptions.StorageInternalError("during the commit")
    wrapped.__cause__ = lost
    assert connection_lost(lost) and connection_lost(wrapped)
    assert not connection_lost(ValueError("bad value"))

    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise wrapped
        return "ok"

    retried = []
    assert with_reconnect(flaky, what="reading", where="db://x", delay=0, on_retry=retried.append) == "ok"
    assert len(calls) == 3 and retried == [wrapped, wrapped]
    with pytest.raises(ValueError):
        with_reconnect(lambda: (_ for _ in ()).throw(ValueError("bad")), what="reading", where="db://x", delay=0)

    def always() -> None:
        raise lost

    with pytest.raises(OptpromptError, match=r"study storage db://x while reading, 3 times"):
        with_reconnect(always, what="reading", where="db://x", attempts=3, delay=0)


# --- Ctrl-C / SIGTERM never leave a trial running, wherever they land ---------------


class _Raised(Exception):
    pass


def test_a_signal_inside_the_block_is_delivered_once_after_it() -> None:
    seen: list[str] = []

    def handler(signum, frame):  # type: ignore[no-untyped-def]
        raise _Raised(signal.Signals(signum).name)

    old = signal.signal(signal.SIGTERM, handler)
    try:
        with pytest.raises(_Raised, match="SIGTERM"):
            with deferred_interrupts():
                os.kill(os.getpid(), signal.SIGTERM)
                os.kill(os.getpid(), signal.SIGTERM)
                seen.append("block finished")
        assert seen == ["block finished"]
        assert signal.getsignal(signal.SIGTERM) is handler  # restored
    finally:
        signal.signal(signal.SIGTERM, old)


def test_ctrl_c_inside_the_block_becomes_keyboard_interrupt_after_it() -> None:
    done = []
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupts():
            os.kill(os.getpid(), signal.SIGINT)
            done.append(1)
    assert done == [1]


def test_interrupt_between_reserving_and_scoring_fails_the_trial(
    tmp_path: Path, tiny_model_dir: Path, tiny_model, monkeypatch
) -> None:
    """The window _one_trial's own handler does not cover: the trial is asked for, not yet scored."""
    spec = spec_from_dict(_study(tmp_path, tiny_model_dir, "window"))
    real = StudyRunner._baseline_state
    calls = {"n": 0}

    def interrupted_on_third(study):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(study)

    monkeypatch.setattr(StudyRunner, "_baseline_state", staticmethod(interrupted_on_third))
    with pytest.raises(KeyboardInterrupt):
        StudyRunner(spec, model=tiny_model, progress=False).run()
    trials = _trials(f"sqlite:///{tmp_path / 'out' / 'study.db'}", "window")
    states = [t.state for t in trials]
    assert states[:2] == [optuna.trial.TrialState.COMPLETE] * 2
    assert states[2] == optuna.trial.TrialState.FAIL
    assert "interrupted" in trials[2].user_attrs[attrs.FAIL_REASON]
