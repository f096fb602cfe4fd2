"""A model behind an OpenAI-compatible server, as a study file names it (``model:``)."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["ServedModelSpec", "served_model_field", "Ranking"]

#: How a served model's answers are scored (see docs/served.md, "Speed").
Ranking = Literal["auto", "next_token", "prompt_logprobs"]


class ServedModelSpec(BaseModel):
    """A model behind an OpenAI-compatible server (``model: {url: ..., ...}``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(description="The server's API root, e.g. http://127.0.0.1:8000/v1.")
    name: str | None = Field(
        None, description="The served model's id (as /v1/models lists it); default: the server's only model."
    )
    api_key_env: str | None = Field(
        None, description="Environment variable holding the API key (the key itself is never written anywhere)."
    )
    max_concurrency: int = Field(16, ge=1, description="Requests in flight at most.")
    timeout: float = Field(120.0, gt=0, description="Seconds one request may take before it is tried again.")
    retries: int = Field(5, ge=0, description="Tries after the first for a 429, 5xx, timeout or lost connection.")
    tokenizer: str | None = Field(
        None,
        description="A local directory with the served model's tokenizer (default: weights, else the server's "
        "root when it is a directory on this machine).",
    )
    weights: str | None = Field(
        None,
        description="A local copy of the served weights: soft prompts and LoRA train on it (without it, families "
        "that train are refused); its tokenizer is used too.",
    )
    adapter: str | None = Field(
        None,
        description="A LoRA adapter the server serves beside the model (vLLM: --enable-lora --lora-modules "
        "NAME=DIR), by the name /v1/models lists: requests go to it. An exported LoRA winner evaluated through the "
        "server is found by its directory when this is not given.",
    )

    ranking: Ranking = Field(
        "auto",
        description="How answers are scored: 'next_token' reads each answer token's log-probability as the next "
        "token after its context (vLLM's /generative_scoring: the server's prefix cache computes the prompt once "
        "per input); 'prompt_logprobs' asks for the log-probability of every prompt token of context + answer "
        "(any server that returns them; the prompt is computed again for every answer); 'auto': next_token where "
        "the server answers it and agrees with prompt_logprobs on the probe, else prompt_logprobs.",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{v!r} is not an http(s) URL such as http://127.0.0.1:8000/v1")
        if "@" in parts.netloc:
            raise ValueError("put no credentials in the URL: name the variable that holds the key in api_key_env")
        if parts.query or parts.fragment:
            raise ValueError(f"{v!r}: give the API root without a query or fragment")
        return v.rstrip("/")

    @field_validator("adapter")
    @classmethod
    def _adapter(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("adapter names a LoRA adapter the server serves (as /v1/models lists it); got ''")
        return v

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is not None and (not v or not v.replace("_", "").isalnum()):
            raise ValueError(f"{v!r} is not an environment variable name (api_key_env names the variable, not the key)")
        return v

    @property
    def ref(self) -> str:
        """The reference written into results and cards: the URL (the key is never part of it)."""
        return self.url

    def __str__(self) -> str:
        named = [n for n in (self.name, f"adapter {self.adapter}" if self.adapter else None) if n]
        return self.url if not named else f"{self.url} ({', '.join(named)})"


def served_model_field(v: object) -> object:
    """``model:`` before validation: an http(s) URL becomes a :class:`ServedModelSpec`, a
    mapping is validated as one; anything else (a name, a path) is left as it is."""
    if isinstance(v, str) and v.startswith(("http://", "https://")):
        return ServedModelSpec(url=v)
    if isinstance(v, dict):
        return ServedModelSpec.model_validate(v)
    return v
