"""A real vLLM server for the tests marked ``served``: one per test session, started from the
serve environment (``make serve-env`` builds ``.venv-serve``; ``OPTPROMPT_TEST_VLLM_PYTHON``
names another interpreter) on a free port of 127.0.0.1, serving the embedded SmolLM2 in
float32, behind an API key, with LoRA adapters loadable at run time (``tools/serve_vllm.py``
starts it; a test loads the adapter it exported through ``serve_vllm.load_lora``). It starts as soon as
collection finds served tests, so its start-up overlaps the rest of the suite, and it is
stopped at the end of the session. Without the serve environment the served tests are
skipped, saying why.

``OPTPROMPT_TEST_VLLM_URL`` (with the key in ``VLLM_API_KEY``) points the tests at a server
already running instead, e.g. ``VLLM_API_KEY=... python tools/serve_vllm.py --port 8100
--runtime-lora``: for working on these tests without a server start per run."""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))

import serve_vllm  # noqa: E402


@dataclass
class VLLMServer:
    process: object
    url: str
    model_dir: Path
    api_key: str
    log: Path
    started: float


_server: VLLMServer | None = None


def _running() -> VLLMServer | None:
    """The server ``OPTPROMPT_TEST_VLLM_URL`` names (its key in ``VLLM_API_KEY``), or None."""
    url = os.environ.get("OPTPROMPT_TEST_VLLM_URL")
    if not url:
        return None
    key = os.environ.get("VLLM_API_KEY")
    if not key:
        raise pytest.UsageError("OPTPROMPT_TEST_VLLM_URL needs the server's key in VLLM_API_KEY")
    return VLLMServer(None, url.rstrip("/"), serve_vllm.smollm2_dir(), key, Path(os.devnull), time.time())


def _start() -> VLLMServer:
    from optprompt.study.local_postgres import free_port

    model_dir = serve_vllm.smollm2_dir()
    port = free_port()
    api_key = "sk-optprompt-test-" + secrets.token_hex(12)
    log = Path(tempfile.mkdtemp(prefix="optprompt-vllm-")) / "server.log"
    process = serve_vllm.start(model_dir, port, log, api_key=api_key, lora=True)
    return VLLMServer(process, f"http://127.0.0.1:{port}/v1", model_dir, api_key, log, time.time())


def pytest_collection_finish(session: pytest.Session) -> None:
    global _server
    wanted = any(item.get_closest_marker("served") for item in session.items)
    # Under xdist (`make test` runs the served tests in a process of their own) a worker starts
    # the server at its first served test (the fixture), not for tests it may never get.
    wanted = wanted and "PYTEST_XDIST_WORKER" not in os.environ
    if wanted and _server is None and not session.config.option.collectonly:
        _server = _running()
        if _server is None and serve_vllm.serve_python() is not None:
            _server = _start()


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _server is not None and _server.process is not None:
        serve_vllm.stop(_server.process)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def vllm_server() -> VLLMServer:
    """The session's vLLM server, waited for (skips the test without the serve environment)."""
    global _server
    if _server is None:
        _server = _running()
    if _server is not None and _server.process is None:
        return _server  # a server already running (OPTPROMPT_TEST_VLLM_URL)
    if serve_vllm.serve_python() is None:
        pytest.skip(
            "no vLLM serve environment (.venv-serve, built by `make serve-env`, or OPTPROMPT_TEST_VLLM_PYTHON): "
            "the real-server tests are skipped"
        )
    if _server is None:
        _server = _start()
    try:
        serve_vllm.wait_ready(_server.process, _server.url, _server.log, api_key=_server.api_key)  # type: ignore[arg-type]
    except RuntimeError as e:
        pytest.fail(str(e))
    print(f"vLLM server ready {time.time() - _server.started:.0f}s after its start", file=sys.stderr)
    return _server
