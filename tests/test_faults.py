"""Real processes, real faults: kill -9 mid-write, read-only files, a full disk, a
held lock, loose permissions, damaged files.

Everything here runs ``python -m authctl`` as a separate process with a clean
environment, because these faults (SIGKILL, RLIMIT_FSIZE, file modes, another
process's lock) only show their true effect across a process boundary. Data is
checked afterwards by reopening the file with plain ``sqlite3``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from authctl.passwords import Hasher
from authctl.store import Store
from tests.apphelpers import add_article_users
from tests.conftest import STRONG, Cli
from tests.serving import COMMAND_TIMEOUT_S, authctl, clean_env

pytestmark = pytest.mark.slow

CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 1, 2
NOBODY = 65534

# Lets a test kill authctl at a known point *inside* a write transaction. The child
# pauses the first time it reaches ``PAUSE_AT`` ("before"/"after" and the start of an
# SQL statement, or COMMIT): it writes what its own connection sees there (inside the
# transaction) to ``PAUSE_MARK`` and waits to be killed. The library is unchanged.
PAUSE_INSIDE_TRANSACTION = r"""
import json, os, sqlite3, sys, time

WHEN, _, STATEMENT = os.environ["PAUSE_AT"].upper().partition(" ")
MARK = os.environ["PAUSE_MARK"]

class PausingConnection(sqlite3.Connection):
    paused = False

    def pause_if(self, when, sql):
        if PausingConnection.paused or when.upper() != WHEN or not sql.lstrip().upper().startswith(STATEMENT):
            return
        PausingConnection.paused = True
        query = lambda sql: sqlite3.Connection.execute(self, sql).fetchall()
        view = {
            "in_transaction": self.in_transaction,
            "users": query("SELECT count(*) FROM users")[0][0],
            "keys": query("SELECT kid, status FROM signing_keys ORDER BY created_at, rowid"),
            "audit": [row[0] for row in query("SELECT action FROM audit_log ORDER BY id")],
        }
        with open(MARK + ".part", "w") as handle:
            json.dump(view, handle)
        os.replace(MARK + ".part", MARK)
        time.sleep(120)

    def execute(self, sql, *args):
        self.pause_if("before", sql)
        cursor = super().execute(sql, *args)
        self.pause_if("after", sql)
        return cursor

    def commit(self):
        committing = self.in_transaction
        if committing:
            self.pause_if("before", "COMMIT")
        super().commit()
        if committing:
            self.pause_if("after", "COMMIT")

real_connect = sqlite3.connect
sqlite3.connect = lambda *args, **kwargs: real_connect(*args, factory=PausingConnection, **kwargs)
sys.argv[0] = "authctl"
from authctl.cli import main
main()
"""

# Runs a command (argv[2:], after the interpreter) under the limits in the JSON of
# argv[1]. A trampoline instead of ``preexec_fn``, which may deadlock when the parent
# has threads. What it sets survives exec: an ignored signal stays ignored, rlimits
# are inherited, uid/gid stay, and root's capabilities after exec are its bounding set
# (plus the inheritable set, empty in a usual container; the mode probe checks it).
TRAMPOLINE = r"""
import ctypes, json, os, resource, signal, sys
limits = json.loads(sys.argv[1])
if "fsize" in limits:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write with EFBIG instead of dying
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["fsize"], limits["fsize"]))
libc = ctypes.CDLL(None, use_errno=True)
for cap in limits.get("drop_caps", ()):
    if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
        sys.exit(f"cannot drop capability {cap}: {os.strerror(ctypes.get_errno())}")
if "uid" in limits:
    os.setgroups([])
    os.setgid(limits["uid"])
    os.setuid(limits["uid"])
try:
    os.execv(sys.executable, [sys.executable, *sys.argv[2:]])
except OSError as exc:
    sys.exit(f"cannot run {sys.executable} as uid {os.getuid()}: {exc.strerror}")
