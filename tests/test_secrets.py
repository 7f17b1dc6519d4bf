"""Secrets stay secret: passwords, private keys, HMAC secrets and whole tokens.

Every channel a secret could leak through is captured and searched for distinctive
sentinels (tests/forge.py: whole, and every 16-character window of their random
part): the audit log (``authctl log``, ``log --json`` and the raw table), the
database files, stdout/stderr of the commands (with and without ``--json``), the
in-process app's logging, and the output of one real ``authctl serve``. Each test
also asserts that the channel captured what it should (the exit code, the log row,
the error line, the request line), so an empty capture cannot pass for a clean one.
"""

from __future__ import annotations

import base64
import json
import logging
import sqlite3
import uuid
from pathlib import Path

import pytest

from authctl.app import create_app
from authctl.store import Store
from tests import forge
from tests.apphelpers import PASSWORD, Client, make_demo_db
from tests.conftest import Cli, Run
from tests.forge import assert_hidden, sentinel
from tests.serving import running_server, seed_demo_db


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rich tables wrap and truncate at 80 columns; a truncated log cell could hide a leak."""
    monkeypatch.setenv("COLUMNS", "4000")


# --------------------------------------------------------------------------- searching


def outputs(*runs: Run) -> dict[str, str]:
    """stdout and stderr of each run, by position."""
    channels = {}
    for index, run in enumerate(runs):
        channels[f"stdout#{index}"] = run.stdout
        channels[f"stderr#{index}"] = run.stderr
    return channels


def audit_channels(cli: Cli) -> dict[str, str]:
    """The audit log three ways: the table, the JSON, and the rows as SQLite stores them."""
    table = cli("log", "--limit", "100000")
    as_json = cli("--json", "log", "--limit", "100000")
    assert table.exit_code == 0 and as_json.exit_code == 0, table.stderr + as_json.stderr
    with sqlite3.connect(cli.db) as conn:
        rows = conn.execute("SELECT at, actor, action, target, details FROM audit_log").fetchall()
    conn.close()
    return {"log": table.stdout, "log --json": as_json.stdout, "audit table": "\n".join(map(repr, rows))}


def assert_logged(channels: dict[str, str], action: str, target: str) -> None:
    """The audit log did record the operation: the search above searched something real."""
    entries = json.loads(channels["log --json"])
    assert any(e["action"] == action and e["target"] == target for e in entries), (action, target)
    assert action in channels["log"] and target in channels["log"]
    assert action in channels["audit table"] and target in channels["audit table"]


def database_bytes(db: Path) -> str:
    """The database file and its journals, as text: plaintext secrets would show up here."""
    data = b"".join(Path(f"{db}{suffix}").read_bytes() for suffix in ("", "-wal", "-journal")
                    if Path(f"{db}{suffix}").exists())
    assert data, "no database file"
    return data.decode("latin-1")


def user_exists(cli: Cli, name: str) -> bool:
    return cli("user", "show", name).exit_code == 0


# --------------------------------------------------------------------------- passwords


def test_new_and_changed_passwords_stay_out_of_output_log_and_database(seeded: Cli):
    """user add / passwd read the password from stdin and store only its hash."""
    first, second, third = sentinel(), sentinel(), sentinel()
    added = seeded("user", "add", "alice", "--role", "student", "--password-stdin", input=first + "\n")
    added_json = seeded("--json", "user", "add", "bob", "--password-stdin", input=second + "\n")
    changed = seeded("user", "passwd", "alice", "--password-stdin", input=third + "\n")
    assert (added.exit_code, added_json.exit_code, changed.exit_code) == (0, 0, 0), added.stderr + changed.stderr
    assert json.loads(added_json.stdout)["username"] == "bob"
    assert "password of alice changed" in changed.stderr
    audit = audit_channels(seeded)
    assert_logged(audit, "user.add", "alice")
    assert_logged(audit, "user.add", "bob")
    assert_logged(audit, "user.passwd", "alice")
    assert_hidden([first, second, third], **outputs(added, added_json, changed), **audit,
                  database=database_bytes(seeded.db))


#: The rule as the error names it, and how a sentinel (48 characters) breaks it.
REJECTED = {
    "longer than 1024 characters": lambda s: s + "x" * 1100,
    "contains control characters": lambda s: s[:20] + "\x07" + s[20:],
    "shorter than 200 characters": lambda s: s,  # with password_min_length raised to 200 first
}


@pytest.mark.parametrize("rule", list(REJECTED))
def test_a_password_rejected_by_policy_is_not_echoed(seeded: Cli, rule: str):
    """The rejection names the rule that was broken, never the password; nothing is written or logged.

    The minimum is raised only for its own case: the policy stops at the first broken
    rule, so a raised minimum would hide every rule checked after it.
    """
    if rule.startswith("shorter"):
        assert seeded("config", "set", "password_min_length", "200").exit_code == 0
    password = REJECTED[rule](sentinel())
    runs = [
        seeded("user", "add", "carol", "--password-stdin", input=password + "\n"),
        seeded("--json", "user", "add", "carol", "--password-stdin", input=password + "\n"),
        seeded("user", "passwd", "rahul", "--password-stdin", input=password + "\n"),
        seeded("--json", "user", "passwd", "rahul", "--password-stdin", input=password + "\n"),
    ]
    for run in runs:
        assert run.exit_code == 1
        assert run.stderr.startswith(f"error: password rejected: {rule}"), run.stderr
        assert run.stderr.count("\n") == 1 and run.stdout == ""
    assert not user_exists(seeded, "carol")
    audit = audit_channels(seeded)
    assert "user.passwd" not in audit["audit table"]
    assert_logged(audit, "user.add", "rahul")  # the fixture's rows: the log was read
    if rule.startswith("shorter"):
        assert_logged(audit, "config.set", "password_min_length")
    assert_hidden([password], **outputs(*runs), **audit, database=database_bytes(seeded.db))


def test_user_import_bad_rows_are_reported_without_their_passwords(seeded: Cli, tmp_path: Path):
    """Each bad row is reported by line and reason; none of the passwords in the file is shown."""
    secrets = [sentinel() for _ in range(6)]
    csv_file = tmp_path / "users.csv"
    csv_file.write_text(
        "username,password,roles\n"
        f"dave,{secrets[0]},student\n"             # fine on its own; the file still fails
        f"erin,{secrets[1]},no-such-role\n"        # unknown role
        f"frank,{secrets[2]},student,extra\n"      # more fields than the header
        f"dave,{secrets[3]},student\n"             # duplicate user
    )
    jsonl_file = tmp_path / "users.jsonl"
    jsonl_file.write_text(
        json.dumps({"username": "gina", "password": secrets[4][:20] + "\u0007" + secrets[4][20:]}) + "\n"
        + '{"username": "hank", "password": "' + secrets[5] + '"\n'  # not valid JSON
        + json.dumps({"username": "ivan", "password": secrets[0], "password_hash": "$2b$12$" + "a" * 53}) + "\n"
    )
    runs = [
        seeded("user", "import", str(csv_file)),
        seeded("--json", "user", "import", str(csv_file)),
        seeded("user", "import", str(jsonl_file)),
        seeded("--json", "user", "import", "--dry-run", str(jsonl_file)),
    ]
    for run in runs:
        assert run.exit_code == 1 and "nothing was imported" in run.stderr
    assert all(f"line {n}" in runs[0].stderr for n in (3, 4, 5)), runs[0].stderr
    assert "line 2:" not in runs[0].stderr
    assert all(f"line {n}" in runs[2].stderr for n in (1, 2, 3)), runs[2].stderr
    assert not user_exists(seeded, "dave")
    audit = audit_channels(seeded)
    assert "user.import" not in audit["audit table"]
    assert_hidden(secrets, **outputs(*runs), **audit, database=database_bytes(seeded.db))


def test_imported_passwords_stay_out_of_output_log_and_database(seeded: Cli, tmp_path: Path):
    """A good import hashes every password; the log records a count, not the rows."""
    secrets = [sentinel() for _ in range(3)]
    source = tmp_path / "users.jsonl"
    source.write_text("".join(
        json.dumps({"username": name, "password": secret, "roles": ["student"]}) + "\n"
        for name, secret in zip(("jack", "kate", "liam"), secrets)))
    dry = seeded("--json", "user", "import", "--dry-run", str(source))
    done = seeded("user", "import", "--workers", "1", str(source))
    assert dry.exit_code == 0 and json.loads(dry.stdout)["valid"] == 3
    assert done.exit_code == 0 and "imported 3 users" in done.stderr
    audit = audit_channels(seeded)
    assert_logged(audit, "user.import", "3 users")
    assert_hidden(secrets, **outputs(dry, done), **audit, database=database_bytes(seeded.db))


def test_demo_passwords_given_on_stdin_are_not_echoed_or_logged(cli: Cli):
    """init --demo --password-stdin shows generated passwords only; a given one is never printed."""
    password = sentinel()
    human = cli("init", "--demo", "--password-stdin", input=password + "\n")
    assert human.exit_code == 0, human.stderr
    assert "suman" in human.stdout and "rahul" in human.stdout
    other = Cli(cli.db.with_name("other.db"))
    as_json = other("--json", "init", "--demo", "--password-stdin", input=password + "\n")
    assert as_json.exit_code == 0, as_json.stderr
    assert [u["password"] for u in json.loads(as_json.stdout)["demo"]["users"]] == [None, None, None]
    audit = audit_channels(cli)
    assert "demo.seed" in audit["audit table"]
    other_audit = {f"other {name}": text for name, text in audit_channels(other).items()}
    assert_hidden([password], **outputs(human, as_json), **audit, **other_audit,
                  database=database_bytes(cli.db), other_database=database_bytes(other.db))


# --------------------------------------------------------------------------- tokens


def _tokens(cli: Cli) -> dict[str, str]:
    """A valid access and refresh token of rahul, and every bad kind a caller might paste."""
    def issued(*args: str) -> str:
        run = cli("token", "issue", "--as", "rahul", *args)
        assert run.exit_code == 0, run.stderr
        return run.stdout.strip()

    def issue(expired: bool = False) -> str:
        return issued("--expired") if expired else issued()

    bad = {kind: forge.bad_token(kind, issue, name="suman", roles=["admin"]) for kind in forge.BAD_KINDS}
    return {"access": issued(), "refresh": issued("--refresh"), **bad}


#: Why ``token verify`` refuses each token that is not a valid access token (its error line says so).
REFUSED_BECAUSE = {
    "refresh": "a refresh token cannot be used as an access token",
    "garbage": "a JWT has 3 dot-separated segments",
    "expired": "the token expired",
    "tampered signature": "the signature does not match",
    "forged claims": "the signature does not match",
    "alg none": "unsigned token (alg 'none') is never accepted",
}


def _refused(run: Run, name: str) -> bool:
    """Exit 3 and one error line giving the reason: the command did read this token."""
    return (run.exit_code == 3 and run.stdout == "" and run.stderr.count("\n") == 1
            and run.stderr.startswith(f"error: {REFUSED_BECAUSE[name]}"))


def test_token_commands_never_echo_a_whole_token(seeded: Cli, tmp_path: Path):
    """inspect / verify / revoke / check show claims and verdicts, never the token they were given.

    Each run is checked for what it must show (its exit code, the verdict, the jti),
    so a run that printed nothing cannot pass the leak search.
    """
    tokens = _tokens(seeded)
    assert set(tokens) == {"access", *REFUSED_BECAUSE}
    runs: list[Run] = []
    for name, token in tokens.items():
        valid, is_access = name in ("access", "refresh"), name == "access"
        token_file = tmp_path / f"{name.replace(' ', '-')}.jwt"
        token_file.write_text(token + "\n")
        inspected, inspected_json, verified, verified_file, verified_stdin, checked, checked_live = run = [
            seeded("token", "inspect", token),
            seeded("--json", "token", "inspect", token),
            seeded("token", "verify", "--type", "refresh" if name == "refresh" else "access", token),
            seeded("--json", "token", "verify", f"@{token_file}"),
            seeded("token", "verify", "-", input=f"Bearer {token}\n"),
            seeded("check", "GET", "/profile", "--token", token),
            seeded("--json", "check", "GET", "/profile", "--token", token, "--live"),
        ]
        runs += run
        assert inspected.exit_code == inspected_json.exit_code == (0 if valid else 3), name
        assert "Verdict:" in inspected.stdout, name
        verdict = json.loads(inspected_json.stdout)
        assert verdict["valid"] is valid, (name, verdict["failing"])
        # verify is quiet when the token is good (exit 0, no output), one error line when it is not
        if valid:
            assert (verified.exit_code, verified.stdout, verified.stderr) == (0, "", ""), name
        else:
            assert _refused(verified, name), (name, verified)
        # @file and stdin expect an access token
        if is_access:
            assert verified_file.exit_code == 0, verified_file.stderr
            assert json.loads(verified_file.stdout)["jti"] == verdict["claims"]["jti"]
            # quiet, but exit 0 means the token was read (an empty stdin is "error: the token is empty")
            assert (verified_stdin.exit_code, verified_stdin.stdout, verified_stdin.stderr) == (0, "", "")
        else:
            assert _refused(verified_file, name) and _refused(verified_stdin, name), (verified_file, verified_stdin)
        assert checked.exit_code == checked_live.exit_code == (0 if is_access else 3), name
        assert "GET /profile" in checked.stdout and ("ALLOWED" if is_access else "401 UNAUTHENTICATED") in checked.stdout
        live = json.loads(checked_live.stdout)["live"]
        assert live["status"] == (200 if is_access else 401) and live["agrees"] is True, (name, live)
        if is_access:
            assert live["body"]["username"] == "rahul"
        else:
            assert live["headers"]["www-authenticate"] == 'Bearer error="invalid_token"', (name, live)
    revoked = [seeded("token", "revoke", tokens["access"], "--reason", "test"),
               seeded("--json", "token", "revoke", tokens["refresh"])]
    assert [r.exit_code for r in revoked] == [0, 0]
    jti = json.loads(revoked[1].stdout)["jti"]
    audit = audit_channels(seeded)
    assert_logged(audit, "token.revoke", jti)
    assert_hidden(list(tokens.values()), **outputs(*runs, *revoked), **audit, database=database_bytes(seeded.db))


# --------------------------------------------------------------------------- keys


def _pem(key) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _private_jwk_d(key) -> str:
    """The private scalar as a JWK carries it ("d"): what a JWKS leak would show."""
    value = key.private_numbers().private_value
    return base64.urlsafe_b64encode(value.to_bytes(32, "big")).rstrip(b"=").decode()


def test_private_keys_stay_out_of_key_commands_errors_and_log(seeded: Cli, tmp_path: Path):
    """key import / list / jwks / rotate and their errors never print private material."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    pem = _pem(key)
    pem_file = tmp_path / "signing.pem"
    pem_file.write_text(pem)
    body = pem.splitlines()[1:-1]
    corrupt = tmp_path / "corrupt.pem"
    corrupt.write_text("\n".join([pem.splitlines()[0], body[0][:-4] + "!!!!", *body[1:], pem.splitlines()[-1]]))
    encrypted = tmp_path / "encrypted.pem"
    encrypted.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.BestAvailableEncryption(b"passphrase-1234")))
    refused = [
        seeded("key", "import", "--yes", str(pem_file), "--alg", "RS256"),
        seeded("--json", "key", "import", "--yes", str(pem_file), "--alg", "HS256"),
        seeded("key", "import", "--yes", str(pem_file), "--alg", "ES384"),
        seeded("key", "import", "--yes", str(corrupt)),
        seeded("--json", "key", "import", "--yes", str(encrypted)),
        seeded("key", "import", "--yes", "-", "--alg", "ES256", input=pem.replace("PRIVATE KEY", "PUBLIC KEY")),
    ]
    for run in refused:
        assert run.exit_code == 1 and run.stderr.startswith("error: ") and run.stderr.count("\n") == 1, run.stderr
        assert run.stdout == ""
    imported = seeded("--json", "key", "import", "--yes", str(pem_file), "--kid", "legacy-app")
    assert imported.exit_code == 0, imported.stderr
    assert json.loads(imported.stdout)["kid"] == "legacy-app"
    rotated = [seeded("key", "rotate"), seeded("--json", "key", "rotate")]
    assert [r.exit_code for r in rotated] == [0, 0]
    shown = [seeded("key", "list"), seeded("--json", "key", "list"), seeded("key", "jwks")]
    assert [r.exit_code for r in shown] == [0, 0, 0], [r.stderr for r in shown]
    assert "legacy-app" in shown[0].stdout and "legacy-app" in shown[2].stdout
    listed = json.loads(shown[1].stdout)
    assert len(listed) == 4 and "legacy-app" in {entry["kid"] for entry in listed}, listed
    token = seeded("token", "issue", "--as", "rahul").stdout.strip()
    inspected = seeded("token", "inspect", token, "--key", str(pem_file))
    assert inspected.exit_code == 1 and "public key only" in inspected.stderr  # a verifier needs no private key
    with Store.open(seeded.db) as store:
        stored_pems = [record.private_material.decode() for record in store.keys()]
    assert len(stored_pems) == 4
    audit = audit_channels(seeded)
    assert_logged(audit, "key.add", "legacy-app")
    assert_hidden([pem, _private_jwk_d(key), *stored_pems], **outputs(*refused, imported, *rotated, *shown, inspected),
                  **audit)


