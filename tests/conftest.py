"""Shared fixtures: every test runs in its own directory with no AUTHCTL_* or colour-forcing environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from authctl.cli import app
from authctl.store import Store
from tests.apphelpers import PASSWORD, add_article_users, make_demo_db
from tests.serving import foreign_setting

STRONG = PASSWORD  # one known-good password for every test


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in list(os.environ):
        if foreign_setting(key):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str


class Cli:
    """Invoke ``authctl`` in-process against one database file."""

    def __init__(self, db: Path):
        self.db = db
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None) -> Run:
        db = getattr(self.db, "raw", None) or str(self.db)  # a DatabaseURL's own text, not its masked form
        result = self.runner.invoke(app, ["--db", db, *args], input=input)
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Run(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "auth.db"


@pytest.fixture
def cli(db_path: Path) -> Cli:
    return Cli(db_path)


@pytest.fixture
def initialized(cli: Cli) -> Cli:
    result = cli("init")
    assert result.exit_code == 0, result.stderr
    return cli


@pytest.fixture(scope="session")
def strong_hash() -> str:
    """STRONG hashed once per run with the default argon2id parameters (what `user add` stores)."""
    from authctl.passwords import Hasher

    return Hasher().hash(STRONG)


@pytest.fixture
def seeded(initialized: Cli, strong_hash: str) -> Cli:
    """The article's roles and users, suman (admin) and rahul (student), both with the password STRONG:
    the one way tests seed the article (``apphelpers.add_article_users``); the demo app's is ``make_demo_db``."""
    with Store.open(initialized.db) as opened:
        add_article_users(opened, strong_hash)
    return initialized


@pytest.fixture
def store(seeded: Cli):
    with Store.open(seeded.db) as opened:
        yield opened


@pytest.fixture
def demo(cli: Cli) -> Cli:
    """The demo app's database (``make_demo_db``: init, then the demo seed with known passwords)."""
    make_demo_db(cli)
    return cli


@pytest.fixture
def demo_db(demo: Cli) -> Path:
    """The path of the ``demo`` database."""
    return demo.db


# --------------------------------------------------------------------------- both engines

#: A server-level URL (no password: trust or PGPASSWORD/~/.pgpass) that .ci/run exports.
PG_ENV = "AUTHCTL_TEST_PG"


def skip_unless_ci(reason: str) -> None:
    """Skip, saying why, on a developer's machine; fail under CI=true, where nothing may skip."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_server():
    """A PostgreSQL server for the tests: ``AUTHCTL_TEST_PG``, else a throwaway cluster started here
    when Debian's binaries exist. Without either the PostgreSQL cases skip, saying why, except under
    CI=true, where they fail."""
    url = os.environ.get(PG_ENV)
    if url:
        yield url
        return
    from tests import pgcluster

    if pgcluster.bin_dir() is None:
        skip_unless_ci(f"no PostgreSQL server: set {PG_ENV}=postgresql://... or apt-get install postgresql")
    cluster = pgcluster.temporary()
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_server: str):
    """A URL whose search_path is a fresh, empty schema (dropped afterwards): an empty database to each test."""
    import uuid

    import psycopg

    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")
    yield f"{pg_server}?options=-csearch_path%3D{name}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {name} CASCADE")


@pytest.fixture(params=["sqlite", "postgresql"])
def engine_db(request: pytest.FixtureRequest, tmp_path: Path):
    """The database location of one test, on each engine in turn: a file, or a postgresql:// URL."""
    if request.param == "sqlite":
        return tmp_path / "auth.db"
    from authctl.store import DatabaseURL

    return DatabaseURL(request.getfixturevalue("pg_url"))


@pytest.fixture
def engine_cli(engine_db) -> Cli:
    return Cli(engine_db)


@pytest.fixture
def engine_seeded(engine_cli: Cli, strong_hash: str) -> Cli:
    """The article's roles and users on each engine, seeded the one way (``add_article_users``)."""
    assert engine_cli("init").exit_code == 0
    with Store.open(engine_cli.db) as opened:
        add_article_users(opened, strong_hash)
    return engine_cli


@pytest.fixture
def engine_store(engine_seeded: Cli):
    with Store.open(engine_seeded.db) as opened:
        yield opened
