"""Signing keys: generation, import (weak keys refused), JWKS, the parsed-key cache, ``key`` commands."""

from __future__ import annotations

import base64
import json
import secrets
import stat

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from authctl import keys
from authctl.errors import Conflict, InvalidInput, NotFound
from authctl.store import Store

from .conftest import Cli

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


def random_secret(size: int = 32) -> bytes:
    """A secret as `openssl rand -base64` makes it: printable, and random enough for any HMAC."""
    return base64.b64encode(secrets.token_bytes(size))


def pem(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_pem(key) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture(scope="module")
def rsa_2048():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


# --------------------------------------------------------------------------- generation


@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "HS256"])
def test_generated_keys_have_one_algorithm_a_kid_and_a_public_fingerprint(alg: str) -> None:
    record = keys.generate(alg)
    assert record.alg == alg and record.status == "active"
    assert record.kid.startswith(alg.lower() + "-")
    assert record.fingerprint.startswith("hmac:" if alg == "HS256" else "sha256:")
    assert not PRIVATE_MEMBERS & set(record.public_jwk)
    assert record.public_jwk["kid"] == record.kid and record.public_jwk["alg"] == alg
    loaded = keys.load(record)
    assert loaded.verify(b"message", loaded.sign(b"message"))
    assert not loaded.verify(b"other message", loaded.sign(b"message"))
    assert b"PRIVATE" not in repr(record).encode() and repr(record.private_material) not in repr(record)


def test_rsa_keys_default_to_3072_bits_and_refuse_less_than_2048() -> None:
    record = keys.generate("RS256")
    private = serialization.load_pem_private_key(record.private_material, password=None)
    assert private.key_size == 3072
    with pytest.raises(InvalidInput, match="2048"):
        keys.generate("RS256", rsa_bits=1024)


def test_hmac_secrets_are_32_random_bytes() -> None:
    one, two = keys.generate("HS256"), keys.generate("HS256")
    assert len(one.private_material) == 32 and one.private_material != two.private_material
    assert one.public_jwk == {"kty": "oct", "kid": one.kid, "alg": "HS256", "use": "sig"}  # no "k"


@pytest.mark.parametrize("name", ["none", "None", "NONE", "HS1", "", "RSA"])
def test_unsupported_algorithms_are_refused(name: str) -> None:
    with pytest.raises(InvalidInput, match="unsupported algorithm"):
        keys.generate(name)


def test_algorithm_names_are_case_insensitive() -> None:
    assert keys.normalize_alg("eddsa") == "EdDSA" and keys.normalize_alg(" es256 ") == "ES256"


# --------------------------------------------------------------------------- import


def test_import_infers_the_algorithm_from_the_key(rsa_2048) -> None:
    assert keys.import_key(pem(ec.generate_private_key(ec.SECP256R1()))).alg == "ES256"
    assert keys.import_key(pem(ec.generate_private_key(ec.SECP384R1()))).alg == "ES384"
    assert keys.import_key(pem(ed25519.Ed25519PrivateKey.generate())).alg == "EdDSA"
    assert keys.import_key(pem(rsa_2048)).alg == "RS256"
    assert keys.import_key(pem(rsa_2048), alg="PS256").alg == "PS256"
    secret = random_secret()
    assert keys.import_key(secret + b"\n", hmac=True).private_material == secret  # trailing newline of a file


def test_import_keeps_a_given_kid_and_validates_it() -> None:
    assert keys.import_key(random_secret(), kid="legacy-2024", hmac=True).kid == "legacy-2024"
    for bad in ("../../etc/passwd", "a b", "x" * 65, "kid'; DROP TABLE users; --"):
        with pytest.raises(InvalidInput, match="invalid kid"):
            keys.import_key(random_secret(), kid=bad, hmac=True)


@pytest.mark.parametrize(
    ("data", "alg", "reason"),
    [
        (b"short-secret", None, "at least 32"),
        (b"y" * 31, "HS256", "31 bytes"),
        (b"y" * 40, "HS384", "at least 48"),
        (b"y" * 63, "HS512", "at least 64"),
    ],
)
def test_weak_hmac_secrets_are_refused_with_the_reason(data: bytes, alg, reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason) as info:
        keys.import_key(data, alg=alg, hmac=True)
    assert data.decode() not in str(info.value)


def test_small_rsa_keys_are_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(InvalidInput, match="1024 bits; RS256 needs at least 2048"):
        keys.import_key(pem(small))


