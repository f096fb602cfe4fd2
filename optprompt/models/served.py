"""Served models: a model behind an OpenAI-compatible server (vLLM, SGLang) is a model.

A study's ``model:`` (and ``optprompt evaluate --model``, a strategy's ``rewriter``...)
may name a server instead of weights: ``http://HOST:PORT/v1`` (the server's only model)
or a mapping (:class:`ServedModelSpec`). :func:`connect` checks it once, before any trial:

1. ``/v1/models`` lists what is served: the one named (or the only one), its ``root`` and
   its context length;
2. a local copy of its tokenizer (``tokenizer:``, else ``weights:``, else the server's
   ``root`` when that is a directory here) tokenizes every prompt exactly as the
   in-process path does (chat template included); the server's ``/tokenize``, where it
   has one, must give the same ids for a plain text and for a chat prompt, so a wrong copy
   is refused rather than silently mis-scored;
3. one probe request asks for the log-probability of every prompt token. Servers that
   return log-probabilities of generated tokens only (llama.cpp's server, Ollama) would
   score every answer at chance: they are refused with an error naming the alternatives;
4. unless ``ranking: prompt_logprobs``, a second probe asks vLLM's ``/generative_scoring``
   for the probe text's last token as the next token after the rest: where it answers
   and agrees with the first probe (within 1e-3), the server can rank by next-token reads
   (``ranking = "next_token"``), and its ``/metrics`` say whether its prefix cache is on
   and its block size (``cache_block``). Next-token reads pay off through the prefix
   cache only: with ``ranking: auto`` the scorer uses them for the inputs where they
   compute fewer tokens (:func:`optprompt.scoring.backends.served.next_token_pays`), and
   not at all where the cache is off or its block size unknown.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from optprompt.config.served import ServedModelSpec
from optprompt.errors import ModelError, ServerError
from optprompt.models.text import TOKENIZER_FILES, chat_formatter

if TYPE_CHECKING:
    from optprompt.models.endpoint import Endpoint
    from optprompt.plugins.manager import Plugins

__all__ = [
    "ServedModel",
    "ServedModelSpec",
    "connect",
    "is_served_ref",
    "served_adapters",
    "served_spec",
    "tokenizer_digest",
    "NO_PROMPT_LOGPROBS",
    "next_token_body",
    "read_next_token",
]

log = logging.getLogger(__name__)

#: The families of server that return prompt log-probabilities, for error messages.
NO_PROMPT_LOGPROBS = (
    "optprompt ranks answers by the log-probabilities of prompt tokens, which this server does not return "
    "(llama.cpp's server and Ollama give them for generated tokens only; scoring through them would rank "
    "answers at chance). Serve the model with vLLM (`python -m vllm.entrypoints.openai.api_server --model DIR`) "
    "or SGLang, or give optprompt the weights (`model: DIR`)"
)
#: The probe's text: a few ordinary tokens.
PROBE_TEXT = "The capital of France is Paris."
_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "chat_template.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
)


def is_served_ref(ref: Any) -> bool:
    """Whether a model reference names a server (an http(s) URL or a served-model spec)."""
    if isinstance(ref, ServedModelSpec):
        return True
    if isinstance(ref, dict):
        return "url" in ref
    return isinstance(ref, str) and ref.startswith(("http://", "https://"))


def served_spec(ref: Any) -> ServedModelSpec:
    """The :class:`ServedModelSpec` of a reference (a URL, a mapping or a spec)."""
    if isinstance(ref, ServedModelSpec):
        return ref
    from pydantic import ValidationError

    try:
        return ServedModelSpec.model_validate({"url": ref} if isinstance(ref, str) else ref)
    except ValidationError as e:
        raise ModelError(f"model {ref!r}: {e.errors()[0]['msg']}") from None


def tokenizer_digest(tokenizer: Any) -> str:
    """A hash of what decides tokenization: the vocabulary and merges, the special tokens
    and the chat template."""
    h = hashlib.sha256()
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        h.update(backend.to_str().encode("utf-8"))
    else:
        h.update(repr(sorted(tokenizer.get_vocab().items())).encode("utf-8"))
    h.update(repr(getattr(tokenizer, "chat_template", None)).encode("utf-8"))
    h.update(repr([tokenizer.bos_token, tokenizer.eos_token, tokenizer.pad_token]).encode("utf-8"))
    return h.hexdigest()[:16]


@dataclass
class ServedModel:
    """A served model ready to score: its endpoint, the served id and root, a local copy
    of its tokenizer. Speaks the text-level part of :class:`~optprompt.models.LoadedModel`
    (``ref``, ``tokenizer``, ``fingerprint``, ``family``, the chat template)."""

    spec: ServedModelSpec
    endpoint: Endpoint
    model_id: str
    root: str
    tokenizer: Any
    fingerprint: str
    context_tokens: int | None = None
    #: Whether the server has ``/tokenize`` (the chat template was checked against it).
    checked_template: bool = False
    #: Where the server read the LoRA adapter requests go to (``spec.adapter``), as it lists it.
    adapter_root: str | None = None
    #: Whether the server reads next tokens (``next_token``) or only returns prompt
    #: log-probabilities (``prompt_logprobs``), as the probes found.
    ranking: str = "prompt_logprobs"
    #: The server's prefix-cache block size in tokens (vLLM's ``/metrics``); None where its
    #: prefix cache is off or it does not say.
    cache_block: int | None = None
    family: str = "served"
    device: str = "server"
    dtype: str = "server"

    @property
    def ref(self) -> str:
        return self.spec.ref

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    def chat_formatter(self):  # type: ignore[no-untyped-def]
        """messages -> prompt text through the tokenizer's chat template (as in-process)."""
        return chat_formatter(self.tokenizer)

    @property
    def adapter(self) -> str | None:
        """The served LoRA adapter requests go to (``model_id``), or None for the model itself."""
        return self.spec.adapter

    def adapters(self) -> dict[str, str]:
        """The LoRA adapters the server serves now: name -> where it read them (``root``)."""
        from optprompt.models.endpoint import Call

        return served_adapters(self.endpoint.call(Call("GET", "/models", what="listing the served adapters")))

    def with_adapter(self, name: str) -> ServedModel:
        """The same server's LoRA adapter ``name``, connected and probed (its own endpoint)."""
        return connect(self.spec.model_copy(update={"adapter": name}))

    def close(self) -> None:
        self.endpoint.close()


