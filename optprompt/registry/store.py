"""A local, versioned prompt registry on disk.

Layout under the registry root::

    ROOT/NAME/index.json                    versions (with provenance), stages, promotion history
    ROOT/NAME/versions/N/prompt_card.json   the card of version N (never rewritten)
    ROOT/NAME/versions/N/prompt.txt
    ROOT/NAME/.lock                         serialises writers of NAME across processes

Every write is atomic (a version directory is filled under a temporary name, then
renamed; ``index.json`` is replaced through a rename), and writers of one name hold a
file lock, so concurrent adds never hand out the same version number.
"""

from __future__ import annotations

import builtins
import os
import shutil
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from optprompt._io import atomic_write_json, read_json
from optprompt.kinds.prompt.card import CARD_FILE, PromptCard, card_from_result, load_card
from optprompt.registry.diff import diff_cards
from optprompt.registry.refs import (
    LATEST,
    PromptRef,
    RegistryError,
    parse_ref,
    validate_name,
    validate_stage,
)
from optprompt.registry.version import RegistryVersion, card_hash, provenance_of

__all__ = ["PromptRegistry", "default_registry_root", "load_prompt", "INDEX_FILE", "REGISTRY_ENV"]

INDEX_FILE = "index.json"
VERSIONS_DIR = "versions"
LOCK_FILE = ".lock"
INDEX_FORMAT = 1
REGISTRY_ENV = "OPTPROMPT_REGISTRY"
LOCK_TIMEOUT_S = 60.0


