"""Real processes, real faults: kill -9 mid-write, read-only files, a full disk, a
held lock, loose permissions, damaged files.

Everything here runs ``python -m authctl`` as a separate process with a clean
environment, because these faults (SIGKILL, RLIMIT_FSIZE, file modes, another
process's lock) only show their true effect across a process boundary. Data is
checked afterwards by reopening the file with plain ``sqlite3``.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import resource
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import pytest

from authctl.passwords import Hasher
from authctl.store import Store

from .conftest import STRONG, Cli

pytestmark = pytest.mark.slow

PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2
_LIBC = ctypes.CDLL(None, use_errno=True)

# Lets a test kill authctl at a known point *inside* a write transaction: after the
# audit row of ``PAUSE_AT`` is written (the last statement before COMMIT), touch
# ``PAUSE_MARK`` and wait. The library is not changed; only this child process is.
PAUSE_INSIDE_TRANSACTION = """
import os, sys, time
from authctl.store import Store
real_audit = Store._audit
def audit_then_pause(self, action, *args, **kwargs):
    real_audit(self, action, *args, **kwargs)
    if action == os.environ["PAUSE_AT"]:
        open(os.environ["PAUSE_MARK"], "w").close()
        time.sleep(120)
Store._audit = audit_then_pause
sys.argv[0] = "authctl"
from authctl.cli import main
main()
"""


# --------------------------------------------------------------------------- helpers


def clean_env(home: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AUTHCTL_")}
    env["HOME"] = str(home)
    return env


def authctl_argv(db: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "authctl", "--db", str(db), *args]


def run(db: Path, *args: str, input: str | None = None, preexec_fn: Callable[[], None] | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        authctl_argv(db, *args), input=input, capture_output=True, text=True, timeout=timeout,
        env=clean_env(db.parent), cwd=db.parent, preexec_fn=preexec_fn,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int = 1) -> str:
    """The documented exit code and exactly one ``error:`` line on stderr, no traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == code, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "internal error" not in lines[0], lines[0]
    return lines[0]