def test_hmac_secrets_stay_out_of_key_commands_errors_and_log(seeded: Cli):
    """A shared secret is imported from stdin, never published, and never shown, even when refused."""
    secret = sentinel("Secret") + "-" + uuid.uuid4().hex  # > 64 bytes: enough for HS256
    short = sentinel("Short")[:30]
    runs = [
        seeded("key", "import", "--yes", "-", "--hmac", "--alg", "HS256", "--kid", "shared", input=secret + "\n"),
        seeded("--json", "key", "list"),
        seeded("key", "list"),
        seeded("key", "jwks"),
    ]
    assert runs[0].exit_code == 0, runs[0].stderr
    assert "left out (shared secrets are never published): shared" in runs[3].stderr
    refused = [
        seeded("key", "import", "--yes", "-", "--hmac", "--alg", "HS256", input=short + "\n"),
        seeded("--json", "key", "import", "--yes", "-", "--alg", "ES256", input=secret + "\n"),
    ]
    assert [r.exit_code for r in refused] == [1, 1]
    assert "at least 32 random bytes" in refused[0].stderr and "not a private key" in refused[1].stderr
    token = seeded("token", "issue", "--as", "rahul").stdout.strip()
    assert token.count(".") == 2
    checked = [
        seeded("token", "inspect", token, "--secret-stdin", input=secret + "\n"),
        seeded("--json", "token", "inspect", token, "--secret-stdin", input=short + "-wrong-wrong\n"),
    ]
    assert checked[0].exit_code == 0 and checked[1].exit_code == 3
    audit = audit_channels(seeded)
    assert_logged(audit, "key.add", "shared")
    assert_hidden([secret, short], **outputs(*runs, *refused, *checked), **audit)


