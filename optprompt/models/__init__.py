"""Models: short names, resolution, loading, device and dtype selection."""

from optprompt.models.home import optprompt_home
from optprompt.models.loading import (
    LoadedModel,
    fingerprint_dir,
    load_model,
    resolve_model_path,
    select_device,
    select_dtype,
)

__all__ = [
    "LoadedModel",
    "fingerprint_dir",
    "load_model",
    "optprompt_home",
    "resolve_model_path",
    "select_device",
    "select_dtype",
]