"""


# --------------------------------------------------------------------------- helpers


def run(db: Path, *args: str, input: str | None = None,
        limits: dict[str, Any] | None = None) -> subprocess.CompletedProcess[str]:
    """``authctl --db DB ARGS`` in DB's folder, optionally under the trampoline's limits."""
    if limits is None:
        return authctl("--db", str(db), *args, input=input, cwd=db.parent)
    return subprocess.run(
        [sys.executable, "-c", TRAMPOLINE, json.dumps(limits), "-m", "authctl", "--db", str(db), *args],
        input=input, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, cwd=db.parent, env=clean_env(),
        check=False,
    )


@dataclass
class Child:
    """A background process; its stderr goes to a file so a failure can show it."""

    process: subprocess.Popen
    log: Path

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def spawn(argv: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> Child:
    """Start ARGV in its own process group (so kill_group reaches its workers too)."""
    handle, log = tempfile.mkstemp(prefix="child-", suffix=".err", dir=cwd)
    with os.fdopen(handle, "w") as err:
        process = subprocess.Popen(
            list(argv), stdout=subprocess.DEVNULL, stderr=err, env=env or clean_env(), cwd=cwd,
            start_new_session=True,
        )
    return Child(process, Path(log))


def wait_for(condition: Callable[[], bool], timeout: float, what: str, child: Child | None = None) -> None:
    """Poll CONDITION; fail at once, with the child's stderr, if CHILD exits first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if child is not None and child.process.poll() is not None:
            raise AssertionError(
                f"the child exited ({child.process.returncode}) before {what}; its stderr:\n{child.stderr()}"
            )
        if time.monotonic() > deadline:
            detail = f"; the child's stderr so far:\n{child.stderr()}" if child is not None else ""
            raise AssertionError(f"timed out waiting for {what}{detail}")
        time.sleep(0.02)


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the child and everything it started (hashing workers included)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:  # the whole group already exited; the caller reports why
        pass
    process.wait(timeout=30)


def kill_inside_transaction(db: Path, pause_at: str, *argv: str,
                            while_paused: Callable[[], None] | None = None) -> dict[str, Any]:
    """Run ``authctl --db DB ARGV`` until it reaches PAUSE_AT, then SIGKILL it.

    Returns what the child's connection saw at that point (users, keys, audit actions,
    whether a transaction was open), so a test can show the kill hit the moment it meant.
    """
    mark = db.parent / "paused"
    child = spawn(
        [sys.executable, "-c", PAUSE_INSIDE_TRANSACTION, "--db", str(db), *argv], db.parent,
        {**clean_env(), "PAUSE_AT": pause_at, "PAUSE_MARK": str(mark)},
    )
    try:
        wait_for(mark.exists, COMMAND_TIMEOUT_S, f"`authctl {' '.join(argv)}` to pause {pause_at}", child)
        seen = json.loads(mark.read_text())
        if while_paused is not None:
            while_paused()
    finally:
        kill_group(child.process)
    assert child.process.returncode == -signal.SIGKILL, child.stderr()
    mark.unlink()
    return seen


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


def active_keys(db: Path) -> list[str]:
    return [kid for kid, status in keys(db) if status == "active"]


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


MODE_PROBE = (
    "import sys, authctl\n"
    "try:\n    open(sys.argv[1], 'a')\nexcept PermissionError:\n    sys.exit(0)\n"
    "sys.exit('a 0400 file was writable')\n"
)


def modes_bind(limits: dict[str, Any], folder: Path) -> str:
    """Empty when a child under LIMITS can run authctl's imports yet not write a 0400 file in
    FOLDER; otherwise why not."""
    probe = folder / "mode-probe"
    probe.write_text("")
    probe.chmod(0o400)
    if "uid" in limits:
        os.chown(probe, limits["uid"], limits["uid"])
    try:
        result = subprocess.run(
            [sys.executable, "-c", TRAMPOLINE, json.dumps(limits), "-c", MODE_PROBE, str(probe)],
            capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, cwd=folder, env=clean_env(), check=False,
        )
    finally:
        probe.unlink()
    return "" if result.returncode == 0 else (result.stderr.strip().splitlines() or ["?"])[-1]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def stored_hash() -> str:
    return Hasher().hash(STRONG)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, stored_hash: str) -> Path:
    """A populated database built once: the article's users and roles plus 300 more users."""
    folder = tmp_path_factory.mktemp("template")
    db = folder / "auth.db"
    created = run(db, "init")
    assert created.returncode == 0, created.stderr
    with Store.open(db) as store:
        add_article_users(store, stored_hash)
        store.add_users([(f"member{i:03d}", stored_hash, ["student"], False) for i in range(300)])
    assert not Path(f"{db}-wal").exists()
    return db


@pytest.fixture
def db(template: Path, tmp_path: Path) -> Path:
    path = tmp_path / "auth.db"
    shutil.copyfile(template, path)
    path.chmod(0o600)
    return path


