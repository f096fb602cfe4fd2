"""MLflow tracking against a real tracking server this test starts (``mlflow server`` with a
SQLite backend on a free port): a study with ``tracking: {mlflow: URI}`` logs one run with a
child run per trial, the comparison as metrics and the card and report as artifacts, read
back through MLflow's client."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

if os.environ.get("CI") and importlib.util.find_spec("mlflow") is None:  # `make test` installs it: never skip there
    pytest.fail("MLflow is not installed, but CI must run this test: `make test` installs optprompt[mlflow]")
pytest.importorskip("mlflow", reason="the optional extra optprompt[mlflow] is not installed (`make test` installs it)")

from optprompt.cli.main import main  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


START_TIMEOUT_S = 300  # a loaded 2-core machine took over 2 minutes to start one


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlflow server``. It runs in a process group of its own (it starts a uvicorn
    worker and job consumers), all of which are stopped at the end; its output goes to a
    file, read back when it does not start (a pipe nobody reads would block it, and reading
    a pipe of a server that is still running would block the test)."""
    root = tmp_path_factory.mktemp("mlflow")
    port = _free_port()
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    cmd = [str(mlflow_bin), "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
           "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
           "--workers", "1"]  # fmt: skip
    log = root / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=root, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                state = f"exit {proc.returncode}" if proc.poll() is not None else f"not up after {START_TIMEOUT_S} s"
                pytest.fail(f"mlflow server did not start ({state}):\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.5)
        yield uri
    finally:
        _stop_group(proc)


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's whole process group, SIGKILL to what is left after 20 s."""
    import signal

    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pass
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)  # anyone of the group still there?
        except ProcessLookupError:
            return
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)


def test_a_tracked_study_logs_runs_metrics_and_artifacts(
    server: str, study_dict: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlflow.tracking import MlflowClient

    # Word variants for a label: the search then samples "word[positive]", a key MLflow must get cleaned.
    strategy = {**study_dict["strategy"], "trials": 4, "verbalizers": {"positive": ["good"]}}
    study = {**study_dict, "strategy": strategy, "tracking": {"mlflow": server}}
    study_file = tmp_path / "study.yaml"
    study_file.write_text(yaml.safe_dump(study))
    assert main(["run", str(study_file), "-q"]) == 0
    assert f"logged to MLflow at {server}: run " in capsys.readouterr().out

    client = MlflowClient(tracking_uri=server)
    exp = client.get_experiment_by_name("tiny-study")
    assert exp is not None
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    assert len(parents) == 1
    parent = parents[0]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    import json

    result = json.loads((Path(study["output"]) / "result.json").read_text())
    assert main(["show", study["output"], "--json", "--top", "100"]) == 0
    trials = json.loads(capsys.readouterr().out)["rows"]  # every trial, the ensemble combined at the end included
    assert sorted(r.info.run_name for r in children) == sorted(f"trial {t['trial']}" for t in trials)
    assert parent.data.params["strategy"] == "template_search" and parent.data.params["strategy.trials"] == "4"
    assert parent.data.metrics["test_winner"] == pytest.approx(result["best"]["test"]["value"])
    assert parent.data.metrics["p_value"] == pytest.approx(result["comparison"]["p_value"])
    assert "test_winner_constrained_generation" in parent.data.metrics
    baseline = next(r for r in children if r.info.run_name == "trial 0")
    assert baseline.data.metrics["dev_value"] == pytest.approx(result["baseline"]["dev"]["value"])
    assert "candidate.instruction" in baseline.data.params and baseline.data.tags["optprompt.state"] == "complete"
    searched = next(r for r in children if r.info.run_name == "trial 1")
    assert any(k.startswith("param.word_") for k in searched.data.params)  # word[label] made a valid key
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"winner", "report", "result.json"} <= artifacts
    assert "winner/prompt_card.json" in {a.path for a in client.list_artifacts(parent.info.run_id, "winner")}
    assert "report/report.html" in {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
