"""``authctl policy``: the policy file's export, apply, diff and test, and its round trip."""

from __future__ import annotations

import json
import tempfile
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authctl import policyfile
from authctl.errors import Conflict, InvalidInput
from authctl.passwords import Hasher
from authctl.store import Store

from .apphelpers import ARTICLE_POLICY as ARTICLE
from .conftest import STRONG, Cli


def write(tmp_path: Path, text: str, name: str = "policy.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_export_never_writes_passwords_or_hashes(seeded: Cli, tmp_path: Path) -> None:
    result = seeded("policy", "export")
    assert result.exit_code == 0, result.stderr
    assert STRONG not in result.stdout and "$argon2" not in result.stdout
    data = tomllib.loads(result.stdout)
    assert data["users"]["rahul"] == {"status": "active", "roles": ["student"]}
    assert data["roles"]["admin"]["inherits"] == ["student"]
    assert data["settings"]["access_ttl"] == "15m"
    assert seeded("policy", "export", "-o", str(tmp_path / "out.toml")).exit_code == 0
    assert (tmp_path / "out.toml").read_text() == result.stdout
    assert json.loads(seeded("policy", "export", "--json").stdout)["users"]["suman"]["roles"] == ["admin"]


def test_apply_dry_run_exits_7_on_drift_and_writes_nothing(initialized: Cli, tmp_path: Path) -> None:
    path = write(tmp_path, ARTICLE)
    dry = initialized("policy", "apply", str(path), "--dry-run")
    assert dry.exit_code == 7, dry.stderr
    assert "+ role admin inherits student" in dry.stdout and "+ expect DELETE /student/{id} rahul = 403" in dry.stdout
    assert "nothing written" in dry.stderr
    assert initialized("role", "list", "--json").stdout.strip() == "[]"
    diff = initialized("--json", "policy", "diff", str(path))
    assert diff.exit_code == 7
    assert json.loads(diff.stdout)["counts"] == {"added": 12, "changed": 0, "removed": 0}


def test_apply_is_idempotent_and_audit_logged(initialized: Cli, tmp_path: Path) -> None:
    path = write(tmp_path, ARTICLE)
    assert initialized("policy", "apply", str(path)).exit_code == 0
    again = initialized("--json", "policy", "apply", str(path))
    assert again.exit_code == 0 and json.loads(again.stdout)["changes"] == []
    assert initialized("policy", "diff", str(path)).exit_code == 0
    assert initialized("policy", "apply", str(path), "--dry-run").exit_code == 0
    log = json.loads(initialized("log", "--json", "--action", "policy").stdout)
    assert len(log) == 1 and log[0]["details"]["added"] == 12 and log[0]["target"] == str(path)


def test_new_users_are_created_disabled_without_a_password(initialized: Cli, tmp_path: Path) -> None:
    path = write(tmp_path, ARTICLE)
    result = initialized("policy", "apply", str(path))
    assert "+ user rahul (disabled)" in result.stdout
    assert "user rahul has no password, so it stays disabled" in result.stderr
    with Store.open(initialized.db) as store:
        assert store.get_user("rahul").disabled and store.get_user("rahul").password_hash is None
        assert policyfile.plan(store, policyfile.load(path)).changes == []  # never enabled without a password
    generated = initialized("--json", "policy", "apply", str(path), "--generate")
    passwords = {entry["username"]: entry["password"] for entry in json.loads(generated.stdout)["generated"]}
    assert sorted(passwords) == ["rahul", "suman"]
    with Store.open(initialized.db) as store:
        rahul = store.get_user("rahul")
        assert not rahul.disabled and Hasher().verify(passwords["rahul"], rahul.password_hash)[0]


def test_prune_is_the_only_way_anything_is_removed(seeded: Cli, tmp_path: Path) -> None:
    path = write(tmp_path, seeded("policy", "export").stdout)
    assert seeded("role", "add", "extra").exit_code == 0
    assert seeded("role", "grant", "student", "extra:read").exit_code == 0
    kept = seeded("policy", "apply", str(path))
    assert kept.exit_code == 0 and "are kept (--prune removes them)" in kept.stderr
    assert seeded("role", "show", "extra").exit_code == 0
    assert seeded("policy", "diff", str(path)).exit_code == 0
    assert seeded("policy", "diff", "--prune", str(path)).exit_code == 7
    pruned = seeded("policy", "apply", "--yes", "--prune", str(path))
    assert "- role extra" in pruned.stdout and "- role student grants extra:read" in pruned.stdout
    assert seeded("role", "show", "extra").exit_code == 1
    assert seeded("policy", "export").stdout == path.read_text()


def test_apply_is_all_or_nothing(seeded: Cli, tmp_path: Path) -> None:
    """The database keeps admin -> student; the file adds student -> admin: a cycle, refused whole."""
    text = seeded("policy", "export").stdout.replace(
        '[roles.student]\ndescription = ""\ninherits = []', '[roles.student]\ndescription = ""\ninherits = ["admin"]'
    ).replace('inherits = ["student"]', "inherits = []").replace("[users.rahul]", '[roles.new]\ndescription = ""\ninherits = []\npermissions = []\n\n[users.rahul]')
    before = seeded("policy", "export").stdout
    result = seeded("policy", "apply", str(write(tmp_path, text)))
    assert result.exit_code == 1 and "cycle" in result.stderr and "Traceback" not in result.stderr
    assert seeded("policy", "export").stdout == before  # not even role new


@pytest.mark.parametrize("text, nearest", [
    ("[settings]\naudiance = 'x'\n", "did you mean 'audience'?"),
    ("[role.admin]\n", "did you mean 'roles'?"),
    ("[roles.admin]\npermission = ['a:b']\n", "did you mean 'permissions'?"),
    ("[roles.student]\n[users.rahul]\nroles = ['studnet']\n", "did you mean 'student'?"),
    ("[roles.student]\n[roles.admin]\ninherits = ['studen']\n", "did you mean 'student'?"),
    ("[users.rahul]\n[expect.'GET /students']\nrahull = 403\n", "did you mean 'rahul'?"),
])
def test_unknown_names_in_the_file_are_errors_naming_the_nearest(initialized: Cli, tmp_path: Path, text: str,
                                                                 nearest: str) -> None:
    result = initialized("policy", "apply", str(write(tmp_path, text)))
    assert result.exit_code == 1
    assert nearest in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_target_tables_are_validated_like_target_add(initialized: Cli, tmp_path: Path) -> None:
    assert initialized("policy", "diff", str(write(tmp_path, "[targets]\n"))).exit_code == 0
    for text, message in (
        ("[targets.theirapp]\nmode = 'basic'\nheader = 'x'\n", "unknown field 'header'"),
        ("[targets.theirapp]\nmode = 'basic'\nalg = 'HS256'\n", "alg does not go with mode 'basic'"),
        ("[targets.theirapp]\nmode = 'token'\n", "needs its algorithm"),
        ("[targets.theirapp]\nmode = 'token'\nalg = 'HS256'\nsend = 'carrier:x'\n", "--send"),
        ("[targets.theirapp]\nmode = 'login'\ntoken_url = 'http://elsewhere/token'\n", "token path"),
        ("[targets.'bad name']\nmode = 'basic'\n", "invalid target name"),
        ("[targets.theirapp]\nmode = 'token'\nalg = 'HS256'\n[targets.theirapp.claims]\nsub = 'x'\n", "cannot be overridden"),
    ):
        result = initialized("policy", "diff", str(write(tmp_path, text)))
        assert result.exit_code == 1 and message in result.stderr and result.stderr.count("\n") == 1, (text, result.stderr)


def test_expectation_users_are_matched_as_authctl_matches_names(tmp_path: Path) -> None:
    policy = policyfile.load(write(tmp_path, "[users.Rahul]\n[expect.'GET /students']\nRAHUL = 403\nAnonymous = 401\n"))
    assert policy.expect == {"GET /students": {"Rahul": "403", "anonymous": "401"}}


def test_policy_test_passes_on_the_file_alone(cli: Cli, tmp_path: Path) -> None:
    """No database at all: the file is tested on a throwaway one."""
    result = cli("policy", "test", str(write(tmp_path, ARTICLE)))
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "3 expectation(s) met" in result.stderr
    assert not cli.db.exists()


def test_policy_test_prints_the_trace_of_an_unmet_expectation(cli: Cli, tmp_path: Path) -> None:
    path = write(tmp_path, ARTICLE.replace("rahul = 403", "rahul = 'allow'"))
    result = cli("policy", "test", str(path))
    assert result.exit_code == 6
    assert "DELETE /student/1 as rahul: expected allow, got 403" in result.stdout
    assert "2 authorization: roles student; granted nothing; missing students:delete" in result.stdout
    # Live, the bundled app answers from the throwaway database: it has no student records, so
    # an allowed DELETE /student/{id} would honestly be a 404 (a mismatch). GET /students lists.
    listing = ARTICLE.split("[expect.")[0] + '[expect."GET /students"]\nrahul = 403\nsuman = "allow"\nanonymous = 401\n'
    junit = cli("policy", "test", str(write(tmp_path, listing, "listing.toml")), "--format", "junit", "--live")
    assert junit.exit_code == 6
    assert 'tests="3" failures="1"' in junit.stdout, junit.stdout
    assert "GET /students as rahul: expected 403, got allow (live status 200)" in junit.stdout


def test_policy_test_strict_fails_on_a_route_without_an_expectation(cli: Cli, tmp_path: Path) -> None:
    result = cli("--json", "policy", "test", str(write(tmp_path, ARTICLE)), "--strict")
    assert result.exit_code == 6
    missing = [f["route"] for f in json.loads(result.stdout)["failures"] if f["user"] is None]
    assert "GET /admin/dashboard" in missing and "DELETE /student/{id}" not in missing


def test_policy_test_with_no_expectations_is_an_error_not_a_pass(cli: Cli, tmp_path: Path) -> None:
    result = cli("policy", "test", str(write(tmp_path, "[users.rahul]\n")))
    assert result.exit_code == 1 and "nothing would be tested" in result.stderr


def test_policy_test_route_that_matches_nothing_is_an_error(cli: Cli, tmp_path: Path) -> None:
    result = cli("policy", "test", str(write(tmp_path, "[users.rahul]\n[expect.'DELETE /students/{id}']\nrahul = 403\n")))
    assert result.exit_code == 1 and "did you mean 'DELETE /student/{id}'?" in result.stderr


# --------------------------------------------------------------------------- round trip

NAMES = st.text(alphabet="abcdefgh", min_size=1, max_size=6)
PERMISSIONS = st.builds(lambda r, a: f"{r}:{a}", st.sampled_from(["students", "courses", "admin"]),
                        st.sampled_from(["read", "write", "delete", "*"]))
USERNAMES = st.text(alphabet="abcXYZé_-.0", min_size=1, max_size=8).filter(lambda n: n.casefold() != "anonymous")
SETTINGS_VALUES = st.fixed_dictionaries({}, optional={
    "issuer": st.text(alphabet="ab \"\\ü", max_size=10), "access_ttl": st.sampled_from(["90s", "15m", "2h"]),
    "lockout_threshold": st.integers(0, 50), "hide_forbidden_detail": st.booleans(),
    "sub_claim": st.sampled_from(["uid", "username"]),
})


@st.composite
def policies(draw: st.DrawFn) -> dict:
    roles = draw(st.lists(NAMES.map(lambda n: "r" + n), unique=True, max_size=4))
    table = {}
    for index, role in enumerate(roles):  # a role inherits only earlier ones: never a cycle
        table[role] = {"description": draw(st.text(alphabet="ab é\"\n", max_size=8)),
                       "inherits": draw(st.lists(st.sampled_from(roles[:index]), unique=True)) if index else [],
                       "permissions": draw(st.lists(PERMISSIONS, unique=True, max_size=3))}
    users = {}
    for name in draw(st.lists(USERNAMES, unique_by=str.casefold, max_size=3)):
        users[name] = {"status": draw(st.sampled_from(["active", "disabled"])),
                       "roles": draw(st.lists(st.sampled_from(roles), unique=True)) if roles else []}
    expect = {}
    for route in draw(st.lists(st.sampled_from(["GET /students", "DELETE /student/{id}", "POST /a b"]), unique=True)):
        cells = draw(st.dictionaries(st.sampled_from([*users, "anonymous"]), st.sampled_from(["allow", 401, 403]),
                                     max_size=3))
        if cells:
            expect[route] = cells
    return {"settings": draw(SETTINGS_VALUES), "roles": table, "users": users, "expect": expect}


@settings(deadline=None, max_examples=25, suppress_health_check=[HealthCheck.too_slow])
@given(policies())
def test_export_apply_on_an_empty_database_export_is_byte_identical(data: dict) -> None:
    with tempfile.TemporaryDirectory() as directory:
        with Store.create(Path(directory) / "first.db") as first:
            policyfile.apply(first, policyfile.parse(data), generate=True)
            exported = policyfile.dump(policyfile.export(first))
        assert policyfile.dump(policyfile.parse(tomllib.loads(exported))) == exported
        with Store.create(Path(directory) / "second.db") as second:
            applied = policyfile.apply(second, policyfile.parse(tomllib.loads(exported)), generate=True)
            assert policyfile.dump(policyfile.export(second)) == exported
            assert policyfile.plan(second, policyfile.parse(tomllib.loads(exported)), prune=True).changes == []
            assert sorted(applied.generated) == sorted(u for u, spec in data["users"].items())


def test_apply_refuses_a_database_changed_between_plan_and_write(store: Store, tmp_path: Path, monkeypatch) -> None:
    policy = policyfile.load(write(tmp_path, ARTICLE.replace("[users.suman]", "[users.priya]\n[users.suman]")))
    real_plan = policyfile.plan
    calls = []

    def racing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # another process adds priya between the dry plan and the transaction
            store.conn.execute("INSERT INTO users (uid, username, username_key, disabled, token_version) "
                               "VALUES ('x', 'priya', 'priya', 0, 1)")
        return real_plan(*args, **kwargs)

    monkeypatch.setattr(policyfile, "plan", racing)
    with pytest.raises(Conflict, match="changed while the policy was being applied"):
        policyfile.apply(store, policy)
    assert store.find_user("priya") is None  # rolled back with everything else


def test_a_bad_file_is_one_line(initialized: Cli, tmp_path: Path) -> None:
    for text in ("[roles\n", "version = 2\n", "[users.anonymous]\n", "[roles.Admin]\n"):
        result = initialized("policy", "apply", str(write(tmp_path, text)))
        assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1, (text, result.stderr)
    with pytest.raises(InvalidInput):
        policyfile.load(tmp_path / "missing.toml")


CI_APP = '''
from fastapi import Depends, FastAPI
from authctl.fastapi import Auth

auth = Auth()
app = FastAPI()

@app.delete("/student/{id}", dependencies=[Depends(auth.require("students:delete"))])
def delete_student(id: int):
    return {"deleted": id}

@app.get("/debug/students")  # new, and nothing protects it
def dump_students():
    return []
'''


def test_policy_test_strict_fails_on_a_new_unprotected_route_of_your_app(cli: Cli, tmp_path: Path) -> None:
    """The CI job of docs/ci.md: the file covers DELETE /student/{id}; a new open route fails the run."""
    (tmp_path / "ci_fixture_app.py").write_text(CI_APP)
    path = write(tmp_path, ARTICLE)
    unsent = cli("policy", "test", str(path), "--app", "ci_fixture_app:app", "--live")
    assert unsent.exit_code == 6 and "expected 403, not sent" in unsent.stdout  # never a pass without a request
    assert cli("policy", "test", str(path), "--app", "ci_fixture_app:app", "--live", "--unsafe").exit_code == 0
    strict = cli("policy", "test", str(path), "--app", "ci_fixture_app:app", "--strict", "--format", "junit")
    assert strict.exit_code == 6
    assert 'name="GET /debug/students: has an expectation"' in strict.stdout
    assert "GET /debug/students (nothing (open?)) has no expectation" in strict.stdout  # a /debug route looks like a mistake


# --------------------------------------------------------------------------- [targets]: configuration in the file, secrets never


def _private(path: Path, content: str) -> str:
    import os

    path.write_text(content)
    os.chmod(path, 0o600)
    return str(path)


@pytest.fixture
def with_targets(seeded: Cli, tmp_path: Path) -> Cli:
    """The seeded database with a token-template target and a login target (each with its secret stored)."""
    from tests.nativeapps.common import SECRET

    key = _private(tmp_path / "shop.key", SECRET)
    assert seeded("target", "add", "shop", "--key-file", key, "--scope-claim", "scope", "--user-scopes", "rahul=items:read",
                  "--user-sub", "rahul=u-1", "--claim", "tenant=acme", "--iss", "shop-app", "--ttl", "10m").exit_code == 0
    assert seeded("target", "add", "accounts", "--login", "/login/access-token", "--passwords-stdin",
                  input="rahul:pw-of-rahul-0\nsuman:pw-of-suman-0\n").exit_code == 0
    return seeded


def test_policy_export_writes_targets_without_their_secrets(with_targets: Cli) -> None:
    from tests.nativeapps.common import SECRET

    text = with_targets("policy", "export").stdout
    assert SECRET not in text and "pw-of-rahul-0" not in text
    data = tomllib.loads(text)["targets"]
    assert data["shop"] == {"mode": "token", "send": "bearer", "alg": "HS256", "scope_claim": "scope", "iss": "shop-app",
                            "ttl": "10m", "weak_secret": False, "sub": {"rahul": "u-1"}, "scopes": {"rahul": ["items:read"]},
                            "claims": {"tenant": "acme"}}
    assert data["accounts"] == {"mode": "login", "send": "bearer", "token_url": "/login/access-token"}
    assert policyfile.dump(policyfile.parse(tomllib.loads(text))) == text  # what it writes, it reads back the same


def test_policy_apply_refuses_a_new_target_without_its_secret_and_writes_nothing(with_targets: Cli, tmp_path: Path) -> None:
    exported = write(tmp_path, with_targets("policy", "export").stdout, "exported.toml")
    fresh = tmp_path / "fresh.db"
    assert with_targets("--db", str(fresh), "init").exit_code == 0
    refused = with_targets("--db", str(fresh), "policy", "apply", str(exported))
    assert refused.exit_code == 1 and refused.stderr.count("\n") == 1
    assert "authctl target add accounts" in refused.stderr and "--target-secret accounts=FILE" in refused.stderr
    assert with_targets("--db", str(fresh), "role", "list", "--json").stdout.strip() == "[]"  # all or nothing
    diff = with_targets("--db", str(fresh), "policy", "diff", str(exported))
    assert diff.exit_code == 7 and "+ target shop (token, sends bearer)" in diff.stdout and "authctl target add shop" in diff.stderr


def test_policy_round_trip_with_target_secrets_from_private_files(with_targets: Cli, tmp_path: Path) -> None:
    import os

    import jwt

    from tests.nativeapps.common import SECRET

    text = with_targets("policy", "export").stdout
    exported = write(tmp_path, text, "exported.toml")
    key = _private(tmp_path / "k", SECRET)
    passwords = _private(tmp_path / "p", "rahul:pw-of-rahul-0\n")
    fresh = tmp_path / "fresh.db"
    assert with_targets("--db", str(fresh), "init").exit_code == 0
    os.chmod(passwords, 0o644)
    loose = with_targets("--db", str(fresh), "policy", "apply", str(exported), "--generate", "--target-secret", f"shop={key}",
                         "--target-secret", f"accounts={passwords}")
    assert loose.exit_code == 1 and "readable by others" in loose.stderr
    os.chmod(passwords, 0o600)
    applied = with_targets("--db", str(fresh), "policy", "apply", str(exported), "--generate", "--target-secret", f"shop={key}",
                           "--target-secret", f"accounts={passwords}", "--json")
    assert applied.exit_code == 0, applied.stderr
    assert SECRET not in applied.stdout and "pw-of-rahul-0" not in applied.stdout
    assert with_targets("--db", str(fresh), "policy", "export").stdout == text
    with Store.open(fresh) as store:
        from authctl import targets

        assert targets.get(store, "accounts").secret["passwords"] == {"rahul": "pw-of-rahul-0"}
        token = targets.credential(store, targets.get(store, "shop"), "rahul").token  # the key given signs it
        assert jwt.decode(token, SECRET, algorithms=["HS256"], options={"verify_aud": False})["sub"] == "u-1"
    wrong = with_targets("--db", str(fresh), "policy", "apply", str(exported), "--target-secret", f"nobody={key}")
    assert wrong.exit_code == 1 and "which the file does not have" in wrong.stderr


def test_policy_apply_changes_targets_keeping_their_secret_and_prunes_them(with_targets: Cli, tmp_path: Path) -> None:
    data = tomllib.loads(with_targets("policy", "export").stdout)
    data["targets"]["shop"]["scopes"]["suman"] = ["items:read", "items:write"]
    data["targets"]["shop"]["ttl"] = "5m"
    data["targets"]["shop"]["send"] = "scheme:Token"
    del data["targets"]["accounts"]
    changed = write(tmp_path, policyfile.dump(policyfile.parse(data)), "changed.toml")
    diff = with_targets("policy", "diff", str(changed))
    assert diff.exit_code == 7 and "~ target shop ttl = 5m (was 10m)" in diff.stdout
    assert "target accounts" in diff.stderr and "kept" in diff.stderr  # not removed without --prune
    assert with_targets("policy", "apply", str(changed)).exit_code == 0
    shown = json.loads(with_targets("target", "show", "shop", "--json").stdout)
    assert shown["ttl"] == 300 and shown["send"] == "scheme" and shown["scopes"]["suman"] == ["items:read", "items:write"]
    with Store.open(with_targets.db) as store:
        from authctl import targets

        credential = targets.credential(store, targets.get(store, "shop"), "suman")  # the stored key still signs
        assert credential.headers["Authorization"].startswith("Token ") and credential.scopes == ("items:read", "items:write")
    assert with_targets("target", "show", "accounts").exit_code == 0
    assert with_targets("policy", "apply", str(changed), "--prune", "--yes").exit_code == 0
    assert with_targets("target", "show", "accounts").exit_code == 1
    assert with_targets("policy", "diff", str(changed), "--prune").exit_code == 0


def test_policy_apply_refuses_an_algorithm_or_mode_the_stored_secret_does_not_fit(with_targets: Cli, tmp_path: Path) -> None:
    data = tomllib.loads(with_targets("policy", "export").stdout)
    data["targets"]["shop"]["alg"] = "RS256"
    rsa = write(tmp_path, policyfile.dump(policyfile.parse(data)), "rsa.toml")
    refused = with_targets("policy", "apply", str(rsa))
    assert refused.exit_code == 1 and "--target-secret shop=FILE" in refused.stderr and refused.stderr.count("\n") == 1
    data["targets"]["shop"] = {"mode": "basic", "send": "bearer"}
    basic = write(tmp_path, policyfile.dump(policyfile.parse(data)), "basic.toml")
    refused = with_targets("policy", "apply", str(basic))
    assert refused.exit_code == 1 and "another kind of secret" in refused.stderr
    assert json.loads(with_targets("target", "show", "shop", "--json").stdout)["alg"] == "HS256"  # nothing changed


def test_policy_weak_target_secret_needs_the_files_opt_in(with_targets: Cli, tmp_path: Path) -> None:
    data = tomllib.loads(with_targets("policy", "export").stdout)
    del data["targets"]["accounts"]
    data["targets"]["tutorial"] = {**data["targets"]["shop"], "claims": {}, "sub": {}, "scopes": {}}
    weak = _private(tmp_path / "weak", "SECRET")
    path = write(tmp_path, policyfile.dump(policyfile.parse(data)), "weak.toml")
    refused = with_targets("policy", "apply", str(path), "--target-secret", f"tutorial={weak}")
    assert refused.exit_code == 1 and "--unsafe-weak-secret" in refused.stderr
    data["targets"]["tutorial"]["weak_secret"] = True
    path = write(tmp_path, policyfile.dump(policyfile.parse(data)), "weak.toml")
    assert with_targets("policy", "apply", str(path), "--target-secret", f"tutorial={weak}").exit_code == 0
    assert json.loads(with_targets("target", "show", "tutorial", "--json").stdout)["weak_secret"] is True


def test_policy_test_ignores_targets_it_has_no_secret_for(with_targets: Cli, tmp_path: Path) -> None:
    text = with_targets("policy", "export").stdout + '\n[expect."DELETE /student/{id}"]\nrahul = 403\n'
    result = with_targets("policy", "test", str(write(tmp_path, text, "t.toml")))
    assert result.exit_code == 0, result.stdout + result.stderr


def test_policy_test_live_says_why_each_cell_was_not_sent(cli: Cli, tmp_path: Path) -> None:
    """On the bundled app (unsafe is on) POST /token is unsent because it needs a body, not because it mutates."""
    text = ARTICLE.split("[expect.")[0] + '[expect."POST /token"]\nanonymous = "allow"\n'
    result = cli("policy", "test", str(write(tmp_path, text)), "--live")
    assert result.exit_code == 6, result.stdout + result.stderr
    assert "POST /token as anonymous: expected allow, not sent (the route needs a request body" in result.stdout
    assert "mutating" not in result.stdout
