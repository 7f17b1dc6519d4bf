"""The SQLite store: files, migrations, transactions, names, roles."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
import time
from pathlib import Path

import pytest

from authctl import store as store_module
from authctl.errors import Conflict, DatabaseError, InvalidInput, NotFound
from authctl.store import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION, Store


def test_new_database_is_private_and_current(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    with Store.create(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_create_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    path.write_bytes(b"precious")
    with pytest.raises(Conflict, match="already exists"):
        Store.create(path)
    assert path.read_bytes() == b"precious"


def test_missing_database_says_run_init_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "missing.db"
    with pytest.raises(DatabaseError, match="run `authctl init`"):
        Store.open(path)
    assert not path.exists()


def test_group_readable_database_is_refused_unless_insecure(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    Store.create(path).close()
    os.chmod(path, 0o644)
    with pytest.raises(DatabaseError) as info:
        Store.open(path)
    assert str(path) in str(info.value) and "chmod 600" in str(info.value)
    Store.open(path, insecure_permissions=True).close()


@pytest.mark.parametrize("content", [b"this is not sqlite at all" * 10, b"\x00" * 200])
def test_non_sqlite_file_is_reported_and_untouched(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(content)
    os.chmod(path, 0o600)
    with pytest.raises(DatabaseError, match="not an SQLite database"):
        Store.open(path)
    assert path.read_bytes() == content


def test_corrupt_sqlite_file_is_reported_and_untouched(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    Store.create(path).close()
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)  # keep the header, wreck the schema page
    path.write_bytes(bytes(data))
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    with pytest.raises(DatabaseError, match="left untouched"):
        Store.open(path)
    assert path.read_bytes() == bytes(data)


def test_foreign_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.commit()
    os.chmod(path, 0o600)
    with pytest.raises(DatabaseError, match="not an authctl database"):
        Store.open(path)


def _database_at_version(path: Path, version: int) -> None:
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(fd)
    store = Store._connect(path)
    store.conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
    with store.transaction():
        for number, migration in enumerate(MIGRATIONS[:version], start=1):
            migration(store.db)
            store.conn.execute(f"PRAGMA user_version={number}")
    store.close()


def test_older_schema_is_migrated_keeping_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _database_at_version(path, 1)
    conn = sqlite3.connect(path)
    conn.execute(
        "INSERT INTO users (uid, username, username_key, disabled, token_version) VALUES ('u1', 'Old', 'old', 0, 1)"
    )
    conn.commit()
    conn.close()
    with Store.open(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.get_user("OLD").username == "Old"
        assert store.keys() == []  # a table from a later migration exists
        entry = store.audit_log(action="schema.migrate")[0]
        assert entry.details == {"from": 1, "to": SCHEMA_VERSION}


def test_failed_migration_rolls_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "old.db"
    _database_at_version(path, 1)

    def broken(db) -> None:
        db["half_done"].create({"x": int})
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(store_module, "MIGRATIONS", (MIGRATIONS[0], broken))
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", 2)
    with pytest.raises(RuntimeError):
        Store.open(path)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name='half_done'").fetchone()[0] == 0


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    Store.create(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(DatabaseError, match="newer than this authctl"):
        Store.open(path)


def test_usernames_are_unique_case_insensitively_after_nfkc(tmp_path: Path) -> None:
    with Store.create(tmp_path / "a.db") as store:
        store.add_user("Rahul", None)
        with pytest.raises(Conflict, match="already exists"):
            store.add_user("rahul", None)
        with pytest.raises(Conflict):
            store.add_user("ＲＡＨＵＬ", None)  # full-width letters normalise to RAHUL
        assert store.get_user("RAHUL").username == "Rahul"


def test_concurrent_add_of_the_same_name_has_exactly_one_winner(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    Store.create(path).close()
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def add() -> None:
        with Store.open(path) as store:  # a connection each, as separate processes would have
            barrier.wait()
            try:
                store.add_user("twin", None)
                outcomes.append("won")
            except Conflict as exc:
                outcomes.append(str(exc))

    threads = [threading.Thread(target=add) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("won") == 1
    assert all("already exists" in o for o in outcomes if o != "won")
    with Store.open(path) as store:
        assert store.user_count() == 1


def test_role_cycles_are_refused(tmp_path: Path) -> None:
    with Store.create(tmp_path / "a.db") as store:
        store.add_role("a")
        store.add_role("b", inherits=["a"])
        store.add_role("c", inherits=["b"])
        with pytest.raises(Conflict, match="cycle"):
            store.include_roles("a", ["c"])
        with pytest.raises(Conflict, match="cycle"):
            store.include_roles("a", ["a"])


def test_access_follows_inheritance_and_names_the_granting_role(tmp_path: Path) -> None:
    with Store.create(tmp_path / "a.db") as store:
        store.add_role("student")
        store.add_role("instructor", inherits=["student"])
        store.add_role("admin", inherits=["instructor"])
        store.grant("student", ["students:read"])
        store.grant("instructor", ["courses:write"])
        store.grant("admin", ["students:delete"])
        access = store.access(store.add_user("suman", None, ["admin"]))
        assert access.roles == {"admin": None, "instructor": "admin", "student": "instructor"}
        assert access.permissions == {
            "students:delete": "admin", "courses:write": "instructor", "students:read": "student"
        }


def test_removing_an_assigned_role_needs_force_and_leaves_no_orphans(tmp_path: Path) -> None:
    with Store.create(tmp_path / "a.db") as store:
        store.add_role("student")
        store.add_role("admin", inherits=["student"])
        store.grant("student", ["students:read"])
        store.add_user("rahul", None, ["student"])
        with pytest.raises(Conflict, match="inherited by 1 role") as refused:
            store.remove_role("student")
        assert refused.value.hint == "force"  # the CLI adds: pass --force
        assert store.get_user("rahul").roles == ("student",)
        assert store.remove_role("student", force=True) == 1
        assert store.get_user("rahul").roles == ()
        assert store.get_role("admin").inherits == ()
        for table in ("user_roles", "role_inherits", "role_permissions"):
            assert store.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0


def test_a_failing_multi_row_change_writes_nothing(tmp_path: Path) -> None:
    with Store.create(tmp_path / "a.db") as store:
        store.add_role("student")
        with pytest.raises(NotFound):
            store.add_users([("a", "h", ["student"], False), ("b", "h", ["nosuchrole"], False)])
        assert store.user_count() == 0
        with pytest.raises(InvalidInput):
            store.grant("student", ["ok:read", "Bad Permission"])
        assert store.get_role("student").permissions == ()


def test_every_change_is_audited_without_secrets(tmp_path: Path) -> None:
    with Store.create(tmp_path / "a.db") as store:
        store.add_role("student")
        store.add_user("rahul", "$argon2id$secret-hash", ["student"])
        store.set_password_hash("rahul", "$argon2id$another-secret-hash")
        actions = [entry.action for entry in store.audit_log()]
        assert actions[:3] == ["user.passwd", "user.add", "role.add"]
        dump = repr(store.audit_log())
        assert "secret-hash" not in dump and all(entry.actor for entry in store.audit_log())


def test_password_change_and_logout_bump_the_token_version(tmp_path: Path) -> None:
    with Store.create(tmp_path / "a.db") as store:
        assert store.add_user("rahul", "h").token_version == 1
        assert store.set_password_hash("rahul", "h2").token_version == 2
        assert store.bump_token_version("rahul").token_version == 3


def test_settings_are_validated_before_storing(tmp_path: Path) -> None:
    with Store.create(tmp_path / "a.db") as store:
        assert store.set_setting("access_ttl", "1h") == 3600
        assert store.settings().access_ttl == 3600
        with pytest.raises(InvalidInput, match="argon2_memory_kib"):
            store.set_setting("argon2_memory_kib", "1024")  # below OWASP's 19 MiB
        with pytest.raises(InvalidInput, match="max_ttl"):
            store.set_setting("refresh_ttl", "60d")  # above max_ttl (30d)
        with pytest.raises(InvalidInput, match="unknown setting"):
            store.set_setting("nope", "1")
        assert "argon2_memory_kib" not in store.stored_settings()


def test_login_failures_count_atomically_and_lock(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    Store.create(path).close()
    barrier = threading.Barrier(10)

    def fail() -> None:
        with Store.open(path) as store:
            barrier.wait()
            for _ in range(5):
                store.record_login_failure("ghost", 0.0, lock_after=0)

    threads = [threading.Thread(target=fail) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with Store.open(path) as store:
        assert store.login_failures("ghost") == (50, False)
        assert store.record_login_failure("ghost", 0.0, lock_after=10) == (51, True)


def test_remembered_access_follows_changes_from_any_connection(tmp_path: Path) -> None:
    path = tmp_path / "a.db"
    with Store.create(path) as server, Store.open(path) as admin:
        server.add_role("student")
        server.grant("student", ["students:read"])
        user = server.add_user("rahul", None, ["student"])
        assert server.access(user).permissions == {"students:read": "student"}
        admin.revoke("student", ["students:read"])  # another connection, as `authctl role revoke` would be
        assert server.access(user).permissions == {}
        server.grant("student", ["students:write"])  # this connection
        assert server.access(user).permissions == {"students:write": "student"}
        admin.unassign("rahul", ["student"])
        assert server.access(server.get_user("rahul")).roles == {}


def test_revocations_outlive_exp_by_the_largest_leeway(tmp_path: Path) -> None:
    import time

    with Store.create(tmp_path / "a.db") as store:
        now = int(time.time())
        store.revoke_jti("logged-out", now - 100)  # past exp, but a 5-minute leeway would still accept it
        store.revoke_jti("long-gone", now - 1000)
        store.revoke_jti("trigger-prune", now + 60)
        assert store.is_revoked("logged-out")
        assert not store.is_revoked("long-gone")


def test_a_write_waiting_for_a_lock_does_not_hold_up_reads_on_other_threads(tmp_path: Path) -> None:
    """Each thread has its own connection: a server's event loop keeps reading while a worker
    thread's write waits for another process's lock (WAL readers never wait for writers)."""
    path = tmp_path / "a.db"
    Store.create(path).close()
    with Store.open(path) as store:
        store.add_role("student")
        other_process = sqlite3.connect(path)
        other_process.execute("BEGIN IMMEDIATE")
        writer_started = threading.Event()
        outcome: list[object] = []

        def write() -> None:
            writer_started.set()
            try:
                store.add_role("admin")
                outcome.append("written")
            except DatabaseError as exc:
                outcome.append(exc)

        writer = threading.Thread(target=write)
        writer.start()
        writer_started.wait()
        time.sleep(0.3)  # let the writer reach its busy wait (it waits up to BUSY_TIMEOUT_S)
        try:
            seen = [role.name for role in store.list_roles()]
            writer_still_waiting = writer.is_alive()
        finally:
            other_process.rollback()
            other_process.close()
            writer.join()
        assert seen == ["student"]
        assert writer_still_waiting
        assert outcome == ["written"]
        assert store.connection_id == 0 and {role.name for role in store.list_roles()} == {"student", "admin"}


@pytest.mark.parametrize("folder", ["x#y", "x?y", "x%41y", "a#b?c%2Fd"])
def test_database_path_is_never_read_as_uri_syntax(tmp_path: Path, folder: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The file named is the database: ``#``, ``?`` or ``%`` in its path cannot open or create another."""
    from typer.testing import CliRunner

    from authctl.cli import app
    from authctl.store.engines import peek_names

    home = tmp_path / folder
    home.mkdir()
    monkeypatch.chdir(home)
    before = {p for p in tmp_path.rglob("*")}
    runner = CliRunner()
    for args in (["init"], ["role", "add", "editor"], ["role", "list"]):
        result = runner.invoke(app, ["--db", "authctl.db", *args])
        assert result.exit_code == 0, result.stderr
    path = home / "authctl.db"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert conn.execute("SELECT count(*) FROM roles WHERE name = 'editor'").fetchone()[0] == 1
    assert "editor" in peek_names(str(path), "SELECT name FROM roles")
    appeared = {p.relative_to(tmp_path).as_posix() for p in set(tmp_path.rglob("*")) - before}
    assert appeared <= {f"{folder}/authctl.db", f"{folder}/authctl.db-wal", f"{folder}/authctl.db-shm"}