def connect(ref: Any, plugins: Plugins | None = None, *, probe: bool = True) -> ServedModel:
    """Connect to a served model and check it can be scored (see the module's notes)."""
    from optprompt.models.endpoint import Call, Endpoint

    spec = served_spec(ref)
    endpoint = Endpoint(
        spec.url,
        api_key_env=spec.api_key_env,
        max_concurrency=spec.max_concurrency,
        timeout=spec.timeout,
        retries=spec.retries,
    )
    listed = endpoint.call(Call("GET", "/models", what="listing the served models"))
    entry = _pick(spec, listed)
    base = entry
    if spec.adapter is not None:
        entry = _pick_adapter(spec, listed)
        base = next((d for d in _listing(spec, listed) if d["id"] == entry["parent"]), base)
    model_id = str(entry["id"])
    root = str(base.get("root") or base["id"])
    adapter_root = str(entry.get("root") or model_id) if spec.adapter is not None else None
    tokenizer = _tokenizer(spec, root)
    context = base.get("max_model_len")
    digest = tokenizer_digest(tokenizer)
    parts = [spec.url, model_id, root, digest] + ([f"adapter {adapter_root}"] if adapter_root else [])
    fp = hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:16]
    served = ServedModel(
        spec=spec,
        endpoint=endpoint,
        model_id=model_id,
        root=root,
        tokenizer=tokenizer,
        fingerprint=f"served:{model_id}:{fp}",
        context_tokens=int(context) if isinstance(context, int) and context > 0 else None,
        adapter_root=adapter_root,
    )
    if probe:
        served.checked_template = _check_tokenizer(served)
        probed = _probe_logprobs(served)
        served.ranking = _probe_ranking(served, probed)
        if served.ranking == "next_token":
            served.cache_block = _cache_block(served)
    return served


def _listing(spec: ServedModelSpec, listed: Any) -> list[dict[str, Any]]:
    data = listed.get("data") if isinstance(listed, dict) else None
    if not isinstance(data, list) or not all(isinstance(d, dict) and "id" in d for d in data):
        raise ServerError(f"model server {spec.url}: /models did not list models ({str(listed)[:200]})")
    return data


