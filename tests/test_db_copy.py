"""``authctl db copy``: SQLite file <-> PostgreSQL, whole (keys, secrets, audit log) and verified."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg

from authctl.store import DatabaseURL, Store
from authctl.store.copy import TABLES

from .conftest import STRONG, Cli


def _seed(cli: Cli) -> str:
    assert cli("init").exit_code == 0
    for args in (("role", "add", "student"), ("role", "grant", "student", "students:read"),
                 ("role", "add", "admin", "--inherits", "student")):
        assert cli(*args).exit_code == 0
    for name, role in (("suman", "admin"), ("rahul", "student")):
        assert cli("user", "add", name, "--role", role, "--password-stdin", input=STRONG + "\n").exit_code == 0
    assert cli("key", "rotate").exit_code == 0
    token = cli("token", "issue", "--as", "rahul").stdout.strip()
    assert cli("token", "revoke", cli("token", "issue", "--as", "suman").stdout.strip()).exit_code == 0
    return token


def _url(location) -> str:
    return getattr(location, "raw", None) or str(location)


def test_sqlite_to_postgresql_and_back_keeps_every_row(tmp_path: Path, pg_url: str) -> None:
    source = Cli(tmp_path / "auth.db")
    token = _seed(source)
    copied = source("db", "copy", str(tmp_path / "auth.db"), pg_url, "--json")
    assert copied.exit_code == 0, copied.stderr
    report = json.loads(copied.stdout)
    assert report["verified"] and [t["name"] for t in report["tables"]] == list(TABLES)
    rows = {t["name"]: t["rows"] for t in report["tables"]}
    assert rows["users"] == 2 and rows["signing_keys"] == 2 and rows["revoked_tokens"] == 1 and rows["audit_log"] > 5

    on_pg = Cli(DatabaseURL(pg_url))
    assert on_pg("token", "verify", token).exit_code == 0  # the keys came along
    assert on_pg("check", "GET", "/students", "--as", "rahul").exit_code == 0
    assert on_pg("user", "add", "priya", "--role", "student", "--password-stdin", input=STRONG + "\n").exit_code == 0
    with Store.open(DatabaseURL(pg_url)) as store:  # ids go on after the copied ones
        assert store.get_user("priya").id == 3

    back = tmp_path / "back.db"
    returned = on_pg("db", "copy", pg_url, str(back), "--json")
    assert returned.exit_code == 0, returned.stderr
    with Store.open(back) as store, Store.open(tmp_path / "auth.db") as original:
        uids = {u.username: u.uid for u in store.list_users()}
        assert {u.username: u.uid for u in original.list_users()}.items() <= uids.items() and "priya" in uids
        assert [k.private_material for k in store.keys()] == [k.private_material for k in original.keys()]
        assert len(store.audit_log(limit=10_000)) == len(on_pg_audit(pg_url))


def on_pg_audit(pg_url: str) -> list:
    with Store.open(DatabaseURL(pg_url)) as store:
        return store.audit_log(limit=10_000)


def test_copy_refuses_a_destination_that_is_not_empty(tmp_path: Path, pg_url: str) -> None:
    source = Cli(tmp_path / "auth.db")
    _seed(source)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE precious (x int)")
    refused = source("db", "copy", str(tmp_path / "auth.db"), pg_url)
    assert refused.exit_code == 1 and "not empty" in refused.stderr
    existing = tmp_path / "existing.db"
    existing.write_bytes(b"keep me")
    refused_file = source("db", "copy", str(tmp_path / "auth.db"), str(existing))
    assert refused_file.exit_code == 1 and existing.read_bytes() == b"keep me"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")]
    assert tables == ["precious"]


def test_a_failed_copy_leaves_no_destination(tmp_path: Path, pg_url: str) -> None:
    """A value PostgreSQL cannot hold (NUL in text) fails the copy; the destination is empty again."""
    source = Cli(tmp_path / "auth.db")
    _seed(source)
    import sqlite3

    conn = sqlite3.connect(tmp_path / "auth.db")
    conn.execute("INSERT INTO settings (key, value) VALUES ('odd', ?)", ("a\x00b",))
    conn.commit()
    conn.close()
    failed = source("db", "copy", str(tmp_path / "auth.db"), pg_url)
    assert failed.exit_code == 1 and "Traceback" not in failed.stderr
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM information_schema.tables "
                            "WHERE table_schema = current_schema()").fetchone()[0] == 0


def test_the_demo_tables_come_along(tmp_path: Path, pg_url: str) -> None:
    source = Cli(tmp_path / "demo.db")
    assert source("init", "--demo", "--password-stdin", input=f"{STRONG}\n{STRONG}\n{STRONG}\n").exit_code == 0
    copied = source("db", "copy", str(tmp_path / "demo.db"), pg_url, "--json")
    assert copied.exit_code == 0, copied.stderr
    assert {"demo_students", "demo_courses"} <= {t["name"] for t in json.loads(copied.stdout)["tables"]}
    from authctl.app import data

    with Store.open(tmp_path / "demo.db") as original, Store.open(DatabaseURL(pg_url)) as store:
        assert data.list_students(store) == data.list_students(original) and len(data.list_students(store)) == 4
        assert data.add_course(store, "Tokens", "priya")["id"] == len(data.list_courses(original)) + 1


def test_a_live_check_on_postgresql_runs_on_a_private_copy(pg_url: str) -> None:
    """`check --live` may write (DELETE /student/3): it runs on a snapshot, never the real database."""
    cli = Cli(DatabaseURL(pg_url))
    assert cli("init", "--demo", "--password-stdin", input=f"{STRONG}\n{STRONG}\n{STRONG}\n").exit_code == 0
    live = cli("check", "DELETE", "/student/3", "--as", "suman", "--live")
    assert live.exit_code == 0, live.stderr + live.stdout
    from authctl.app import data

    with Store.open(DatabaseURL(pg_url)) as store:
        assert data.get_student(store, 3) is not None  # the real row is untouched


def _planner_rows(pg_url: str, table: str) -> float:
    """PostgreSQL's own estimate of a table's rows: -1 until the table was first analyzed."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        return conn.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", (table,)).fetchone()[0]