def test_a_curve_that_does_not_match_the_algorithm_is_refused() -> None:
    p384 = pem(ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(InvalidInput, match="curve secp384r1, but ES256 requires secp256r1"):
        keys.import_key(p384, alg="ES256")
    with pytest.raises(InvalidInput, match="ES256 needs an elliptic-curve key"):
        keys.import_key(pem(ed25519.Ed25519PrivateKey.generate()), alg="ES256")


def test_import_refuses_public_keys_encrypted_keys_garbage_and_mixed_kinds(rsa_2048) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(InvalidInput, match="public key"):
        keys.import_key(public_pem(key))
    encrypted = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    )
    with pytest.raises(InvalidInput, match="encrypted"):
        keys.import_key(encrypted)
    with pytest.raises(InvalidInput, match="unreadable private key in PEM form"):
        keys.import_key(b"-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n")
    with pytest.raises(InvalidInput, match="needs a shared secret"):
        keys.import_key(pem(key), alg="HS256")
    with pytest.raises(InvalidInput, match="not a private key authctl recognises"):
        keys.import_key(random_secret(), alg="RS256")


def test_import_errors_never_echo_the_material() -> None:
    secret = b"Sup3rSecretButShort"
    for hmac in (False, True):
        with pytest.raises(InvalidInput) as info:
            keys.import_key(secret, hmac=hmac)
        assert "Sup3r" not in str(info.value)


# --------------------------------------------------------------------------- JWKS


def test_jwks_has_only_public_members_of_keys_that_still_verify(rsa_2048) -> None:
    records = [
        keys.generate("ES256"), keys.generate("EdDSA"), keys.import_key(pem(rsa_2048)), keys.generate("HS256"),
    ]
    document = keys.jwks(records)
    assert [jwk["alg"] for jwk in document["keys"]] == ["ES256", "EdDSA", "RS256"]  # the HMAC secret is not published
    for jwk in document["keys"]:
        assert not PRIVATE_MEMBERS & set(jwk), jwk
        assert jwk["use"] == "sig" and jwk["kid"]
    rsa_jwk = document["keys"][2]
    assert set(rsa_jwk) == {"kty", "n", "e", "kid", "alg", "use"}


def test_a_published_jwk_verifies_our_tokens_with_pyjwt() -> None:
    import jwt

    record = keys.generate("ES256")
    loaded = keys.load(record)
    token = jwt.encode({"sub": "x"}, loaded.sign_key, algorithm="ES256", headers={"kid": record.kid})
    public = jwt.PyJWK(keys.jwks([record])["keys"][0])
    assert jwt.decode(token, public, algorithms=["ES256"]) == {"sub": "x"}


# --------------------------------------------------------------------------- the cache