def _pick(spec: ServedModelSpec, listed: Any) -> dict[str, Any]:
    data = _listing(spec, listed)
    ids = [str(d["id"]) for d in data]
    if spec.name is not None:
        for d in data:
            if d["id"] == spec.name:
                return d
        raise ModelError(f"model server {spec.url} serves no model {spec.name!r}; it serves: {', '.join(ids)}")
    # LoRA adapters served beside a base model name it as their parent.
    bases = [d for d in data if not d.get("parent")]
    if len(bases) == 1:
        return bases[0]
    if not data:
        raise ModelError(f"model server {spec.url} serves no model")
    if spec.adapter is not None:
        return data[0]  # the adapter's parent is the base (_pick_adapter)
    raise ModelError(
        f"model server {spec.url} serves several models ({', '.join(ids)}): say which with "
        "model: {url: ..., name: ...}"
    )


def served_adapters(listed: Any) -> dict[str, str]:
    """The LoRA adapters a ``/v1/models`` answer lists (those with a ``parent``): name -> root."""
    data = listed.get("data") if isinstance(listed, dict) else None
    return {
        str(d["id"]): str(d.get("root") or d["id"])
        for d in (data if isinstance(data, list) else [])
        if isinstance(d, dict) and "id" in d and d.get("parent")
    }


def _pick_adapter(spec: ServedModelSpec, listed: Any) -> dict[str, Any]:
    """The entry of the adapter ``spec.adapter`` names; an error naming the adapters served."""
    data = _listing(spec, listed)
    for d in data:
        if d["id"] == spec.adapter and d.get("parent"):
            if spec.name is not None and d["parent"] != spec.name:
                raise ModelError(
                    f"model server {spec.url}: adapter {spec.adapter!r} adapts {d['parent']!r}, not {spec.name!r}"
                )
            return d
    adapters = served_adapters(listed)
    raise ModelError(
        f"model server {spec.url} serves no LoRA adapter {spec.adapter!r}; "
        + (f"it serves the adapters: {', '.join(adapters)}" if adapters else "it serves no adapters")
        + f" (start vLLM with --enable-lora --lora-modules {spec.adapter}=DIR)"
    )


def _tokenizer(spec: ServedModelSpec, root: str) -> Any:
    from transformers import AutoTokenizer

    source = spec.tokenizer or spec.weights
    if source is None:
        if Path(root).is_dir() and any((Path(root) / f).exists() for f in TOKENIZER_FILES):
            source = root
        else:
            raise ModelError(
                f"model server {spec.url} serves {root!r}, which is not a model directory on this machine: optprompt "
                "tokenizes every prompt itself (exactly as in-process, chat template included), so give a local "
                "copy of the served model's tokenizer: model: {url: ..., tokenizer: DIR} (or weights: DIR)"
            )
    path = Path(source).expanduser()
    if not path.is_dir() or not any((path / f).exists() for f in TOKENIZER_FILES):
        raise ModelError(
            f"model server {spec.url}: tokenizer {source!r} is not a directory with tokenizer files "
            f"({', '.join(TOKENIZER_FILES)})"
        )
    try:
        return AutoTokenizer.from_pretrained(str(path), trust_remote_code=False)
    except (OSError, ValueError) as e:
        raise ModelError(f"model server {spec.url}: could not load the tokenizer in {path}: {e}") from None


