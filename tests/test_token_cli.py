"""``authctl token ...`` through the real CLI on a real SQLite file: output, exit codes, the whole story."""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
import sys

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from .conftest import STRONG, Cli


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def issue(cli: Cli, *args: str) -> str:
    result = cli("token", "issue", *args)
    assert result.exit_code == 0, result.stderr
    return result.stdout.strip()


def one_line(text: str) -> bool:
    return len(text.strip().splitlines()) == 1


def tamper(token: str) -> str:
    head, body, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["roles"] = ["admin"]
    return f"{head}.{b64(json.dumps(claims).encode())}.{sig}"


def test_the_whole_story(seeded: Cli) -> None:
    """Issue → inspect → tamper → inspect → rotate → old still valid → retire → invalid → revoke → logout."""
    cli = seeded
    token = issue(cli, "--as", "rahul")
    assert token.count(".") == 2 and "\n" not in token

    inspected = cli("token", "inspect", token)
    assert inspected.exit_code == 0, inspected.stdout
    assert "Verdict: VALID" in inspected.stdout and "UNVERIFIED" not in inspected.stdout
    assert "expires in 15 min" in inspected.stdout and "UTC" in inspected.stdout

    forged = tamper(token)
    inspected = cli("token", "inspect", forged)
    assert inspected.exit_code == 3
    assert "UNVERIFIED" in inspected.stdout and "INVALID" in inspected.stdout and "signature" in inspected.stdout
    assert '"admin"' in inspected.stdout  # still decoded, under the banner
    rejected = cli("token", "verify", forged)
    assert rejected.exit_code == 3 and rejected.stdout == "" and one_line(rejected.stderr)
    assert "signature does not match" in rejected.stderr

    old_kid = json.loads(cli("key", "list", "--json").stdout)[0]["kid"]
    assert cli("key", "rotate").exit_code == 0
    assert cli("token", "verify", token).exit_code == 0  # the old key keeps verifying
    new_token = issue(cli, "--as", "rahul")
    assert json.loads(cli("token", "verify", new_token, "--json").stdout)["kid"] != old_kid

    assert cli("key", "retire", "--yes", old_kid).exit_code == 0
    retired = cli("token", "verify", token)
    assert retired.exit_code == 3 and f"key {old_kid} was retired" in retired.stderr
    inspected = cli("token", "inspect", token, "--json")
    assert inspected.exit_code == 3 and json.loads(inspected.stdout)["failing"] == ["kid"]

    revoked = cli("token", "revoke", new_token)
    assert revoked.exit_code == 0 and "revoked" in revoked.stderr
    after = cli("token", "verify", new_token)
    assert after.exit_code == 3 and "was revoked" in after.stderr

    third = issue(cli, "--as", "rahul")
    assert cli("token", "verify", third).exit_code == 0
    assert cli("user", "logout", "rahul").exit_code == 0
    logged_out = cli("token", "verify", third)
    assert logged_out.exit_code == 3 and "no longer current" in logged_out.stderr
    assert cli("token", "verify", issue(cli, "--as", "rahul")).exit_code == 0