@dataclass
class ModeBound:
    """A copy of the database, and the limits under which an authctl child obeys its file modes."""

    db: Path
    limits: dict[str, Any]


@pytest.fixture
def mode_bound(db: Path) -> Iterator[ModeBound]:
    """Root ignores file modes, so as root the child either loses CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH (needs CAP_SETPCAP) or runs as nobody on files it owns (needs
    CAP_SETUID); the test is skipped, saying why, only when neither makes modes bind."""
    if os.geteuid() != 0:
        yield ModeBound(db, {})
        return
    dropped = {"drop_caps": [CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH]}
    why_not_dropped = modes_bind(dropped, db.parent)
    if not why_not_dropped:
        yield ModeBound(db, dropped)
        return
    folder = Path(tempfile.mkdtemp(prefix="authctl-faults-"))  # pytest's temp root is root-only (0700)
    try:
        os.chown(folder, NOBODY, NOBODY)
        as_nobody = {"uid": NOBODY}
        why_not_nobody = modes_bind(as_nobody, folder)
        if why_not_nobody:
            pytest.skip(
                "running as root and file modes cannot be made to bind: dropping CAP_DAC_OVERRIDE "
                f"failed ({why_not_dropped}) and running as uid {NOBODY} failed ({why_not_nobody})"
            )
        moved = folder / db.name
        shutil.copyfile(db, moved)
        moved.chmod(0o600)
        os.chown(moved, NOBODY, NOBODY)
        yield ModeBound(moved, as_nobody)
    finally:
        shutil.rmtree(folder)


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
    child = spawn([sys.executable, "-m", "authctl", "--db", str(db), "user", "import", str(source), "--workers", "2"],
                  tmp_path)
    try:
        # the pool's workers appear once every row is validated and hashing has begun
        wait_for(lambda: len(group_members(child.process.pid)) >= 3, 60, "the hashing workers to start", child)
        time.sleep(0.5)
        assert child.process.poll() is None, f"the import finished before it could be killed: {child.stderr()}"
    finally:
        kill_group(child.process)
    assert child.process.returncode == -signal.SIGKILL
    wait_for(lambda: not group_members(child.process.pid), 10, "the hashing workers to die")

    assert integrity(db) == "ok"
    # all or nothing, and here nothing: it was killed while hashing, before its one write transaction
    assert users(db) == before
    added = run(db, "user", "add", "after-crash", "--password-stdin", input=STRONG + "\n")
    assert added.returncode == 0, added.stderr
    listed = run(db, "user", "list", "--json", "--limit", "10000")
    assert listed.returncode == 0, listed.stderr
    assert {u["username"] for u in json.loads(listed.stdout)["users"]} == {row[0] for row in before} | {"after-crash"}


def test_kill_9_inside_the_import_transaction_rolls_the_whole_import_back(
    db: Path, tmp_path: Path, stored_hash: str
) -> None:
    """Killed just before COMMIT with the rows already spilled into the WAL: recovery keeps none."""
    before, actions = users(db), audit_actions(db)
    names = [f"bulk{i:05d}" for i in range(10000)]  # more than the page cache holds, so pages spill
    source = write_jsonl(tmp_path / "bulk.jsonl", names, stored_hash)
    wal = Path(f"{db}-wal")
    wal_sizes = []
    seen = kill_inside_transaction(db, "before COMMIT", "user", "import", str(source),
                                   while_paused=lambda: wal_sizes.append(wal.stat().st_size))
    assert seen["in_transaction"] and seen["users"] == len(before) + len(names), seen["users"]
    assert seen["audit"] == [*actions, "user.import"]
    # uncommitted frames already on disk: the rollback below is WAL recovery, not a dropped cache
    assert wal_sizes[0] > 100 * 1024, wal_sizes

    assert integrity(db) == "ok"
    assert users(db) == before
    assert audit_actions(db) == actions
    added = run(db, "user", "add", "after-crash", "--password-stdin", input=STRONG + "\n")
    assert added.returncode == 0, added.stderr  # no lock survived the killed writer
    assert len(users(db)) == len(before) + 1


# Where key rotate is killed, whether it had committed by then, and what its own connection
# sees there as (keys added, active keys): after the UPDATE no key is active at all, after
# the INSERT the new key is there but not yet committed.
ROTATE_KILL_POINTS = [
    ("before UPDATE signing_keys", False, (0, 1)),
    ("after UPDATE signing_keys", False, (0, 0)),
    ("after INSERT INTO signing_keys", False, (1, 1)),
    ("after INSERT INTO audit_log", False, (1, 1)),
    ("before COMMIT", False, (1, 1)),
    ("after COMMIT", True, (1, 1)),
]


