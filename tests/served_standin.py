"""A small stand-in for an OpenAI-compatible model server, backed by a model in this process.

It speaks the part of vLLM's protocol optprompt uses (``/v1/models``, ``/v1/completions`` on
token ids with ``echo`` + ``logprobs`` and ``return_token_ids``, greedy generation with stop
strings, ``/tokenize`` with a prompt or chat messages), so the served path runs in every
test run without vLLM. ``mode="generated_only"`` answers like llama.cpp's server and Ollama
(log-probabilities of generated tokens only); ``faults`` makes it answer the next requests
with an HTTP status or drop the connection; ``requests`` records what was asked.
``adapters`` (name -> directory) are listed as vLLM lists LoRA adapters (with a ``parent``)
and accepted as a request's ``model``; the stand-in scores them with its own model (it
applies no LoRA: the real-server tests check that vLLM does). With ``embeddings`` it also
answers ``/v1/embeddings`` (the model's mean-pooled last hidden states), as vLLM started with
``--runner pooling`` does; without, that route is missing, as on a generating vLLM. It
answers vLLM's ``/generative_scoring`` (next-token probabilities of label tokens after each
item) unless ``next_token`` is False (as on servers without that route), and ``/metrics``
with vLLM's ``vllm:cache_config_info`` line (prefix caching on, ``cache_block``-token blocks;
None: off).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class StandIn:
    loaded: Any  # a LoadedModel (tiny in tests)
    name: str = "stand-in"
    root: str | None = None
    mode: str = "full"  # or "generated_only"
    api_key: str | None = None
    faults: list[Any] = field(default_factory=list)  # statuses (int) or "drop", consumed in order
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    tokenize: bool = True
    max_model_len: int = 2048
    adapters: dict[str, str] = field(default_factory=dict)
    embeddings: bool = False
    next_token: bool = True
    cache_block: int | None = 16
    server: ThreadingHTTPServer | None = None
    stopped: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def start(self) -> StandIn:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: Any) -> None:
                text = isinstance(body, str)  # /metrics: Prometheus text
                data = body.encode() if text else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain" if text else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                with standin.lock:
                    standin.headers.append(dict(self.headers))
                    standin.requests.append({"path": self.path, "body": body})
                    fault = standin.faults.pop(0) if standin.faults else None
                if fault == "drop" or standin.stopped:  # stopped: kept-alive connections die too
                    self.close_connection = True
                    self.connection.close()
                    return
                if isinstance(fault, int):
                    self._answer(fault, {"error": {"message": f"injected {fault}"}})
                    return
                if standin.api_key is not None and self.headers.get("Authorization") != f"Bearer {standin.api_key}":
                    self._answer(401, {"error": {"message": "Unauthorized"}})
                    return
                try:
                    status, answer = standin.route(method, self.path, body)
                except Exception as e:  # a test's stand-in: report it as a server error
                    status, answer = 500, {"error": {"message": repr(e)}}
                self._answer(status, answer)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.stopped = True
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    # --- the protocol ---------------------------------------------------------------
    def route(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if method == "GET" and path == "/v1/models":
            entry = {"id": self.name, "object": "model", "root": self.root or self.name}
            entry["max_model_len"] = self.max_model_len
            lora = [{"id": n, "object": "model", "root": r, "parent": self.name} for n, r in self.adapters.items()]
            return 200, {"object": "list", "data": [entry, *lora]}
        if method == "POST" and path == "/tokenize" and self.tokenize:
            tok = self.loaded.tokenizer
            if "messages" in body:
                text = tok.apply_chat_template(body["messages"], tokenize=False, add_generation_prompt=True)
                ids = tok(text, add_special_tokens=False).input_ids
            else:
                ids = tok(body["prompt"], add_special_tokens=body.get("add_special_tokens", True)).input_ids
            return 200, {"tokens": ids, "count": len(ids)}
        if method == "POST" and path == "/v1/embeddings" and self.embeddings:
            from optprompt.scoring.embedding import ModelEmbedder

            if body.get("model") != self.name:
                return 404, {"error": {"message": f"The model `{body.get('model')}` does not exist."}}
            vectors = ModelEmbedder(self.loaded).embed(list(body["input"]))
            data = [{"index": i, "object": "embedding", "embedding": v.tolist()} for i, v in enumerate(vectors)]
            return 200, {"object": "list", "data": data, "model": self.name}
        if method == "GET" and path == "/metrics":
            on = self.cache_block is not None
            info = f'block_size="{self.cache_block or 16}",enable_prefix_caching="{on}",engine="0"'
            return 200, f"# TYPE vllm:cache_config_info gauge\nvllm:cache_config_info{{{info}}} 1.0\n"
        if method == "POST" and path == "/generative_scoring" and self.next_token:
            if body.get("model") != self.name and body.get("model") not in self.adapters:
                return 404, {"error": {"message": f"The model `{body.get('model')}` does not exist."}}
            return 200, {"data": self._next_token(body), "object": "list"}
        if method == "POST" and path == "/v1/completions":
            if body.get("model") != self.name and body.get("model") not in self.adapters:
                return 404, {"error": {"message": f"The model `{body.get('model')}` does not exist."}}
            prompts = body["prompt"]
            if prompts and isinstance(prompts[0], int):
                prompts = [prompts]
            for p in prompts:
                if len(p) + int(body.get("max_tokens") or 0) > self.max_model_len:
                    return 400, {"error": {"message": f"This model's maximum context length is {self.max_model_len}"}}
            return 200, {"choices": [self._complete(i, p, body) for i, p in enumerate(prompts)]}
        return 404, {"error": {"message": f"no route {method} {path}"}}

    def _next_token(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """The probability of the first label token after query + item, for each item
        (``apply_softmax: false``: over the whole vocabulary), as vLLM answers it."""
        import math

        import torch

        label = body["label_token_ids"][0]
        out = []
        with torch.inference_mode():
            for i, item in enumerate(body["items"]):
                ids = list(body["query"]) + list(item)
                logits = self.loaded.model(input_ids=torch.tensor([ids])).logits[0, -1].float()
                lp = float(torch.log_softmax(logits, dim=-1)[label])
                out.append({"index": i, "object": "score", "score": math.exp(lp)})
        return out

    def _complete(self, index: int, ids: list[int], body: dict[str, Any]) -> dict[str, Any]:
        import torch

        choices = (body.get("structured_outputs") or {}).get("choice")
        if choices:  # a stand-in for guided decoding: the likeliest whole choice
            tok = self.loaded.tokenizer
            with torch.inference_mode():
                best, best_lp = choices[0], float("-inf")
                for c in choices:
                    c_ids = tok(c, add_special_tokens=False).input_ids
                    logits = self.loaded.model(input_ids=torch.tensor([list(ids) + c_ids])).logits[0].float()
                    lp = torch.log_softmax(logits, dim=-1)
                    total = sum(float(lp[len(ids) - 1 + t, c_ids[t]]) for t in range(len(c_ids)))
                    if total > best_lp:
                        best, best_lp = c, total
            return {"index": index, "text": best, "finish_reason": "stop"}

        model, tok = self.loaded.model, self.loaded.tokenizer
        stop = [s for s in body.get("stop") or [] if s]
        seq = list(ids)
        generated: list[int] = []
        gen_logprobs: list[float] = []
        text = ""
        eos = tok.eos_token_id
        with torch.inference_mode():
            prompt_lp: list[float | None] = [None]
            for _ in range(max(1, int(body.get("max_tokens") or 1))):
                logits = model(input_ids=torch.tensor([seq])).logits[0].float()
                lp = torch.log_softmax(logits, dim=-1)
                if len(prompt_lp) == 1 and len(ids) > 1:
                    prompt_lp += [float(lp[t - 1, ids[t]]) for t in range(1, len(ids))]
                nxt = int(lp[-1].argmax())
                generated.append(nxt)
                gen_logprobs.append(float(lp[-1, nxt]))
                seq.append(nxt)
                text = tok.decode(generated, skip_special_tokens=True)
                if nxt == eos or any(s in text for s in stop):
                    break
        for s in stop:
            if s in text:
                text = text[: text.index(s)]
        choice: dict[str, Any] = {"index": index, "text": text, "finish_reason": "stop"}
        if body.get("logprobs") is not None:
            if self.mode == "full" and body.get("echo"):
                choice["logprobs"] = {"token_logprobs": prompt_lp + gen_logprobs}
            else:  # llama.cpp / Ollama: generated tokens only
                choice["logprobs"] = {"token_logprobs": gen_logprobs}
        if body.get("return_token_ids"):
            choice["prompt_token_ids"] = list(ids)
            choice["token_ids"] = generated
        return choice
