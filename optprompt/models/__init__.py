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
from optprompt.models.served import ServedModel, ServedModelSpec, connect, is_served_ref

ModelRef = str | ServedModelSpec  # what `model:` accepts

__all__ = [
    "LoadedModel",
    "ModelRef",
    "ServedModel",
    "ServedModelSpec",
    "connect",
    "is_served_ref",
    "fingerprint_dir",
    "load_model",
    "optprompt_home",
    "resolve_model_path",
    "select_device",
    "select_dtype",
]