def test_the_key_ring_is_parsed_once_per_key_set(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = keys.load_private_pem
    monkeypatch.setattr(keys, "load_private_pem", lambda data: calls.append(1) or real(data))
    keys._RINGS.clear()
    first = keys.KeyRing.for_store(store)
    assert len(calls) == 1
    assert keys.KeyRing.for_store(store) is first and len(calls) == 1
    store.add_key(keys.generate("ES256"))
    second = keys.KeyRing.for_store(store)
    assert second is not first and second.active is not None and second.active.kid != first.active.kid
    assert len(second) == 2


def test_retired_keys_are_not_in_the_ring_but_can_be_explained(store: Store) -> None:
    old = store.keys()[0].kid
    store.add_key(keys.generate("ES256"))
    store.retire_key(old)
    ring = keys.KeyRing.for_store(store)
    assert ring.lookup(old) is None
    assert ring.retired(old) is not None and ring.retired(old).sign_key is None
    assert ring.lookup("../../etc/passwd") is None and ring.lookup(None) is None and ring.lookup(7) is None


def test_store_retire_rules(store: Store) -> None:
    active = store.keys()[0].kid
    with pytest.raises(Conflict, match="active signing key"):
        store.retire_key(active)
    with pytest.raises(NotFound):
        store.retire_key("nope")


# --------------------------------------------------------------------------- foreign keys


def test_foreign_keys_from_pem_secret_and_jwks(rsa_2048) -> None:
    assert keys.foreign_pem(public_pem(rsa_2048)).lookup("anything").alg == "RS256"
    assert keys.foreign_pem(public_pem(rsa_2048), alg="PS256").lookup(None).alg == "PS256"
    secret = random_secret()
    assert keys.foreign_secret(secret + b"\n").lookup("x").verify_key == secret
    with pytest.raises(InvalidInput, match="at least 32"):
        keys.foreign_secret(b"short")
    with pytest.raises(InvalidInput, match="curve"):
        keys.foreign_pem(public_pem(ec.generate_private_key(ec.SECP256R1())), alg="ES384")
    record = keys.generate("EdDSA")
    ring = keys.foreign_jwks(json.dumps(keys.jwks([record])))
    assert ring.lookup(record.kid).alg == "EdDSA" and ring.lookup("other") is None


def test_bad_jwks_files_get_a_reason_without_echoing_keys() -> None:
    with pytest.raises(InvalidInput, match="not valid JSON"):
        keys.foreign_jwks("{")
    with pytest.raises(InvalidInput, match='no "keys" list'):
        keys.foreign_jwks('{"keys": []}')
    with pytest.raises(InvalidInput, match="key #1") as info:
        keys.foreign_jwks('{"keys": [{"kty": "EC", "crv": "P-256", "d": "SECRETVALUE"}]}')
    assert "SECRETVALUE" not in str(info.value)


# --------------------------------------------------------------------------- commands


def test_init_creates_the_first_key_es256_by_default(initialized: Cli) -> None:
    listed = json.loads(initialized("key", "list", "--json").stdout)
    assert [(k["alg"], k["status"]) for k in listed] == [("ES256", "active")]
    assert set(listed[0]) == {"kid", "alg", "status", "created_at", "retired_at", "fingerprint"}
    assert stat.S_IMODE(initialized.db.stat().st_mode) == 0o600


@pytest.mark.parametrize("alg", ["EdDSA", "HS256", "RS256"])
def test_init_with_another_algorithm(cli: Cli, alg: str) -> None:
    result = cli("init", "--alg", alg, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["key"]["alg"] == alg


def test_init_with_a_bad_algorithm_creates_nothing(cli: Cli) -> None:
    result = cli("init", "--alg", "none")
    assert result.exit_code == 2 and "'es256'" in result.stderr.lower()  # a usage error naming the choices
    assert not cli.db.exists()


def test_key_list_rotate_retire_jwks(initialized: Cli) -> None:
    first = json.loads(initialized("key", "list", "--json").stdout)[0]["kid"]
    rotated = initialized("key", "rotate", "--alg", "EdDSA", "--json")
    assert rotated.exit_code == 0, rotated.stderr
    second = json.loads(rotated.stdout)
    assert second["alg"] == "EdDSA" and second["status"] == "active" and second["previous"] == [first]
    statuses = {k["kid"]: k["status"] for k in json.loads(initialized("key", "list", "--json").stdout)}
    assert statuses == {first: "verifying", second["kid"]: "active"}
    jwks = json.loads(initialized("key", "jwks").stdout)
    assert {k["kid"] for k in jwks["keys"]} == {first, second["kid"]}
    assert initialized("key", "retire", "--yes", second["kid"]).exit_code == 1  # the active key cannot be retired
    retired = initialized("key", "retire", "--yes", first)
    assert retired.exit_code == 0 and first in retired.stderr
    assert {k["kid"] for k in json.loads(initialized("key", "jwks").stdout)["keys"]} == {second["kid"]}
    table = initialized("key", "list").stdout
    assert "retired" in table and "EdDSA" in table and "sha256:" in table
    assert initialized("key", "retire", "--yes", "no-such-kid").exit_code == 1


def test_rotate_keeps_the_current_algorithm_by_default(cli: Cli) -> None:
    assert cli("init", "--alg", "HS256").exit_code == 0
    rotated = json.loads(cli("key", "rotate", "--json").stdout)
    assert rotated["alg"] == "HS256"
    assert cli("key", "jwks").stdout.strip() == '{\n  "keys": []\n}'


def test_key_output_never_shows_private_material(initialized: Cli) -> None:
    initialized("key", "rotate", "--alg", "HS256")
    with Store.open(initialized.db) as store:
        materials = [record.private_material for record in store.keys()]
    for args in (("key", "list"), ("key", "list", "--json"), ("key", "jwks"), ("log", "--json")):
        output = initialized(*args)
        for material in materials:
            assert material.decode("latin-1") not in output.stdout + output.stderr
        assert "PRIVATE KEY" not in output.stdout


def test_key_import_from_stdin_and_file(initialized: Cli, tmp_path, rsa_2048) -> None:
    imported = initialized("key", "import", "--yes", "-", "--hmac", "--kid", "legacy", "--json",
                           input=random_secret().decode() + "\n")
    assert imported.exit_code == 0, imported.stderr
    data = json.loads(imported.stdout)
    assert data["kid"] == "legacy" and data["alg"] == "HS256" and data["status"] == "active"
    path = tmp_path / "app.pem"
    path.write_bytes(pem(rsa_2048))
    verify_only = initialized("key", "import", "--yes", str(path), "--verify-only", "--json")
    assert verify_only.exit_code == 0, verify_only.stderr
    assert json.loads(verify_only.stdout)["status"] == "verifying"
    again = initialized("key", "import", "--yes", "-", "--hmac", "--kid", "legacy", input=random_secret().decode())
    assert again.exit_code == 1 and "already exists" in again.stderr


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("short secret\n", "at least 32 random bytes"),
        ("", "no key material"),
    ],
)
def test_key_import_refuses_weak_input_with_the_reason(initialized: Cli, payload: str, reason: str) -> None:
    result = initialized("key", "import", "--yes", "-", "--hmac", input=payload)
    assert result.exit_code == 1 and reason in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "short secret" not in result.stderr