def test_issue_json_schema(seeded: Cli) -> None:
    result = cli_json = seeded("token", "issue", "--as", "suman", "--ttl", "1h", "--claim", "tenant=t1", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(cli_json.stdout)
    assert set(data) == {"token", "token_type", "header", "claims", "expires_at", "expires_at_utc", "expires_in"}
    assert data["token_type"] == "access" and data["expires_in"] == 3600
    assert data["header"]["typ"] == "at+jwt" and data["claims"]["tenant"] == "t1"
    assert data["claims"]["roles"] == ["admin"] and data["claims"]["name"] == "suman"
    refresh = json.loads(seeded("token", "issue", "--as", "suman", "--refresh", "--json").stdout)
    assert refresh["token_type"] == "refresh" and refresh["header"]["typ"] == "refresh+jwt"


def test_issue_errors_are_exit_1_and_one_line(seeded: Cli) -> None:
    for args, message in (
        (("--as", "ghost"), "no user named 'ghost'"),
        (("--as", "rahul", "--ttl", "60d"), "above max_ttl"),
        (("--as", "rahul", "--claim", "sub=admin"), "cannot be overridden"),
        (("--as", "rahul", "--claim", "nonsense"), "key=value"),
        (("--as", "rahul", "--expired", "--not-yet-valid"), "choose one"),
    ):
        result = seeded("token", "issue", *args)
        assert result.exit_code == 1, args
        assert message in result.stderr and one_line(result.stderr) and result.stdout == ""
    assert seeded("user", "disable", "rahul").exit_code == 0
    disabled = seeded("token", "issue", "--as", "rahul")
    assert disabled.exit_code == 1 and "rahul is disabled" in disabled.stderr
    assert seeded("token", "issue").exit_code == 2  # --as is required


def test_refresh_and_access_cannot_stand_in_for_each_other(seeded: Cli) -> None:
    refresh = issue(seeded, "--as", "rahul", "--refresh")
    access = issue(seeded, "--as", "rahul")
    wrong = seeded("token", "verify", refresh)
    assert wrong.exit_code == 3 and "refresh token cannot be used as an access token" in wrong.stderr
    assert seeded("token", "verify", refresh, "--type", "refresh").exit_code == 0
    assert seeded("token", "verify", access, "--type", "refresh").exit_code == 3
    assert seeded("token", "inspect", refresh).exit_code == 0  # either type, unless --type says
    assert seeded("token", "inspect", refresh, "--type", "access").exit_code == 3


def test_presets_for_negative_tests(seeded: Cli) -> None:
    expired = issue(seeded, "--as", "rahul", "--expired")
    result = seeded("token", "verify", expired)
    assert result.exit_code == 3 and "expired" in result.stderr
    inspected = seeded("token", "inspect", expired)
    assert inspected.exit_code == 3 and "expired" in inspected.stdout and " ago" in inspected.stdout
    early = issue(seeded, "--as", "rahul", "--not-yet-valid")
    result = seeded("token", "verify", early)
    assert result.exit_code == 3 and "not valid until" in result.stderr


def test_token_input_forms(seeded: Cli, tmp_path) -> None:
    token = issue(seeded, "--as", "rahul")
    assert seeded("token", "verify", "-", input=f"  Bearer {token}\n\n").exit_code == 0
    assert seeded("token", "verify", input=token + "\n").exit_code == 0
    assert seeded("token", "inspect", f"Bearer {token}").exit_code == 0
    path = tmp_path / "token.txt"
    path.write_text(f"\n{token}\n")
    assert seeded("token", "inspect", f"@{path}").exit_code == 0
    assert seeded("token", "verify", f"@{path}", "--json").exit_code == 0
    missing = seeded("token", "verify", "@/no/such/file")
    assert missing.exit_code == 1 and "cannot read" in missing.stderr


def test_verify_json_prints_the_identity(seeded: Cli) -> None:
    token = issue(seeded, "--as", "suman")
    result = seeded("token", "verify", token, "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["valid"] is True and data["username"] == "suman" and data["token_type"] == "access"
    assert {"uid", "kid", "jti", "expires_at", "roles", "claims"} <= set(data)
    assert seeded("token", "verify", token).stdout == ""


def test_inspect_json_schema(seeded: Cli) -> None:
    token = issue(seeded, "--as", "rahul")
    data = json.loads(seeded("token", "inspect", token, "--json").stdout)
    assert set(data) == {"verified", "valid", "keys", "header", "claims", "times", "checks", "failing", "warnings"}
    assert data["verified"] and data["valid"] and data["failing"] == [] and data["keys"] == "database"
    assert set(data["times"]) == {"iat", "nbf", "exp"} and data["times"]["exp"]["relative"] == "in 15 min"
    assert all(set(check) == {"name", "ok", "detail"} for check in data["checks"])


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("", "empty"),
        ("garbage", "3 dot-separated segments"),
        ("a.b", "this has 2"),
        ("a.b.c.d", "this has 4"),
        ("x" * 9000, "larger than 8 KB"),
        (b64(json.dumps({"alg": "none", "typ": "at+jwt", "kid": "k"}).encode()) + "." + b64(b"{}") + ".", "unsigned token"),
        (b64(json.dumps({"alg": "ES256", "typ": "at+jwt", "kid": "../../etc/passwd"}).encode()) + "." + b64(b"{}") + "." + b64(b"s" * 64), "unknown key id"),
    ],
)
def test_bad_tokens_exit_3_with_one_line_and_no_traceback(seeded: Cli, token: str, message: str) -> None:
    result = seeded("token", "verify", "-", input=token)
    assert result.exit_code == 3, result.stderr
    assert message in result.stderr and one_line(result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    inspected = seeded("token", "inspect", "-", input=token)
    assert inspected.exit_code == 3 and "Traceback" not in inspected.stderr + inspected.stdout
    assert "INVALID" in inspected.stdout


def test_non_utf8_input_is_a_clear_answer(seeded: Cli) -> None:
    from typer.testing import CliRunner

    from authctl.cli import app

    result = CliRunner().invoke(app, ["--db", str(seeded.db), "token", "verify", "-"], input=b"\xff\xfe.a.b")
    assert result.exit_code == 3 and "cannot appear in a JWT" in result.stderr
    result = CliRunner().invoke(app, ["--db", str(seeded.db), "token", "inspect", "-"], input=b"\xff\xfe.a.b")
    assert result.exit_code == 3 and "format" in result.stdout


def test_alg_none_in_the_cli(seeded: Cli) -> None:
    real = issue(seeded, "--as", "rahul")
    head, body, _ = real.split(".")
    header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    header["alg"] = "none"
    forged = f"{b64(json.dumps(header).encode())}.{body}."
    result = seeded("token", "verify", forged)
    assert result.exit_code == 3 and "unsigned token" in result.stderr
    inspected = seeded("token", "inspect", forged)
    assert inspected.exit_code == 3 and "alg none" in inspected.stdout and "UNVERIFIED" in inspected.stdout


def test_errors_never_show_the_token(seeded: Cli) -> None:
    token = issue(seeded, "--as", "rahul")
    for forged in (tamper(token), token + "x", token.replace(".", ".."), issue(seeded, "--as", "rahul", "--expired")):
        result = seeded("token", "verify", forged)
        assert result.exit_code == 3
        for part in forged.split("."):
            if len(part) > 16:
                assert part not in result.stderr


def test_revoke_by_jti_and_expired_tokens(seeded: Cli) -> None:
    issued = json.loads(seeded("token", "issue", "--as", "rahul", "--json").stdout)
    result = seeded("token", "revoke", "--jti", issued["claims"]["jti"], "--reason", "leaked", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["jti"] == issued["claims"]["jti"] and data["revoked"] and data["newly_revoked"]
    assert seeded("token", "verify", issued["token"]).exit_code == 3
    again = seeded("token", "revoke", issued["token"])
    assert again.exit_code == 0 and "already revoked" in again.stderr
    expired = issue(seeded, "--as", "rahul", "--expired")
    result = seeded("token", "revoke", expired)
    assert result.exit_code == 0 and "nothing to revoke" in result.stderr
    log = json.loads(seeded("log", "--action", "token", "--json").stdout)
    assert [entry["details"]["reason"] for entry in log] == ["leaked"]
    assert seeded("token", "revoke", "--jti", "x", issued["token"]).exit_code == 1
    forged = seeded("token", "revoke", tamper(issued["token"]))
    assert forged.exit_code == 3 and "not one of our tokens" in forged.stderr


def test_password_change_ends_earlier_tokens(seeded: Cli) -> None:
    token = issue(seeded, "--as", "rahul")
    assert seeded("user", "passwd", "rahul", "--password-stdin", input=STRONG + "-2\n").exit_code == 0
    result = seeded("token", "verify", token)
    assert result.exit_code == 3 and "changed password" in result.stderr


def test_disabled_user_token_is_exit_3(seeded: Cli) -> None:
    token = issue(seeded, "--as", "rahul")
    seeded("user", "disable", "rahul")
    result = seeded("token", "verify", token)
    assert result.exit_code == 3 and "rahul is disabled" in result.stderr
    inspected = json.loads(seeded("token", "inspect", token, "--json").stdout)
    assert inspected["failing"] == ["enabled"]


def test_role_drift_shows_in_inspect(seeded: Cli) -> None:
    token = issue(seeded, "--as", "rahul")
    seeded("user", "assign", "rahul", "admin")
    result = seeded("token", "inspect", token)
    assert result.exit_code == 0
    assert "roles" in result.stdout and "informational" in result.stdout
    assert seeded("token", "verify", token).exit_code == 0


# --------------------------------------------------------------------------- foreign tokens, no database


@pytest.fixture
def app_key(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "app-public.pem"
    path.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return key, path


def test_inspect_foreign_token_with_a_public_key_and_no_database(cli: Cli, app_key) -> None:
    import time

    import jwt

    key, path = app_key
    token = jwt.encode({"sub": "7", "exp": int(time.time()) + 600, "iat": int(time.time())}, key, algorithm="ES256")
    result = cli("token", "inspect", token, "--key", str(path))
    assert result.exit_code == 0, result.stdout
    assert "Verdict: VALID" in result.stdout
    assert not cli.db.exists()
    other = ec.generate_private_key(ec.SECP256R1())
    stranger = jwt.encode({"sub": "7", "exp": int(time.time()) + 600}, other, algorithm="ES256")
    result = cli("token", "inspect", stranger, "--key", str(path))
    assert result.exit_code == 3 and "UNVERIFIED" in result.stdout


def test_inspect_foreign_token_with_a_secret_on_stdin(cli: Cli) -> None:
    import time

    import jwt

    secret, other = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    token = jwt.encode({"sub": "7", "exp": int(time.time()) + 600}, secret, algorithm="HS256")
    assert cli("token", "inspect", token, "--secret-stdin", input=secret + "\n").exit_code == 0
    assert cli("token", "inspect", token, "--secret-stdin", input=other + "\n").exit_code == 3
    weak = cli("token", "inspect", token, "--secret-stdin", input="short\n")
    assert weak.exit_code == 1 and "at least 32" in weak.stderr
    both = cli("token", "inspect", "-", "--secret-stdin", input=secret)
    assert both.exit_code == 1 and "as an argument or @FILE" in both.stderr


def test_inspect_with_a_jwks_file(seeded: Cli, tmp_path) -> None:
    token = issue(seeded, "--as", "rahul")
    path = tmp_path / "jwks.json"
    path.write_text(seeded("key", "jwks").stdout)
    result = seeded("token", "inspect", token, "--jwks", str(path), "--json")
    assert result.exit_code == 0, result.stdout
    data = json.loads(result.stdout)
    assert data["verified"] and data["keys"] == "--jwks"
    assert {c["name"]: c["ok"] for c in data["checks"]}["user"] is None  # no database consulted


def test_inspect_without_a_database_decodes_unverified(cli: Cli, seeded_token: str) -> None:
    result = cli("token", "inspect", seeded_token)
    assert result.exit_code == 3
    assert "UNVERIFIED" in result.stdout and "no database" in result.stderr
    assert '"rahul"' in result.stdout or "rahul" in result.stdout


@pytest.fixture
def seeded_token(seeded: Cli, tmp_path) -> str:
    token = issue(seeded, "--as", "rahul")
    seeded.db.rename(tmp_path / "elsewhere.db")
    return token


def test_an_imported_key_mints_tokens_an_existing_app_accepts(initialized: Cli, tmp_path) -> None:
    """The app already verifies HS256 tokens with its secret; authctl now signs with the same one."""
    import jwt

    secret = "an-existing-apps-long-random-secret-value-0123456789"
    assert initialized("key", "import", "--yes", "-", "--hmac", "--kid", "app", input=secret + "\n").exit_code == 0
    initialized("role", "add", "student")
    initialized("user", "add", "rahul", "--role", "student", "--password-stdin", input=STRONG + "\n")
    token = issue(initialized, "--as", "rahul")
    claims = jwt.decode(token, secret, algorithms=["HS256"], audience="authctl")
    assert claims["name"] == "rahul"
    assert jwt.get_unverified_header(token)["kid"] == "app"


def test_help_does_not_import_jwt() -> None:
    code = (
        "import sys\n"
        "from authctl.cli import app\n"
        "from typer.testing import CliRunner\n"
        "for args in (['--help'], ['token', '--help'], ['key', '--help'], ['token', 'issue', '--help']):\n"
        "    assert CliRunner().invoke(app, args).exit_code == 0\n"
        "print(sorted(m for m in sys.modules if m == 'jwt' or m.startswith('cryptography')))\n"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"


@pytest.mark.parametrize("jti", ["!!bad", "a b", "jti\u202e", "", " ", "x" * 257, "<script>", "id;drop"])
def test_revoke_refuses_a_jti_that_is_not_a_token_id(seeded: Cli, jti: str) -> None:
    """README: `token revoke --jti` exits 1 for a bad jti, and nothing is written."""
    result = seeded("token", "revoke", "--jti", jti)
    assert result.exit_code == 1 and one_line(result.stderr) and "--jti needs a token id" in result.stderr
    assert [e for e in json.loads(seeded("log", "--json").stdout) if e["action"].startswith("token.")] == []


def test_revoke_takes_the_jti_forms_issuers_use(seeded: Cli) -> None:
    import uuid

    for jti in (secrets.token_urlsafe(16), str(uuid.uuid4()), "01J8ZK3M6Q9V2W7X4Y5Z0A1B2C", "urn:uuid:1234-ab"):
        result = seeded("token", "revoke", "--jti", jti, "--json")
        assert result.exit_code == 0, (jti, result.stderr)
        assert json.loads(result.stdout)["jti"] == jti


def test_secret_stdin_never_takes_a_public_key_as_the_secret(cli: Cli, tmp_path) -> None:
    """An HS256 token signed with the bytes of a public key must not verify against that "secret"."""
    from authctl import keys

    key = ec.generate_private_key(ec.SECP256R1())
    public_lines = {
        "JWK": json.dumps(keys.public_jwk("ES256", key, "app-1")),
        "OpenSSH": key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                 serialization.PublicFormat.OpenSSH).decode(),
        "base64 DER": base64.b64encode(key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode(),
        "PEM": "-----BEGIN PUBLIC KEY-----",  # the one line --secret-stdin reads of a PEM file
    }
    import hmac
    import time

    for form, line in public_lines.items():
        header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=")
        claims = base64.urlsafe_b64encode(json.dumps({"sub": "7", "exp": int(time.time()) + 600}).encode()).rstrip(b"=")
        signature = base64.urlsafe_b64encode(hmac.new(line.encode(), header + b"." + claims, "sha256").digest())
        token = (header + b"." + claims + b"." + signature.rstrip(b"=")).decode()
        result = cli("token", "inspect", token, "--secret-stdin", input=line + "\n")
        assert result.exit_code == 1 and one_line(result.stderr), (form, result.stdout, result.stderr)
        assert "not a shared secret" in result.stderr and "VALID" not in result.stdout, form


def test_jwks_with_a_shared_secret_is_refused(cli: Cli, tmp_path) -> None:
    """A JWK Set is public material: an oct key in it verifies nothing."""
    import jwt

    secret = secrets.token_bytes(32)
    token = jwt.encode({"sub": "7", "exp": 2_000_000_000}, secret, algorithm="HS256", headers={"kid": "s"})
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [{"kty": "oct", "kid": "s", "alg": "HS256",
                                          "k": base64.urlsafe_b64encode(secret).rstrip(b"=").decode()}]}))
    result = cli("token", "inspect", token, "--jwks", str(path))
    assert result.exit_code == 1 and "shared secret (kty oct)" in result.stderr and one_line(result.stderr)
