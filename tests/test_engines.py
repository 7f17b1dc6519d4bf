"""Both engines behind one Store: SQLite files and PostgreSQL databases answer alike.

Every test here runs once per engine (the ``engine_db`` fixture); the PostgreSQL cases use the
server of ``AUTHCTL_TEST_PG`` or a throwaway cluster (tests/pgcluster.py).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from authctl import keys
from authctl.errors import DatabaseError, NotFound
from authctl.store import SCHEMA_VERSION, DatabaseURL, Store, mask_url, resolve_db_path

from .conftest import STRONG, Cli


def test_cli_round_trip_on_each_engine(engine_seeded: Cli) -> None:
    cli = engine_seeded
    listed = json.loads(cli("user", "list", "--json").stdout)["users"]
    assert sorted(u["username"] for u in listed) == ["rahul", "suman"]
    assert cli("check", "DELETE", "/student/3", "--as", "rahul").exit_code == 4
    assert cli("check", "DELETE", "/student/3", "--as", "suman").exit_code == 0
    issued = cli("token", "issue", "--as", "rahul")
    assert issued.exit_code == 0, issued.stderr
    assert cli("token", "verify", issued.stdout.strip()).exit_code == 0
    assert cli("user", "disable", "rahul").exit_code == 0
    assert cli("token", "verify", issued.stdout.strip()).exit_code == 3


def test_the_demo_seeds_and_serves_its_data_on_each_engine(engine_cli: Cli) -> None:
    assert engine_cli("init", "--demo", "--password-stdin", input=f"{STRONG}\n{STRONG}\n{STRONG}\n").exit_code == 0
    from authctl.app import data

    with Store.open(engine_cli.db) as store:
        assert len(data.list_students(store)) == 4
        assert data.add_course(store, "Tokens", "priya")["id"] == 4
        assert data.delete_student(store, 3) and data.get_student(store, 3) is None


def test_init_refuses_a_database_that_is_not_empty(pg_url: str) -> None:
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE invoices (id int)")
        conn.execute("INSERT INTO invoices VALUES (1)")
    cli = Cli(DatabaseURL(pg_url))
    result = cli("init")
    assert result.exit_code == 1 and "not empty" in result.stderr and "Traceback" not in result.stderr
    with pytest.raises(DatabaseError, match="not an authctl database"):
        Store.open(DatabaseURL(pg_url))
    with psycopg.connect(pg_url, autocommit=True) as conn:  # left untouched
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")]
        assert tables == ["invoices"]


def test_init_twice_is_refused_and_keeps_the_database(engine_seeded: Cli) -> None:
    again = engine_seeded("init")
    assert again.exit_code == 1
    assert len(json.loads(engine_seeded("user", "list", "--json").stdout)["users"]) == 2


def test_open_without_init_says_so(pg_url: str) -> None:
    result = Cli(DatabaseURL(pg_url))("user", "list")
    assert result.exit_code == 1 and "run `authctl init`" in result.stderr


def test_database_password_is_never_shown(pg_server: str, pg_url: str, tmp_path: Path) -> None:
    secret = "Hunter2-never-print"
    with_password = pg_url.replace("postgres@", f"postgres:{secret}@")  # trust auth: the password is unused
    assert mask_url(with_password).count(secret) == 0 and "postgres:***@" in mask_url(with_password)
    cli = Cli(DatabaseURL(with_password))
    created = cli("init", "--json")
    assert created.exit_code == 0, created.stderr
    assert secret not in created.stdout + created.stderr
    assert json.loads(created.stdout)["database"] == mask_url(with_password)
    unreachable = with_password.replace(pg_server.rsplit(":", 1)[1].split("/")[0], "1")  # port 1: nobody there
    failed = Cli(DatabaseURL(unreachable))("user", "list")
    assert failed.exit_code == 1 and secret not in failed.stdout + failed.stderr
    assert "cannot connect" in failed.stderr
    assert secret not in repr(resolve_db_path(with_password)) + str(resolve_db_path(with_password))


# --------------------------------------------------------------------------- atomicity


def test_login_failure_counter_counts_every_parallel_failure(engine_store: Store) -> None:
    """50 wrong logins at once, from two processes of 25 threads each: the counter moves by exactly 50."""
    db = getattr(engine_store.path, "raw", None) or str(engine_store.path)
    script = (
        "import sys\nfrom concurrent.futures import ThreadPoolExecutor\nfrom authctl.store import Store\n"
        "s = Store.open(sys.argv[1])\n"
        "with ThreadPoolExecutor(25) as pool:\n"
        "    list(pool.map(lambda i: s.record_login_failure('rahul', float(i), 0), range(25)))\n"
        "s.close()\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, db]) for _ in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert engine_store.login_failures("rahul") == (50, False)


def test_a_refresh_token_is_used_once_under_concurrency(engine_store: Store) -> None:
    user = engine_store.get_user("rahul")
    engine_store.record_refresh("r1", "fam", user.id, 2**40)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: engine_store.use_refresh("r1"), range(16)))
    assert results.count(("fam", True)) == 1 and results.count(("fam", False)) == 15
    assert engine_store.revoke_family("fam") == 1 and engine_store.is_revoked("r1")


def test_user_import_is_all_or_nothing(engine_store: Store) -> None:
    with pytest.raises(NotFound):
        engine_store.add_users([("priya", "h", ["student"], False), ("kabir", "h", ["nosuchrole"], False)])
    assert engine_store.find_user("priya") is None and engine_store.user_count() == 2


def test_concurrent_key_rotations_leave_exactly_one_active_key(engine_store: Store) -> None:
    new = [keys.generate("ES256") for _ in range(6)]
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(engine_store.add_key, new))
    statuses = [k.status for k in engine_store.keys()]
    assert statuses.count("active") == 1 and len(statuses) == 7
    assert engine_store.keys()[-1].status == "active"  # the last one created is the one in force


# --------------------------------------------------------------------------- change stamps


def test_change_stamp_sees_another_process_commit(engine_store: Store) -> None:
    """A cache keyed on the stamp (access, keys, settings) drops what another process changed."""
    rahul = engine_store.get_user("rahul")
    assert "students:read" in engine_store.access(rahul).permissions
    before = engine_store.change_stamp()
    db = getattr(engine_store.path, "raw", None) or str(engine_store.path)
    subprocess.run([sys.executable, "-m", "authctl", "--db", db, "role", "revoke", "student", "students:read"],
                   check=True, capture_output=True)
    assert engine_store.change_stamp() != before
    assert "students:read" not in engine_store.access(rahul).permissions
    stamp, revoked, user = engine_store.token_state("none", rahul.uid)
    assert stamp == engine_store.change_stamp() and not revoked and user.username == "rahul"


def test_a_repeat_token_sees_each_change_another_process_commits(engine_store: Store) -> None:
    """The lookup a verifier keeps for a repeat token (PostgreSQL) serves only while no commit
    moved the stamp: a logout, a disable and a revoke from another process each count at once."""
    from authctl import tokens
    from authctl.errors import TokenRevoked, TokenUserInvalid

    db = getattr(engine_store.path, "raw", None) or str(engine_store.path)

    def cli(*args: str) -> None:
        subprocess.run([sys.executable, "-m", "authctl", "--db", db, *args], check=True, capture_output=True)

    for change, refused in ((("user", "disable", "rahul"), TokenUserInvalid),
                            (("user", "logout", "rahul"), TokenUserInvalid),
                            (("token", "revoke", "--jti", "JTI"), TokenRevoked)):
        cli("user", "enable", "rahul")
        issued = tokens.issue(engine_store, "rahul")
        for _ in range(3):  # the first verify looks the token up, the next ones may reuse it
            assert tokens.verify(engine_store, issued.token).user.username == "rahul"
        cli(*(issued.claims["jti"] if arg == "JTI" else arg for arg in change))
        with pytest.raises(refused):
            tokens.verify(engine_store, issued.token)


def test_stamp_is_steady_while_nothing_changes(engine_store: Store) -> None:
    first = engine_store.change_stamp()
    engine_store.list_users()
    engine_store.access(engine_store.get_user("suman"))
    assert engine_store.change_stamp() == first


# --------------------------------------------------------------------------- migrations


def _catalog(store: Store) -> dict:
    """The schema as the engine's own catalog describes it: tables, columns, keys, indexes."""
    if store.engine_name == "sqlite":
        conn = store.conn
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        return {
            table: {
                "columns": conn.execute(f"PRAGMA table_info({table})").fetchall(),
                "foreign_keys": conn.execute(f"PRAGMA foreign_key_list({table})").fetchall(),
                "indexes": sorted(
                    (name, unique, tuple(c[2] for c in conn.execute(f"PRAGMA index_info({name})")))
                    for _, name, unique, *_ in conn.execute(f"PRAGMA index_list({table})")
                ),
            }
            for table in tables
        }
    columns = store.execute(
        "SELECT table_name, column_name, ordinal_position, data_type, is_nullable, column_default, is_identity "
        "FROM information_schema.columns WHERE table_schema = current_schema() ORDER BY 1, 3").fetchall()
    constraints = store.execute(
        "SELECT c.relname, k.conname, pg_get_constraintdef(k.oid) FROM pg_constraint k "
        "JOIN pg_class c ON c.oid = k.conrelid WHERE c.relnamespace = current_schema()::regnamespace "
        "ORDER BY 1, 2").fetchall()
    indexes = store.execute(
        "SELECT tablename, indexname, replace(indexdef, current_schema() || '.', '') FROM pg_indexes "
        "WHERE schemaname = current_schema() ORDER BY 1, 2").fetchall()
    return {"columns": columns, "constraints": constraints, "indexes": indexes}


