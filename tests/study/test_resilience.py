"""Robust studies, tested for real: SIGKILL and resume, two workers on PostgreSQL,
trial timeouts, multi-fidelity pruning, corrupt storage."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import optuna
import pytest
import yaml
from hooked_cli import Hooked
from optprompt_testdata import write_sentiment_jsonl

from optprompt.config import spec_from_dict
from optprompt.errors import OptpromptError
from optprompt.plugins import hookimpl, load_plugins
from optprompt.plugins.manager import get_plugin_manager
from optprompt.prompts import PromptCandidate
from optprompt.strategies import BaseStrategy
from optprompt.study import StudyRunner, run_study
from optprompt.study.interrupts import deferred_interrupts
from optprompt.study.resilience import reseed_sampler
from optprompt.trials import is_void, uses_budget
from optprompt.trials import keys as attrs


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


def _outcome(out: Path, name: str) -> dict:
    """What a study chose: its candidate sequence (parameters and hash of every finished
    trial that is not void, in order), winner and test metrics."""
    trials = _trials(f"sqlite:///{out / 'study.db'}", name)
    result = json.loads((out / "result.json").read_text())
    return {
        "sequence": [
            (t.params, t.user_attrs.get(attrs.HASH)) for t in trials if t.state.is_finished() and not is_void(t)
        ],
        "best": result["best"]["hash"],
        "test": result["best"]["test"]["metrics"],
    }


def test_sigkill_mid_trial_then_resume_equals_uninterrupted_run(
    tmp_path: Path, tiny_model_dir: Path, tiny_model
) -> None:  # type: ignore[no-untyped-def]
    """Killed twice at known moments (trial 3 running, the index once reported to differ;
    then the 4th candidate proposed after the resume), resumed: the same candidates in the
    same order, the same winner and test metrics as a run never interrupted (made in this
    process, on the same model files: the killed and resumed runs are the real processes).
    tools/kill_resume_stress.py kills at random moments, many times."""
    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    run_study(spec_from_dict(_study(ref_dir, tiny_model_dir, "killme")), model=tiny_model, progress=False)

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    study_yaml = run_dir / "study.yaml"
    study_yaml.write_text(yaml.safe_dump(_study(run_dir, tiny_model_dir, "killme")))
    url = f"sqlite:///{run_dir / 'out' / 'study.db'}"
    killed = []
    for pause_at in (3, 7):  # trial 7 of the resumed run proposes the 7th counted candidate (3 is void)
        run = Hooked("run", str(study_yaml), "-q", pause_at=(pause_at,))
        assert run.running() == pause_at, run.wait()[2][-3000:]
        run.kill(signal.SIGKILL)
        assert run.wait()[0] == -signal.SIGKILL
        states = {t.number: t.state for t in _trials(url, "killme")}
        assert states[pause_at] == optuna.trial.TrialState.RUNNING  # killed mid-trial
        killed.append(pause_at)
    assert not (run_dir / "out" / "result.json").exists()
    assert not list((run_dir / "out").glob(".*.tmp"))  # no half-written file was left behind

    resumed = _cli("run", str(study_yaml), "-q")
    assert resumed.wait(timeout=240) == 0, resumed.stderr.read()
    trials = _trials(url, "killme")
    for number in killed:  # failed by their heartbeat, without a reason: void, re-run
        dead = trials[number]
        assert dead.state == optuna.trial.TrialState.FAIL and attrs.FAIL_REASON not in dead.user_attrs
    assert sum(uses_budget(t) for t in trials) == 8
    assert _outcome(run_dir / "out", "killme") == _outcome(ref_dir / "out", "killme")
    assert json.loads((run_dir / "out" / "result.json").read_text())["n_void"] == 2


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
        failed = [f"worker {i} exited {w.returncode}:\n{o[1][-3000:]}" for i, (w, o) in enumerate(zip(workers, outs))]
        assert [w.returncode for w in workers] == [0, 0], "\n".join(f for f, w in zip(failed, workers) if w.returncode)
        trials = _trials(postgres_url, name)
        assert sum(uses_budget(t) for t in trials) == 12  # the budget, exactly once
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


class _Hangs(BaseStrategy):
    """Every third proposal hangs (until the trial timeout ends it)."""

    name = "hangs"
    returned_from_hang: list[int] = []

    def propose(self, trial):  # type: ignore[no-untyped-def]
        if trial.number % 3 == 2:
            threading.Event().wait(600)  # nothing sets it: only the trial timeout ends the wait
            self.returned_from_hang.append(trial.number)
        return PromptCandidate(
            instruction=f"Say #{trial.number}.",
            template="Input: {input}\nAnswer:",
            verbalizer=tuple((lbl, lbl) for lbl in self.context.task.labels),
        )


class _HangsPlugin:
    @hookimpl
    def register_strategies(self, register):  # type: ignore[no-untyped-def]
        register(_Hangs)


def test_trial_timeout_fails_trial_and_study_goes_on(study_dict: dict, tiny_model) -> None:
    plugins = load_plugins(get_plugin_manager(extra_plugins=[_HangsPlugin()]))
    # 10 s: far above what a trial that does not hang needs on the tiny model, even on a busy machine.
    spec = spec_from_dict({**study_dict, "strategy": {"name": "hangs", "trials": 5}, "trial_timeout": 10})
    result = StudyRunner(spec, plugins=plugins, model=tiny_model, progress=False).run().to_dict()
    assert result["failure_reasons"] == {"TrialTimeout": 1}
    assert result["trial_states"]["fail"] == 1 and result["n_scored"] == 5
    assert _Hangs.returned_from_hang == []  # the hung proposal was cut off, not waited for


@pytest.mark.parametrize("pruner", ["median", "successive_halving", "wilcoxon"])
def test_pruning_saves_dev_scorings_and_pruned_never_win(tmp_path: Path, tiny_model, pruner: str) -> None:
    spec = _study(
        tmp_path,
        Path("unused"),
        f"prune-{pruner}",
        pruning={"pruner": pruner, "slices": 4, "warmup_trials": 1, "p_threshold": 0.5},
    )
    spec["strategy"]["trials"] = 14
    result = run_study(spec_from_dict(spec), model=tiny_model, progress=False).to_dict()
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


def _tpe_proposals(*, orphan: bool, settle: bool) -> list[tuple]:
    """Positions 3-6 of a TPE study with a parameterless baseline, as the runner drives it;
    with ``orphan``, a killed run's trial 3 is left running first."""
    from optprompt.study.resilience import settle_orphaned_trials

    sampler = optuna.samplers.TPESampler(seed=3, n_startup_trials=2)
    study = optuna.create_study(sampler=sampler, direction="maximize")
    study.tell(study.ask(), 0.5)

    def propose(position: int) -> tuple[optuna.Trial, tuple]:
        reseed_sampler(sampler, 3, position)
        t = study.ask()
        params = (t.suggest_categorical("a", list("xyz")), t.suggest_int("n", 0, 3))
        return t, (*params, t.suggest_categorical("b", list("pqrs")))

    def score(params: tuple) -> float:
        return sum(map(ord, str(params))) % 97 / 97

    for position in (1, 2):
        t, params = propose(position)
        study.tell(t, score(params))
    if orphan:
        propose(3)  # the killed run's trial: still running
    if settle:
        assert settle_orphaned_trials(study, exclusive=True, wait=0) == int(orphan)
    out = []
    for position in range(3, 7):
        t, params = propose(position)
        study.tell(t, score(params))
        out.append(params)
    return out


