"""Targets (authctl/targets.py, `authctl target ...`) and the commands that speak them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from authctl import targets
from authctl.errors import InvalidInput
from authctl.store import Store
from tests.nativeapps.common import SECRET, USERS, make_token

SHOP = "tests.nativeapps.oauth2_scopes:app"
ACCOUNTS = "tests.nativeapps.superuser:app"


def private_file(path: Path, content: str, mode: int = 0o600) -> str:
    path.write_text(content)
    os.chmod(path, mode)
    return str(path)


@pytest.fixture
def shop(seeded, tmp_path):
    """The seeded database (suman, rahul) with a token-template target for the shop fixture app."""
    key = private_file(tmp_path / "shop.key", SECRET)
    result = seeded("target", "add", "shop", "--key-file", key, "--scope-claim", "scope",
                    "--user-scopes", "rahul=items:read", "--user-scopes", "suman=items:read,items:write")
    assert result.exit_code == 0, result.stderr
    return seeded


@pytest.fixture
def accounts(seeded, tmp_path):
    """A target that logs in through the superuser app's own OAuth2 password endpoint."""
    lines = "".join(f"{name}:{user['password']}\n" for name, user in USERS.items())
    passwords = private_file(tmp_path / "passwords.txt", lines)
    result = seeded("target", "add", "accounts", "--login", "/login/access-token", "--passwords-file", passwords)
    assert result.exit_code == 0, result.stderr
    return seeded


def test_target_add_list_show_remove(shop):
    listed = json.loads(shop("target", "list", "--json").stdout)
    assert [t["name"] for t in listed] == ["shop"] and listed[0]["mode"] == "token"
    shown = json.loads(shop("target", "show", "shop", "--json").stdout)
    assert shown["alg"] == "HS256" and shown["kid"] is None and shown["scopes"]["suman"] == ["items:read", "items:write"]
    assert "shop" in shop("target", "list").stdout
    assert shop("target", "add", "shop", "--key-stdin", input=SECRET).exit_code == 1  # exists
    assert shop("target", "remove", "shop", "--yes").exit_code == 0
    missing = shop("target", "show", "shop")
    assert missing.exit_code == 1 and "no target named 'shop'" in missing.stderr


def test_target_secrets_never_appear_in_output_json_or_the_audit_log(accounts, shop, db_path):
    outputs = [accounts(*args) for args in (("target", "list"), ("target", "list", "--json"), ("target", "show", "shop"),
                                            ("target", "show", "shop", "--json"), ("target", "show", "accounts", "--json"),
                                            ("log",), ("log", "--json"))]
    text = "".join(r.stdout + r.stderr for r in outputs)
    assert json.loads(outputs[4].stdout)["passwords_for"] == ["rahul", "suman"]  # who has a password is shown ...
    for secret in [SECRET, *(u["password"] for u in USERS.values())]:
        assert secret not in text  # ... never the secrets
    assert "target.add" in outputs[-1].stdout


def test_target_weak_secret_needs_the_unsafe_opt_in(initialized, tmp_path):
    weak = private_file(tmp_path / "weak.key", "SECRET")
    refused = initialized("target", "add", "tutorial", "--key-file", weak)
    assert refused.exit_code == 1 and "--unsafe-weak-secret" in refused.stderr and refused.stderr.count("\n") == 1
    assert initialized("target", "list", "--json").stdout.strip() == "[]"  # nothing half-written
    accepted = initialized("target", "add", "tutorial", "--key-file", weak, "--unsafe-weak-secret")
    assert accepted.exit_code == 0 and "weak secret" in accepted.stderr
    assert json.loads(initialized("target", "show", "tutorial", "--json").stdout)["weak_secret"] is True


def test_weak_secret_never_becomes_authctls_own_signing_key(initialized, tmp_path, db_path):
    weak = private_file(tmp_path / "weak.key", "SECRET")
    assert initialized("target", "add", "tutorial", "--key-file", weak, "--unsafe-weak-secret").exit_code == 0
    with Store.open(db_path) as store:
        assert all(bytes(k.private_material) != b"SECRET" for k in store.keys())
    imported = initialized("key", "import", weak, "--hmac", "--alg", "HS256")  # a raw secret is one only with --hmac
    assert imported.exit_code == 1 and "at least 32" in imported.stderr


