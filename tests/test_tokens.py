"""The token library: issue, verify (every bad input a specific TokenError), inspect, revoke."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import socket
import time
import urllib.request

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authctl import clock, jose, keys, tokens
from authctl.cli.common import parse_claim_options
from authctl.errors import (
    InvalidInput,
    NotFound,
    TokenClaimInvalid,
    TokenError,
    TokenExpired,
    TokenMalformed,
    TokenNotYetValid,
    TokenRevoked,
    TokenSignatureInvalid,
    TokenTypeMismatch,
    TokenUserInvalid,
    UnknownKey,
)
from authctl.store import Store

NOW = 1_800_000_000


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segments(token: str) -> tuple[dict, dict]:
    head, body, _ = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return json.loads(base64.urlsafe_b64decode(pad(head))), json.loads(base64.urlsafe_b64decode(pad(body)))


def active(store: Store) -> keys.LoadedKey:
    return keys.KeyRing.for_store(store).active


def forge(
    store: Store,
    *,
    header: dict | None = None,
    claims: dict | None = None,
    drop: tuple[str, ...] = (),
    raw_header: bytes | None = None,
    raw_payload: bytes | None = None,
    key: keys.LoadedKey | None = None,
    user: str = "rahul",
) -> str:
    """A token as our active key would sign it, with changes (for claims the issuer never makes)."""
    base_header, base_claims = segments(tokens.issue(store, user, now=NOW).token)
    base_header.update(header or {})
    base_claims.update(claims or {})
    for name in drop:
        base_claims.pop(name, None)
        base_header.pop(name, None)
    head = b64(raw_header if raw_header is not None else json.dumps(base_header).encode())
    body = b64(raw_payload if raw_payload is not None else json.dumps(base_claims).encode())
    signing_input = f"{head}.{body}".encode()
    signature = (key or active(store)).sign(signing_input)
    return f"{head}.{body}.{b64(signature)}"


def assert_safe(exc: BaseException, token: str) -> None:
    message = str(exc)
    assert "\n" not in message and message
    assert token not in message
    for part in token.split("."):
        if len(part) > 16:
            assert part not in message


# --------------------------------------------------------------------------- issue


def test_issue_and_verify_round_trip(store: Store) -> None:
    issued = tokens.issue(store, "rahul", now=NOW)
    user = store.get_user("rahul")
    assert issued.header == {"alg": "ES256", "kid": active(store).kid, "typ": "at+jwt"}
    claims = issued.claims
    assert claims["iss"] == "authctl" and claims["aud"] == "authctl"
    assert claims["sub"] == user.uid and claims["name"] == "rahul"
    assert claims["iat"] == claims["nbf"] == NOW and claims["exp"] == NOW + 900 == issued.expires_at
    assert claims["ver"] == 1 and claims["roles"] == ["student"] and len(claims["jti"]) >= 16
    assert segments(issued.token) == (issued.header, claims)
    identity = tokens.verify(store, issued.token, now=NOW + 60)
    assert identity.user.username == "rahul" and identity.token_type == "access"
    assert identity.kid == issued.header["kid"] and identity.jti == claims["jti"]
    assert identity.expires_at == issued.expires_at and identity.claims == claims


def test_every_token_gets_its_own_jti(store: Store) -> None:
    assert tokens.issue(store, "rahul").claims["jti"] != tokens.issue(store, "rahul").claims["jti"]


def test_refresh_tokens_have_their_own_type_lifetime_and_family(store: Store) -> None:
    issued = tokens.issue(store, "suman", refresh=True, family="fam-1", now=NOW)
    assert issued.header["typ"] == "refresh+jwt" and issued.token_type == "refresh"
    assert issued.claims["exp"] - issued.claims["iat"] == 7 * 86400 and issued.claims["fam"] == "fam-1"
    identity = tokens.verify(store, issued.token, expected_type="refresh", now=NOW)
    assert identity.token_type == "refresh" and identity.user.username == "suman"


def test_sub_claim_username_setting(store: Store) -> None:
    store.set_setting("sub_claim", "username")
    issued = tokens.issue(store, "rahul", now=NOW)
    assert issued.claims["sub"] == "rahul"
    assert tokens.verify(store, issued.token, now=NOW).user.username == "rahul"


def test_an_empty_audience_omits_the_claim(store: Store) -> None:
    store.set_setting("audience", "")
    issued = tokens.issue(store, "rahul", now=NOW)
    assert "aud" not in issued.claims
    tokens.verify(store, issued.token, now=NOW)
    other = tokens.issue(store, "rahul", audience="another-app", now=NOW)
    with pytest.raises(TokenClaimInvalid, match="this deployment has none"):
        tokens.verify(store, other.token, now=NOW)


def test_ttl_is_capped_by_max_ttl(store: Store) -> None:
    assert tokens.issue(store, "rahul", ttl="1h", now=NOW).expires_at == NOW + 3600
    assert tokens.issue(store, "rahul", ttl=120, now=NOW).expires_at == NOW + 120
    with pytest.raises(InvalidInput, match="above max_ttl"):
        tokens.issue(store, "rahul", ttl="31d")
    with pytest.raises(InvalidInput, match="invalid duration"):
        tokens.issue(store, "rahul", ttl="soon")
    with pytest.raises(InvalidInput, match="positive"):
        tokens.issue(store, "rahul", ttl="0s")


def test_extra_claims_cannot_override_registered_ones(store: Store) -> None:
    issued = tokens.issue(store, "rahul", extra_claims={"tenant": "t1", "scope": ["a", "b"]}, now=NOW)
    assert issued.claims["tenant"] == "t1" and issued.claims["scope"] == ["a", "b"]
    for name in ("sub", "exp", "iss", "aud", "jti", "ver", "roles", "iat", "nbf"):
        with pytest.raises(InvalidInput, match="cannot be overridden"):
            tokens.issue(store, "rahul", extra_claims={name: "x"})
    assert parse_claim_options(["n=5", "s=hello", "o={\"a\": 1}", "e="]) == {
        "n": 5, "s": "hello", "o": {"a": 1}, "e": "",
    }
    with pytest.raises(InvalidInput, match="key=value"):
        parse_claim_options(["novalue"])


def test_disabled_and_unknown_users_get_a_clear_error(store: Store) -> None:
    store.set_disabled("rahul", True)
    with pytest.raises(InvalidInput, match="rahul is disabled"):
        tokens.issue(store, "rahul")
    with pytest.raises(NotFound, match="no user named 'ghost'"):
        tokens.issue(store, "ghost")
    explained = tokens.issue(store, "rahul", allow_disabled=True)  # for offline explanations only
    with pytest.raises(TokenUserInvalid, match="rahul is disabled"):
        tokens.verify(store, explained.token)


def test_negative_presets(store: Store) -> None:
    expired = tokens.issue(store, "rahul", expired=True, now=NOW)
    assert expired.expires_at < NOW - 30
    with pytest.raises(TokenExpired, match="expired"):
        tokens.verify(store, expired.token, now=NOW)
    early = tokens.issue(store, "rahul", not_yet_valid=True, now=NOW)
    with pytest.raises(TokenNotYetValid, match="not valid until"):
        tokens.verify(store, early.token, now=NOW)
    tokens.verify(store, early.token, now=NOW + 120)
    with pytest.raises(InvalidInput, match="both expired and not yet valid") as both:
        tokens.issue(store, "rahul", expired=True, not_yet_valid=True)
    assert both.value.hint == "expired"  # the CLI adds: choose one of --expired and --not-yet-valid


def test_no_active_key_is_a_clear_error(store: Store) -> None:
    store.conn.execute("UPDATE signing_keys SET status = 'verifying'")
    store.conn.commit()
    with pytest.raises(NotFound, match="no active signing key"):
        tokens.issue(store, "rahul")


# --------------------------------------------------------------------------- expiry and leeway


def test_expired_token_inside_and_outside_the_leeway(store: Store) -> None:
    issued = tokens.issue(store, "rahul", ttl="5m", now=NOW)
    exp = issued.expires_at
    tokens.verify(store, issued.token, now=exp + 29)  # inside the 30 s leeway
    with pytest.raises(TokenExpired, match="expired") as info:
        tokens.verify(store, issued.token, now=exp + 31)
    assert_safe(info.value, issued.token)
    store.set_setting("leeway", "0s")
    with pytest.raises(TokenExpired):
        tokens.verify(store, issued.token, now=exp)


def test_missing_exp(store: Store) -> None:
    token = forge(store, drop=("exp",))
    with pytest.raises(TokenClaimInvalid, match="no exp claim"):
        tokens.verify(store, token, now=NOW)
    assert "no exp: the token never expires" in tokens.inspect(store, token, now=NOW).warnings


@pytest.mark.parametrize("exp", ["tomorrow", "1800000900", None, True, [1], {"a": 1}])
def test_exp_that_is_not_a_number(store: Store, exp) -> None:
    with pytest.raises(TokenClaimInvalid, match="exp claim is not a number"):
        tokens.verify(store, forge(store, claims={"exp": exp}), now=NOW)


def test_exp_absurdly_far_ahead(store: Store) -> None:
    for exp in (NOW + 400 * 86400, 10**30, 1e300):
        with pytest.raises(TokenClaimInvalid, match="beyond the maximum lifetime"):
            tokens.verify(store, forge(store, claims={"exp": exp}), now=NOW)
    backdated = forge(store, claims={"iat": NOW - 60 * 86400, "exp": NOW + 600})
    with pytest.raises(TokenClaimInvalid, match="exceeds the maximum"):
        tokens.verify(store, backdated, now=NOW)


def test_infinity_and_nan_are_not_json(store: Store) -> None:
    for raw in (b'{"exp": Infinity}', b'{"exp": NaN}'):
        with pytest.raises(TokenMalformed, match="not valid JSON"):
            tokens.verify(store, forge(store, raw_payload=raw), now=NOW)
    with pytest.raises(TokenClaimInvalid, match="not a number"):  # 1e400 parses as inf
        tokens.verify(store, forge(store, raw_payload=b'{"exp": 1e400, "iat": 1}'), now=NOW)


def test_iat_in_the_future_and_missing(store: Store) -> None:
    with pytest.raises(TokenClaimInvalid, match="in the future"):
        tokens.verify(store, forge(store, claims={"iat": NOW + 3600}), now=NOW)
    with pytest.raises(TokenClaimInvalid, match="no iat claim"):
        tokens.verify(store, forge(store, drop=("iat",)), now=NOW)


# --------------------------------------------------------------------------- iss, aud, typ


@pytest.mark.parametrize(
    ("change", "drop", "message"),
    [
        ({"iss": "https://evil.example"}, (), "issuer 'https://evil.example' is not the expected 'authctl'"),
        ({}, ("iss",), "no iss claim"),
        ({"aud": "another-app"}, (), "does not include 'authctl'"),
        ({"aud": ["x", "y"]}, (), "does not include"),
        ({}, ("aud",), "no aud claim"),
        ({"aud": 7}, (), "neither a string nor a list"),
        ({}, ("sub",), "no sub claim"),
        ({}, ("jti",), "no jti claim"),
        ({"jti": 42}, (), "jti claim is not a short string"),
        ({}, ("ver",), "no ver claim"),
    ],
)
def test_wrong_or_missing_claims(store: Store, change: dict, drop: tuple, message: str) -> None:
    token = forge(store, claims=change, drop=drop)
    with pytest.raises(TokenClaimInvalid, match=message.replace("(", r"\(")) as info:
        tokens.verify(store, token, now=NOW)
    assert_safe(info.value, token)


def test_audience_in_a_list_is_accepted(store: Store) -> None:
    tokens.verify(store, forge(store, claims={"aud": ["other", "authctl"]}), now=NOW)


def test_refresh_and_access_tokens_cannot_stand_in_for_each_other(store: Store) -> None:
    refresh = tokens.issue(store, "rahul", refresh=True, now=NOW).token
    access = tokens.issue(store, "rahul", now=NOW).token
    with pytest.raises(TokenTypeMismatch, match="a refresh token cannot be used as an access token"):
        tokens.verify(store, refresh, now=NOW)
    with pytest.raises(TokenTypeMismatch, match="an access token cannot be used as a refresh token"):
        tokens.verify(store, access, expected_type="refresh", now=NOW)
    for typ in ("JWT", None):
        token = forge(store, header={"typ": typ} if typ else {}, drop=() if typ else ("typ",))
        with pytest.raises(TokenTypeMismatch):
            tokens.verify(store, token, now=NOW)
    tokens.verify(store, forge(store, header={"typ": "application/AT+JWT"}), now=NOW)  # RFC 8725 §3.11 spelling


# --------------------------------------------------------------------------- algorithms and keys


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_is_refused(store: Store, alg: str) -> None:
    header = b64(json.dumps({"alg": alg, "kid": active(store).kid, "typ": "at+jwt"}).encode())
    payload = b64(json.dumps(segments(tokens.issue(store, "rahul", now=NOW).token)[1]).encode())
    for token in (f"{header}.{payload}.", f"{header}.{payload}.{b64(b'sig')}"):
        with pytest.raises(TokenSignatureInvalid, match="unsigned token") as info:
            tokens.verify(store, token, now=NOW)
        assert_safe(info.value, token)
        inspection = tokens.inspect(store, token, now=NOW)
        assert not inspection.verified and not inspection.valid
        assert any("alg none" in warning for warning in inspection.warnings)


def test_algorithm_confusion_hs256_signed_with_our_public_key(store: Store) -> None:
    """The classic attack: use the published public key as an HMAC secret."""
    record = store.keys()[0]
    public = serialization.load_pem_private_key(record.private_material, None).public_key()
    for secret in (
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        json.dumps(record.public_jwk).encode(),
    ):
        header = b64(json.dumps({"alg": "HS256", "kid": record.kid, "typ": "at+jwt"}).encode())
        payload = b64(json.dumps(segments(tokens.issue(store, "suman", now=NOW).token)[1]).encode())
        signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        token = f"{header}.{payload}.{b64(signature)}"
        with pytest.raises(TokenSignatureInvalid, match="the algorithm comes from the key"):
            tokens.verify(store, token, now=NOW)
        inspection = tokens.inspect(store, token, now=NOW)
        assert not inspection.verified
        assert {c.name for c in inspection.failing} >= {"alg", "signature"}


def test_tampered_payload_fails_the_signature(store: Store) -> None:
    token = tokens.issue(store, "rahul", now=NOW).token
    head, body, sig = token.split(".")
    claims = segments(token)[1]
    claims["roles"] = ["admin"]
    tampered = f"{head}.{b64(json.dumps(claims).encode())}.{sig}"
    with pytest.raises(TokenSignatureInvalid, match="does not match key"):
        tokens.verify(store, tampered, now=NOW)


def test_a_token_signed_by_someone_else(store: Store) -> None:
    stranger = keys.load(keys.generate("ES256", kid=active(store).kid))  # same kid, different key
    token = forge(store, key=stranger)
    with pytest.raises(TokenSignatureInvalid):
        tokens.verify(store, token, now=NOW)


@pytest.mark.parametrize(
    "kid", ["no-such-key", "../../etc/passwd", "' OR '1'='1", "x'; DROP TABLE signing_keys; --", "", "k" * 5000]
)
def test_unknown_kids_are_a_token_error_never_a_lookup(store: Store, kid: str) -> None:
    token = forge(store, header={"kid": kid})
    with pytest.raises(UnknownKey, match="unknown key id") as info:
        tokens.verify(store, token, now=NOW)
    assert len(str(info.value)) < 200
    assert len(store.keys()) == 1  # the SQL fragment did nothing


def test_kid_missing_or_not_a_string(store: Store) -> None:
    with pytest.raises(UnknownKey, match="no kid"):
        tokens.verify(store, forge(store, drop=("kid",)), now=NOW)
    with pytest.raises(TokenMalformed, match="kid header is not a string"):
        tokens.verify(store, forge(store, header={"kid": ["a"]}), now=NOW)


def test_unknown_crit_header_is_refused(store: Store) -> None:
    for crit in (["exp"], ["b64"], "zzz", []):
        token = forge(store, header={"crit": crit, "exp": 1})
        with pytest.raises(TokenMalformed, match="critical"):
            tokens.verify(store, token, now=NOW)


@pytest.mark.parametrize("name", ["jku", "x5u", "jwk", "x5c"])
def test_key_url_headers_are_refused_and_never_fetched(store: Store, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    attempts: list[object] = []

    def no_network(*args, **kwargs):
        attempts.append(args)
        raise AssertionError("a network request was attempted")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    attacker = ec.generate_private_key(ec.SECP256R1())
    value = {
        "jku": "https://attacker.example/jwks.json",
        "x5u": "https://attacker.example/cert.pem",
        "jwk": keys.public_jwk("ES256", attacker, "evil"),
        "x5c": ["MIIB"],
    }[name]
    ours = forge(store, header={name: value})
    theirs = forge(store, header={name: value, "kid": "evil"}, key=keys.LoadedKey("evil", "ES256", "active", attacker.public_key(), attacker))
    for token in (ours, theirs):
        with pytest.raises(TokenMalformed, match=f"carries '{name}'"):
            tokens.verify(store, token, now=NOW)
        inspection = tokens.inspect(store, token, now=NOW)
        assert not inspection.valid and any(name in w and "never followed" in w for w in inspection.warnings)
    assert attempts == []


# --------------------------------------------------------------------------- malformed input


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("", "empty"),
        ("garbage", "3 dot-separated segments, this has 1"),
        ("a.b", "this has 2"),
        ("a.b.c.d", "this has 4"),
        ("a.b.c.d.e", "encrypted JWE"),
        ("!!!.???.***", "not base64url"),
        ("eyJ.e30.", "base64url"),
        (f"{b64(b'[1]')}.e30.", "header is not a JSON object"),
        (f"{b64(b'{nope')}.e30.", "header is not valid JSON"),
        (f"{b64(bytes([0xff, 0xfe]))}.e30.", "header is not UTF-8"),
        ("токен.токен.токен", "not base64url"),
        ("a\x00b.c.d", "not base64url"),
    ],
)
def test_garbage_gets_a_clear_answer(store: Store, token: str, message: str) -> None:
    with pytest.raises(TokenMalformed, match=message):
        tokens.verify(store, token, now=NOW)
    inspection = tokens.inspect(store, token, now=NOW)
    assert not inspection.valid and inspection.failing[0].name == "format"


def test_non_utf8_bytes(store: Store) -> None:
    with pytest.raises(TokenMalformed, match="bytes that cannot appear"):
        tokens.verify(store, b"\xff\xfe\x00garbage", now=NOW)  # type: ignore[arg-type]
    assert tokens.inspect(store, b"\xc3\x28.a.b", now=NOW).failing[0].name == "format"  # type: ignore[arg-type]


def test_tokens_over_8_kb_are_refused_before_decoding(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    big = forge(store, claims={"pad": "x" * 9000})
    decoded: list[str] = []
    monkeypatch.setattr(base64, "urlsafe_b64decode", lambda *a: decoded.append("!") or b"")
    with pytest.raises(TokenMalformed, match="larger than 8 KB; refused before decoding"):
        tokens.verify(store, big, now=NOW)
    inspection = tokens.inspect(store, big, now=NOW)
    assert [c.name for c in inspection.checks] == ["size"] and inspection.header is None
    with pytest.raises(TokenMalformed, match="larger than 8 KB"):
        tokens.verify(store, big.encode(), now=NOW)  # type: ignore[arg-type]
    assert decoded == []


def test_duplicate_json_members_are_refused(store: Store) -> None:
    claims = segments(tokens.issue(store, "rahul", now=NOW).token)[1]
    body = json.dumps(claims)[:-1] + ', "sub": "someone-else"}'
    with pytest.raises(TokenMalformed, match="repeats the member 'sub'"):
        tokens.verify(store, forge(store, raw_payload=body.encode()), now=NOW)
    head = json.dumps({"alg": "ES256", "kid": active(store).kid, "typ": "at+jwt", "alg ": 1})
    tokens.verify(store, forge(store, raw_header=head.encode()), now=NOW)  # "alg " is another member
    head = '{"alg": "ES256", "kid": "%s", "typ": "at+jwt", "alg": "none"}' % active(store).kid
    with pytest.raises(TokenMalformed, match="repeats the member 'alg'"):
        tokens.verify(store, forge(store, raw_header=head.encode()), now=NOW)
    nested = json.dumps(claims)[:-1] + ', "x": {"a": 1, "a": 2}}'
    with pytest.raises(TokenMalformed, match="repeats"):
        tokens.verify(store, forge(store, raw_payload=nested.encode()), now=NOW)


def test_payload_must_be_an_object(store: Store) -> None:
    with pytest.raises(TokenMalformed, match="payload is not a JSON object"):
        tokens.verify(store, forge(store, raw_payload=b"[1, 2]"), now=NOW)


def test_non_canonical_base64_is_refused(store: Store) -> None:
    token = tokens.issue(store, "rahul", now=NOW).token
    head, body, sig = token.split(".")
    last = sig[-1]
    # the final character of a 64-byte signature carries 4 unused bits: change only those
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = alphabet[alphabet.index(last) ^ 1]
    with pytest.raises(TokenMalformed, match="canonical"):
        tokens.verify(store, f"{head}.{body}.{sig[:-1]}{twin}", now=NOW)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300), st.lists(st.text(max_size=40), max_size=5).map(".".join)))
def test_random_input_only_ever_raises_token_errors(store: Store, garbage) -> None:
    with pytest.raises(TokenError):
        tokens.verify(store, garbage, now=NOW)
    inspection = tokens.inspect(store, garbage, now=NOW)
    assert not inspection.valid


# --------------------------------------------------------------------------- revocation, logout, users


def test_revoked_tokens_fail_until_they_would_have_expired(store: Store) -> None:
    issued = tokens.issue(store, "rahul", now=int(time.time()))
    tokens.verify(store, issued.token)
    result = tokens.revoke(store, issued.token, reason="lost laptop")
    assert result.newly and result.jti == issued.claims["jti"] and result.expires_at >= issued.expires_at
    with pytest.raises(TokenRevoked, match="was revoked"):
        tokens.verify(store, issued.token)
    assert tokens.revoke(store, issued.token).newly is False
    other = tokens.issue(store, "rahul")
    tokens.verify(store, other.token)  # only that jti


def test_revoke_by_jti_and_pruning(store: Store) -> None:
    now = int(time.time())
    result = tokens.revoke(store, jti="some-jti", now=now)
    assert result.expires_at == now + 30 * 86400 + 30
    store.revoke_jti("long-gone", now - 400)  # past exp by more than the largest leeway
    tokens.revoke(store, jti="another")  # revoking prunes expired entries
    assert not store.is_revoked("long-gone") and store.is_revoked("some-jti")
    with pytest.raises(InvalidInput):
        tokens.revoke(store, jti="   ")
    with pytest.raises(InvalidInput):
        tokens.revoke(store)


def test_revoking_an_expired_or_foreign_token(store: Store) -> None:
    expired = tokens.issue(store, "rahul", expired=True)
    assert tokens.revoke(store, expired.token).already_expired
    assert not store.is_revoked(expired.claims["jti"])
    stranger = keys.load(keys.generate("ES256", kid=active(store).kid))
    with pytest.raises(TokenSignatureInvalid, match="not one of our tokens"):
        tokens.revoke(store, forge(store, key=stranger))


def test_logout_and_password_change_end_earlier_tokens(store: Store) -> None:
    before = tokens.issue(store, "rahul").token
    store.bump_token_version("rahul")
    with pytest.raises(TokenUserInvalid, match="token version 1 is no longer current"):
        tokens.verify(store, before)
    after_logout = tokens.issue(store, "rahul").token
    tokens.verify(store, after_logout)
    store.set_password_hash("rahul", "$argon2id$new-hash")
    with pytest.raises(TokenUserInvalid, match="no longer current"):
        tokens.verify(store, after_logout)


def test_disabled_and_removed_users(store: Store) -> None:
    token = tokens.issue(store, "rahul").token
    store.set_disabled("rahul", True)
    with pytest.raises(TokenUserInvalid, match="rahul is disabled"):
        tokens.verify(store, token)
    store.set_disabled("rahul", False)
    tokens.verify(store, token)
    store.remove_user("rahul")
    with pytest.raises(TokenUserInvalid, match="not a user"):
        tokens.verify(store, token)


# --------------------------------------------------------------------------- rotation


def test_rotation_keeps_old_tokens_until_the_key_is_retired(store: Store) -> None:
    old_kid = active(store).kid
    old = tokens.issue(store, "rahul").token
    store.add_key(keys.generate("EdDSA"))
    new = tokens.issue(store, "rahul")
    assert new.header["alg"] == "EdDSA" and new.header["kid"] != old_kid
    tokens.verify(store, old)
    tokens.verify(store, new.token)
    store.retire_key(old_kid)
    with pytest.raises(UnknownKey, match=f"key {old_kid} was retired"):
        tokens.verify(store, old)
    inspection = tokens.inspect(store, old)
    assert inspection.verified and not inspection.valid  # the retired key still explains the signature
    assert [c.name for c in inspection.failing] == ["kid"]


def test_changes_from_another_connection_are_seen(store: Store) -> None:
    token = tokens.issue(store, "rahul").token
    tokens.verify(store, token)
    with Store.open(store.path) as other:
        other.add_key(keys.generate("ES256"))
        other.retire_key(segments(token)[0]["kid"])
    with pytest.raises(UnknownKey, match="retired"):
        tokens.verify(store, token)
    fresh, suman = tokens.issue(store, "rahul").token, tokens.issue(store, "suman").token
    with Store.open(store.path) as other:
        tokens.revoke(other, fresh)
    with pytest.raises(TokenRevoked):
        tokens.verify(store, fresh)
    with Store.open(store.path) as other:
        other.set_setting("issuer", "https://auth.example")
    with pytest.raises(TokenClaimInvalid, match="issuer 'authctl' is not the expected"):
        tokens.verify(store, suman)
    assert tokens.issue(store, "suman").claims["iss"] == "https://auth.example"


def test_a_stale_cache_never_causes_a_wrong_refusal(store: Store) -> None:
    """Another process rotates and changes the issuer; this store's very next verify agrees."""
    tokens.verify(store, tokens.issue(store, "rahul").token)  # the cache is warm
    with Store.open(store.path) as other:
        other.add_key(keys.generate("EdDSA"))
        other.set_setting("issuer", "https://auth.example")
        minted = tokens.issue(other, "rahul").token
    identity = tokens.verify(store, minted)
    assert identity.header["alg"] == "EdDSA" and identity.claims["iss"] == "https://auth.example"