def test_a_rotated_hmac_key_is_never_printed(seeded: Cli):
    """key rotate --alg HS256 makes a random secret; no encoding of it reaches the output or the log.

    The listing, the JWKS and the log must show the two new keys (by kid), so the
    search ran over output that describes them.
    """
    runs = [seeded("key", "rotate", "--alg", "HS256"), seeded("--json", "key", "rotate")]
    assert [r.exit_code for r in runs] == [0, 0]
    second = json.loads(runs[1].stdout)
    assert second["alg"] == "HS256"
    with Store.open(seeded.db) as store:
        hmac_keys = [(r.kid, r.private_material) for r in store.keys() if r.alg == "HS256"]
    assert len(hmac_keys) == 2
    kids = [kid for kid, _ in hmac_keys]
    assert second["kid"] in kids and second["previous"][0] in kids and second["previous"][0] in runs[0].stderr
    shown = [seeded("key", "list"), seeded("key", "jwks")]
    assert [r.exit_code for r in shown] == [0, 0], [r.stderr for r in shown]
    assert all(kid in shown[0].stdout for kid in kids), shown[0].stdout
    assert all(kid in shown[1].stderr for kid in kids) and "shared secrets are never published" in shown[1].stderr
    assert json.loads(shown[1].stdout)["keys"], "the JWKS lost the ES256 key"
    audit = audit_channels(seeded)
    for kid in kids:
        assert_logged(audit, "key.add", kid)
    encodings = [form for _, raw in hmac_keys for form in (
        raw.hex(), base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).rstrip(b"=").decode())]
    assert_hidden(encodings, **outputs(*runs, *shown), **audit)