def test_a_killed_runs_running_trial_is_failed_before_the_resumed_run_proposes() -> None:
    """The cause of resumed runs that proposed another candidate (1 run in 10): Optuna 5's TPE
    counts running trials as bad results (constant_liar), and the killed run's trial stays
    running until its heartbeat goes stale. The runner now fails it before proposing."""
    uninterrupted = _tpe_proposals(orphan=False, settle=True)
    if optuna.samplers.TPESampler()._constant_liar:  # the sampler sees the orphan: another proposal
        assert _tpe_proposals(orphan=True, settle=False) != uninterrupted
    assert _tpe_proposals(orphan=True, settle=True) == uninterrupted


def test_orphans_on_a_shared_storage_are_failed_as_their_heartbeats_go_stale(tmp_path: Path) -> None:
    from optprompt.study.resilience import settle_orphaned_trials
    from optprompt.study.storage import make_storage

    storage = make_storage(f"sqlite:///{tmp_path / 'shared.db'}", heartbeat_interval=1, grace_period=1)
    study = optuna.create_study(storage=storage, study_name="shared")
    with pytest.warns(UserWarning, match="Heartbeat of storage"):  # Optuna's note on ask() with heartbeats
        study.ask()  # beats once as it is created, then never again: its process died
    # Not this run's storage alone: it may be a live worker's trial, so it is failed only once stale.
    assert settle_orphaned_trials(study, exclusive=False, wait=30, interval=0.1) == 1
    assert study.trials[0].state == optuna.trial.TrialState.FAIL
    assert settle_orphaned_trials(study, exclusive=False, wait=30) == 0  # nothing left: no wait


