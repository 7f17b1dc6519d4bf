"""The administrator's commands through the real CLI on a real SQLite file."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from authctl.store import Store

from .conftest import STRONG, Cli


def users_in(db: Path) -> list[str]:
    with Store.open(db) as store:
        return [user.username for user in store.list_users()]


def test_init_creates_a_private_database_once(cli: Cli) -> None:
    result = cli("init")
    assert result.exit_code == 0
    assert "created" in result.stderr and result.stdout == ""
    assert stat.S_IMODE(cli.db.stat().st_mode) == 0o600
    again = cli("init")
    assert again.exit_code == 1 and "already exists" in again.stderr


def test_commands_on_a_missing_database_say_run_init(cli: Cli) -> None:
    result = cli("user", "list")
    assert result.exit_code == 1
    assert "run `authctl init`" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not cli.db.exists()


def test_db_location_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from authctl.cli import app

    monkeypatch.setenv("AUTHCTL_DB", str(tmp_path / "env.db"))
    assert CliRunner().invoke(app, ["init"]).exit_code == 0
    assert (tmp_path / "env.db").exists()
    assert CliRunner().invoke(app, ["init"]).exit_code == 1  # same file: already exists


def test_user_add_show_list_with_inherited_permissions(seeded: Cli) -> None:
    shown = seeded("user", "show", "SUMAN")
    assert shown.exit_code == 0
    assert "inherited via admin" in shown.stdout and "students:delete" in shown.stdout
    data = json.loads(seeded("user", "show", "suman", "--json").stdout)
    assert data["username"] == "suman" and data["status"] == "active"
    assert data["all_roles"] == [{"role": "admin", "via": None}, {"role": "student", "via": "admin"}]
    assert {"permission": "students:read", "granted_by": "student"} in data["permissions"]
    assert data["failed_logins"] == 0 and data["locked"] is False
    assert "password_hash" not in json.dumps(data)
    listing = json.loads(seeded("user", "list", "--json").stdout)
    assert [user["username"] for user in listing["users"]] == ["rahul", "suman"]
    assert listing["total"] == 2 and listing["next_offset"] is None


def _names(result) -> list[str]:
    return [u["username"] for u in json.loads(result.stdout)["users"]]


def test_user_list_filters_and_pages(seeded: Cli) -> None:
    students = json.loads(seeded("user", "list", "--role", "student", "--json").stdout)
    assert [u["username"] for u in students["users"]] == ["rahul"] and students["total"] == 1  # the filter counts too
    seeded("user", "disable", "rahul")
    disabled = json.loads(seeded("user", "list", "--status", "disabled", "--json").stdout)
    assert [u["username"] for u in disabled["users"]] == ["rahul"] and disabled["total"] == 1
    first = json.loads(seeded("user", "list", "--limit", "1", "--json").stdout)
    assert [u["username"] for u in first["users"]] == ["rahul"] and first["total"] == 2 and first["next_offset"] == 1
    last = json.loads(seeded("user", "list", "--limit", "1", "--offset", "1", "--json").stdout)
    assert [u["username"] for u in last["users"]] == ["suman"] and last["total"] == 2 and last["next_offset"] is None
    none = json.loads(seeded("user", "list", "--status", "active", "--role", "student", "--json").stdout)
    assert none == {"users": [], "total": 0, "next_offset": None}
    bad = seeded("user", "list", "--status", "sleeping")
    assert bad.exit_code == 2 and "'active'" in bad.stderr and "'disabled'" in bad.stderr
    assert seeded("user", "list", "--role", "ghost").exit_code == 1


def test_user_list_human_names_the_next_page(seeded: Cli) -> None:
    page = seeded("user", "list", "--limit", "1")
    assert page.exit_code == 0 and "rahul" in page.stdout and "suman" not in page.stdout
    assert "of 2 users" in page.stderr and "--offset 1" in page.stderr


def test_global_json_flag_works_too(seeded: Cli) -> None:
    result = seeded.runner.invoke(__import__("authctl.cli", fromlist=["app"]).app, ["--db", str(seeded.db), "--json", "role", "list"])
    assert [role["name"] for role in json.loads(result.stdout)] == ["admin", "student"]


def test_empty_lists_print_empty_json_arrays(initialized: Cli) -> None:
    for args in (("role", "list"), ("perm", "list")):
        result = initialized(*args, "--json")
        assert result.exit_code == 0 and json.loads(result.stdout) == []
    users = initialized("user", "list", "--json")
    assert users.exit_code == 0 and json.loads(users.stdout) == {"users": [], "total": 0, "next_offset": None}


def test_duplicate_user_is_a_clear_error(seeded: Cli) -> None:
    result = seeded("user", "add", "Rahul", "--password-stdin", input=STRONG + "\n")
    assert result.exit_code == 1 and "already exists" in result.stderr


def test_password_never_comes_from_an_argument_and_rules_are_named(initialized: Cli) -> None:
    no_source = initialized("user", "add", "rahul")
    assert no_source.exit_code == 1 and "--password-stdin" in no_source.stderr
    weak = initialized("user", "add", "rahul", "--password-stdin", input="rahul123\n")
    assert weak.exit_code == 1 and "similar to the username" in weak.stderr
    assert "rahul123" not in weak.stderr
    assert users_in(initialized.db) == []
    usage = initialized("user", "add", "rahul", "--password", "x")
    assert usage.exit_code == 2


def test_generated_password_is_printed_once_and_works(initialized: Cli) -> None:
    from authctl.passwords import Hasher

    result = initialized("user", "add", "priya", "--generate")
    password = result.stdout.strip()
    assert result.exit_code == 0 and len(password) >= 20
    with Store.open(initialized.db) as store:
        assert Hasher().verify(password, store.get_user("priya").password_hash) == (True, None)


def test_bad_usernames_exit_1_with_one_line(initialized: Cli) -> None:
    result = initialized("user", "add", "bad\x1b[31mname", "--generate")
    assert result.exit_code == 1
    assert "\x1b" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_passwd_disable_enable_remove_logout_unlock(seeded: Cli) -> None:
    with Store.open(seeded.db) as store:
        before = store.get_user("rahul")
    assert seeded("user", "passwd", "rahul", "--password-stdin", input="Another-Strong-Pass-8\n").exit_code == 0
    assert seeded("user", "logout", "rahul").exit_code == 0
    disabled = json.loads(seeded("user", "disable", "rahul", "--json").stdout)
    assert disabled["status"] == "disabled" and disabled["token_version"] == before.token_version + 2
    assert json.loads(seeded("user", "enable", "rahul", "--json").stdout)["status"] == "active"
    assert seeded("user", "unlock", "rahul").exit_code == 0
    assert seeded("user", "remove", "--yes", "rahul").exit_code == 0
    assert users_in(seeded.db) == ["suman"]
    missing = seeded("user", "remove", "--yes", "rahul")
    assert missing.exit_code == 1 and "no user named 'rahul'" in missing.stderr


def test_assign_and_unassign(seeded: Cli) -> None:
    assigned = json.loads(seeded("user", "assign", "rahul", "admin", "--json").stdout)
    assert assigned["roles"] == ["admin", "student"]
    assert json.loads(seeded("user", "unassign", "rahul", "admin", "--json").stdout)["roles"] == ["student"]
    again = seeded("user", "unassign", "rahul", "admin")
    assert again.exit_code == 1 and "does not have role" in again.stderr
    assert seeded("user", "assign", "rahul", "wizard").exit_code == 1


def test_role_commands(seeded: Cli) -> None:
    assert seeded("role", "add", "instructor", "--inherits", "student", "-d", "teaches").exit_code == 0
    granted = json.loads(seeded("role", "grant", "instructor", "courses:write", "courses:*", "--json").stdout)
    assert granted["permissions"] == ["courses:*", "courses:write"]
    assert {"permission": "students:read", "granted_by": "student"} in granted["effective_permissions"]
    revoked = json.loads(seeded("role", "revoke", "instructor", "courses:*", "--json").stdout)
    assert revoked["permissions"] == ["courses:write"]
    cycle = seeded("role", "grant", "student", "--inherits", "admin")
    assert cycle.exit_code == 1 and "cycle" in cycle.stderr
    bad = seeded("role", "grant", "student", "Students:Read")
    assert bad.exit_code == 1 and "resource:action" in bad.stderr
    shown = seeded("role", "show", "admin")
    assert "students:read" in shown.stdout and "student" in shown.stdout
    assert seeded("role", "add", "Bad Name").exit_code == 1
    assert seeded("role", "grant", "student").exit_code == 1


def test_role_remove_needs_force_when_assigned(seeded: Cli) -> None:
    refused = seeded("role", "remove", "student")
    assert refused.exit_code == 1 and "--force" in refused.stderr
    assert json.loads(seeded("user", "show", "rahul", "--json").stdout)["roles"] == ["student"]
    removed = seeded("role", "remove", "student", "--force", "--yes")
    assert removed.exit_code == 0 and "1 user" in removed.stderr
    assert json.loads(seeded("user", "show", "rahul", "--json").stdout)["roles"] == []


def test_perm_list_and_log(seeded: Cli) -> None:
    perms = json.loads(seeded("perm", "list", "--json").stdout)
    assert {"permission": "students:delete", "roles": ["admin"]} in perms
    log = json.loads(seeded("log", "--json", "--action", "user").stdout)
    assert [entry["action"] for entry in log] == ["user.add", "user.add"]
    assert {entry["target"] for entry in log} == {"suman", "rahul"}
    assert all(entry["actor"] for entry in log)
    table = seeded("log", "--limit", "2")
    assert "user.add" in table.stdout


def test_config_show_and_set(initialized: Cli) -> None:
    assert initialized("config", "set", "access_ttl", "5m").exit_code == 0
    shown = json.loads(initialized("config", "show", "--json").stdout)
    settings, sources = shown["settings"], shown["sources"]
    assert settings["access_ttl"] == 300 and settings["argon2_memory_kib"] >= 19456
    assert sources["access_ttl"] == "stored" and sources["issuer"] == "default"
    bad = initialized("config", "set", "argon2_time_cost", "1")
    assert bad.exit_code == 1 and "between 2 and 100" in bad.stderr
    assert initialized("config", "set", "nonsense", "1").exit_code == 1
    assert "access_ttl" in initialized("config", "show").stdout


def test_import_is_all_or_nothing_with_line_numbers(seeded: Cli, tmp_path: Path) -> None:
    from passlib.hash import bcrypt

    good_hash = bcrypt.hash("Imported-Bcrypt-1")
    csv_file = tmp_path / "users.csv"
    csv_file.write_text(
        "username,password,password_hash,roles\n"
        "asha,Good-Password-11,,student\n"
        f"ben,,{good_hash},student\n"
        "carl,password1,,student\n"      # line 4: common password
        "asha,Other-Password-22,,\n"    # line 5: duplicate in file
        "dev,Good-Password-33,,wizard\n"  # line 6: unknown role
        "rahul,Good-Password-44,,\n"    # line 7: already exists
    )
    result = seeded("user", "import", str(csv_file))
    assert result.exit_code == 1
    for line, reason in ((4, "commonly used"), (5, "appears again"), (6, "unknown role"), (7, "already exists")):
        assert f"line {line}: " in result.stderr and reason in result.stderr
    assert "nothing was imported" in result.stderr
    assert users_in(seeded.db) == ["rahul", "suman"]


def test_import_jsonl_dry_run_then_real(seeded: Cli, tmp_path: Path) -> None:
    from passlib.hash import pbkdf2_sha256

    lines = [
        {"username": f"user{i}", "password": f"Bulk-Password-{i}-x", "roles": ["student"]} for i in range(5)
    ] + [{"username": "legacy", "password_hash": pbkdf2_sha256.hash("Legacy-Pass-77"), "roles": "admin"}]
    path = tmp_path / "users.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    dry = json.loads(seeded("user", "import", str(path), "--dry-run", "--json").stdout)
    assert dry == {"valid": 6, "imported": 0, "dry_run": True, "generated": [], "disabled_without_password": []}
    assert len(users_in(seeded.db)) == 2
    real = json.loads(seeded("user", "import", str(path), "--workers", "2", "--json").stdout)
    assert real["imported"] == 6
    with Store.open(seeded.db) as store:
        assert store.get_user("legacy").roles == ("admin",)
        assert store.get_user("user3").password_hash.startswith("$argon2id$")
        assert store.audit_log(action="user.import")[0].details == {"count": 6}


def test_import_reports_bad_json_and_missing_files(seeded: Cli, tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"username": "ok1", "password": "Good-Password-1"}\nnot json\n[1]\n')
    result = seeded("user", "import", str(path))
    assert result.exit_code == 1 and "line 2: not valid JSON" in result.stderr and "line 3:" in result.stderr
    missing = seeded("user", "import", str(tmp_path / "nope.csv"))
    assert missing.exit_code == 1 and "no such file" in missing.stderr


def test_export_has_no_hashes_unless_asked(seeded: Cli, tmp_path: Path) -> None:
    plain = [json.loads(line) for line in seeded("user", "export").stdout.splitlines()]
    assert plain[0] == {"username": "rahul", "roles": ["student"], "disabled": False}
    assert all("password_hash" not in record for record in plain)
    with_hashes = [json.loads(line) for line in seeded("user", "export", "--with-hashes").stdout.splitlines()]
    assert all(record["password_hash"].startswith("$argon2id$") for record in with_hashes)
    out = tmp_path / "export.csv"
    assert seeded("user", "export", "--format", "csv", "--with-hashes", "-o", str(out)).exit_code == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert out.read_text().splitlines()[0] == "username,roles,disabled,password_hash"
    # the export imports back into a fresh database
    fresh = Cli(tmp_path / "fresh.db")
    fresh("init")
    fresh("role", "add", "student")
    fresh("role", "add", "admin")
    assert fresh("user", "import", str(out)).exit_code == 0
    assert users_in(fresh.db) == ["rahul", "suman"]


def test_unexpected_errors_are_one_line_without_traceback(seeded: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    from authctl import store as store_module

    def boom(self, name):
        raise RuntimeError("secret-value-should-not-leak")

    monkeypatch.setattr(store_module.Store, "get_user", boom)
    result = seeded("user", "show", "rahul")
    assert result.exit_code == 1
    assert "internal error (RuntimeError)" in result.stderr
    assert "secret-value" not in result.stderr and "Traceback" not in result.stderr


def _run(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=60)


def test_python_dash_m_and_debug_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "AUTHCTL_DB": str(tmp_path / "none.db")}
    quiet = _run("-m", "authctl", "user", "list", env=env)
    assert quiet.returncode == 1 and "Traceback" not in quiet.stderr
    env["AUTHCTL_DEBUG"] = "1"
    loud = _run("-m", "authctl", "user", "list", env=env)
    assert loud.returncode == 1 and "Traceback" in loud.stderr and "DatabaseError" in loud.stderr
    version = _run("-m", "authctl", "--version")
    assert version.returncode == 0 and version.stdout.startswith("authctl ")


def test_terminal_escapes_from_tokens_and_logs_are_shown_escaped(seeded: Cli, tmp_path: Path) -> None:
    import base64

    def b64(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    evil = ".".join([
        b64({"alg": "ES256", "typ": "at+jwt", "kid": "\x1b[31mKID\x1b]0;pwned\x07"}),
        b64({"sub": "x", "name": "\x1b[2Jcleared\nfake line\u202egnp.exe", "\x1b[1mclaim": 1}),
        "c2ln",
    ])
    inspected = seeded("token", "inspect", evil)
    assert inspected.exit_code == 3
    assert "\x1b" not in inspected.stdout + inspected.stderr and "\\x1b[2J" in inspected.stdout
    assert "\u202e" not in inspected.stdout and "\\u202egnp.exe" in inspected.stdout
    token = seeded("token", "issue", "--as", "rahul").stdout.strip()
    assert seeded("token", "revoke", token, "--reason", "\x1b[31mRED\nfake-row").exit_code == 0
    log = seeded("log", "--limit", "1")
    assert "\x1b" not in log.stdout and "\\x1b" in log.stdout


def test_small_bad_inputs_get_clear_answers(seeded: Cli, tmp_path: Path) -> None:
    exported = seeded("user", "export", "--with-hashes", "-o", "-")
    assert exported.exit_code == 0 and exported.stdout.count("$argon2id$") == 2
    assert not (Path.cwd() / "-").exists()
    bad_issuer = seeded("config", "set", "issuer", "caf\udc9b")
    assert bad_issuer.exit_code == 1 and "UTF-8" in bad_issuer.stderr
    assert [e["action"] for e in json.loads(seeded("log", "--action", "%", "--json").stdout)] == []
    assert json.loads(seeded("log", "--action", "role", "--json").stdout)[0]["action"].startswith("role.")
    kept = seeded("demo", "--keep", "/proc/not-here/x")
    assert kept.exit_code == 1 and "cannot use /proc/not-here/x for --keep" in kept.stderr


def test_non_utf8_arguments_are_a_usage_error(tmp_path: Path) -> None:
    env = {**os.environ, "AUTHCTL_DB": str(tmp_path / "x.db")}
    result = subprocess.run(
        [sys.executable, "-m", "authctl", "token", "revoke", "--jti", b"ab\xff".decode("utf-8", "surrogateescape")],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert result.returncode == 2 and "not valid UTF-8" in result.stderr and "Traceback" not in result.stderr
