"""A CLI that behaves like the ones users know: --json everywhere, global options anywhere,
confirmation of destructive commands, real placeholders and examples in --help, completion,
config sources and compound durations, and an export that imports back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from authctl import config
from authctl.cli import app
from authctl.errors import InvalidInput
from authctl.store import Store
from tests.conftest import STRONG, Cli


def _json(result) -> dict:
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


# --------------------------------------------------------------------------- global options


def test_global_options_work_after_the_subcommand(seeded: Cli, tmp_path: Path) -> None:
    runner = CliRunner()
    after = runner.invoke(app, ["user", "list", "--db", str(seeded.db), "--json"])
    assert after.exit_code == 0, after.stderr
    assert [u["username"] for u in json.loads(after.stdout)["users"]] == ["rahul", "suman"]
    equals = runner.invoke(app, ["role", "list", f"--db={seeded.db}", "--json"])
    assert [r["name"] for r in json.loads(equals.stdout)] == ["admin", "student"]
    elsewhere = runner.invoke(app, ["user", "list", "--db", str(tmp_path / "none.db")])
    assert elsewhere.exit_code == 1 and "none.db" in elsewhere.stderr  # the --db after the command was used


def test_an_argument_after_double_dash_is_never_taken_for_a_global_option(seeded: Cli) -> None:
    result = seeded("user", "show", "--", "--json")
    assert result.exit_code == 1 and "--json" in result.stderr and result.stdout == ""


# --------------------------------------------------------------------------- --json on every command


def test_json_flag_on_key_jwks_and_user_export(seeded: Cli) -> None:
    assert "keys" in _json(seeded("key", "jwks", "--json"))
    exported = _json(seeded("user", "export", "--json"))
    assert [u["username"] for u in exported["users"]] == ["rahul", "suman"]
    assert "password_hash" not in json.dumps(exported)


def test_every_changing_command_prints_the_object_it_changed(seeded: Cli, tmp_path: Path) -> None:
    passwd = _json(seeded("user", "passwd", "rahul", "--generate", "--json"))
    assert passwd["username"] == "rahul" and len(passwd["password"]) >= 16
    assert _json(seeded("user", "disable", "rahul", "--json"))["status"] == "disabled"
    assert _json(seeded("user", "enable", "rahul", "--json"))["status"] == "active"
    assert _json(seeded("user", "assign", "rahul", "admin", "--json"))["roles"] == ["admin", "student"]
    assert _json(seeded("user", "unassign", "rahul", "admin", "--json"))["roles"] == ["student"]
    before = _json(seeded("user", "show", "rahul", "--json"))["token_version"]
    assert _json(seeded("user", "logout", "rahul", "--json"))["token_version"] == before + 1
    assert _json(seeded("user", "unlock", "rahul", "--json"))["username"] == "rahul"
    setting = _json(seeded("config", "set", "access_ttl", "1h30m", "--json"))
    assert setting == {"key": "access_ttl", "value": 5400, "stored": 5400, "source": "stored"}
    rotated = _json(seeded("key", "rotate", "--json"))
    assert rotated["status"] == "active" and len(rotated["previous"]) == 1
    retired = _json(seeded("key", "retire", rotated["previous"][0], "--yes", "--json"))
    assert retired["kid"] == rotated["previous"][0] and retired["status"] == "retired"
    token = seeded("token", "issue", "--as", "rahul").stdout.strip()
    revoked = _json(seeded("token", "revoke", token, "--json"))
    assert revoked["jti"] and "eyJ" not in json.dumps(revoked)
    removed = _json(seeded("user", "remove", "rahul", "--yes", "--json"))
    assert removed["username"] == "rahul" and removed["removed"] is True
    role = _json(seeded("role", "remove", "student", "--force", "--yes", "--json"))
    assert role["name"] == "student" and role["removed"] is True


def test_target_add_and_remove_print_the_target(seeded: Cli, tmp_path: Path) -> None:
    key = tmp_path / "shop.key"
    key.write_text("fixture-apps-hs256-secret-0123456789abcdef")
    os.chmod(key, 0o600)
    added = _json(seeded("target", "add", "shop", "--key-file", str(key), "--json"))
    assert added["name"] == "shop" and "fixture-apps" not in json.dumps(added)
    removed = _json(seeded("target", "remove", "shop", "--yes", "--json"))
    assert removed["name"] == "shop" and removed["removed"] is True


def test_no_command_branches_on_json_itself() -> None:
    """The one output object: commands hand data to render.emit, never test --json themselves."""
    cli_dir = Path(__file__).resolve().parent.parent / "authctl" / "cli"
    for path in cli_dir.glob("*.py"):
        source = path.read_text(encoding="utf-8")
        assert "wants_json" not in source and "output.json" not in source.replace("render.output.json = ", ""), path


# --------------------------------------------------------------------------- destructive commands


DESTRUCTIVE = [
    ("user", "remove", "rahul"),
    ("role", "remove", "student", "--force"),
    ("target", "remove", "shop"),
]


@pytest.fixture
def with_target(seeded: Cli, tmp_path: Path) -> Cli:
    key = tmp_path / "shop.key"
    key.write_text("fixture-apps-hs256-secret-0123456789abcdef")
    os.chmod(key, 0o600)
    assert seeded("target", "add", "shop", "--key-file", str(key)).exit_code == 0
    return seeded


@pytest.mark.parametrize("args", DESTRUCTIVE, ids=lambda args: " ".join(args[:2]))
def test_destructive_commands_refuse_without_a_terminal_unless_yes(with_target: Cli, args) -> None:
    before = with_target.db.read_bytes()
    refused = with_target(*args)
    assert refused.exit_code == 1 and "--yes" in refused.stderr and refused.stdout == ""
    assert len(refused.stderr.strip().splitlines()) == 1
    assert with_target.db.read_bytes() == before
    assert with_target(*args, "--yes").exit_code == 0


def test_key_retire_and_an_import_that_replaces_the_active_key_need_yes(initialized: Cli) -> None:
    old = _json(initialized("key", "list", "--json"))[0]["kid"]
    initialized("key", "rotate")
    refused = initialized("key", "retire", old)
    assert refused.exit_code == 1 and "--yes" in refused.stderr
    secret = "an-existing-apps-long-random-secret-value-0123456789"
    replacing = initialized("key", "import", "-", "--hmac", "--kid", "app", input=secret + "\n")
    assert replacing.exit_code == 1 and "--yes" in replacing.stderr and "active" in replacing.stderr
    assert "app" not in [k["kid"] for k in _json(initialized("key", "list", "--json"))]
    verify_only = initialized("key", "import", "-", "--hmac", "--kid", "app", "--verify-only", input=secret + "\n")
    assert verify_only.exit_code == 0, verify_only.stderr  # it replaces nothing: nothing to confirm


def test_policy_apply_prune_that_removes_needs_yes(seeded: Cli, tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    assert seeded("policy", "export", "-o", str(path)).exit_code == 0
    seeded("role", "add", "extra")
    refused = seeded("policy", "apply", str(path), "--prune")
    assert refused.exit_code == 1 and "--yes" in refused.stderr
    assert "extra" in [r["name"] for r in _json(seeded("role", "list", "--json"))]
    assert seeded("policy", "apply", str(path)).exit_code == 0  # without --prune nothing is removed: no question
    assert seeded("policy", "apply", str(path), "--prune", "--yes").exit_code == 0
    assert "extra" not in [r["name"] for r in _json(seeded("role", "list", "--json"))]


def test_on_a_terminal_the_question_is_asked_and_no_changes_nothing(seeded: Cli, monkeypatch) -> None:
    from authctl.cli import common

    monkeypatch.setattr(common, "on_terminal", lambda: True)
    declined = seeded("user", "remove", "rahul", input="n\n")
    assert declined.exit_code == 1 and "remove user rahul?" in declined.stderr
    assert seeded("user", "show", "rahul").exit_code == 0
    accepted = seeded("user", "remove", "rahul", input="y\n")
    assert accepted.exit_code == 0 and seeded("user", "show", "rahul").exit_code == 1


# --------------------------------------------------------------------------- --help


def _commands():
    from typer.main import get_command

    root = get_command(app)
    ctx = root.context_class(root, info_name="authctl")
    for name in root.list_commands(ctx):
        command = root.get_command(ctx, name)
        if hasattr(command, "list_commands"):
            sub = command.context_class(command, info_name=name, parent=ctx)
            for child in command.list_commands(sub):
                yield (name, child)
        else:
            yield (name,)


ALL_COMMANDS = list(_commands())


def test_every_command_is_listed() -> None:
    assert ("user", "remove") in ALL_COMMANDS and ("config", "unset") in ALL_COMMANDS and ("demo",) in ALL_COMMANDS
    assert len(ALL_COMMANDS) >= 40


@pytest.mark.parametrize("path", ALL_COMMANDS, ids=" ".join)
def test_help_has_placeholders_and_examples(path) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    for python_type in ("<str>", "<list[str]>", "<bool>", "<int>", "<float>"):
        assert python_type not in text, f"{' '.join(path)} --help shows {python_type}"
    assert "Examples:" in text and f"authctl {' '.join(path)}" in text.split("Examples:", 1)[1]
    assert "--json" in text  # the global options, named on every command


def test_help_names_what_a_value_is() -> None:
    assigned = CliRunner().invoke(app, ["user", "assign", "--help"], env={"COLUMNS": "200"}).stdout
    assert "USER" in assigned and "ROLE" in assigned
    checked = CliRunner().invoke(app, ["check", "--help"], env={"COLUMNS": "200"}).stdout
    assert "METHOD" in checked and "PATH" in checked and "MODULE:ATTR" in checked
    matrix = CliRunner().invoke(app, ["matrix", "--help"], env={"COLUMNS": "200"}).stdout
    assert "table|json|csv|junit|html|markdown" in matrix


def test_algorithm_choices_are_the_ones_keys_supports() -> None:
    from authctl import keys
    from authctl.cli.common import Alg, AnyAlg

    assert [alg.value for alg in Alg] == list(keys.GENERATED_ALGS)
    assert [alg.value for alg in AnyAlg] == list(keys.SUPPORTED_ALGS)


def test_the_two_broken_help_texts_read_right() -> None:
    demo = CliRunner().invoke(app, ["demo", "--help"], env={"COLUMNS": "200"}).stdout
    assert "(or --keep DIR), runs the app" in demo  # one line, not broken after "DIR),"
    revoke = CliRunner().invoke(app, ["role", "revoke", "--help"], env={"COLUMNS": "200"}).stdout
    assert "stops inheriting" in revoke and "whose permissions this role includes" not in revoke
    grant = CliRunner().invoke(app, ["role", "grant", "--help"], env={"COLUMNS": "200"}).stdout
    assert "whose permissions this role includes" in grant


@pytest.mark.parametrize("args, message", [
    (("matrix", "--format", "pdf"), "'pdf' is not one of"),
    (("key", "rotate", "--alg", "none"), "'none' is not one of"),
    (("user", "list", "--status", "asleep"), "'asleep' is not one of"),
    (("token", "verify", "x", "--type", "id"), "'id' is not one of"),
    (("user", "export", "--format", "xml"), "'xml' is not one of"),
])
def test_fixed_choices_are_validated_as_usage_errors(initialized: Cli, args, message) -> None:
    result = initialized(*args)
    assert result.exit_code == 2 and message in " ".join(result.stderr.split())


# --------------------------------------------------------------------------- completion


def _complete(db: Path, words: str) -> list[str]:
    env = {**os.environ, "_AUTHCTL_COMPLETE": "complete_bash", "COMP_WORDS": words,
           "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1))}
    env.pop("AUTHCTL_DB", None)
    done = subprocess.run([sys.executable, "-m", "authctl"], env=env, capture_output=True, text=True, timeout=60,
                          cwd=db.parent)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return done.stdout.split()


def test_completion_of_users_roles_kids_settings_targets_and_formats(with_target: Cli) -> None:
    db = with_target.db
    assert _complete(db, f"authctl --db {db} user show r") == ["rahul"]
    assert _complete(db, f"authctl --db {db} user assign rahul a") == ["admin"]
    assert _complete(db, f"authctl --db {db} target show s") == ["shop"]
    kid = _json(with_target("key", "list", "--json"))[0]["kid"]
    assert _complete(db, f"authctl --db {db} key retire {kid[:4]}") == [kid]
    assert _complete(db, f"authctl --db {db} config set access") == ["access_ttl"]
    assert _complete(db, f"authctl --db {db} check GET / --as s") == ["suman"]
    assert "markdown" in _complete(db, f"authctl --db {db} matrix --format ")


def test_completion_never_fails_on_a_missing_or_damaged_database(tmp_path: Path) -> None:
    assert _complete(tmp_path / "x", f"authctl --db {tmp_path / 'missing.db'} user show r") == []
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    assert _complete(junk, f"authctl --db {junk} user show r") == []


# --------------------------------------------------------------------------- config


def test_compound_durations_parse_everywhere() -> None:
    assert config.parse_duration("1h30m") == 5400
    assert config.parse_duration("2w") == 14 * 86400
    assert config.parse_duration("1d12h") == 36 * 3600
    assert config.parse_duration("90") == 90 and config.parse_duration("15M") == 900
    for bad in ("30m1h", "1h1h", "", "abc", "1x", "-5m", "h"):
        with pytest.raises(InvalidInput):
            config.parse_duration(bad)
    for seconds in (30, 900, 5400, 86400 + 3600 + 61, 14 * 86400):
        assert config.parse_duration(config.format_duration(seconds)) == seconds


def test_token_ttl_takes_compound_durations(seeded: Cli) -> None:
    issued = _json(seeded("token", "issue", "--as", "rahul", "--ttl", "1h30m", "--json"))
    assert issued["claims"]["exp"] - issued["claims"]["iat"] == 5400


def test_config_show_names_each_source(seeded: Cli, monkeypatch) -> None:
    seeded("config", "set", "access_ttl", "5m")
    monkeypatch.setenv("AUTHCTL_LEEWAY", "1m")
    shown = _json(seeded("config", "show", "--json"))
    assert shown["sources"]["access_ttl"] == "stored" and shown["sources"]["leeway"] == "env AUTHCTL_LEEWAY"
    assert shown["sources"]["issuer"] == "default" and shown["settings"]["leeway"] == 60
    table = seeded("config", "show").stdout
    assert "env AUTHCTL_LEEWAY" in table and "stored" in table
    assert config.sources({}, overrides={"issuer": "x"}, environ={})["issuer"] == "option"


def test_config_unset_goes_back_to_the_default(seeded: Cli) -> None:
    seeded("config", "set", "access_ttl", "5m")
    unset = _json(seeded("config", "unset", "access_ttl", "--json"))
    assert unset == {"key": "access_ttl", "value": 900, "stored": None, "source": "default", "removed": True}
    again = seeded("config", "unset", "access_ttl")
    assert again.exit_code == 0 and "was not stored" in again.stderr
    assert seeded("config", "unset", "nonsense").exit_code == 1
    assert any(e["action"] == "config.unset" for e in _json(seeded("log", "--json")))


def test_config_unset_refuses_what_breaks_a_cross_check(seeded: Cli) -> None:
    assert seeded("config", "set", "refresh_ttl", "1d").exit_code == 0
    assert seeded("config", "set", "max_ttl", "1d").exit_code == 0
    refused = seeded("config", "unset", "refresh_ttl")  # the default 7d is above max_ttl 1d
    assert refused.exit_code == 1 and "max_ttl" in refused.stderr
    assert _json(seeded("config", "show", "--json"))["settings"]["refresh_ttl"] == 86400


# --------------------------------------------------------------------------- export / import round trip


def _export(cli: Cli, tmp_path: Path) -> Path:
    out = tmp_path / "users.jsonl"
    result = cli("user", "export", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    return out


def test_a_plain_export_needs_generate_or_keep_disabled_to_import(seeded: Cli, tmp_path: Path) -> None:
    out = _export(seeded, tmp_path)
    fresh = Cli(tmp_path / "fresh.db")
    fresh("init")
    for role in ("student", "admin"):
        fresh("role", "add", role)
    refused = fresh("user", "import", str(out))
    assert refused.exit_code == 1 and "--generate or --keep-disabled" in refused.stderr
    assert fresh("user", "import", str(out), "--generate", "--keep-disabled").exit_code == 1


def test_export_then_import_with_generate_round_trips(seeded: Cli, tmp_path: Path) -> None:
    seeded("user", "disable", "rahul")
    out = _export(seeded, tmp_path)
    fresh = Cli(tmp_path / "fresh.db")
    fresh("init")
    for role in ("student", "admin"):
        fresh("role", "add", role)
    done = _json(fresh("user", "import", str(out), "--generate", "--json"))
    assert done["imported"] == 2 and {g["username"] for g in done["generated"]} == {"rahul", "suman"}
    users = {u["username"]: u for u in _json(fresh("user", "list", "--json"))["users"]}
    assert users["rahul"]["status"] == "disabled" and users["suman"]["status"] == "active"
    assert users["suman"]["roles"] == ["admin"]
    password = next(g["password"] for g in done["generated"] if g["username"] == "suman")
    with Store.open(fresh.db) as store:
        from authctl.passwords import Hasher

        assert Hasher.from_settings(store.settings()).verify(password, store.get_user("suman").password_hash)[0]


def test_export_then_import_keep_disabled_round_trips(seeded: Cli, tmp_path: Path) -> None:
    out = _export(seeded, tmp_path)
    fresh = Cli(tmp_path / "fresh.db")
    fresh("init")
    for role in ("student", "admin"):
        fresh("role", "add", role)
    done = fresh("user", "import", str(out), "--keep-disabled")
    assert done.exit_code == 0 and done.stdout == "" and "disabled without a password" in done.stderr
    users = _json(fresh("user", "list", "--json"))["users"]
    assert {u["username"]: u["status"] for u in users} == {"rahul": "disabled", "suman": "disabled"}
    with Store.open(fresh.db) as store:
        assert store.get_user("suman").password_hash is None
    shown = _json(fresh("user", "show", "suman", "--json"))
    assert shown["password_changed_at"] is None  # no password, so it was never changed
    assert fresh("user", "passwd", "suman", "--password-stdin", input=STRONG + "\n").exit_code == 0
    assert _json(fresh("user", "show", "suman", "--json"))["password_changed_at"] is not None
    assert _json(fresh("user", "enable", "suman", "--json"))["status"] == "active"