@pytest.mark.parametrize("pause_at, committed, seen_inside", ROTATE_KILL_POINTS,
                         ids=[point.replace(" ", "-") for point, _, _ in ROTATE_KILL_POINTS])
def test_kill_9_at_each_step_of_key_rotate_leaves_the_old_or_the_new_key_set_whole(
    db: Path, pause_at: str, committed: bool, seen_inside: tuple[int, int]
) -> None:
    """Killed at each statement of the rotate transaction: before COMMIT the key set is exactly
    the old one, after it exactly the old keys demoted plus the new active one; never 0 or 2 active."""
    cli = Cli(db)
    token = cli("token", "issue", "--as", "rahul").stdout.strip()
    before, actions = keys(db), audit_actions(db)
    (old_active,) = active_keys(db)

    seen = kill_inside_transaction(db, pause_at, "key", "rotate")
    assert seen["in_transaction"] is not committed
    assert (len(seen["keys"]) - len(before), [status for _, status in seen["keys"]].count("active")) == seen_inside

    assert integrity(db) == "ok"
    if committed:
        new_kid = seen["keys"][-1][0]
        demoted = [(kid, "verifying" if kid == old_active else status) for kid, status in before]
        assert keys(db) == [*demoted, (new_kid, "active")]
        assert audit_actions(db) == [*actions, "key.add"]
    else:
        assert keys(db) == before
        assert audit_actions(db) == actions
    assert len(active_keys(db)) == 1
    assert cli("token", "verify", token).exit_code == 0  # the token from before the crash still verifies
    rotated = cli("key", "rotate")
    assert rotated.exit_code == 0, rotated.stderr  # no lock survived the killed writer
    assert len(keys(db)) == len(before) + int(committed) + 1 and len(active_keys(db)) == 1


# --------------------------------------------------------------------------- hostile environment


def test_read_only_database_file_allows_reads_and_refuses_writes_cleanly(mode_bound: ModeBound) -> None:
    """chmod 0400: `user list` works, `user add` fails in one line naming the fix, nothing changes."""
    db, limits = mode_bound.db, mode_bound.limits
    before = users(db)
    db.chmod(0o400)
    try:
        listed = run(db, "user", "list", "--json", "--limit", "10000", limits=limits)
        assert listed.returncode == 0, listed.stderr
        assert len(json.loads(listed.stdout)["users"]) == len(before)
        added = run(db, "user", "add", "newcomer", "--password-stdin", input=STRONG + "\n", limits=limits)
        line = assert_one_line_error(added)
        assert str(db) in line and "permissions" in line, line
    finally:
        for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
            if path.exists():
                path.chmod(0o600)  # the fix the message names: the file and its -wal/-shm
    assert integrity(db) == "ok" and users(db) == before
    again = run(db, "user", "add", "newcomer", "--password-stdin", input=STRONG + "\n", limits=limits)
    assert again.returncode == 0, again.stderr
    assert [row[0] for row in users(db)].count("newcomer") == 1


def test_read_only_database_folder_is_refused_in_one_line(mode_bound: ModeBound) -> None:
    """A WAL database needs its folder writable (for -wal/-shm): say so instead of failing oddly."""
    db, limits = mode_bound.db, mode_bound.limits
    before = users(db)
    original = sha256(db)
    folder = db.parent
    folder.chmod(0o500)
    try:
        for args, stdin in ((("user", "list"), None), (("user", "add", "newcomer", "--password-stdin"), STRONG + "\n")):
            result = run(db, *args, input=stdin, limits=limits)
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
    full = run(db, "user", "import", str(source), limits={"fsize": limit})
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
         ("import sqlite3, sys\n"
         "conn = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
         "conn.execute('BEGIN EXCLUSIVE')\n"
         "conn.execute(\"UPDATE users SET disabled = 1 WHERE username = 'rahul'\")\n"
         "print('locked', flush=True)\n"
         "sys.stdin.read()\n"
         "conn.execute('ROLLBACK')\n"),
         str(db)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        listed = run(db, "user", "list", "--json", "--limit", "10000")
        assert listed.returncode == 0, listed.stderr
        assert len(json.loads(listed.stdout)["users"]) == len(before)
        blocked = run(db, "user", "add", "newcomer", "--password-stdin", input=STRONG + "\n")
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