def test_a_trial_killed_while_recorded_as_pruned_or_rejected_is_re_run() -> None:
    """The reason is stored before the state: a process killed in between leaves a running
    trial with a pruned or rejected reason, which the heartbeat check fails. It is void (re-run),
    not a failure that uses up the budget: the uninterrupted study had it pruned."""
    from optuna.trial import TrialState, create_trial

    for reason in ("pruned: pruned after 12 of 48 dev examples", "rejected: two labels share a word"):
        died = create_trial(state=TrialState.FAIL, user_attrs={attrs.FAIL_REASON: reason})
        assert is_void(died) and not uses_budget(died)
    raised = create_trial(state=TrialState.FAIL, user_attrs={attrs.FAIL_REASON: "ValueError: bad"})
    assert not is_void(raised) and uses_budget(raised)


def test_a_trial_that_never_beat_goes_stale_too(tmp_path: Path) -> None:
    """A trial beats as it is created; one whose creator died (or lost its connection as the
    creation was acknowledged) before that never beats, and Optuna never calls it stale: the
    study then waited on it for ever (seen in the chaos soak). It is failed after the grace period."""
    from optprompt.study.resilience import settle_orphaned_trials
    from optprompt.study.storage import make_storage

    storage = make_storage(f"sqlite:///{tmp_path / 'silent.db'}", heartbeat_interval=1, grace_period=1)
    study = optuna.create_study(storage=storage, study_name="silent")
    optuna.storages.RDBStorage._create_new_trial(storage, study._study_id)  # created, never beat
    assert settle_orphaned_trials(study, exclusive=False, wait=30, interval=0.1) == 1
    assert study.trials[0].state == optuna.trial.TrialState.FAIL


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

    from optprompt.study import executor as runner_module

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
        StudyRunner(spec, model=tiny_model, progress=False).run().to_dict()
    monkeypatch.setattr(runner_module.Heartbeat, "__enter__", real_enter)
    url = f"sqlite:///{tmp_path / 'out' / 'study.db'}"
    assert [t.state for t in _trials(url, "early")][-1] == optuna.trial.TrialState.RUNNING

    out: dict = {}
    resumed = threading.Thread(
        target=lambda: out.update(r=StudyRunner(spec, model=tiny_model, progress=False).run().to_dict()), daemon=True
    )
    resumed.start()
    resumed.join(timeout=120)
    assert not resumed.is_alive(), "the resumed run waits forever for a trial that never beat"
    trials = _trials(url, "early")
    assert trials[1].state == optuna.trial.TrialState.FAIL  # went stale after the grace period
    assert out["r"]["n_scored"] == 8


