"""PostgreSQL faults: a server that goes away answers 503 and recovers by itself; a connection
killed mid-transaction leaves nothing half-written."""

from __future__ import annotations

from pathlib import Path

import httpx
import psycopg
import pytest

from authctl.errors import DatabaseError
from authctl.store import DatabaseURL, Store

from .conftest import STRONG, Cli, skip_unless_ci
from .serving import running_server

pytestmark = pytest.mark.slow


def test_a_connection_killed_mid_transaction_leaves_nothing_half_written(pg_url: str, engine_seeded_pg) -> None:
    store = engine_seeded_pg
    before = (store.user_count(), len(store.audit_log(limit=1000)))
    with pytest.raises(DatabaseError):
        with store.transaction():
            store.add_user("priya", None, ["student"])
            pid = store.execute("SELECT pg_backend_pid()").fetchone()[0]
            with psycopg.connect(pg_url, autocommit=True) as killer:
                assert killer.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]
            store.add_user("kabir", None, ["student"])
    assert (store.user_count(), len(store.audit_log(limit=1000))) == before
    assert store.find_user("priya") is None
    store.add_user("meera", None, ["student"])  # and the store goes on, on a fresh connection
    assert store.find_user("meera") is not None


@pytest.fixture
def engine_seeded_pg(pg_url: str):
    cli = Cli(DatabaseURL(pg_url))
    assert cli("init").exit_code == 0
    assert cli("role", "add", "student").exit_code == 0
    with Store.open(DatabaseURL(pg_url)) as store:
        yield store


def test_server_answers_503_while_postgresql_is_down_and_recovers_without_a_restart(tmp_path: Path) -> None:
    from tests import pgcluster

    if pgcluster.bin_dir() is None:
        skip_unless_ci("needs PostgreSQL's own binaries to stop and start a server")
    cluster = pgcluster.temporary()
    try:
        db = DatabaseURL(cluster.start())
        cli = Cli(db)
        assert cli("init").exit_code == 0
        assert cli("user", "add", "rahul", "--password-stdin", input=STRONG + "\n").exit_code == 0
        token = cli("token", "issue", "--as", "rahul").stdout.strip()
        headers = {"Authorization": f"Bearer {token}"}
        with running_server(db, tmp_path) as server:
            assert httpx.get(f"{server.url}/profile", headers=headers, timeout=20).status_code == 200
            cluster.pg_ctl("-m", "fast", "-w", "stop")
            down = [httpx.get(f"{server.url}/profile", headers=headers, timeout=20) for _ in range(2)]
            assert [r.status_code for r in down] == [503, 503], [r.text for r in down]
            login = httpx.post(f"{server.url}/token", data={"username": "rahul", "password": STRONG}, timeout=20)
            assert login.status_code == 503
            cluster.pg_ctl("-l", str(cluster.directory / "log"), "-o",
                           f"-k {cluster.directory} -h 127.0.0.1 -p {cluster.port} -c fsync=off", "-w", "start")
            assert httpx.get(f"{server.url}/profile", headers=headers, timeout=20).status_code == 200
        assert "Traceback" not in server.stderr and " 500 " not in server.stderr
    finally:
        cluster.stop()
