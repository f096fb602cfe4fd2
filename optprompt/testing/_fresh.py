"""One study run in a fresh interpreter, for the seed check.

Two runs in one process share module-level state (``random``'s global generator, a
module's caches, numpy's global seed): a strategy drawing from them can look
reproducible there and still differ between two ``optprompt run`` invocations. The
seed check therefore runs each seeded study in a new Python process started with
``python -m optprompt.testing._fresh REQUEST.json`` and compares what they proposed.

The strategy and the extra plugins travel as import references (``module`` or
``module:QualName``), so they must be importable in a new process: installed, or on the
parent's ``sys.path`` (passed on as ``PYTHONPATH``).
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from optprompt.testing._harness import ConformanceError

__all__ = ["import_reference", "reference_of", "run_fresh", "scrambling_hook"]


def reference_of(obj: object) -> str | None:
    """``module`` or ``module:QualName`` to import ``obj`` again, or None if it cannot be."""
    if isinstance(obj, ModuleType):
        name = obj.__name__
        return None if name == "__main__" else name
    target = obj if isinstance(obj, type) else type(obj)
    module, qualname = target.__module__, target.__qualname__
    if module == "__main__" or "<locals>" in qualname:
        return None
    if not isinstance(obj, type):  # a plugin instance: importable only as a module-level object of its class
        return None
    try:
        if import_reference(f"{module}:{qualname}") is not obj:
            return None
    except Exception:
        return None
    return f"{module}:{qualname}"


def import_reference(ref: str) -> Any:
    """The object a :func:`reference_of` string names."""
    module, _, qualname = ref.partition(":")
    obj: Any = importlib.import_module(module)
    for part in filter(None, qualname.split(".")):
        obj = getattr(obj, part)
    return obj


def run_fresh(
    env_root: Path,
    model_dir: Path,
    data: Path,
    prompt: str,
    strategy: str,
    extra_plugins: Iterable[str],
    options: Mapping[str, Any],
    seed: int,
    output: Path,
    timeout: float = 600,
) -> list[str]:
    """Run one study in a new interpreter; return its trial tokens (see ``StudyRun.tokens``)."""
    request = output.parent / f"{output.name}.request.json"
    answer = output.parent / f"{output.name}.tokens.json"
    request.write_text(
        json.dumps(
            {
                "root": str(env_root),
                "model_dir": str(model_dir),
                "data": str(data),
                "prompt": prompt,
                "strategy": strategy,
                "extra_plugins": list(extra_plugins),
                "options": dict(options),
                "seed": seed,
                "output": str(output),
                "answer": str(answer),
            }
        )
    )
    path = os.pathsep.join(p for p in [*sys.path, os.environ.get("PYTHONPATH", "")] if p)
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "random"}
    proc = subprocess.run(
        [sys.executable, "-m", "optprompt.testing._fresh", str(request)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0 or not answer.is_file():
        tail = (proc.stderr or proc.stdout)[-3000:]
        raise ConformanceError(
            f"{strategy}: the seeded study in a fresh process failed (exit {proc.returncode}):\n{tail}"
        )
    return json.loads(answer.read_text())


def scrambling_hook(strategy: Any, trial: Any, call: Any) -> Any:
    """Wraps ``propose``: the global ``random`` and numpy generators are reseeded from the OS
    first, as they are in a user's process whose other code drew from them. A strategy that
    draws from them proposes differently each time; one that uses ``trial.suggest_*`` or its
    own seeded generator does not notice."""
    import random

    random.seed(os.urandom(16))
    try:
        import numpy
    except ImportError:  # pragma: no cover - numpy comes with optuna
        pass
    else:
        numpy.random.seed(int.from_bytes(os.urandom(4), "little"))
    return call()


def _main(request_file: str) -> int:
    from optprompt.testing._harness import run_study, strategy_plugins
    from optprompt.testing.fixtures import TinyStudyEnv

    req = json.loads(Path(request_file).read_text())
    env = TinyStudyEnv(
        root=Path(req["root"]), model_dir=Path(req["model_dir"]), data=Path(req["data"]), prompt=req["prompt"]
    )
    strategy = req["strategy"]
    if ":" in strategy:
        strategy = import_reference(strategy)
    extra = [import_reference(r) for r in req["extra_plugins"]]
    plugins, name = strategy_plugins(strategy, extra, hook=scrambling_hook)
    run = run_study(
        env, plugins, name, req["options"], what="fresh seeded run", seed=req["seed"], output=Path(req["output"])
    )
    Path(req["answer"]).write_text(json.dumps(run.tokens()))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1]))
