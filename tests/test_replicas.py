"""Replicas: two `authctl serve` processes on one PostgreSQL database see every change at once.

Each change goes through the CLI (a third process); the very next request to either server
must see it: no cache may outlive a committed change (the stamp row moves on every write).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import httpx
import pytest

from authctl.store import DatabaseURL

from .conftest import STRONG, Cli
from .serving import running_server

pytestmark = pytest.mark.slow


def _token(cli: Cli, user: str) -> str:
    issued = cli("token", "issue", "--as", user)
    assert issued.exit_code == 0, issued.stderr
    return issued.stdout.strip()


def _statuses(servers, path: str, token: str) -> list[int]:
    return [httpx.get(f"{s.url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code
            for s in servers]


def test_two_servers_see_each_cli_change_on_the_next_request(pg_url: str, tmp_path: Path) -> None:
    db = DatabaseURL(pg_url)
    cli = Cli(db)
    assert cli("init").exit_code == 0
    for args in (("role", "add", "student"), ("role", "grant", "student", "students:read")):
        assert cli(*args).exit_code == 0
    for name in ("suman", "rahul"):
        assert cli("user", "add", name, "--role", "student", "--password-stdin", input=STRONG + "\n").exit_code == 0
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(running_server(db, tmp_path / name)) for name in ("a", "b")]
        old_key_token = _token(cli, "rahul")
        assert _statuses(servers, "/students", old_key_token) == [200, 200]

        # key rotation: a token of the new key passes at once, and retiring the old key ends the old token
        assert cli("key", "rotate").exit_code == 0
        new_key_token = _token(cli, "rahul")
        assert _statuses(servers, "/students", new_key_token) == [200, 200]
        old_kid = [k for k in cli("key", "list", "--json").stdout.split('"') if k.startswith("es256-")][0]
        assert cli("key", "retire", old_kid, "--yes").exit_code == 0, old_kid
        assert _statuses(servers, "/students", old_key_token) == [401, 401]

        # a permission revoked from a role: 403 on both
        assert cli("role", "revoke", "student", "students:read").exit_code == 0
        assert _statuses(servers, "/students", new_key_token) == [403, 403]
        assert _statuses(servers, "/profile", new_key_token) == [200, 200]

        # a disabled user: 401 on both
        suman = _token(cli, "suman")
        assert _statuses(servers, "/profile", suman) == [200, 200]
        assert cli("user", "disable", "suman").exit_code == 0
        assert _statuses(servers, "/profile", suman) == [401, 401]

        # logout (token version bump): 401 on both
        assert cli("user", "logout", "rahul").exit_code == 0
        assert _statuses(servers, "/profile", new_key_token) == [401, 401]


def test_fifty_parallel_wrong_logins_across_two_servers_count_fifty(pg_url: str, tmp_path: Path) -> None:
    """The failure counter is one atomic upsert: no lost update between two server processes."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from authctl.store import Store

    db = DatabaseURL(pg_url)
    cli = Cli(db)
    assert cli("init").exit_code == 0
    assert cli("config", "set", "lockout_threshold", "0").exit_code == 0  # count, never lock
    assert cli("user", "add", "rahul", "--password-stdin", input=STRONG + "\n").exit_code == 0
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(running_server(db, tmp_path / name)) for name in ("a", "b")]
        start = threading.Barrier(50)

        def wrong_login(i: int) -> int:
            start.wait(timeout=60)
            return httpx.post(f"{servers[i % 2].url}/token", data={"username": "rahul", "password": f"wrong-{i}"},
                              timeout=60).status_code

        with ThreadPoolExecutor(50) as pool:
            statuses = list(pool.map(wrong_login, range(50)))
    assert statuses == [401] * 50
    with Store.open(db) as store:
        assert store.login_failures("rahul") == (50, False)
