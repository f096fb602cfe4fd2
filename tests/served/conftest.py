"""A real vLLM server for the tests marked ``served``: one per test session, started from the
serve environment (``make serve-env`` builds ``.venv-serve``; ``OPTPROMPT_TEST_VLLM_PYTHON``
names another interpreter) on a free port of 127.0.0.1, serving the embedded SmolLM2 in
float32, behind an API key. It starts as soon as collection finds served tests, so its two
minutes of start-up overlap the rest of the suite, and it is stopped at the end of the
session. Without the serve environment the served tests are skipped, saying why."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 900.0


def serve_python() -> Path | None:
    given = os.environ.get("OPTPROMPT_TEST_VLLM_PYTHON")
    path = Path(given) if given else REPO / ".venv-serve" / "bin" / "python"
    return path if path.exists() else None


@dataclass
class VLLMServer:
    process: subprocess.Popen
    url: str
    model_dir: Path
    api_key: str
    log: Path
    started: float

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def wait(self) -> None:
        import urllib.error
        import urllib.request

        deadline = self.started + START_TIMEOUT
        while time.time() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the vLLM server exited ({self.process.returncode}) while starting:\n{self.log_tail()}")
            try:
                request = urllib.request.Request(
                    f"{self.url}/models", headers={"Authorization": f"Bearer {self.api_key}"}
                )
                with urllib.request.urlopen(request, timeout=5) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(2)
        pytest.fail(f"the vLLM server did not answer within {START_TIMEOUT:.0f}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)


_server: VLLMServer | None = None


def _start() -> VLLMServer:
    from optprompt.models import optprompt_home
    from optprompt.plugins import load_plugins
    from optprompt.study.local_postgres import free_port

    python = serve_python()
    assert python is not None
    model_dir = load_plugins().models.get("smollm2-135m-instruct").obj(optprompt_home(), progress=False)
    port = free_port()
    api_key = "sk-optprompt-test-" + secrets.token_hex(12)
    log = Path(tempfile.mkdtemp(prefix="optprompt-vllm-")) / "server.log"
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_API_KEY": api_key, "PYTHONUNBUFFERED": "1"}
    command = [
        str(python), "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model_dir), "--host", "127.0.0.1", "--port", str(port),
        "--max-model-len", "2048", "--dtype", "float32",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    return VLLMServer(process, f"http://127.0.0.1:{port}/v1", Path(model_dir), api_key, log, time.time())


def pytest_collection_finish(session: pytest.Session) -> None:
    global _server
    wanted = any(item.get_closest_marker("served") for item in session.items)
    if wanted and serve_python() is not None and _server is None and not session.config.option.collectonly:
        _server = _start()


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _server is not None:
        _server.stop()


@pytest.fixture(scope="session")
def vllm_server() -> VLLMServer:
    """The session's vLLM server, waited for (skips the test without the serve environment)."""
    global _server
    if serve_python() is None:
        pytest.skip(
            "no vLLM serve environment (.venv-serve, built by `make serve-env`, or OPTPROMPT_TEST_VLLM_PYTHON): "
            "the real-server tests are skipped"
        )
    if _server is None:
        _server = _start()
    _server.wait()
    print(f"vLLM server ready after {time.time() - _server.started:.0f}s", file=sys.stderr)
    return _server