def _check_tokenizer(served: ServedModel) -> bool:
    """The server's ``/tokenize`` against the local tokenizer, on a plain text and (when
    there is a chat template) on a chat prompt. Returns whether the server could be asked."""
    from optprompt.models.endpoint import Call

    tok = served.tokenizer
    local = tok(PROBE_TEXT, add_special_tokens=False).input_ids
    body = {"model": served.model_id, "prompt": PROBE_TEXT, "add_special_tokens": False}
    try:
        remote = served.endpoint.call(Call("POST", "/tokenize", body, "tokenizing the probe text", at_root=True))
    except ServerError as e:
        log.info("%s: no /tokenize (%s); the local tokenizer is checked through echoed ids only", served.ref, e)
        return False
    if remote.get("tokens") != local:
        source = served.spec.tokenizer or served.spec.weights or served.root
        raise ModelError(
            f"model server {served.ref}: the local tokenizer ({source}) "
            f"does not tokenize like the served model ({PROBE_TEXT!r}: {local} here, {remote.get('tokens')} there); "
            "give the served model's own tokenizer"
        )
    messages = [{"role": "user", "content": PROBE_TEXT}]
    body = {"model": served.model_id, "messages": messages, "add_generation_prompt": True}
    if not served.has_chat_template:
        try:
            served.endpoint.call(Call("POST", "/tokenize", body, "tokenizing the probe chat", at_root=True))
        except ServerError:
            return True  # neither side has a chat template
        raise ModelError(
            f"model server {served.ref} applies a chat template and the local tokenizer has none: prompts would "
            "not be scored as the served model reads them; give the served model's own tokenizer"
        )
    if served.has_chat_template:
        text = served.chat_formatter()(messages)
        local = tok(text, add_special_tokens=False).input_ids
        remote = served.endpoint.call(Call("POST", "/tokenize", body, "tokenizing the probe chat", at_root=True))
        if remote.get("tokens") != local:
            raise ModelError(
                f"model server {served.ref} applies a different chat template than the local tokenizer's "
                f"({len(local)} tokens here, {len(remote.get('tokens') or [])} there): prompts would not be scored as "
                "the study renders them; start the server with the model's own template (vLLM: --chat-template) or "
                "give the matching tokenizer"
            )
    return True


def _probe_logprobs(served: ServedModel) -> list[float]:
    """One completion with ``echo``: every prompt token after the first must come back
    with a log-probability, and the echoed ids must be the ones sent. The log-probabilities."""
    from optprompt.models.endpoint import Call

    ids = served.tokenizer(PROBE_TEXT, add_special_tokens=False).input_ids
    body = prompt_logprobs_body(served.model_id, [ids])
    try:
        answer = served.endpoint.call(Call("POST", "/completions", body, "the prompt log-probability probe"))
    except ServerError as e:
        raise ModelError(f"model server {served.ref}: {e}. {NO_PROMPT_LOGPROBS}") from None
    try:
        return read_prompt_logprobs(answer, [ids], served.ref)[0]
    except ServerError as e:
        raise ModelError(f"model server {served.ref}: {e}. {NO_PROMPT_LOGPROBS}") from None


#: Next-token reads and prompt log-probabilities of the same token agree within this (float32).
NEXT_TOKEN_TOLERANCE = 1e-3


def _probe_ranking(served: ServedModel, probed: list[float]) -> str:
    """``next_token`` where the server reads the probe's last token as the next token after
    the rest with the log-probability the prompt probe gave it; else ``prompt_logprobs``
    (``ranking: next_token`` makes that an error)."""
    from optprompt.models.endpoint import Call

    wanted = served.spec.ranking
    if wanted == "prompt_logprobs":
        return wanted
    ids = served.tokenizer(PROBE_TEXT, add_special_tokens=False).input_ids
    why = ""
    try:
        body = next_token_body(served.model_id, [ids[:-1]], ids[-1])
        answer = served.endpoint.call(Call("POST", "/generative_scoring", body, "the next-token probe", at_root=True))
        got = read_next_token(answer, 1, served.ref)[0]
        if abs(got - probed[-1]) > NEXT_TOKEN_TOLERANCE:
            why = f"its next-token read ({got:.4f}) disagrees with its prompt log-probability ({probed[-1]:.4f})"
    except ServerError as e:
        why = f"no next-token reads ({e})"
    if not why:
        return "next_token"
    if wanted == "next_token":
        raise ModelError(f"model server {served.ref}: ranking: next_token, but {why}; use ranking: prompt_logprobs")
    log.info("%s: %s; answers are ranked by prompt log-probabilities", served.ref, why)
    return "prompt_logprobs"