def test_sigterm_is_handled_like_ctrl_c(tmp_path: Path, tiny_model_dir: Path) -> None:
    """A real process: SIGTERM mid-trial (trial 3 running, the process says when) exits 143
    with a message, the running trial is recorded as interrupted, finished ones stay, and
    the same command completes the study."""
    study_yaml = tmp_path / "study.yaml"
    study_yaml.write_text(yaml.safe_dump(_study(tmp_path, tiny_model_dir, "term")))
    url = f"sqlite:///{tmp_path / 'out' / 'study.db'}"
    run = Hooked("run", str(study_yaml), "-q", pause_at=(3,))
    assert run.running() == 3
    run.kill(signal.SIGTERM)
    code, _, err = run.wait(timeout=60)
    assert code == 143, err
    assert "terminated (SIGTERM)" in err
    trials = _trials(url, "term")
    assert not any(t.state == optuna.trial.TrialState.RUNNING for t in trials)  # none left for a heartbeat to expire
    assert trials[3].state == optuna.trial.TrialState.FAIL
    assert trials[3].user_attrs[attrs.FAIL_REASON].startswith("interrupted")
    finished = [t.number for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert finished == [0, 1, 2]
    resumed = _cli("run", str(study_yaml), "-q")
    assert resumed.wait(timeout=240) == 0, resumed.stderr.read()
    after = _trials(url, "term")
    assert all(after[n].state == optuna.trial.TrialState.COMPLETE for n in finished)  # nothing finished was lost
    assert json.loads((tmp_path / "out" / "result.json").read_text())["n_scored"] == 8


def test_postgresql_connections_killed_mid_study(tmp_path: Path, tiny_model_dir: Path, postgres_url: str) -> None:
    """pg_terminate_backend on every connection of a running worker while trials 2, 5 and 8
    run (the worker says when): it reconnects (or fails that one trial with its reason),
    exits 0, and the study completes its budget with no trial left running. (Losses at
    random moments, in flight too: tools/chaos_soak.py.)"""
    import sqlalchemy

    name = f"pgkill-{uuid.uuid4().hex[:8]}"
    spec = _study(tmp_path, tiny_model_dir, name)
    spec["strategy"]["trials"] = 12
    study_yaml = tmp_path / "study.yaml"
    study_yaml.write_text(yaml.safe_dump(spec))
    admin = sqlalchemy.create_engine(postgres_url, poolclass=sqlalchemy.pool.NullPool)
    # The worker's connections carry a name of their own: only they are killed.
    worker_url = f"{postgres_url}?application_name={name}"
    kill = sqlalchemy.text(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = :app"
    ).bindparams(app=name)
    pauses = (2, 5, 8)
    try:
        worker = Hooked("worker", str(study_yaml), "--storage", worker_url, "-q", pause_at=pauses)
        killed = []
        for _ in pauses:
            number = worker.running()
            assert number is not None, worker.wait()[2][-3000:]
            with admin.connect() as conn:
                killed.append(conn.execute(kill).scalar())
            assert _trials(postgres_url, name)[number].state == optuna.trial.TrialState.RUNNING
            worker.resume()
        code, out, err = worker.wait(timeout=240)
        assert code == 0, err[-3000:]
        assert all(n >= 1 for n in killed), killed  # each time the worker lost its connections mid-trial
        trials = _trials(postgres_url, name)
        assert sum(uses_budget(t) for t in trials) == 12
        assert not any(t.state == optuna.trial.TrialState.RUNNING for t in trials)
        for t in trials:
            if t.state == optuna.trial.TrialState.FAIL:  # a failed trial says why
                assert attrs.FAIL_REASON in t.user_attrs
        assert len(list((tmp_path / "out" / "workers").glob("*/result.json"))) == 1
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
                signal.raise_signal(signal.SIGTERM)  # to this thread, now: no delivery race
                signal.raise_signal(signal.SIGTERM)  # to this thread, now: no delivery race
                seen.append("block finished")
        assert seen == ["block finished"]
        assert signal.getsignal(signal.SIGTERM) is handler  # restored
    finally:
        signal.signal(signal.SIGTERM, old)


def test_ctrl_c_inside_the_block_becomes_keyboard_interrupt_after_it() -> None:
    # Python's own Ctrl-C handler, whatever this process inherited: a shell starts background
    # jobs with SIGINT ignored, and Python then leaves it ignored (so is a deferred one).
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    done = []
    try:
        with pytest.raises(KeyboardInterrupt):
            with deferred_interrupts():
                signal.raise_signal(signal.SIGINT)  # to this thread, now: no delivery race
                done.append(1)
        assert done == [1]
    finally:
        signal.signal(signal.SIGINT, old)


def test_an_ignored_ctrl_c_stays_ignored_when_deferred() -> None:
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with deferred_interrupts():
            signal.raise_signal(signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, old)


def test_interrupt_between_reserving_and_scoring_fails_the_trial(
    tmp_path: Path, tiny_model_dir: Path, tiny_model, monkeypatch
) -> None:
    """The window the executor's own handler does not cover: the trial is asked for, not yet scored."""
    from optprompt.study.ledger import TrialLedger

    spec = spec_from_dict(_study(tmp_path, tiny_model_dir, "window"))
    real = TrialLedger.baseline_state
    calls = {"n": 0}

    def interrupted_on_third(study):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(study)

    monkeypatch.setattr(TrialLedger, "baseline_state", staticmethod(interrupted_on_third))
    with pytest.raises(KeyboardInterrupt):
        StudyRunner(spec, model=tiny_model, progress=False).run().to_dict()
    trials = _trials(f"sqlite:///{tmp_path / 'out' / 'study.db'}", "window")
    states = [t.state for t in trials]
    assert states[:2] == [optuna.trial.TrialState.COMPLETE] * 2
    assert states[2] == optuna.trial.TrialState.FAIL
    assert "interrupted" in trials[2].user_attrs[attrs.FAIL_REASON]