def test_key_import_refuses_mismatched_curve_and_small_rsa(initialized: Cli, tmp_path) -> None:
    p384 = tmp_path / "p384.pem"
    p384.write_bytes(pem(ec.generate_private_key(ec.SECP384R1())))
    result = initialized("key", "import", "--yes", str(p384), "--alg", "ES256")
    assert result.exit_code == 1 and "requires secp256r1" in result.stderr
    small = tmp_path / "small.pem"
    small.write_bytes(pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)))
    result = initialized("key", "import", "--yes", str(small))
    assert result.exit_code == 1 and "at least 2048" in result.stderr


def test_the_key_never_comes_from_an_argument(initialized: Cli) -> None:
    result = initialized("key", "import", "--yes", "--secret", "x" * 40)
    assert result.exit_code == 2


# --------------------------------------------------------------------------- hostile key material


def _self_signed(key):
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "app.example")])
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(7).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))


def _csr(key) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "app.example")])
    return x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256()).public_bytes(
        serialization.Encoding.DER)


def _public_forms(rsa_key) -> dict[str, tuple[bytes, str]]:
    """Public material in each common encoding, with what the refusal must say it is."""
    enc, fmt = serialization.Encoding, serialization.PublicFormat
    ec_key, ed_key = ec.generate_private_key(ec.SECP256R1()), ed25519.Ed25519PrivateKey.generate()
    public = rsa_key.public_key()
    cert = _self_signed(rsa_key)
    spki_der = public.public_bytes(enc.DER, fmt.SubjectPublicKeyInfo)
    rsa_jwk = keys.public_jwk("RS256", rsa_key, "app-1")
    return {
        "PEM SubjectPublicKeyInfo": (public.public_bytes(enc.PEM, fmt.SubjectPublicKeyInfo), "RSA public key"),
        "PEM PKCS#1": (public.public_bytes(enc.PEM, fmt.PKCS1), "RSA public key"),
        "PEM after text": (b"Public-Key: (2048 bit)\nModulus: 00:c3:...\n" + public.public_bytes(
            enc.PEM, fmt.SubjectPublicKeyInfo), "RSA public key"),
        "PEM certificate after openssl x509 -text": (b"Certificate:\n    Data:\n        Version: 3 (0x2)\n"
                                                     + cert.public_bytes(enc.PEM), "certificate"),
        "DER SubjectPublicKeyInfo": (spki_der, "RSA public key"),
        "DER PKCS#1": (public.public_bytes(enc.DER, fmt.PKCS1), "RSA public key"),
        "DER EC SubjectPublicKeyInfo": (ec_key.public_key().public_bytes(enc.DER, fmt.SubjectPublicKeyInfo),
                                        "EC public key"),
        "DER certificate": (cert.public_bytes(enc.DER), "certificate"),
        "DER certificate request": (_csr(rsa_key), "certificate signing request"),
        "base64 DER": (base64.b64encode(spki_der) + b"\n", "RSA public key"),
        "OpenSSH ssh-rsa": (public.public_bytes(enc.OpenSSH, fmt.OpenSSH) + b" deploy@ci\n", "RSA public key"),
        "OpenSSH ecdsa-sha2-nistp256": (ec_key.public_key().public_bytes(enc.OpenSSH, fmt.OpenSSH), "EC public key"),
        "OpenSSH ssh-ed25519": (ed_key.public_key().public_bytes(enc.OpenSSH, fmt.OpenSSH), "Ed25519 public key"),
        "authorized_keys line with options": (b'from="10.0.0.0/8",no-pty ' + ed_key.public_key().public_bytes(
            enc.OpenSSH, fmt.OpenSSH) + b" ops\n", "Ed25519 public key"),
        "RFC 4716 SSH2 public key": (b"---- BEGIN SSH2 PUBLIC KEY ----\nComment: ops\nAAAAC3NzaC1lZDI1NTE5AAAA\n"
                                     b"---- END SSH2 PUBLIC KEY ----\n", "SSH public key"),
        "JWK": (json.dumps(rsa_jwk, indent=2).encode(), "RSA public key"),
        "JWK Set": (json.dumps({"keys": [rsa_jwk]}).encode(), "RSA public key"),
    }


