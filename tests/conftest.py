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
        result = self.runner.invoke(app, ["--db", str(self.db), *args], input=input)
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
