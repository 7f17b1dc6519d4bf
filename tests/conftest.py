"""Shared fixtures: every test runs in its own directory with no AUTHCTL_* or colour-forcing environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from authctl.cli import app
from authctl.store import Store
from tests.apphelpers import PASSWORD
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


@pytest.fixture
def seeded(initialized: Cli) -> Cli:
    """The article's roles and users: suman (admin), rahul (student)."""
    cli = initialized
    for args in (
        ("role", "add", "student"),
        ("role", "add", "admin", "--inherits", "student"),
        ("role", "grant", "student", "students:read"),
        ("role", "grant", "admin", "students:delete"),
    ):
        assert cli(*args).exit_code == 0
    for name, role in (("suman", "admin"), ("rahul", "student")):
        result = cli("user", "add", name, "--role", role, "--password-stdin", input=STRONG + "\n")
        assert result.exit_code == 0, result.stderr
    return cli


@pytest.fixture
def store(seeded: Cli):
    with Store.open(seeded.db) as opened:
        yield opened