def test_a_copy_into_postgresql_leaves_fresh_planner_statistics(tmp_path: Path, pg_url: str) -> None:
    """A copied database is planned from its real size at once, not after autovacuum's next visit."""
    source = Cli(tmp_path / "auth.db")
    _seed(source)
    assert source("db", "copy", str(tmp_path / "auth.db"), pg_url).exit_code == 0
    assert _planner_rows(pg_url, "users") == 2
    assert _planner_rows(pg_url, "audit_log") > 5


def test_a_bulk_add_refreshes_statistics_and_a_small_one_does_not(pg_url: str) -> None:
    from authctl.store.users import BULK_STATISTICS_ROWS

    cli = Cli(DatabaseURL(pg_url))
    assert cli("init").exit_code == 0
    with Store.open(DatabaseURL(pg_url)) as store:
        store.add_users([("few", None, [], False)])
        assert _planner_rows(pg_url, "users") == -1  # one user: left to autovacuum
        store.add_users([(f"user{i:05d}", None, [], False) for i in range(BULK_STATISTICS_ROWS)])
    assert _planner_rows(pg_url, "users") == BULK_STATISTICS_ROWS + 1


def test_a_missing_source_is_named_as_the_copy_s_and_nothing_is_created(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "unused.db")
    result = cli("db", "copy", str(tmp_path / "missing.db"), str(tmp_path / "copy.db"))
    assert result.exit_code == 1
    assert result.stderr == f"error: no authctl database at {tmp_path / 'missing.db'}: nothing to copy\n"
    assert not (tmp_path / "copy.db").exists() and not (tmp_path / "unused.db").exists()


def test_copy_tables_are_every_table_a_fresh_database_has(engine_db) -> None:
    """`db copy` copies TABLES: a migration that adds a table must add it there too, or this fails."""
    from authctl.store.engines import PG_META

    assert len(set(TABLES)) == len(TABLES)
    with Store.create(engine_db) as store:
        assert set(TABLES) == set(store.table_names()) - {PG_META}


def test_copy_tables_come_parents_first(tmp_path: Path) -> None:
    """Foreign keys: a table is copied after every table it refers to."""
    import sqlite3
    from contextlib import closing

    Store.create(tmp_path / "fresh.db").close()
    with closing(sqlite3.connect(tmp_path / "fresh.db")) as conn:
        for index, table in enumerate(TABLES):
            parents = {row[0] for row in conn.execute("SELECT \"table\" FROM pragma_foreign_key_list(?)", (table,))}
            assert parents - {table} <= set(TABLES[:index]), table


def _sqlite_counts(path: Path) -> dict[str, int]:
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(path)) as conn:
        return {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in TABLES}


def test_sqlite_to_sqlite_copy_reports_every_table_and_refuses_an_existing_file(tmp_path: Path) -> None:
    source = Cli(tmp_path / "auth.db")
    token = _seed(source)
    copied = source("db", "copy", str(tmp_path / "auth.db"), str(tmp_path / "copy.db"), "--json")
    assert copied.exit_code == 0, copied.stderr
    report = json.loads(copied.stdout)
    assert report["verified"] and [t["name"] for t in report["tables"]] == list(TABLES)
    counts = _sqlite_counts(tmp_path / "auth.db")
    assert {t["name"]: t["rows"] for t in report["tables"]} == counts == _sqlite_counts(tmp_path / "copy.db")
    assert counts["users"] == 2 and counts["signing_keys"] == 2
    assert Cli(tmp_path / "copy.db")("token", "verify", token).exit_code == 0

    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    again = source("db", "copy", str(tmp_path / "auth.db"), str(tmp_path / "copy.db"))
    assert again.exit_code == 1 and again.stdout == "" and again.stderr.count("\n") == 1
    assert "Traceback" not in again.stderr
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before