def _old_database(where, version: int) -> None:
    """A database as authctl left it at schema ``version`` (the first ``version`` migrations only)."""
    from authctl.store import MIGRATIONS
    from authctl.store.engines import PostgresEngine, SqliteEngine

    location = where if isinstance(where, DatabaseURL) else Path(where)
    engine = PostgresEngine.create(location) if isinstance(location, DatabaseURL) else SqliteEngine.create(location)
    store = Store(engine)
    with store.transaction():
        for number, migration in enumerate(MIGRATIONS[:version], start=1):
            migration(store.db)
            engine.set_schema_version(number)
    store.close()


@contextlib.contextmanager
def _raw(where):
    """A plain driver connection (no Store), as an older authctl or another tool would write."""
    if isinstance(where, DatabaseURL):
        import psycopg

        with psycopg.connect(where.raw, autocommit=True) as conn:
            yield lambda sql: conn.execute(sql)
    else:
        import sqlite3

        conn = sqlite3.connect(where)
        yield lambda sql: conn.execute(sql)
        conn.commit()
        conn.close()


def test_a_database_migrated_step_by_step_equals_a_fresh_one(engine_db, tmp_path: Path, monkeypatch) -> None:
    from authctl import store as store_module

    _old_database(engine_db, 1)
    with _raw(engine_db) as execute:  # a row for the data migrations
        execute("INSERT INTO users (uid, username, username_key, disabled, token_version) VALUES ('u1', 'Old', 'Old', 0, 1)")
    for version in range(2, SCHEMA_VERSION + 1):  # one migration per open, as successive releases would
        monkeypatch.setattr(store_module, "MIGRATIONS", store_module.schema.MIGRATIONS[:version])
        monkeypatch.setattr(store_module, "SCHEMA_VERSION", version)
        with Store.open(engine_db) as stepped:
            assert stepped.schema_version == version
    monkeypatch.undo()
    with Store.open(engine_db) as migrated:
        assert migrated.schema_version == SCHEMA_VERSION
        assert migrated.get_user("old").username == "Old"  # migration 4 re-keyed it, 6 gave it a skeleton
        migrated_catalog = _catalog(migrated)
    fresh_db = tmp_path / "fresh.db" if not isinstance(engine_db, DatabaseURL) else None
    if fresh_db is None:
        import psycopg

        base, schema = engine_db.raw.split("?options=-csearch_path%3D")
        fresh_schema = f"{schema}_fresh"
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {fresh_schema}")
        fresh_location = DatabaseURL(f"{base}?options=-csearch_path%3D{fresh_schema}")
    else:
        fresh_location = fresh_db
    try:
        with Store.create(fresh_location) as fresh:
            fresh_catalog = _catalog(fresh)
    finally:
        if fresh_db is None:
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {fresh_schema} CASCADE")
    assert migrated_catalog == fresh_catalog
    assert migrated_catalog  # the catalog was read, not two empty answers