def _cache_block(served: ServedModel) -> int | None:
    """The prefix cache's block size vLLM's ``/metrics`` give (``vllm:cache_config_info``),
    or None where the cache is off or the server does not say."""
    import re

    from optprompt.models.endpoint import Call

    try:
        text = served.endpoint.call(Call("GET", "/metrics", what="reading the metrics", at_root=True, text=True))
    except ServerError as e:
        log.info("%s: no /metrics (%s): its prefix cache is taken to be off", served.ref, e)
        return None
    line = next((x for x in text.splitlines() if x.startswith("vllm:cache_config_info{")), None)
    labels = dict(re.findall(r'(\w+)="([^"]*)"', line or ""))
    if labels.get("enable_prefix_caching") != "True" or not labels.get("block_size", "").isdigit():
        log.info("%s: its /metrics give no prefix cache: answers are ranked by prompt log-probabilities", served.ref)
        return None
    return int(labels["block_size"])


def next_token_body(model_id: str, items: list[list[int]], token: int) -> dict[str, Any]:
    """A ``/generative_scoring`` request for the log-probability of ``token`` as the next
    token after each of ``items`` (whole token sequences: the query is empty)."""
    return {"model": model_id, "query": [], "items": items, "label_token_ids": [token], "apply_softmax": False}


def read_next_token(answer: Any, n: int, ref: str) -> list[float]:
    """The ``n`` log-probabilities a :func:`next_token_body` request asked for (``-inf``
    where the server's probability underflowed to 0).

    Raises:
        ServerError: the answer lacks an item or is not a generative-scoring answer.
    """
    import math

    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, list) or len(data) != n:
        raise ServerError(f"{ref}: expected {n} next-token scores, got {str(answer)[:200]}")
    out: list[float | None] = [None] * n
    for d in data:
        i, p = (d.get("index"), d.get("score")) if isinstance(d, dict) else (None, None)
        if not isinstance(i, int) or not 0 <= i < n or out[i] is not None or not isinstance(p, (int, float)):
            raise ServerError(f"{ref}: an unreadable next-token score ({str(d)[:200]})")
        if not 0.0 <= p <= 1.0 + 1e-6:
            raise ServerError(f"{ref}: a next-token probability {p} outside [0, 1]")
        out[i] = math.log(p) if p > 0 else -math.inf
    return [v for v in out if v is not None]


def prompt_logprobs_body(model_id: str, prompts: list[list[int]]) -> dict[str, Any]:
    """A completions request for the log-probability of every token of each prompt."""
    return {
        "model": model_id,
        "prompt": prompts,
        "max_tokens": 1,
        "temperature": 0.0,
        "echo": True,
        "logprobs": 1,
        "return_token_ids": True,
    }


def read_prompt_logprobs(answer: Any, prompts: list[list[int]], ref: str) -> list[list[float]]:
    """Each prompt's token log-probabilities (the first token's is 0.0: it has no context)
    from a completions answer to :func:`prompt_logprobs_body`; the echoed ids, where the
    server returns them, must be those sent.

    Raises:
        ServerError: the answer lacks a prompt token's log-probability or echoes other ids.
    """
    choices = answer.get("choices") if isinstance(answer, dict) else None
    if not isinstance(choices, list) or len(choices) != len(prompts):
        raise ServerError(f"{ref}: expected {len(prompts)} choices, got {str(answer)[:200]}")
    out: list[list[float] | None] = [None] * len(prompts)
    for position, choice in enumerate(choices):
        i = choice.get("index", position)
        if not isinstance(i, int) or not 0 <= i < len(prompts) or out[i] is not None:
            raise ServerError(f"{ref}: a choice has index {i!r} (of {len(prompts)} prompts)")
        ids = prompts[i]
        echoed = choice.get("prompt_token_ids")
        if echoed is not None and list(echoed) != list(ids):
            raise ServerError(
                f"{ref}: the server echoed other token ids than were sent ({len(echoed)} tokens for {len(ids)}): "
                "it re-tokenized the prompt"
            )
        logprobs = (choice.get("logprobs") or {}).get("token_logprobs")
        if not isinstance(logprobs, list) or len(logprobs) < len(ids):
            got = "no log-probabilities" if not logprobs else f"{len(logprobs)} log-probabilities"
            raise ServerError(f"{ref}: {got} for a prompt of {len(ids)} tokens (echo: true was not honoured)")
        row = logprobs[: len(ids)]
        if any(v is None for v in row[1:]):
            raise ServerError(f"{ref}: the server returned no log-probability for some prompt tokens")
        out[i] = [0.0] + [float(v) for v in row[1:]]
    return [r for r in out if r is not None]
