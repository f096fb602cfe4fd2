"""An HTTP client for OpenAI-compatible model servers (vLLM, SGLang...).

One :class:`Endpoint` per served model. Its requests run on an event loop of their own (a
daemon thread), so the synchronous scoring API can send many at once: at most
``max_concurrency`` are in flight; a 429, a 5xx, a timeout or a refused or lost
connection is tried again with exponential backoff (a 429's ``Retry-After`` honoured), and
when every try failed the error is :class:`~optprompt.errors.ServerUnavailable`. Any other
4xx is :class:`~optprompt.errors.ServerError` at once, its message naming what was asked
(the caller says which example) and the server's own words.

The API key is read from the environment variable the reference names, sent as a bearer
token and kept nowhere else: not in the reference, not in ``repr``, not in any error.

Why httpx2 and not the ``openai`` package: three endpoints are used (``/v1/models``,
``/v1/completions``, and vLLM's ``/tokenize``, which the OpenAI client does not know);
the retry policy has to say which example failed and has to treat a refused connection
as the server being gone; and httpx2 is already installed with ``huggingface_hub``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
from collections.abc import Sequence
from typing import Any

from optprompt.errors import ModelError, ServerError, ServerUnavailable

__all__ = ["Endpoint", "Call", "RETRY_STATUS"]

log = logging.getLogger(__name__)

#: Answers worth trying again: rate limits and server-side failures.
RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


class Call:
    """One request: ``method`` ``path`` with a JSON ``body``; ``what`` names it in errors
    (e.g. ``"scoring example 'ex-12'"``). ``path`` is under the API root (``/v1``), or
    under the server's own root with ``at_root`` (vLLM's ``/tokenize``). With ``text`` the
    answer is returned as text, not read as JSON (vLLM's ``/metrics``)."""

    __slots__ = ("method", "path", "body", "what", "at_root", "text")

    def __init__(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        what: str = "",
        *,
        at_root: bool = False,
        text: bool = False,
    ) -> None:
        self.method = method
        self.path = path
        self.body = body
        self.what = what or f"{method} {path}"
        self.at_root = at_root
        self.text = text


class Endpoint:
    """Requests to one server (``url`` ends at the API root, e.g. ``http://host:8000/v1``).

    Args:
        url: The API root.
        api_key_env: The environment variable holding the API key (None: no key sent).
        max_concurrency: Requests in flight at most.
        timeout: Seconds one request may take.
        retries: Tries after the first one for a retryable failure.
        backoff: Seconds before the first retry (doubled each time, with jitter, at most 30).
    """

    def __init__(
        self,
        url: str,
        *,
        api_key_env: str | None = None,
        max_concurrency: int = 16,
        timeout: float = 120.0,
        retries: int = 5,
        backoff: float = 0.5,
    ) -> None:
        self.url = url.rstrip("/")
        self.max_concurrency = max_concurrency
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._headers = {"Content-Type": "application/json"}
        if api_key_env is not None:
            key = os.environ.get(api_key_env)
            if not key:
                raise ModelError(
                    f"model server {self.url}: api_key_env names {api_key_env!r}, which is not set in the environment"
                )
            self._headers["Authorization"] = f"Bearer {key}"
        self.requests = 0  # sent, retries included
        self.retried = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: Any = None
        self._gate: asyncio.Semaphore | None = None
        self._start_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Endpoint({self.url!r}, max_concurrency={self.max_concurrency})"

    @property
    def server_root(self) -> str:
        """The server's address without the API path (``/tokenize`` lives there on vLLM)."""
        return self.url[: -len("/v1")] if self.url.endswith("/v1") else self.url

    # --- the event loop ------------------------------------------------------------
    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._start_lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name=f"optprompt-endpoint {self.url}", daemon=True)
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._ensure_loop()).result()

    async def _ready(self) -> None:
        if self._client is None:
            import httpx2

            limits = httpx2.Limits(max_connections=self.max_concurrency, max_keepalive_connections=self.max_concurrency)
            self._client = httpx2.AsyncClient(timeout=self.timeout, limits=limits, headers=self._headers)
            self._gate = asyncio.Semaphore(self.max_concurrency)

    # --- requests ------------------------------------------------------------------
    def call(self, call: Call) -> Any:
        """Send one request; its JSON answer."""
        return self.many([call])[0]

    def many(self, calls: Sequence[Call]) -> list[Any]:
        """Send every request (at most ``max_concurrency`` in flight); answers in order.
        The first failure cancels the rest and is raised."""
        return self._run(self._many(list(calls)))  # type: ignore[no-any-return]

    async def _many(self, calls: list[Call]) -> list[Any]:
        await self._ready()
        tasks = [asyncio.ensure_future(self._send(c)) for c in calls]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def _send(self, call: Call) -> Any:
        import httpx2

        gate = self._gate
        if gate is None:  # _many calls _ready first
            raise RuntimeError("Endpoint._send before _ready")
        url = (self.server_root if call.at_root else self.url) + "/" + call.path.lstrip("/")
        last = ""
        for attempt in range(self.retries + 1):
            delay = min(30.0, self.backoff * 2**attempt) * (0.5 + random.random() / 2)
            async with gate:
                self.requests += 1
                try:
                    response = await self._client.request(call.method, url, json=call.body)
                except (httpx2.TimeoutException, httpx2.TransportError) as e:
                    last = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
                else:
                    if response.status_code < 400 and call.text:
                        return response.text
                    if response.status_code < 400:
                        try:
                            return response.json()
                        except ValueError:
                            raise ServerError(
                                f"model server {self.url}: {call.what}: the answer is not JSON "
                                f"({response.text[:200]!r})"
                            ) from None
                    text = response.text[:500]
                    if response.status_code not in RETRY_STATUS:
                        raise ServerError(
                            f"model server {self.url} refused {call.what} (HTTP {response.status_code}): {text}"
                        )
                    last = f"HTTP {response.status_code}: {text}"
                    after = response.headers.get("retry-after")
                    if after is not None:
                        try:
                            delay = min(60.0, max(delay, float(after)))
                        except ValueError:
                            pass
            if attempt < self.retries:
                self.retried += 1
                log.info("model server %s: %s failed (%s); trying again in %.1fs", self.url, call.what, last, delay)
                await asyncio.sleep(delay)
        raise ServerUnavailable(
            f"model server {self.url} did not answer {call.what} after {self.retries + 1} tries (last: {last}); "
            "is it running? A study stopped by this resumes with `optprompt run` once the server is back"
        )

    def close(self) -> None:
        """Close the connections and stop the loop's thread."""
        if self._loop is None:
            return
        if self._client is not None:
            self._run(self._client.aclose())
            self._client = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._loop.close()
        self._loop = None