# --------------------------------------------------------------------------- the integration


def test_the_integration_on_each_engine(engine_cli: Cli) -> None:
    """``Auth(db=...)`` takes a file or a postgresql:// URL: login, 401/403/200, refresh reuse, logout."""
    from authctl.app.main import build

    from .apphelpers import Client, make_demo_db

    make_demo_db(engine_cli)
    db = getattr(engine_cli.db, "raw", None) or str(engine_cli.db)
    client = Client(build(db))
    try:
        assert client.get("/students").status_code == 401
        rahul = client.token("rahul")
        assert client.get("/students", token=rahul).status_code == 403
        assert client.get("/students/2", token=rahul).status_code == 200  # his own record
        priya = client.token("priya")
        assert client.get("/students", token=priya).status_code == 200
        assert client.delete("/student/3", token=priya).status_code == 403
        suman = client.token("suman")
        assert client.delete("/student/3", token=suman).status_code == 200
        assert client.login("rahul", "wrong-password-1").status_code == 401
        with Store.open(engine_cli.db) as store:
            assert store.login_failures("rahul")[0] == 1
    finally:
        client.app.state.auth.close()
        client.close()


@pytest.mark.parametrize("ci", [False, True])
def test_without_postgresql_its_cases_skip_with_the_reason_and_fail_under_ci(tmp_path: Path, ci: bool) -> None:
    """A developer without PostgreSQL is told why its cases skipped; CI (CI=true) never skips them."""
    import os

    (tmp_path / "conftest.py").write_text(
        "import tests.pgcluster\n"
        "tests.pgcluster.bin_dir = lambda: None  # a machine without Debian's postgresql package\n"
        "from tests.conftest import pg_server  # noqa: F401\n")
    (tmp_path / "test_needs_pg.py").write_text("def test_needs_pg(pg_server):\n    assert pg_server\n")
    env = {k: v for k, v in os.environ.items() if k not in ("AUTHCTL_TEST_PG", "CI")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    if ci:
        env["CI"] = "true"
    inner = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(tmp_path)],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    reason = "no PostgreSQL server: set AUTHCTL_TEST_PG=postgresql://... or apt-get install postgresql"
    assert reason in inner.stdout, inner.stdout[-2000:]
    if ci:
        assert inner.returncode == 1 and "1 error" in inner.stdout
    else:
        assert inner.returncode == 0 and "1 skipped" in inner.stdout