@pytest.fixture(scope="module")
def public_forms(rsa_2048):
    return _public_forms(rsa_2048)


FORM_NAMES = list(_public_forms(rsa.generate_private_key(public_exponent=65537, key_size=2048)))


def _oct_jwk(secret: bytes, **members: str) -> str:
    return json.dumps({"kty": "oct", "k": base64.urlsafe_b64encode(secret).rstrip(b"=").decode(), **members})


def test_an_oct_jwk_on_secret_stdin_is_its_key_bytes(cli: Cli) -> None:
    """A shared secret in JWK form is a shared secret: its ``k`` verifies, under the same entropy rule."""
    import time

    import jwt

    secret = secrets.token_bytes(32)
    token = jwt.encode({"sub": "7", "exp": int(time.time()) + 600}, secret, algorithm="HS256")
    assert keys.foreign_secret(_oct_jwk(secret).encode()).lookup("x").verify_key == secret
    assert keys.foreign_secret(_oct_jwk(secret, alg="HS256").encode(), alg="HS256").lookup(None).alg == "HS256"
    good = cli("token", "inspect", token, "--secret-stdin", input=_oct_jwk(secret) + "\n")
    assert good.exit_code == 0, good.stderr
    assert "Verdict: VALID" in good.stdout
    other = cli("token", "inspect", token, "--secret-stdin", input=_oct_jwk(secrets.token_bytes(32)) + "\n")
    assert other.exit_code == 3
    weak = cli("token", "inspect", token, "--secret-stdin", input=_oct_jwk(b"secret!!" * 8) + "\n")
    assert weak.exit_code == 1 and "RFC 8725" in weak.stderr and "not a shared secret" not in weak.stderr
    with pytest.raises(InvalidInput, match="at least 32"):
        keys.foreign_secret(_oct_jwk(secrets.token_bytes(16)).encode())
    with pytest.raises(InvalidInput, match="contradicts"):
        keys.foreign_secret(_oct_jwk(secret, alg="HS512").encode(), alg="HS256")
    with pytest.raises(InvalidInput, match="not a public key") as as_key:
        keys.foreign_pem(_oct_jwk(secret).encode())
    assert as_key.value.hint == "secret_stdin"  # the CLI adds: for an HMAC secret use --secret-stdin
    assert not cli.db.exists()


@pytest.mark.parametrize("form", FORM_NAMES)
def test_public_key_material_is_never_an_hmac_secret(public_forms, form: str) -> None:
    data, what = public_forms[form]
    with pytest.raises(InvalidInput, match=what) as guessed:
        keys.import_key(data)
    assert "signing needs the private key" in str(guessed.value)
    with pytest.raises(InvalidInput, match="never an HMAC secret") as explicit:
        keys.import_key(data, hmac=True)
    assert what in str(explicit.value)
    with pytest.raises(InvalidInput, match="not a shared secret"):
        keys.foreign_secret(data)


def test_public_key_material_is_refused_by_key_import_and_nothing_is_stored(initialized: Cli, tmp_path,
                                                                            public_forms) -> None:
    before = initialized("key", "list", "--json").stdout
    for index, (form, (data, what)) in enumerate(public_forms.items()):
        path = tmp_path / f"public-{index}"
        path.write_bytes(data)
        for extra in ((), ("--hmac",), ("--alg", "HS256", "--hmac")):
            result = initialized("key", "import", "--yes", str(path), "--kid", "app", *extra)
            assert result.exit_code == 1, (form, extra, result.stderr)
            assert result.stderr.count("\n") == 1 and what in result.stderr, (form, result.stderr)
    assert initialized("key", "list", "--json").stdout == before


