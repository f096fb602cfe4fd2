"""Start a vLLM server (OpenAI-compatible) on the embedded SmolLM2 or another model directory.

Used by ``make serve``, the real-server tests (tests/served/) and the served benchmark. vLLM
runs from its own environment (``make serve-env`` builds ``.venv-serve``) so its pins never
touch the project's; this script itself runs in the project's environment (it finds the
converted SmolLM2 folder through optprompt's model cache).

    python tools/serve_vllm.py [--model DIR] [--port 8000]   # serves until Ctrl-C
    python tools/serve_vllm.py --lora sentiment=runs/sentiment-lora   # an exported LoRA beside it

With ``--lora`` (or ``lora=True`` from Python) the server serves LoRA adapters: those named
on the command line, and, with ``VLLM_ALLOW_RUNTIME_LORA_UPDATING``, those loaded at run time
(:func:`load_lora`, as the real-server tests do). LoRA is applied to the attention and MLP
projections only (``--lora-target-modules``): vLLM 0.32 on CPU crashes its engine on the
prompt log-probabilities of a LoRA request when LoRA wraps ``lm_head`` too.

The API key, when wanted, is read from ``VLLM_API_KEY`` by vLLM itself (never on the
command line, where every process listing would show it).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT = 900.0
#: vLLM options for serving LoRA adapters (rank 8 at most) on the attention and MLP projections.
LORA_ARGS = [
    "--enable-lora", "--max-lora-rank", "8",
    "--lora-target-modules", "qkv_proj", "o_proj", "gate_up_proj", "down_proj",
]  # fmt: skip


def serve_python() -> Path | None:
    """The serve environment's interpreter: ``OPTPROMPT_TEST_VLLM_PYTHON``, else ``.venv-serve``."""
    given = os.environ.get("OPTPROMPT_TEST_VLLM_PYTHON")
    path = Path(given) if given else REPO / ".venv-serve" / "bin" / "python"
    return path if path.exists() else None


def smollm2_dir() -> Path:
    """The converted SmolLM2-135M-Instruct folder (converted on first use)."""
    from optprompt.models import optprompt_home
    from optprompt.plugins import load_plugins

    return Path(load_plugins().models.get("smollm2-135m-instruct").obj(optprompt_home(), progress=False))


def start(
    model_dir: Path,
    port: int,
    log: Path,
    *,
    api_key: str | None = None,
    extra: list[str] | None = None,
    lora: bool = False,
) -> subprocess.Popen:
    """Start vLLM on 127.0.0.1:``port`` (float32, 2048 positions, a 1 GiB KV cache), its
    output into ``log``; in a session of its own, so stopping it stops its workers. With
    ``lora``, it serves LoRA adapters, loadable at run time (:func:`load_lora`)."""
    python = serve_python()
    if python is None:
        raise SystemExit("no vLLM environment: run `make serve-env` (or set OPTPROMPT_TEST_VLLM_PYTHON)")
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1")}
    env["PYTHONUNBUFFERED"] = "1"
    if api_key is not None:
        env["VLLM_API_KEY"] = api_key
    if lora:
        env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "True"
    command = [
        str(python), "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model_dir), "--host", "127.0.0.1", "--port", str(port),
        "--max-model-len", "2048", "--dtype", "float32", *(LORA_ARGS if lora else []), *(extra or []),
    ]  # fmt: skip
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def wait_ready(
    process: subprocess.Popen, url: str, log: Path, *, api_key: str | None = None, timeout: float = START_TIMEOUT
) -> float:
    """Wait until ``url``/models answers; the seconds waited. Raises RuntimeError (with the
    log's tail) when the server exits or does not answer within ``timeout``."""
    started = time.time()
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    while time.time() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"the vLLM server exited ({process.returncode}) while starting:\n{tail(log)}")
        try:
            with urllib.request.urlopen(urllib.request.Request(f"{url}/models", headers=headers), timeout=5) as r:
                if r.status == 200:
                    return time.time() - started
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(2)
    raise RuntimeError(f"the vLLM server did not answer within {timeout:.0f}s:\n{tail(log)}")


def load_lora(url: str, name: str, path: Path, *, api_key: str | None = None) -> None:
    """Load the LoRA adapter in ``path`` into a running server (started with ``lora``) under
    ``name``: vLLM's ``/v1/load_lora_adapter``. Raises RuntimeError with the server's answer."""
    import json

    root = url[: -len("/v1")] if url.endswith("/v1") else url
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {api_key}"} if api_key else {})}
    body = json.dumps({"lora_name": name, "lora_path": str(path)}).encode()
    request = urllib.request.Request(f"{root}/v1/load_lora_adapter", data=body, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=120) as r:
            r.read()
    except urllib.error.HTTPError as e:
        raise RuntimeError(f"vLLM refused to load LoRA adapter {name!r} from {path}: {e.read()[:500]!r}") from None


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


def tail(log: Path, n: int = 4000) -> str:
    try:
        return log.read_text(errors="replace")[-n:]
    except OSError:
        return ""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, help="a model directory (default: the embedded SmolLM2)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--log", type=Path, default=REPO / "runs" / "vllm-server.log")
    p.add_argument(
        "--lora",
        action="append",
        default=[],
        metavar="NAME=DIR",
        help="serve the LoRA adapter in DIR (an optprompt export) as NAME; repeatable",
    )
    p.add_argument(
        "--runtime-lora",
        action="store_true",
        help="serve LoRA adapters loaded at run time (/v1/load_lora_adapter), as the real-server tests do",
    )
    p.add_argument("extra", nargs="*", help="more vLLM arguments, after --")
    args = p.parse_args(argv)
    model_dir = args.model or smollm2_dir()

    def interrupted(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)  # `kill PID` stops the server too
    extra = list(args.extra)
    for module in args.lora:
        name, sep, where = module.partition("=")
        if not (sep and name and where):
            p.error(f"--lora {module!r}: give NAME=DIR")
        extra += ["--lora-modules", f"{name}={Path(where).expanduser().resolve()}"]
    key = os.environ.get("VLLM_API_KEY")
    process = start(model_dir, args.port, args.log, api_key=key, extra=extra, lora=bool(args.lora) or args.runtime_lora)
    url = f"http://127.0.0.1:{args.port}/v1"
    print(f"starting vLLM on {model_dir} (log: {args.log}) ...", flush=True)
    try:
        waited = wait_ready(process, url, args.log, api_key=os.environ.get("VLLM_API_KEY"))
        print(f"serving at {url} (ready after {waited:.0f}s); Ctrl-C stops it", flush=True)
        process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop(process)
    return 0


if __name__ == "__main__":
    sys.exit(main())