def test_target_credentials_file_readable_by_others_is_refused(initialized, tmp_path):
    loose = private_file(tmp_path / "passwords.txt", "rahul:pw-rahul\n", mode=0o644)
    result = initialized("target", "add", "t", "--login", "/token", "--passwords-file", loose)
    assert result.exit_code == 1 and "readable by others" in result.stderr
    key = private_file(tmp_path / "k", SECRET, mode=0o640)
    assert "readable by others" in initialized("target", "add", "t", "--key-file", key).stderr


def test_a_secret_file_past_the_limit_is_refused_never_cut_short(initialized, tmp_path):
    line = "user{:07d}:a-password-of-some-length\n"
    lines = [line.format(n) for n in range(targets.PRIVATE_FILE_LIMIT // len(line.format(0)) + 10)]
    big = private_file(tmp_path / "passwords.txt", "".join(lines))
    result = initialized("target", "add", "t", "--login", "/token", "--passwords-file", big)
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert big in result.stderr and "larger than 1 MiB" in result.stderr
    assert initialized("target", "list", "--json").stdout.strip() == "[]"  # no target with some of the users
    exact = private_file(tmp_path / "exact.key", "k" * targets.PRIVATE_FILE_LIMIT)
    assert len(targets.read_private_file(exact, "key file")) == targets.PRIVATE_FILE_LIMIT


def test_target_add_bad_or_missing_secrets_are_one_line_errors_and_write_nothing(initialized, tmp_path):
    latin1 = tmp_path / "passwords.txt"
    latin1.write_bytes("rahul:caf\xe9\n".encode("latin-1"))
    os.chmod(latin1, 0o600)
    for args, message in [
        (("--login", "/token", "--passwords-file", str(latin1)), "the passwords are not UTF-8 text"),
        (("--basic", "--passwords-stdin"), "nothing on stdin"),
        (("--login", "/token"), "a login target needs each user's password or key: --passwords-file FILE or --passwords-stdin"),
        ((), "a token target needs its signing key: --key-file FILE or --key-stdin"),
        (("--key-stdin", "--send", "nowhere"), "send"),
    ]:
        result = initialized("target", "add", "t", *args, input=SECRET if "--key-stdin" in args else "")
        assert result.exit_code == 1 and result.stderr.count("\n") == 1 and message in result.stderr, (args, result.stderr)
    assert initialized("target", "list", "--json").stdout.strip() == "[]"
    with Store.open(initialized.db) as store:
        with pytest.raises(InvalidInput, match="unknown target mode"):
            targets.add(store, "t", mode="sideways", passwords={"rahul": "pw"})
        added = targets.add(store, "t", mode="static", passwords=b"rahul:key-1\nsuman:key-2\n")
        assert added.secret["passwords"] == {"rahul": "key-1", "suman": "key-2"}


def test_target_password_is_never_a_command_line_argument(initialized):
    result = initialized("target", "add", "t", "--login", "/token", "--password", "hunter2")
    assert result.exit_code == 2  # no such option: passwords come from a private file or stdin
    piped = initialized("target", "add", "t", "--login", "/token", "--passwords-stdin", input="rahul:pw-rahul\n")
    assert piped.exit_code == 0, piped.stderr


@pytest.mark.parametrize("send,where", [
    ("bearer", ("headers", "Authorization", "Bearer ")), ("scheme:Token", ("headers", "Authorization", "Token ")),
    ("header:X-API-Key", ("headers", "X-API-Key", "")), ("query:api_key", ("query", "api_key", "")),
    ("cookie:session", ("cookies", "session", "")),
])
def test_target_sends_the_token_where_the_app_reads_it(store, send, where):
    target = targets.add(store, "t", mode="token", send=send, key=SECRET.encode(), sub={"rahul": "uuid-1"},
                         scope_claim="scopes", iss="https://issuer", aud="shop", claims={"tenant": "a"})
    credential = targets.credential(store, target, "rahul")
    part, name, prefix = where
    value = getattr(credential, part)[name]
    assert value.startswith(prefix)
    import jwt

    token = value[len(prefix):]
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="shop", issuer="https://issuer")
    assert claims["sub"] == "uuid-1" and claims["tenant"] == "a"
    assert claims["scopes"] == ["students:read"]  # the user's authctl permissions
    assert "kid" not in jwt.get_unverified_header(token)


def test_target_key_parsing_refuses_public_material_and_mismatched_algorithms():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    public = private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert targets.parse_target_key(pem, None, allow_weak=False)[0] == "ES256"
    with pytest.raises(InvalidInput, match="public key"):
        targets.parse_target_key(public, None, allow_weak=False)
    with pytest.raises(InvalidInput, match="shared secret"):
        targets.parse_target_key(pem, "HS256", allow_weak=False)
    with pytest.raises(InvalidInput, match="PEM private key"):
        targets.parse_target_key(SECRET.encode(), "RS256", allow_weak=False)


def test_token_inspect_and_verify_check_a_kidless_token_against_the_target_key(shop):
    token = make_token("rahul", ["items:read"])
    assert shop("token", "verify", token, "--target", "shop").exit_code == 0
    data = json.loads(shop("token", "inspect", token, "--target", "shop", "--json").stdout)
    assert data["verified"] is True and data["valid"] is True
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    refused = shop("token", "verify", forged, "--target", "shop")
    assert refused.exit_code == 3 and "signature" in refused.stderr and forged not in refused.stderr
    assert shop("token", "inspect", forged, "--target", "shop").exit_code == 3


# --------------------------------------------------------------------------- commands speaking a target


def check(cli, *args):
    result = cli("check", *args, "--json")
    return result.exit_code, json.loads(result.stdout) if result.stdout.strip() else None, result.stderr


def test_check_anonymous_on_a_native_route_is_the_401_the_server_answers(shop):
    code, data, _ = check(shop, "GET", "/users/me", "--anonymous", "--app", SHOP, "--live")
    assert code == 3 and data["verdict"]["status"] == 401 and data["verdict"]["result"] == "unauthenticated"
    assert "does not check" not in data["verdict"]["reason"]
    assert data["live"]["status"] == 401 and data["live"]["agrees"] is True


def test_check_missing_scope_is_403_live_too(shop):
    code, data, _ = check(shop, "POST", "/items", "--as", "rahul", "--target", "shop", "--app", SHOP, "--live", "--unsafe")
    assert code == 4 and data["native"]["missing_scopes"] == ["items:write"]
    assert data["live"]["status"] == 403 and data["live"]["agrees"] is True
    code, data, _ = check(shop, "POST", "/items", "--as", "suman", "--target", "shop", "--app", SHOP, "--live", "--unsafe")
    assert code == 0 and data["live"]["status"] == 200


def test_check_guarded_route_is_undecided_offline_and_live_answers(accounts):
    code, data, stderr = check(accounts, "GET", "/admin/users", "--as", "rahul", "--target", "accounts", "--app", ACCOUNTS)
    assert code == 1 and data["verdict"]["result"] == "undecided" and "undecided offline" in stderr
    assert data["verdict"]["reason"] == "authenticated; the guard `get_current_active_superuser` decides in code"
    code, data, _ = check(accounts, "GET", "/admin/users", "--as", "rahul", "--target", "accounts", "--app", ACCOUNTS, "--live")
    assert code == 4 and data["live"]["status"] == 403 and data["live"]["agrees"] is None  # never counted as agreement
    code, data, _ = check(accounts, "GET", "/admin/users", "--as", "suman", "--target", "accounts", "--app", ACCOUNTS, "--live")
    assert code == 0 and data["live"]["status"] == 200


def test_check_live_login_with_a_wrong_password_is_a_one_line_error(seeded, tmp_path):
    wrong = private_file(tmp_path / "pw", "rahul:not-the-password\n")
    assert seeded("target", "add", "bad", "--login", "/login/access-token", "--passwords-file", wrong).exit_code == 0
    result = seeded("check", "GET", "/me", "--as", "rahul", "--target", "bad", "--app", ACCOUNTS, "--live")
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "login as rahul at /login/access-token answered 401" in result.stderr
    assert "not-the-password" not in result.stderr + result.stdout


def test_matrix_with_a_target_offline_and_live(shop):
    offline = shop("matrix", "--app", SHOP, "--target", "shop", "--users", "rahul,suman", "--json")
    assert offline.exit_code == 0, offline.stderr
    cells = {(c["method"], c["route"], c["user"]): c for c in json.loads(offline.stdout)["cells"]}
    assert cells[("POST", "/items", "rahul")]["decision"] == 403
    assert cells[("GET", "/items", "rahul")]["decision"] == 200
    assert cells[("GET", "/users/me", "anonymous")]["decision"] == 401
    assert "DELETE /items/{item_id}" in offline.stderr  # the planted mistake
    live = shop("matrix", "--app", SHOP, "--target", "shop", "--users", "rahul,suman", "--live", "--json")
    observed = json.loads(live.stdout)["cells"]
    sent = [c for c in observed if c["live"] is not None and c["route"] != "/token"]
    assert sent and all(c["agrees"] for c in sent), [c for c in sent if not c["agrees"]]


def test_matrix_guarded_cells_are_undecided_offline_never_a_pass(accounts, tmp_path):
    expect = tmp_path / "expect.toml"
    expect.write_text('["GET /admin/users"]\nsuman = "allow"\n')
    result = accounts("matrix", "--app", ACCOUNTS, "--target", "accounts", "--users", "rahul,suman",
                      "--expect", str(expect), "--format", "junit")
    assert result.exit_code == 6  # an undecided cell cannot meet an expectation
    assert 'skipped="' in result.stdout and 'skipped="0"' not in result.stdout
    live = accounts("matrix", "--app", ACCOUNTS, "--target", "accounts", "--users", "rahul,suman", "--live",
                    "--expect", str(expect), "--json")
    assert live.exit_code == 0, live.stderr
    cell = next(c for c in json.loads(live.stdout)["cells"] if c["route"] == "/admin/users" and c["user"] == "suman")
    assert cell["live"] == 200 and cell["meets_expectation"] is True and cell["agrees"] is None


def test_probe_speaks_the_target_basic_and_api_key(seeded, tmp_path):
    from authctl import explain, probe
    from tests.nativeapps import apikey, basic

    with Store.open(seeded.db) as store:
        lines = "".join(f"{name}:{user['password']}\n" for name, user in USERS.items())
        basic_target = targets.add(store, "reports", mode="basic", passwords=targets.parse_passwords(lines))
        keys = "".join(f"{name}:{user['api_key']}\n" for name, user in USERS.items())
        key_target = targets.add(store, "data", mode="static", send="header:X-API-Key",
                                 passwords=targets.parse_passwords(keys))
        rahul_basic = explain.subject_for_target(store, basic_target, "rahul")
        rahul_key = explain.subject_for_target(store, key_target, "rahul")
    reports = probe.send_all([probe.Request("GET", "/reports", None, rahul_basic.credential)], app=basic.app)[0]
    assert reports.status == 200 and reports.body == {"owner": "rahul"}
    data = probe.send_all([probe.Request("GET", "/data", None, rahul_key.credential)], app=apikey.app)[0]
    assert data.status == 200 and data.body == {"for": "rahul"}


def test_readme_own_app_walkthrough_runs_as_written(cli, tmp_path):
    """Every `$ authctl ...` line of the README's "Your own app, without changing it" runs, with the exit code it shows."""
    import re
    import shlex

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Your own app, without changing it", 1)[1].split("\n## ", 1)[0]
    block = section.split("```console", 1)[1].split("```", 1)[0].replace("\\\n", " ")
    commands = [line[2:] for line in block.splitlines() if line.startswith("$ ")]
    assert len(commands) >= 6
    ran = 0
    for command in commands:
        if command.startswith("export AUTHCTL_DB="):
            continue  # the fixture's own database stands for it
        if command.startswith("(umask 077; printf"):
            secret = re.search(r"printf '([^']+)'", command).group(1)
            private_file(tmp_path / "shop.key", secret)
            continue
        text, _, comment = command.partition("#")
        expected = int(re.search(r"exit (\d+)", comment).group(1)) if "exit" in comment else 0
        for part in text.split("&&"):
            argv = shlex.split(part)
            assert argv[0] == "authctl"
            argv = [str(tmp_path / "shop.key") if a == "shop.key" else a for a in argv[1:]]
            result = cli(*argv)
            assert result.exit_code == (expected if part is text.split("&&")[-1] else 0), (argv, result.stderr)
            ran += 1
    assert ran >= 8


def test_a_target_whose_key_does_not_match_the_app_is_a_mismatch_that_says_so(seeded, tmp_path):
    other = private_file(tmp_path / "other.key", "another-secret-that-is-not-the-apps-0123456789")
    assert seeded("target", "add", "wrong", "--key-file", other).exit_code == 0
    code, data, _ = check(seeded, "GET", "/users/me", "--as", "rahul", "--target", "wrong", "--app", SHOP, "--live")
    assert code == 6 and data["verdict"]["status"] == 200 and data["live"]["status"] == 401
    assert any("do not match the app" in problem for problem in data["live"]["lints"])


def test_probe_command_speaks_the_target(seeded, tmp_path):
    from tests.nativeapps import basic
    from tests.test_check import serving

    lines = "".join(f"{name}:{user['password']}\n" for name, user in USERS.items())
    assert seeded("target", "add", "reports", "--basic", "--passwords-stdin", input=lines).exit_code == 0
    with serving(basic.app) as url:
        # the identity endpoint must answer who the caller is (a JSON object): /reports does, /ping ("pong") does not
        result = seeded("probe", "GET", "/reports", "--as", "rahul", "--target", "reports", "--url", url,
                        "--whoami-path", "/reports", "--json")
        assert result.exit_code == 0, result.stderr
        data = json.loads(result.stdout)
        assert data["whoami"]["body"] == {"owner": "rahul"} and data["whoami"]["problem"] is None
        assert data["request"]["status"] == 200 and data["request"]["body"] == {"owner": "rahul"}
        anonymous = seeded("probe", "GET", "/reports", "--target", "reports", "--url", url, "--whoami-path", "/reports")
        assert anonymous.exit_code == 3
        pong = seeded("probe", "--as", "rahul", "--target", "reports", "--url", url, "--whoami-path", "/ping")
        assert pong.exit_code == 1 and "without a JSON object" in pong.stderr
    assert USERS["rahul"]["password"] not in result.stdout + result.stderr


# --------------------------------------------------------------------------- native verdicts on the one outcome vocabulary


def test_an_undecided_outcome_never_agrees_and_can_never_be_expected(accounts, tmp_path):
    from authctl.policy import Outcome

    assert not Outcome.UNDECIDED.agrees_with(Outcome.UNDECIDED) and Outcome.UNDECIDED.exit_code == 1
    expect = tmp_path / "expect.toml"
    expect.write_text('["GET /admin/users"]\nsuman = "undecided"\n')
    result = accounts("matrix", "--app", ACCOUNTS, "--target", "accounts", "--expect", str(expect))
    assert result.exit_code == 1 and "expected allow, 401, 403" in result.stderr and result.stderr.count("\n") == 1


def test_check_live_on_an_app_with_its_own_security_is_never_a_snapshot(shop):
    """Native apps keep their own data: a mutating request needs --unsafe, and the output says where it went."""
    refused = shop("check", "DELETE", "/items/1", "--as", "rahul", "--target", "shop", "--app", SHOP, "--live")
    assert refused.exit_code == 1 and "add --unsafe" in refused.stderr and "own data" in refused.stderr
    code, data, _ = check(shop, "GET", "/users/me", "--as", "rahul", "--target", "shop", "--app", SHOP, "--live")
    assert code == 0 and data["live"]["snapshot"] is False and "NOT a snapshot" in data["live"]["source"]
    offline = shop("matrix", "--app", SHOP, "--target", "shop", "--users", "rahul", "--live", "--json")
    deletes = [c for c in json.loads(offline.stdout)["cells"] if c["method"] == "DELETE"]
    assert deletes and all(c["outcome"] == "not_sent" and "--unsafe" in c["not_sent"] for c in deletes)


def test_matrix_strict_and_a_target_together(accounts, tmp_path):
    """--strict (a route nobody decided on fails) holds for an app spoken to through a target."""
    expect = tmp_path / "expect.toml"
    expect.write_text('["GET /admin/users"]\nrahul = 403\nsuman = "allow"\nanonymous = 401\n')
    args = ("matrix", "--app", ACCOUNTS, "--target", "accounts", "--users", "rahul,suman", "--live", "--expect", str(expect))
    met = accounts(*args, "--json")
    assert met.exit_code == 0, met.stderr
    cells = {(c["route"], c["user"]): c for c in json.loads(met.stdout)["cells"]}
    assert cells[("/admin/users", "rahul")]["live"] == 403 and cells[("/admin/users", "rahul")]["meets_expectation"] is True
    strict = accounts(*args, "--strict", "--json")
    assert strict.exit_code == 6 and "GET /me" in json.loads(strict.stdout)["without_expectation"]