def _hs256(header: dict, claims: dict, secret: bytes) -> str:
    import hmac

    def segment(data: dict) -> bytes:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=")

    signing_input = segment(header) + b"." + segment(claims)
    signature = base64.urlsafe_b64encode(hmac.new(secret, signing_input, "sha256").digest()).rstrip(b"=")
    return (signing_input + b"." + signature).decode()


def test_a_token_signed_with_a_public_jwk_file_never_deletes_a_student(cli: Cli, tmp_path, rsa_2048) -> None:
    """The attack end to end: import the app's public RSA JWK, then HMAC-sign suman's token with its bytes."""
    import jwt

    from authctl.app import create_app
    from tests.apphelpers import Client, issue, make_demo_db

    db = make_demo_db(cli)
    public_file = tmp_path / "app-public.jwk"
    public_file.write_text(json.dumps(keys.public_jwk("RS256", rsa_2048, "app-1")))
    for extra in ((), ("--hmac",)):
        imported = cli("key", "import", "--yes", str(public_file), "--kid", "app", *extra)
        assert imported.exit_code == 1 and "RSA public key" in imported.stderr, imported.stderr
    with Store.open(db) as store:
        genuine = issue(store, "suman")
        assert "app" not in {record.kid for record in store.keys()}
    claims = jwt.decode(genuine, options={"verify_signature": False})
    app = create_app(db)
    client = Client(app)
    try:
        assert client.delete("/student/3", token=genuine).status_code == 200  # the route really deletes
        for kid in ("app", None):
            header = {"alg": "HS256", "typ": "at+jwt", **({"kid": kid} if kid else {})}
            forged = _hs256(header, {**claims, "jti": secrets.token_urlsafe(16)}, public_file.read_bytes())
            response = client.delete("/student/3", token=forged)
            assert response.status_code == 401, (kid, response.status_code, response.text)
    finally:
        client.close()
        app.state.auth.close()


@pytest.mark.parametrize("encoding", ["PKCS#8 DER", "traditional DER", "PKCS#8 PEM with bag attributes",
                                      "OpenSSH", "JWK"])
def test_a_private_key_in_any_encoding_is_the_key_it_is_never_hs256(rsa_2048, encoding: str) -> None:
    enc, fmt = serialization.Encoding, serialization.PrivateFormat
    none = serialization.NoEncryption()
    ec_key, ed_key = ec.generate_private_key(ec.SECP256R1()), ed25519.Ed25519PrivateKey.generate()
    for key, alg in ((rsa_2048, "RS256"), (ec_key, "ES256"), (ed_key, "EdDSA")):
        if encoding == "PKCS#8 DER":
            data = key.private_bytes(enc.DER, fmt.PKCS8, none)
        elif encoding == "traditional DER":  # PKCS#1 for RSA, SEC1 for EC; Ed25519 has none
            if alg == "EdDSA":
                continue
            data = key.private_bytes(enc.DER, fmt.TraditionalOpenSSL, none)
        elif encoding == "OpenSSH":
            data = key.private_bytes(enc.PEM, fmt.OpenSSH, none)
        elif encoding == "JWK":
            data = keys.algorithm(alg).to_jwk(key).encode()
        else:
            data = b"Bag Attributes\n    localKeyID: 01 02\nKey Attributes: <No Attributes>\n" + pem(key)
        record = keys.import_key(data)
        assert record.alg == alg, encoding
        assert record.fingerprint == keys.fingerprint(alg, key)
        with pytest.raises(InvalidInput, match="never an HMAC secret"):
            keys.import_key(data, hmac=True)
        with pytest.raises(InvalidInput, match="needs a shared secret"):
            keys.import_key(data, alg="HS256")


def test_an_encrypted_der_private_key_is_refused_with_the_reason(rsa_2048) -> None:
    data = rsa_2048.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                  serialization.BestAvailableEncryption(b"passphrase"))
    for hmac in (False, True):
        with pytest.raises(InvalidInput, match="encrypted"):
            keys.import_key(data, hmac=hmac)


