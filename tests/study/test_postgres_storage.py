"""PostgreSQL storage as users reach it: the README's URL form, the psycopg2 form, a missing
driver, and the command that starts a local server for the workers of one machine."""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import sqlalchemy

from optprompt.errors import OptpromptError
from optprompt.study.local_postgres import LocalPostgres, find_binaries, free_port, main
from optprompt.study.storage import make_storage, open_study

ROOT = Path(__file__).resolve().parents[2]


def _documented_schemes() -> set[str]:
    """The URL schemes the README and docs/ give to ``--storage`` for PostgreSQL."""
    texts = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    found = set()
    for path in texts:
        found |= set(re.findall(r"--storage (postgresql[+a-z0-9]*)://", path.read_text(encoding="utf-8")))
    return found


def _with_scheme(url: str, scheme: str) -> str:
    return f"{scheme}://{url.split('://', 1)[1]}"


def test_documented_and_psycopg2_urls_open_a_study(postgres_url: str) -> None:
    schemes = _documented_schemes()
    assert "postgresql" in schemes, "the README's multi-worker command gives --storage postgresql://..."
    for scheme in sorted(schemes | {"postgresql+psycopg2"}):
        url = _with_scheme(postgres_url, scheme)
        name = f"url-{uuid.uuid4().hex[:8]}"
        study = open_study(make_storage(url), name)
        try:
            study.tell(study.ask(), 1.0)
            assert optuna.load_study(study_name=name, storage=url).best_value == 1.0, url
        finally:
            optuna.delete_study(study_name=name, storage=url)


def test_a_missing_driver_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # `import psycopg` now raises ImportError
    with pytest.raises(OptpromptError, match=r"driver psycopg \(3\) is not installed.*optprompt\[postgres\]"):
        make_storage("postgresql://someone@127.0.0.1:1/optprompt")
    monkeypatch.setitem(sys.modules, "psycopg2", None)
    with pytest.raises(OptpromptError, match=r"driver psycopg2 is not installed.*psycopg2-binary"):
        make_storage("postgresql+psycopg2://someone@127.0.0.1:1/optprompt")


@pytest.fixture
def reachable_dir() -> Iterator[Path]:
    """A folder the server's user can reach (as root it runs as another user). Not under
    pytest's own temporary root: every pytest session that starts resets that to 0700, which
    would shut a server user out of it while another session runs."""
    try:
        find_binaries()
    except OptpromptError as e:
        pytest.skip(str(e))
    base = Path(tempfile.mkdtemp(prefix="optprompt-test-pg-"))
    os.chmod(base, 0o711)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_start_url_stop_a_local_server(reachable_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = reachable_dir / "data"
    port = free_port()
    assert main(["start", "--dir", str(data), "--port", str(port)]) == 0
    try:
        url = capsys.readouterr().out.strip()
        assert url == f"postgresql://postgres@127.0.0.1:{port}/optprompt"
        with sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool).connect() as conn:
            assert conn.execute(sqlalchemy.text("SELECT current_database()")).scalar() == "optprompt"
        assert main(["start", "--dir", str(data)]) == 0  # already running: the same server, the same URL
        assert capsys.readouterr().out.strip() == url
        assert main(["url", "--dir", str(data)]) == 0 and capsys.readouterr().out.strip() == url
    finally:
        assert main(["stop", "--dir", str(data)]) == 0
    assert capsys.readouterr().out.strip() == "stopped"
    assert LocalPostgres(data).running_port() is None
    assert main(["stop", "--dir", str(data)]) == 0
    assert "no server runs" in capsys.readouterr().out


def test_a_port_in_use_is_refused(reachable_dir: Path, postgres_url: str) -> None:
    port = sqlalchemy.make_url(postgres_url).port
    with pytest.raises(OptpromptError, match=f"port {port} on 127.0.0.1 is in use"):
        LocalPostgres(reachable_dir / "data", port=port).start()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="as root only")
def test_as_root_a_data_folder_the_server_user_cannot_reach_is_refused(tmp_path: Path) -> None:
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    with pytest.raises(OptpromptError, match="refuses root.*is closed to it"):
        LocalPostgres(closed / "data").start()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="as root only")