def test_verify_reads_the_database_once(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    token = tokens.issue(store, "rahul").token
    tokens.verify(store, token)
    statements: list[str] = []
    store.conn.set_trace_callback(statements.append)
    try:
        tokens.verify(store, token)
    finally:
        store.conn.set_trace_callback(None)
    top_level = [sql for sql in statements if not sql.startswith("--")]  # "--": SQLite's own nested statements
    assert len(top_level) == 1 and "revoked_tokens" in top_level[0] and "users" in top_level[0]
    assert all(token not in sql for sql in statements)


def test_verify_does_not_reparse_keys(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    token = tokens.issue(store, "rahul").token
    tokens.verify(store, token)
    monkeypatch.setattr(keys, "load_private_pem", lambda data: pytest.fail("PEM parsed again"))
    for _ in range(5):
        tokens.verify(store, token)


@pytest.mark.parametrize("alg", ["EdDSA", "RS256", "HS256", "PS256", "ES384", "HS512"])
def test_every_algorithm_signs_and_verifies(store: Store, alg: str) -> None:
    store.add_key(keys.generate(alg, rsa_bits=2048))
    issued = tokens.issue(store, "rahul")
    assert issued.header["alg"] == alg
    assert tokens.verify(store, issued.token).user.username == "rahul"


def test_pyjwt_accepts_our_tokens_and_we_accept_pyjwt_tokens(store: Store) -> None:
    import jwt

    loaded = active(store)
    issued = tokens.issue(store, "rahul")
    claims = jwt.decode(issued.token, loaded.verify_key, algorithms=["ES256"], audience="authctl", issuer="authctl")
    assert claims == issued.claims
    theirs = jwt.encode(issued.claims | {"jti": "pyjwt-made"}, loaded.sign_key, algorithm="ES256",
                        headers={"kid": loaded.kid, "typ": "at+jwt"})
    assert tokens.verify(store, theirs).jti == "pyjwt-made"


# --------------------------------------------------------------------------- inspect


def test_inspect_lists_every_failing_check(store: Store) -> None:
    issued = tokens.issue(store, "rahul", ttl="5m")
    store.bump_token_version("rahul")
    tokens.revoke(store, issued.token)
    store.set_disabled("rahul", True)
    store.unassign("rahul", ["student"])
    inspection = tokens.inspect(store, issued.token, now=issued.expires_at + 3600)
    assert inspection.verified and not inspection.valid
    assert [c.name for c in inspection.failing] == ["exp", "revoked", "enabled", "version", "roles"]
    details = {c.name: c.detail for c in inspection.checks}
    assert "expired 1 h ago" in details["exp"] and "database now []" in details["roles"]
    names = [c.name for c in inspection.checks]
    assert names == ["size", "format", "kid", "alg", "signature", "exp", "nbf", "iat", "iss", "aud", "typ",
                     "revoked", "user", "enabled", "version", "roles"]


def test_inspect_valid_token(store: Store) -> None:
    issued = tokens.issue(store, "suman", now=NOW)
    inspection = tokens.inspect(store, issued.token, now=NOW + 60)
    assert inspection.verified and inspection.valid and inspection.failing == [] and inspection.warnings == []
    assert inspection.header == issued.header and inspection.claims == issued.claims
    assert {c.name: c.ok for c in inspection.checks}["nbf"] is True


def test_role_drift_is_shown_but_does_not_invalidate(store: Store) -> None:
    token = tokens.issue(store, "rahul").token
    store.assign("rahul", ["admin"])
    inspection = tokens.inspect(store, token)
    assert inspection.valid and [c.name for c in inspection.failing] == ["roles"]
    assert any("roles changed" in w for w in inspection.warnings)
    tokens.verify(store, token)


def test_inspect_warns_about_long_lifetimes_and_leeway(store: Store) -> None:
    long_lived = forge(store, claims={"iat": NOW, "exp": NOW + 90 * 86400})
    inspection = tokens.inspect(store, long_lived, now=NOW)
    assert any("above the maximum" in w for w in inspection.warnings)
    assert "exp" in [c.name for c in inspection.failing]
    issued = tokens.issue(store, "rahul", ttl="1m", now=NOW)
    within = tokens.inspect(store, issued.token, now=issued.expires_at + 10)
    assert within.valid and any("leeway" in w for w in within.warnings)


def test_a_token_none_of_our_keys_verify_is_decoded_unverified(store: Store) -> None:
    stranger = keys.load(keys.generate("ES256", kid="strange-kid"))
    token = forge(store, header={"kid": "strange-kid"}, key=stranger)
    inspection = tokens.inspect(store, token, now=NOW)
    assert not inspection.verified and not inspection.valid
    assert inspection.claims is not None and inspection.claims["name"] == "rahul"
    assert {c.name for c in inspection.failing} == {"kid", "signature"}


def test_inspect_without_any_keys_only_decodes(store: Store) -> None:
    token = tokens.issue(store, "rahul", now=NOW).token
    inspection = tokens.inspect(None, token, now=NOW)
    assert not inspection.verified and inspection.claims["name"] == "rahul"
    assert "UNVERIFIED" in {c.name: c.detail for c in inspection.checks}["signature"]


def test_inspect_with_foreign_keys(store: Store) -> None:
    import jwt

    app_key = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode({"sub": "42", "exp": NOW + 600, "iat": NOW}, app_key, algorithm="ES256")
    public = app_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    inspection = tokens.inspect(None, token, foreign_key=keys.foreign_pem(public), now=NOW)
    assert inspection.verified and inspection.valid, inspection.failing
    assert inspection.key_source == "--key"
    secret, other = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    hs = jwt.encode({"sub": "42", "exp": NOW + 600}, secret, algorithm="HS256")
    assert tokens.inspect(None, hs, foreign_key=keys.foreign_secret(secret.encode()), now=NOW).valid
    wrong = tokens.inspect(None, hs, foreign_key=keys.foreign_secret(other.encode()), now=NOW)
    assert not wrong.verified and [c.name for c in wrong.failing] == ["signature"]
    confused = tokens.inspect(None, hs, foreign_key=keys.foreign_pem(public), now=NOW)
    assert not confused.verified and "alg" in [c.name for c in confused.failing]
    assert not tokens.inspect(None, token, foreign_key=keys.foreign_pem(public), now=NOW + 3600).valid


def test_strip_token() -> None:
    assert tokens.strip_token("  Bearer abc.def.ghi \n") == "abc.def.ghi"
    assert tokens.strip_token("bearer   abc") == "abc"
    assert tokens.strip_token("\tabc\r\n") == "abc"
    assert tokens.strip_token("Bearerabc") == "Bearerabc"


def test_verify_and_inspect_agree(store: Store) -> None:
    samples = [
        tokens.issue(store, "rahul").token,
        tokens.issue(store, "rahul", expired=True).token,
        tokens.issue(store, "rahul", refresh=True).token,
        tokens.issue(store, "rahul", not_yet_valid=True).token,
        forge(store, claims={"iss": "x"}), forge(store, drop=("jti",)), forge(store, header={"kid": "zz"}),
        "a.b.c", "",
    ]
    for token in samples:
        try:
            tokens.verify(store, token)
            verified = True
        except TokenError:
            verified = False
        assert tokens.inspect(store, token, expected_type="access").valid is verified


def test_relative_times() -> None:
    assert clock.relative(NOW + 720, NOW) == "in 12 min"
    assert clock.relative(NOW - 3 * 3600, NOW, "expires in {}", "expired {} ago") == "expired 3 h ago"
    assert clock.relative(NOW, NOW) == "just now"
    assert clock.format_utc(0) == "1970-01-01 00:00:00 UTC"
    assert clock.format_utc(1e300) == "beyond the calendar"


def test_verified_signature_cache_never_skips_the_other_checks(store: Store) -> None:
    token = tokens.issue(store, "rahul").token
    tokens.verify(store, token)
    tokens.verify(store, token)  # second time: the signature comes from the cache
    header, payload, signature = token.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    for _ in range(2):  # the second time the rejection comes from the cache: still a rejection
        with pytest.raises((TokenSignatureInvalid, TokenMalformed)):
            tokens.verify(store, f"{header}.{payload}.{flipped}")
    tokens.verify(store, token)
    tokens.revoke(store, token)
    with pytest.raises(TokenRevoked):
        tokens.verify(store, token)


def test_verified_signature_cache_forgets_retired_keys(store: Store) -> None:
    old_token = tokens.issue(store, "rahul").token
    old_kid = active(store).kid
    tokens.verify(store, old_token)
    store.add_key(keys.generate("ES256"))
    tokens.verify(store, old_token)  # still verifying
    store.retire_key(old_kid)
    with pytest.raises(UnknownKey):
        tokens.verify(store, old_token)


def test_username_subjects_do_not_come_back_with_a_re_added_user(store: Store) -> None:
    """With sub = username, a removed and re-added user (same second, version 1 again) is another account:
    the token's uid claim names the account it was issued to."""
    store.set_setting("sub_claim", "username")
    old = tokens.issue(store, "suman")
    assert old.claims["uid"] == store.get_user("suman").uid
    tokens.verify(store, old.token)
    store.remove_user("suman")
    store.add_user("suman", None, ["admin"])  # no clock change: created in the same second as the token
    assert store.get_user("suman").token_version == old.claims["ver"]
    with pytest.raises(TokenUserInvalid, match="earlier account named suman"):
        tokens.verify(store, old.token)
    assert any(c.name == "user" and c.ok is False and "earlier account" in c.detail
               for c in tokens.inspect(store, old.token).checks)
    tokens.verify(store, tokens.issue(store, "suman").token)  # the new account's own tokens work


def test_username_subjects_need_the_uid_claim(store: Store) -> None:
    """A correctly signed token with sub = username but no uid claim cannot say which account it was for."""
    from authctl.keys import KeyRing

    store.set_setting("sub_claim", "username")
    issued = tokens.issue(store, "suman")
    claims = {k: v for k, v in issued.claims.items() if k != "uid"}
    key = KeyRing.for_store(store).active
    signing_input = f"{jose.b64url_encode(jose.dumps(issued.header))}.{jose.b64url_encode(jose.dumps(claims))}".encode()
    token = f"{signing_input.decode()}.{jose.b64url_encode(key.sign(signing_input))}"
    with pytest.raises(TokenClaimInvalid, match="no uid claim"):
        tokens.verify(store, token)


def test_uid_is_a_reserved_claim(store: Store) -> None:
    with pytest.raises(InvalidInput, match="set by authctl"):
        tokens.issue(store, "suman", extra_claims={"uid": "someone-else"})
