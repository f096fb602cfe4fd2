"""A persistent score cache: a candidate (or any identical request) seen before costs no
model time, across trials, resumed runs and studies.

Entries are keyed by a hash of the backend's settings (family, model fingerprint, dtype)
and the exact request text (prefix, suffix and answers, or prompt and decoding
settings). The rendered text already encodes the candidate and the example, so the key
is exact even when two data sets reuse example ids. Stored in SQLite (WAL mode), safe for
several worker processes on one machine.

The cache only saves time: a file that is not a database, or one that breaks or turns
read-only while a study runs, is reported once (naming the file) and the study goes on
computing scores; a corrupt file found at start is moved aside (``*.corrupt-<time>``)
and a fresh cache started, so nothing in it is silently overwritten.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from optprompt.models.home import optprompt_home
from optprompt.prompts.render import ScoreRequest
from optprompt.scoring.backends.base import Backend, GenerationSettings

__all__ = ["ScoreCache", "CachedBackend", "default_cache_path"]

log = logging.getLogger(__name__)


def default_cache_path() -> Path:
    """``$OPTPROMPT_SCORE_CACHE``, else ``$OPTPROMPT_HOME/cache/scores.sqlite``."""
    env = os.environ.get("OPTPROMPT_SCORE_CACHE")
    return Path(env) if env else optprompt_home() / "cache" / "scores.sqlite"


class ScoreCache:
    """Key -> JSON value store in one SQLite file (see the module's notes on failures)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.broken: str | None = None  # why the cache stopped being used, if it did
        try:
            self._db = self._open()
        except sqlite3.DatabaseError as e:
            aside = self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
            os.replace(self.path, aside)
            for suffix in ("-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            log.warning("score cache %s is not a usable database (%s): moved to %s, starting afresh", path, e, aside)
            self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("CREATE TABLE IF NOT EXISTS scores (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            db.execute("SELECT COUNT(*) FROM scores").fetchone()
            db.commit()
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def _failed(self, e: sqlite3.Error) -> None:
        if self.broken is None:
            self.broken = str(e)
            log.warning("score cache %s failed (%s): scores are computed without it from now on", self.path, e)

    def get_many(self, keys: Sequence[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.broken:
            return out
        with self._lock:
            try:
                for start in range(0, len(keys), 500):
                    chunk = list(keys[start : start + 500])
                    q = f"SELECT key, value FROM scores WHERE key IN ({','.join('?' * len(chunk))})"
                    out.update((k, json.loads(v)) for k, v in self._db.execute(q, chunk))
            except sqlite3.Error as e:
                self._failed(e)
                return {}
        return out

    def put_many(self, items: dict[str, Any]) -> None:
        if self.broken:
            return
        with self._lock:
            try:
                self._db.executemany(
                    "INSERT OR REPLACE INTO scores (key, value) VALUES (?, ?)",
                    [(k, json.dumps(v)) for k, v in items.items()],
                )
                self._db.commit()
            except sqlite3.Error as e:
                self._failed(e)

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM scores").fetchone()[0]

    def close(self) -> None:
        self._db.close()


def _key(parts: list[Any]) -> str:
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode("utf-8")).hexdigest()


class CachedBackend:
    """Wraps a :class:`Backend`: answers from the cache, computes and stores the rest."""

    def __init__(self, backend: Backend, cache: ScoreCache) -> None:
        self.backend = backend
        self.cache = cache
        self.hits = 0
        self.misses = 0

    def __getattr__(self, name: str) -> Any:  # family, loaded, computed_tokens, ...
        return getattr(self.backend, name)

    def _cached(self, keys: list[str], compute) -> list[Any]:  # type: ignore[no-untyped-def]
        found = self.cache.get_many(keys)
        missing = [i for i, k in enumerate(keys) if k not in found]
        self.hits += len(keys) - len(missing)
        self.misses += len(missing)
        if missing:
            values = compute(missing)
            new = {keys[i]: v for i, v in zip(missing, values)}
            self.cache.put_many(new)
            found.update(new)
        return [found[k] for k in keys]

    def loglikelihoods(self, requests: Sequence[ScoreRequest]) -> list[list[float]]:
        base = ["ll", *self.backend.settings_key]
        keys = [_key([*base, r.prefix, r.suffix, list(r.continuations)]) for r in requests]
        return self._cached(keys, lambda idx: self.backend.loglikelihoods([requests[i] for i in idx]))

    def generate(self, prompts: Sequence[str], settings: GenerationSettings) -> list[str]:
        base = ["gen", *self.backend.settings_key, settings.key()]
        keys = [_key([*base, p]) for p in prompts]
        return self._cached(keys, lambda idx: self.backend.generate([prompts[i] for i in idx], settings))