# --------------------------------------------------------------------------- server logs


def _session(client: Client, wrong: str, *, token_in_query: bool) -> dict[str, str]:
    """Log in, fail a login, use, refresh, reuse and log out: every request that carries a secret.

    ``token_in_query``: also send a token in the URL, which the server must not log (the
    client's own request log does show it, so in-process runs leave it out).
    """
    assert client.login("rahul", wrong).status_code == 401
    assert client.login("nosuchuser", wrong).status_code == 401
    pair = client.login("rahul").json()
    access, refresh = pair["access_token"], pair["refresh_token"]
    assert client.get("/whoami", token=access).status_code == 200
    if token_in_query:
        assert client.get(f"/profile?access_token={access}").status_code == 401
    rotated = client.post("/token/refresh", data={"refresh_token": refresh})
    assert rotated.status_code == 200, rotated.text
    reused = client.post("/token/refresh", json={"refresh_token": refresh})
    assert reused.status_code == 401
    second = client.login("rahul").json()
    out = client.post("/logout", token=second["access_token"], data={"refresh_token": second["refresh_token"]})
    assert out.status_code == 200 and out.json()["refresh_family_revoked"] is True
    assert client.get("/whoami", token=second["access_token"]).status_code == 401
    return {"access": access, "refresh": refresh, "rotated access": rotated.json()["access_token"],
            "rotated refresh": rotated.json()["refresh_token"], "second access": second["access_token"],
            "second refresh": second["refresh_token"]}