def test_as_root_binaries_under_a_closed_folder_are_copied_where_the_server_user_reaches_them(
    reachable_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A virtual environment in root's home (0700): the server's user cannot run its binaries."""
    import shutil

    install = find_binaries().parent
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    shutil.copytree(install, closed / install.parent.name / install.name, symlinks=True)
    libs = install.parent.parent / f"{install.parent.name}.libs"
    if libs.is_dir():
        shutil.copytree(libs, closed / libs.name, symlinks=True)
    monkeypatch.setenv("OPTPROMPT_PG_BIN", str(closed / install.parent.name / install.name / "bin"))
    server = LocalPostgres(reachable_dir / "data", port=free_port())
    try:
        url = server.start()
        assert not str(server.bin_dir).startswith(str(closed))
        with sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool).connect() as conn:
            assert conn.execute(sqlalchemy.text("SELECT 1")).scalar() == 1
    finally:
        server.stop()


def test_the_optprompt_postgres_command_starts_names_and_stops_a_server(
    reachable_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from optprompt.cli.main import main as cli

    data = reachable_dir / "data"
    port = free_port()
    assert cli(["postgres", "start", "--dir", str(data), "--port", str(port)]) == 0
    try:
        out = capsys.readouterr()
        url = out.out.strip()
        assert url == f"postgresql://postgres@127.0.0.1:{port}/optprompt"
        assert f"optprompt worker STUDY.yaml --storage {url}" in out.err
        assert f"optprompt postgres stop --dir {data}" in out.err
        assert cli(["postgres", "url", "--dir", str(data)]) == 0 and capsys.readouterr().out.strip() == url
        # a second server on a port in use: exit 2, the port named, the first server untouched
        assert cli(["postgres", "start", "--dir", str(reachable_dir / "other"), "--port", str(port)]) == 2
        assert f"port {port} on 127.0.0.1 is in use" in capsys.readouterr().err
        assert LocalPostgres(data).running_port() == port
    finally:
        assert cli(["postgres", "stop", "--dir", str(data)]) == 0
    assert capsys.readouterr().out.strip() == "stopped"
    assert cli(["postgres", "url", "--dir", str(data)]) == 2
    assert "no PostgreSQL server runs on" in capsys.readouterr().err


@pytest.fixture
def empty_schema(postgres_url: str) -> Iterator[str]:
    """A storage URL whose tables go into a new, empty PostgreSQL schema (as a new database
    would hold them): Optuna's tables and enum types are created there from scratch."""
    schema = f"fresh_{uuid.uuid4().hex[:10]}"
    admin = sqlalchemy.create_engine(postgres_url, isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.pool.NullPool)
    with admin.connect() as conn:
        conn.execute(sqlalchemy.text(f"CREATE SCHEMA {schema}"))
    url = sqlalchemy.make_url(postgres_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sqlalchemy.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def _open_at_once(url: str, n: int) -> list[BaseException | None]:
    """``n`` threads opening a storage at ``url`` at the same moment; what each raised."""
    import threading

    barrier = threading.Barrier(n)
    errors: list[BaseException | None] = [None] * n

    def open_one(i: int) -> None:
        barrier.wait()
        try:
            make_storage(url).engine.dispose()
        except BaseException as e:  # reported by the test
            errors[i] = e

    threads = [threading.Thread(target=open_one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return errors


def test_storages_opened_at_once_on_an_empty_database_all_open(empty_schema: str) -> None:
    """Workers started together on a new database: each creates Optuna's schema (tables and
    the studydirection enum type) unless they take turns; none may fail."""
    errors = _open_at_once(empty_schema, 6)
    assert errors == [None] * 6, "\n".join(f"{type(e).__name__}: {e}" for e in errors if e)
    study = open_study(make_storage(empty_schema), "after-the-race")
    study.tell(study.ask(), 1.0)
    assert optuna.load_study(study_name="after-the-race", storage=empty_schema).best_value == 1.0


def test_opening_a_storage_waits_for_the_schema_lock(empty_schema: str) -> None:
    import threading

    from optprompt.study.storage import schema_lock

    opened = threading.Event()
    with schema_lock(empty_schema):  # another process creating the schema
        thread = threading.Thread(target=lambda: (make_storage(empty_schema), opened.set()))
        thread.start()
        assert not opened.wait(1.5), "make_storage opened the storage while another process held the schema lock"
    thread.join(timeout=60)
    assert opened.is_set()


def test_a_schema_lock_held_too_long_names_the_storage_and_the_lock(empty_schema: str) -> None:
    from optprompt.study.storage import schema_lock

    with schema_lock(empty_schema):
        with pytest.raises(OptpromptError, match=r"cannot open study storage .*waited 1 s for another process"):
            with schema_lock(empty_schema, timeout_s=1):
                pass