def integrity(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        return "\n".join(row[0] for row in conn.execute("PRAGMA integrity_check"))
    finally:
        conn.close()


def users(db: Path) -> list[tuple]:
    """Every user row as stored (name, hash, token version, disabled), to compare before/after."""
    conn = sqlite3.connect(db)
    try:
        return conn.execute(
            "SELECT username, password_hash, token_version, disabled FROM users ORDER BY username_key"
        ).fetchall()
    finally:
        conn.close()


def keys(db: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT kid, status FROM signing_keys ORDER BY created_at, rowid").fetchall()
    finally:
        conn.close()


def audit_actions(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return [row[0] for row in conn.execute("SELECT action FROM audit_log ORDER BY id")]
    finally:
        conn.close()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def group_members(pgid: int) -> list[int]:
    """Live processes in a process group (read from /proc)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry))
    return members


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the child and everything it started (hashing workers included)."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def without_permission_override() -> None:
    """In the child: drop the capabilities that let root ignore file modes (no-op otherwise)."""
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        _LIBC.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)


def require_enforced_file_modes(tmp_path: Path) -> None:
    """Skip when even a capability-dropped child can write a 0400 file (root without CAP_SETPCAP)."""
    probe = tmp_path / "mode-probe"
    probe.write_text("")
    probe.chmod(0o400)
    result = subprocess.run(
        [sys.executable, "-S", "-c", "import sys; open(sys.argv[1], 'a')", str(probe)],
        capture_output=True, preexec_fn=without_permission_override, timeout=30,
    )
    probe.unlink()
    if result.returncode == 0:
        pytest.skip("running as root and unable to drop CAP_DAC_OVERRIDE: file modes are not enforced")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def stored_hash() -> str:
    return Hasher().hash(STRONG)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, stored_hash: str) -> Path:
    """A populated database built once: the article's users and roles plus 300 more users."""
    folder = tmp_path_factory.mktemp("template")
    db = folder / "auth.db"
    created = subprocess.run(
        authctl_argv(db, "init"), capture_output=True, text=True, env=clean_env(folder), cwd=folder, timeout=60
    )
    assert created.returncode == 0, created.stderr
    with Store.open(db) as store:
        store.add_role("student")
        store.add_role("admin", inherits=["student"])
        store.grant("student", ["students:read"])
        store.grant("admin", ["students:delete"])
        store.add_user("suman", stored_hash, ["admin"])
        store.add_user("rahul", stored_hash, ["student"])
        store.add_users([(f"member{i:03d}", stored_hash, ["student"], False) for i in range(300)])
    assert not Path(f"{db}-wal").exists()
    return db


@pytest.fixture
def db(template: Path, tmp_path: Path) -> Path:
    path = tmp_path / "auth.db"
    shutil.copyfile(template, path)
    path.chmod(0o600)
    return path


def write_jsonl(path: Path, names: Sequence[str], password_hash: str) -> Path:
    path.write_text("".join(json.dumps({"username": name, "password_hash": password_hash}) + "\n" for name in names))
    return path


# --------------------------------------------------------------------------- crash safety


def test_kill_9_while_import_hashes_writes_nothing_and_leaves_a_working_database(db: Path, tmp_path: Path) -> None:
    """SIGKILL to the importer and its hashing workers: no partial import, no stale lock."""
    before = users(db)
    rows = "".join(f"crash{i:04d},Plum-Orbit-{i:04d}-Kettle\n" for i in range(3000))
    source = tmp_path / "many.csv"
    source.write_text("username,password\n" + rows)
    process = subprocess.Popen(
        authctl_argv(db, "user", "import", str(source), "--workers", "2"),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=clean_env(tmp_path), cwd=tmp_path,
        start_new_session=True,
    )
    try:
        # the pool's workers appear once every row is validated and hashing has begun
        wait_for(lambda: len(group_members(process.pid)) >= 3, 60, "the hashing workers to start")
        time.sleep(0.5)
        assert process.poll() is None, "the import finished before it could be killed"
    finally:
        kill_group(process)
    assert process.returncode == -signal.SIGKILL
    wait_for(lambda: not group_members(process.pid), 10, "the hashing workers to die")

    assert integrity(db) == "ok"
    # all or nothing, and here nothing: it was killed while hashing, before its one write transaction
    assert users(db) == before
    added = run(db, "user", "add", "after-crash", "--password-stdin", input=STRONG + "\n")
    assert added.returncode == 0, added.stderr
    listed = run(db, "user", "list", "--json", "--limit", "10000")
    assert listed.returncode == 0, listed.stderr
    assert {u["username"] for u in json.loads(listed.stdout)} == {row[0] for row in before} | {"after-crash"}


def test_kill_9_inside_the_import_transaction_rolls_the_whole_import_back(
    db: Path, tmp_path: Path, stored_hash: str
) -> None:
    """Killed after every row is inserted but before COMMIT: WAL recovery leaves none of them."""
    before, actions = users(db), audit_actions(db)
    names = [f"bulk{i:05d}" for i in range(10000)]  # enough rows to spill pages into the WAL
    source = write_jsonl(tmp_path / "bulk.jsonl", names, stored_hash)
    mark = tmp_path / "paused"
    env = {**clean_env(tmp_path), "PAUSE_AT": "user.import", "PAUSE_MARK": str(mark)}
    process = subprocess.Popen(
        [sys.executable, "-c", PAUSE_INSIDE_TRANSACTION, "--db", str(db), "user", "import", str(source)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=tmp_path, start_new_session=True,
    )
    try:
        wait_for(mark.exists, 60, "the import to reach its transaction")
    finally:
        kill_group(process)
    assert process.returncode == -signal.SIGKILL

    assert integrity(db) == "ok"
    assert users(db) == before
    assert audit_actions(db) == actions
    added = run(db, "user", "add", "after-crash", "--password-stdin", input=STRONG + "\n")
    assert added.returncode == 0, added.stderr  # no lock survived the killed writer
    assert len(users(db)) == len(before) + 1


def active_keys(db: Path) -> list[str]:
    return [kid for kid, status in keys(db) if status == "active"]


def test_kill_9_inside_key_rotate_keeps_the_old_key_set_and_its_tokens(db: Path) -> None:
    """Killed between demoting the active key and COMMIT: still exactly the old active key."""
    token = Cli(db)("token", "issue", "--as", "rahul").stdout.strip()
    before = keys(db)
    assert len(active_keys(db)) == 1
    mark = db.parent / "paused"
    env = {**clean_env(db.parent), "PAUSE_AT": "key.add", "PAUSE_MARK": str(mark)}
    process = subprocess.Popen(
        [sys.executable, "-c", PAUSE_INSIDE_TRANSACTION, "--db", str(db), "key", "rotate"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=db.parent, start_new_session=True,
    )
    try:
        wait_for(mark.exists, 60, "key rotate to reach its transaction")
    finally:
        kill_group(process)
    assert process.returncode == -signal.SIGKILL

    assert integrity(db) == "ok"
    assert keys(db) == before
    rotated = run(db, "key", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    assert len(keys(db)) == len(before) + 1 and len(active_keys(db)) == 1
    verified = run(db, "token", "verify", token)
    assert verified.returncode == 0, verified.stderr  # the previous key still verifies


def test_kill_9_at_varied_moments_of_key_rotate_never_leaves_two_or_no_active_keys(db: Path) -> None:
    """Real rotations killed at spread-out delays: each one happens completely or not at all."""
    token = Cli(db)("token", "issue", "--as", "rahul").stdout.strip()
    outcomes = []
    for delay in (0.05, 0.3, 0.45, 0.6, 0.75, 0.9, 1.1):  # from mid-start-up to around the write
        count = len(keys(db))
        process = subprocess.Popen(
            authctl_argv(db, "key", "rotate"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=clean_env(db.parent), cwd=db.parent, start_new_session=True,
        )
        time.sleep(delay)
        killed = process.poll() is None
        if killed:
            kill_group(process)
        else:
            assert process.returncode == 0
        assert integrity(db) == "ok"
        assert len(keys(db)) in (count, count + 1)
        assert len(active_keys(db)) == 1, keys(db)
        outcomes.append((killed, len(keys(db)) - count))
    assert any(killed for killed, _ in outcomes), outcomes
    verified = run(db, "token", "verify", token)
    assert verified.returncode == 0, (outcomes, verified.stderr)


# --------------------------------------------------------------------------- hostile environment


def test_read_only_database_file_allows_reads_and_refuses_writes_cleanly(db: Path) -> None:
    """chmod 0400: `user list` works, `user add` fails in one line naming the fix, nothing changes."""
    require_enforced_file_modes(db.parent)
    before = users(db)
    db.chmod(0o400)
    try:
        listed = run(db, "user", "list", "--json", "--limit", "10000", preexec_fn=without_permission_override)
        assert listed.returncode == 0, listed.stderr
        assert len(json.loads(listed.stdout)) == len(before)
        added = run(db, "user", "add", "newcomer", "--password-stdin", input=STRONG + "\n",
                    preexec_fn=without_permission_override)
        line = assert_one_line_error(added)
        assert str(db) in line and "permissions" in line, line
    finally:
        for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
            if path.exists():
                path.chmod(0o600)  # the fix the message names: the file and its -wal/-shm
    assert integrity(db) == "ok" and users(db) == before
    again = run(db, "user", "add", "newcomer", "--password-stdin", input=STRONG + "\n",
                preexec_fn=without_permission_override)
    assert again.returncode == 0, again.stderr
    assert [row[0] for row in users(db)].count("newcomer") == 1


def test_read_only_database_folder_is_refused_in_one_line(db: Path, tmp_path: Path) -> None:
    """A WAL database needs its folder writable (for -wal/-shm): say so instead of failing oddly."""
    require_enforced_file_modes(tmp_path)
    before = users(db)
    original = sha256(db)
    folder = db.parent
    folder.chmod(0o500)
    try:
        for args, stdin in ((("user", "list"), None), (("user", "add", "newcomer", "--password-stdin"), STRONG + "\n")):
            result = run(db, *args, input=stdin, preexec_fn=without_permission_override)
            line = assert_one_line_error(result)
            assert "not writable" in line and str(folder.resolve()) in line, line
    finally:
        folder.chmod(0o700)
    assert sha256(db) == original
    assert integrity(db) == "ok" and users(db) == before


def test_full_disk_fails_the_import_in_one_line_and_writes_nothing(db: Path, tmp_path: Path, stored_hash: str) -> None:
    """RLIMIT_FSIZE makes the WAL write fail (EFBIG): exit 1, no partial rows, the next try works."""
    before, actions = users(db), audit_actions(db)
    names = [f"bulk{i:04d}" for i in range(600)]
    source = write_jsonl(tmp_path / "bulk.jsonl", names, stored_hash)
    limit = 48 * 1024  # room for the 32 KiB -shm and a few WAL frames; the import needs far more

    def small_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    full = run(db, "user", "import", str(source), preexec_fn=small_disk)
    line = assert_one_line_error(full)
    assert str(db) in line and "nothing was written" in line, line
    assert integrity(db) == "ok"
    assert users(db) == before and audit_actions(db) == actions
    retried = run(db, "user", "import", str(source))
    assert retried.returncode == 0, retried.stderr  # would be "already exists" had any row stayed
    assert len(users(db)) == len(before) + len(names)


def test_a_lock_held_past_the_busy_timeout_fails_the_write_in_one_line(db: Path) -> None:
    """Another process holds the write lock: reads still work (WAL), a write waits ~5 s then says busy."""
    before = users(db)
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sqlite3, sys\n"
         "conn = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
         "conn.execute('BEGIN EXCLUSIVE')\n"
         "conn.execute(\"UPDATE users SET disabled = 1 WHERE username = 'rahul'\")\n"
         "print('locked', flush=True)\n"
         "sys.stdin.read()\n"
         "conn.execute('ROLLBACK')\n",
         str(db)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        listed = run(db, "user", "list", "--json", "--limit", "10000", timeout=30)
        assert listed.returncode == 0, listed.stderr
        assert len(json.loads(listed.stdout)) == len(before)
        blocked = run(db, "user", "add", "newcomer", "--password-stdin", input=STRONG + "\n", timeout=30)
        line = assert_one_line_error(blocked)
        assert "busy" in line, line
    finally:
        holder.communicate("", timeout=30)
    assert holder.returncode == 0
    assert users(db) == before  # neither the holder's rolled-back change nor the refused add
    added = run(db, "user", "add", "newcomer", "--password-stdin", input=STRONG + "\n")
    assert added.returncode == 0, added.stderr
    assert len(users(db)) == len(before) + 1


def test_group_readable_database_is_refused_with_the_path_and_the_fix(db: Path) -> None:
    """0644 is refused before anything is read; the mode is not silently changed."""
    db.chmod(0o644)
    original = sha256(db)
    result = run(db, "user", "list")
    line = assert_one_line_error(result)
    assert str(db) in line and f"chmod 600 {db}" in line and "--insecure-permissions" in line, line
    assert stat.S_IMODE(db.stat().st_mode) == 0o644 and sha256(db) == original
    assert result.stdout == ""


def _truncated(data: bytes, page_size: int, users_root: int) -> bytes:
    return data[: len(data) // 2]


def _users_root_page_garbled(data: bytes, page_size: int, users_root: int) -> bytes:
    start = (users_root - 1) * page_size
    return data[:start] + b"\xa5" * page_size + data[start + page_size:]


def _header_garbled(data: bytes, page_size: int, users_root: int) -> bytes:
    return data[:16] + bytes(range(16, 100)) + data[100:]  # keep the magic string, wreck the rest of the header


@pytest.mark.parametrize("damage", [_truncated, _users_root_page_garbled, _header_garbled],
                         ids=["truncated-to-half", "users-page-overwritten", "header-garbage"])
def test_damaged_database_is_reported_in_one_line_and_left_byte_for_byte(db: Path, damage) -> None:
    """A damaged file gets exit 1 and one line for a read and a write; authctl never alters it."""
    conn = sqlite3.connect(db)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    users_root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'users'").fetchone()[0]
    conn.close()
    assert not Path(f"{db}-wal").exists()
    db.write_bytes(damage(db.read_bytes(), page_size, users_root))
    original = sha256(db)
    for args, stdin in ((("user", "list", "--json"), None),
                        (("user", "add", "newcomer", "--password-stdin"), STRONG + "\n")):
        result = run(db, *args, input=stdin)
        line = assert_one_line_error(result)
        assert str(db) in line, line
        assert result.stdout == ""
        assert sha256(db) == original