def test_in_process_app_logging_holds_no_secrets(cli: Cli, caplog: pytest.LogCaptureFixture):
    """Every logger, at DEBUG, through a whole session: request lines yes, passwords and tokens no.

    Starlette and FastAPI log nothing per request; the request lines come from the
    httpx client. An app-side log of a request or an error would show up here too.
    """
    db = make_demo_db(cli)
    wrong = sentinel()
    caplog.set_level(logging.DEBUG)
    app = create_app(db)
    client = Client(app)
    try:
        tokens = _session(client, wrong, token_in_query=False)
    finally:
        client.close()
        app.state.auth.close()
    messages = "\n".join(record.getMessage() for record in caplog.records)
    assert "POST http://test/token" in messages and "POST http://test/token/refresh" in messages
    assert "POST http://test/logout" in messages
    audit = audit_channels(cli)
    assert "token.revoke_family" in audit["audit table"] and "logout" in audit["audit table"]
    assert_hidden([wrong, PASSWORD, *tokens.values()], logging=messages, caplog=caplog.text, **audit,
                  database=database_bytes(db))


@pytest.mark.slow
def test_real_server_output_holds_no_secrets(tmp_path: Path):
    """One real `authctl serve`: its access log and messages show requests, never credentials."""
    db = tmp_path / "served.db"
    seed_demo_db(db, tmp_path)
    wrong = sentinel()
    with running_server(db, tmp_path) as server:
        client = Client.at(server.url)
        try:
            tokens = _session(client, wrong, token_in_query=True)
        finally:
            client.close()
    out, err = server.stdout, server.stderr
    assert server.process.returncode == 0, err
    for line in ('"POST /token HTTP/1.1" 401', '"POST /token HTTP/1.1" 200', '"POST /token/refresh HTTP/1.1" 200',
                 '"POST /logout HTTP/1.1" 200', '"GET /profile?… HTTP/1.1" 401'):
        assert line in out + err, line
    assert_hidden([wrong, PASSWORD, *tokens.values()], stdout=out, stderr=err)