def test_a_raw_hmac_secret_is_taken_only_with_hmac() -> None:
    secret = random_secret()
    with pytest.raises(InvalidInput, match="not a private key") as refused:
        keys.import_key(secret)
    assert refused.value.hint == "hmac"  # the CLI adds: pass --hmac
    with pytest.raises(InvalidInput, match="not a private key") as refused:
        keys.import_key(secret, alg="HS256")
    assert refused.value.hint == "hmac"
    with pytest.raises(InvalidInput, match="--hmac takes HS256, HS384 or HS512"):
        keys.import_key(secret, alg="ES256", hmac=True)
    assert keys.import_key(random_secret(48), alg="HS384", hmac=True).alg == "HS384"
    oct_jwk = json.dumps({"kty": "oct", "alg": "HS512", "k": base64.urlsafe_b64encode(
        secrets.token_bytes(64)).rstrip(b"=").decode()}).encode()
    assert keys.import_key(oct_jwk).alg == "HS512"  # a JWK of kty oct says it is a shared secret
    with pytest.raises(InvalidInput, match="contradicts"):
        keys.import_key(oct_jwk, alg="HS256")


LOW_ENTROPY = {
    "32 zero bytes": b"\0" * 32,
    "32 x a": b"a" * 32,
    "1 MiB of zeros": b"\0" * (1 << 20),
    "ab repeated": b"ab" * 16,
    "a short word repeated": b"secret!!" * 8,
    "eight random bytes repeated": secrets.token_bytes(8) * 8,
    "the alphabet": b"abcdefghijklmnopqrstuvwxyz012345",
    "digits counting up": b"01234567890123456789012345678901",
    "few distinct bytes": bytes(secrets.choice(b"01") for _ in range(64)),
    "a password repeated": b"Password123!Password123!Password123!",
}


@pytest.mark.parametrize("name", list(LOW_ENTROPY))
def test_low_entropy_hmac_secrets_are_refused_rfc8725_3_5(name: str) -> None:
    secret = LOW_ENTROPY[name]
    with pytest.raises(InvalidInput, match=r"not random enough: about \d+ bits.*RFC 8725 §3\.5"):
        keys.import_key(secret, hmac=True)
    with pytest.raises(InvalidInput, match="RFC 8725"):
        keys.foreign_secret(secret)
    assert keys.secret_entropy_bits(secret) < keys.HMAC_MIN_ENTROPY_BITS


def test_random_secrets_always_pass_the_entropy_rule() -> None:
    """The rule must never refuse what `key rotate` or `openssl rand -hex/-base64 32` makes (the lowest of 3000 draws each)."""
    makers = {
        "raw 32 bytes": lambda: secrets.token_bytes(32),
        "openssl rand -hex 32": lambda: secrets.token_hex(32).encode(),
        "openssl rand -base64 32": lambda: random_secret(32),
        "token_urlsafe(32)": lambda: secrets.token_urlsafe(32).encode(),
    }
    for name, make in makers.items():
        lowest = min(keys.secret_entropy_bits(make()) for _ in range(3000))
        assert lowest >= keys.HMAC_MIN_ENTROPY_BITS + 10, (name, lowest)
    assert keys.generate("HS512").alg == "HS512"
    # a known refusal: `openssl rand -hex 16` is 32 hex digits, 128 bits at most, and scores below 128
    highest = max(keys.secret_entropy_bits(secrets.token_hex(16).encode()) for _ in range(3000))
    assert highest < keys.HMAC_MIN_ENTROPY_BITS, highest
    with pytest.raises(InvalidInput, match="not random enough"):
        keys.import_key(secrets.token_hex(16).encode(), hmac=True)


def test_key_import_of_a_mebibyte_of_zeros_is_refused_in_one_line(initialized: Cli, tmp_path) -> None:
    path = tmp_path / "zeros"
    path.write_bytes(b"\0" * (1 << 20))
    result = initialized("key", "import", "--yes", str(path), "--hmac")
    assert result.exit_code == 1 and "not random enough" in result.stderr and result.stderr.count("\n") == 1