def default_registry_root() -> Path:
    """``$OPTPROMPT_REGISTRY``, else ``$OPTPROMPT_HOME/registry`` (see ``optprompt_home``)."""
    env = os.environ.get(REGISTRY_ENV)
    if env:
        return Path(env).expanduser()
    from optprompt.models.home import optprompt_home

    return optprompt_home() / "registry"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class PromptRegistry:
    """Versioned prompt cards under one root directory.

    Args:
        root: The registry directory; :func:`default_registry_root` when None. It is
            created on the first :meth:`add`.

    Example::

        reg = PromptRegistry("prompts")
        v = reg.add("runs/sentiment-demo", name="sentiment")   # -> sentiment@1
        reg.promote("sentiment@1")                             # stage "production"
        card = reg.load("sentiment@production")
        card.format("The battery died after two days.")
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_registry_root()
        if self.root.exists() and not self.root.is_dir():
            raise RegistryError(f"prompt registry {self.root}: exists and is not a directory")

    def __repr__(self) -> str:
        return f"PromptRegistry({str(self.root)!r})"

    # --- reading ----------------------------------------------------------------------
    def names(self) -> builtins.list[str]:
        """Registered prompt names, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(d.name for d in self.root.iterdir() if (d / INDEX_FILE).is_file() and not d.name.startswith("."))

    def list(self, name: str | None = None) -> builtins.list[RegistryVersion]:
        """The versions of ``name`` (oldest first), or of every name when None."""
        names = [validate_name(name)] if name is not None else self.names()
        out: builtins.list[RegistryVersion] = []
        for n in names:
            index = self._read_index(n, ref=n)
            out += [self._version(n, e, index) for e in index["versions"]]
        return out

    def get(self, ref: str) -> RegistryVersion:
        """Resolve ``NAME@3``, ``NAME@production``, ``NAME@latest`` or ``NAME`` (= latest)."""
        parsed = parse_ref(ref)
        index = self._read_index(parsed.name, ref=ref)
        return self._version(parsed.name, self._resolve(parsed, index, ref), index)

    def load(self, ref: str) -> PromptCard:
        """The prompt card ``ref`` resolves to, ready to format inputs."""
        return self.get(ref).load_card()

    def stages(self, name: str) -> dict[str, int]:
        """Stage -> version for ``name``."""
        return dict(self._read_index(validate_name(name), ref=name)["stages"])

    def history(self, name: str) -> builtins.list[dict[str, Any]]:
        """Promotions of ``name``, oldest first: ``{"time", "stage", "version", "previous"}``."""
        return [dict(h) for h in self._read_index(validate_name(name), ref=name)["history"]]

    def diff(self, a: str, b: str) -> str:
        """A readable diff of two versions: the prompt text, then the other changed fields."""
        va, vb = self.get(a), self.get(b)
        return diff_cards(va.load_card(), vb.load_card(), a_label=va.ref, b_label=vb.ref)

    # --- writing ----------------------------------------------------------------------
    def add(
        self,
        card_or_path: PromptCard | str | os.PathLike[str],
        name: str | None = None,
        *,
        source: str | None = None,
    ) -> RegistryVersion:
        """Register a card as the next version of ``name``.

        Args:
            card_or_path: A :class:`PromptCard`; a finished study's output directory
                (its winner, as ``optprompt export`` would write it); or a prompt card
                directory or ``prompt_card.json`` file.
            name: The prompt name; the card's study name when None.
            source: Recorded as the version's source; the path when one is given.

        Returns:
            The new version; or, when a version with identical content is already
            registered under ``name``, that version (``added`` is False then).
        """
        if isinstance(card_or_path, PromptCard):
            card = card_or_path
        else:
            card, path = self._card_from_path(card_or_path)
            source = source if source is not None else str(path)
        if name is None:
            if not card.study:
                raise RegistryError(f"prompt registry {self.root}: the card has no study name; give a name")
            try:
                name = validate_name(card.study)
            except RegistryError as e:
                raise RegistryError(f"{e} (the card's study name); give a name explicitly") from None
        name = validate_name(name)
        digest = card_hash(card)
        versions_dir = self.root / name / VERSIONS_DIR
        versions_dir.mkdir(parents=True, exist_ok=True)
        with self._lock(name):
            index = self._read_index(name, ref=name, missing_ok=True)
            for entry in index["versions"]:
                if entry["hash"] == digest:
                    return self._version(name, entry, index)
            number = self._next_version(versions_dir, index)
            # os.mkdir (not mkdtemp, which makes it 0700) so the version is readable by
            # whoever the umask allows, like any other output.
            tmp = versions_dir / f".{number}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
            try:
                tmp.mkdir()
                card.save(tmp)
                tmp.rename(versions_dir / str(number))
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            entry = {
                "version": number,
                "hash": digest,
                "created": _now(),
                "source": source,
                **provenance_of(card),
            }
            index["versions"].append(entry)
            self._write_index(name, index)
        return replace(self._version(name, entry, index), added=True)

    def promote(self, ref: str, stage: str = "production") -> RegistryVersion:
        """Point ``stage`` of the prompt at the version ``ref`` names (moving it if set).

        ``ref`` must name a version explicitly: ``NAME@3``, ``NAME@latest`` or another
        stage (``NAME@staging``). Each move is appended to the promotion history.
        """
        parsed = parse_ref(ref)
        if not parsed.explicit:
            raise RegistryError(f"prompt registry {self.root}: promote needs NAME@VERSION, got {ref!r}")
        stage = validate_stage(stage)
        self._read_index(parsed.name, ref=ref)  # unknown name: fail before creating a lock file
        with self._lock(parsed.name):
            index = self._read_index(parsed.name, ref=ref)
            entry = self._resolve(parsed, index, ref)
            previous = index["stages"].get(stage)
            if previous != entry["version"]:
                index["stages"][stage] = entry["version"]
                index["history"].append(
                    {
                        "time": _now(),
                        "stage": stage,
                        "version": entry["version"],
                        "previous": previous,
                    }
                )
                self._write_index(parsed.name, index)
        return self._version(parsed.name, entry, index)

    # --- internals --------------------------------------------------------------------
    def _card_from_path(self, path: str | os.PathLike[str]) -> tuple[PromptCard, Path]:
        from optprompt.errors import OptpromptError
        from optprompt.kinds.registry import candidate_kinds
        from optprompt.plugins.manager import load_plugins
        from optprompt.results import RESULT_FILE, load_result

        p = Path(path).expanduser().resolve()
        if p.is_dir() and (p / RESULT_FILE).is_file():
            try:
                result = load_result(p)
            except OptpromptError as e:  # an incomplete or foreign file, named
                raise RegistryError(str(e)) from None
            kind = candidate_kinds(load_plugins()).of_dict(result.best.candidate)
            if not kind.text_only:
                raise RegistryError(
                    f"{p / RESULT_FILE}: the winner is a {kind.label}, and the registry versions "
                    "prompt cards (text only); export it with `optprompt export` and load it with "
                    "optprompt.load"
                )
            try:
                return card_from_result(result), p
            except (KeyError, TypeError, AttributeError) as e:
                raise RegistryError(
                    f"{p / RESULT_FILE}: not a complete study result ({e!r} missing or invalid)"
                ) from None
        if (p.is_dir() and (p / CARD_FILE).is_file()) or p.is_file():
            return load_card(p), p
        if p.is_dir():
            raise RegistryError(
                f"{p}: neither a finished study's output directory (no {RESULT_FILE}) "
                f"nor a prompt card directory (no {CARD_FILE})"
            )
        raise RegistryError(f"{p}: not found (expected a study output directory or a prompt card)")

    def _lock(self, name: str) -> _RegistryLock:
        return _RegistryLock(self.root / name / LOCK_FILE)

    def _index_path(self, name: str) -> Path:
        return self.root / name / INDEX_FILE

    def _read_index(self, name: str, *, ref: str, missing_ok: bool = False) -> dict[str, Any]:
        path = self._index_path(name)
        if not path.is_file():
            if missing_ok:
                return {
                    "format": INDEX_FORMAT,
                    "name": name,
                    "versions": [],
                    "stages": {},
                    "history": [],
                }
            known = self.names()
            listing = f"registered: {', '.join(known)}" if known else "the registry is empty"
            raise RegistryError(f"prompt registry {self.root}: no prompt named {name!r} (reference {ref!r}); {listing}")
        data = read_json(path, what="prompt registry index")
        if not isinstance(data, dict) or data.get("format") != INDEX_FORMAT:
            fmt = data.get("format") if isinstance(data, dict) else None
            raise RegistryError(f"{path}: unsupported registry index format {fmt!r} (expected {INDEX_FORMAT})")
        ok = (
            isinstance(data.get("versions"), builtins.list)
            and all(
                isinstance(e, dict) and isinstance(e.get("version"), int) and isinstance(e.get("hash"), str)
                for e in data["versions"]
            )
            and isinstance(data.get("stages"), dict)
            and all(isinstance(v, int) for v in data["stages"].values())
            and isinstance(data.get("history"), builtins.list)
        )
        if not ok:
            raise RegistryError(f"{path}: malformed registry index (versions, stages or history)")
        return data

    def _write_index(self, name: str, index: dict[str, Any]) -> None:
        atomic_write_json(self._index_path(name), index)

    def _resolve(self, ref: PromptRef, index: dict[str, Any], raw: str) -> dict[str, Any]:
        versions = index["versions"]
        where = f"prompt registry {self.root}: {raw!r}"
        if not versions:
            raise RegistryError(f"{where}: {ref.name!r} has no versions")
        if ref.selector == LATEST:
            return max(versions, key=lambda e: e["version"])
        number = ref.version
        if number is None:
            number = index["stages"].get(ref.selector)
            if number is None:
                stages = ", ".join(f"{s} -> {v}" for s, v in sorted(index["stages"].items()))
                hint = (
                    f"stages: {stages}" if stages else f"no stage is set; promote one with 'promote {ref.name}@VERSION'"
                )
                raise RegistryError(f"{where}: no stage {ref.selector!r} for {ref.name!r} ({hint})")
        for e in versions:
            if e["version"] == number:
                return e
        known = ", ".join(str(e["version"]) for e in versions)
        raise RegistryError(f"{where}: {ref.name!r} has no version {number} (versions: {known})")

    @staticmethod
    def _next_version(versions_dir: Path, index: dict[str, Any]) -> int:
        # Directories count too: a crash between the rename and the index write must not
        # lead to a version number being reused for different content.
        on_disk = [int(d.name) for d in versions_dir.iterdir() if d.name.isdigit()]
        return max([0, *on_disk, *(e["version"] for e in index["versions"])]) + 1

    def _version(self, name: str, entry: dict[str, Any], index: dict[str, Any]) -> RegistryVersion:
        stages = tuple(sorted(s for s, v in index["stages"].items() if v == entry["version"]))
        return RegistryVersion.from_entry(name, entry, stages, self.root / name / VERSIONS_DIR)


class _RegistryLock:
    """``filelock.FileLock`` that fails with a :class:`RegistryError` naming the lock file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = FileLock(str(path), timeout=LOCK_TIMEOUT_S)

    def __enter__(self) -> _RegistryLock:
        try:
            self._lock.acquire()
        except Timeout:
            raise RegistryError(f"{self.path}: still locked by another process after {LOCK_TIMEOUT_S:.0f} s") from None
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


def load_prompt(ref: str, root: str | os.PathLike[str] | None = None) -> PromptCard:
    """Load the card ``ref`` names (``"NAME@production"``, ``"NAME@3"``...) from a registry.

    Args:
        ref: ``NAME@VERSION``, ``NAME@STAGE``, ``NAME@latest`` or ``NAME`` (= latest).
        root: The registry root; ``$OPTPROMPT_REGISTRY`` or ``$OPTPROMPT_HOME/registry``
            when None.
    """
    return PromptRegistry(root).load(ref)