def test_the_same_key_material_imported_twice_changes_nothing(initialized: Cli, tmp_path, rsa_2048) -> None:
    pem_file, der_file = tmp_path / "app.pem", tmp_path / "app.der"
    pem_file.write_bytes(pem(rsa_2048))
    der_file.write_bytes(rsa_2048.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
    first = initialized("key", "import", "--yes", str(pem_file), "--kid", "app-2024", "--json")
    assert first.exit_code == 0, first.stderr
    before = initialized("key", "list", "--json").stdout
    for args in ((str(pem_file),), (str(pem_file), "--kid", "other"), (str(der_file), "--verify-only"),
                 (str(pem_file), "--alg", "PS256")):
        again = initialized("key", "import", "--yes", *args)
        assert again.exit_code == 1, again.stderr
        assert "already there as app-2024 (active)" in again.stderr and again.stderr.count("\n") == 1
    secret = random_secret(48).decode()  # 64 characters: long enough for HS512 too
    assert initialized("key", "import", "--yes", "-", "--hmac", "--kid", "shared", input=secret).exit_code == 0
    for args in ((), ("--alg", "HS512"), ("--kid", "shared-2")):
        same = initialized("key", "import", "--yes", "-", "--hmac", *args, input=secret + "\n")
        assert same.exit_code == 1 and "already there as shared (active)" in same.stderr, same.stderr
    listed = json.loads(initialized("key", "list", "--json").stdout)
    assert [k["kid"] for k in listed] == [k["kid"] for k in json.loads(before)] + ["shared"]
    added = [(e["action"], e["target"]) for e in json.loads(initialized("log", "--json").stdout)
             if e["action"].startswith("key.")]
    assert sorted(added) == sorted([("key.add", listed[0]["kid"]), ("key.add", "app-2024"), ("key.add", "shared")])


# --------------------------------------------------------------------------- verifying with foreign keys


def test_key_takes_a_public_key_in_any_form_and_never_a_private_one(public_forms, rsa_2048) -> None:
    for form, (data, _) in public_forms.items():
        if form.startswith(("RFC 4716", "DER EC", "OpenSSH ecdsa", "OpenSSH ssh-ed", "authorized_keys",
                            "DER certificate request")):
            continue  # keys other than the RSA one, an RFC 4716 stub, a request (no key to trust)
        assert keys.foreign_pem(data).lookup(None).verify_key.public_numbers() == rsa_2048.public_key().public_numbers(), form
    for private in (pem(rsa_2048), rsa_2048.private_bytes(serialization.Encoding.DER,
                                                          serialization.PrivateFormat.PKCS8, serialization.NoEncryption())):
        with pytest.raises(InvalidInput, match="public key only"):
            keys.foreign_pem(private)
    with pytest.raises(InvalidInput, match="needs a public key or certificate") as refused:
        keys.foreign_pem(random_secret())
    assert refused.value.hint == "secret_stdin"  # the CLI adds: for an HMAC secret use --secret-stdin


def test_a_jwks_file_holds_public_keys_only() -> None:
    oct_set = {"keys": [{"kty": "oct", "kid": "s", "k": base64.urlsafe_b64encode(
        secrets.token_bytes(32)).rstrip(b"=").decode()}]}
    with pytest.raises(InvalidInput, match=r"key #1 .*shared secret"):
        keys.foreign_jwks(json.dumps(oct_set))
    private = json.loads(keys.algorithm("ES256").to_jwk(ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(InvalidInput, match=r"key #1 .*private members") as info:
        keys.foreign_jwks(json.dumps({"keys": [private]}))
    assert private["d"] not in str(info.value)


def test_key_input_over_a_mebibyte_is_refused_never_cut(initialized: Cli, tmp_path) -> None:
    """Cutting a long secret at 1 MiB would import another secret than the one given."""
    path = tmp_path / "long-secret"
    path.write_bytes(secrets.token_bytes(1024 * 1024 + 1))
    before = initialized("key", "list", "--json").stdout
    from_file = initialized("key", "import", "--yes", str(path), "--hmac")
    from_stdin = initialized("key", "import", "--yes", "-", "--hmac", input=random_secret(800 * 1024).decode())  # > 1 MiB
    for result in (from_file, from_stdin):
        assert result.exit_code == 1 and "over 1 MiB" in result.stderr and result.stderr.count("\n") == 1
    assert initialized("key", "list", "--json").stdout == before


def test_a_jwk_made_for_encryption_is_never_a_signing_key(rsa_2048) -> None:
    """RFC 7517 §4.2: `use: enc` (or key_ops without sign) keeps a key out of signing."""
    private = json.loads(keys.algorithm("RS256").to_jwk(rsa_2048))
    for marked in ({**private, "use": "enc"}, {**private, "key_ops": ["decrypt", "unwrapKey"]}):
        for hmac in (False, True):
            with pytest.raises(InvalidInput, match="for encryption, not signing"):
                keys.import_key(json.dumps(marked).encode(), hmac=hmac)
    assert keys.import_key(json.dumps({**private, "use": "sig"}).encode()).alg == "RS256"
