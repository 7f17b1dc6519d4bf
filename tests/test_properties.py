"""Property tests: hostile tokens, look-alike usernames, and role decisions against a reference model.

test_tokens.py already throws random text and bytes at ``tokens.verify``; these go
further: token-shaped input (three base64url parts, hostile headers and claims),
tokens signed by the database's own key with arbitrary claims, and the same input
through ``authctl token inspect|verify`` (argument, stdin and @FILE). test_names.py
checks the key function on random text; here the real store must treat every
compatibility-caseless spelling of a name as the same user, and nothing else.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import shutil
import sqlite3
import time
import unicodedata
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from authctl import policy, tokens
from authctl.errors import AuthctlError, Conflict, DatabaseError, InvalidInput, NotFound, TokenError
from authctl.keys import KeyRing
from authctl.names import normalize_username, skeleton, username_key
from authctl.render import emit_json
from authctl.store import SCHEMA_VERSION, Store

from .conftest import STRONG, Cli

SETTINGS = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
NOW = int(time.time())


# --------------------------------------------------------------------------- fixtures


@dataclass
class TokenDb:
    cli: Cli
    path: Path
    scratch: Path
    kid: str
    alg: str
    uid: str


@pytest.fixture(scope="module")
def token_db(tmp_path_factory: pytest.TempPathFactory) -> TokenDb:
    """One initialised database with one user, shared by the token properties (they only read it)."""
    folder = tmp_path_factory.mktemp("tokens")
    cli = Cli(folder / "auth.db")
    assert cli("init").exit_code == 0
    assert cli("user", "add", "rahul", "--password-stdin", input=STRONG + "\n").exit_code == 0
    with Store.open(cli.db) as store:
        key = KeyRing.for_store(store).active
        uid = store.get_user("rahul").uid
    return TokenDb(cli, cli.db, folder / "token.txt", key.kid, key.alg, uid)


@pytest.fixture(scope="module")
def token_store(token_db: TokenDb):
    with Store.open(token_db.path) as store:
        yield store


@pytest.fixture(scope="module")
def blank_db(tmp_path_factory: pytest.TempPathFactory):
    """A fresh database per example, copied from one created here (creating costs ~50 ms)."""
    folder = tmp_path_factory.mktemp("blank")
    Store.create(folder / "template.db").close()
    counter = itertools.count()

    def fresh() -> Store:
        path = folder / f"example-{next(counter)}.db"
        shutil.copyfile(folder / "template.db", path)
        os.chmod(path, 0o600)
        return Store.open(path)

    return fresh


# --------------------------------------------------------------------------- token-shaped input


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


#: JSON texts that are legal JSON but awkward: lone surrogates, overflowing numbers, controls.
JSON_ODDITIES = (
    '"\\ud800"', '"x\\udfff"', '"\\ud83d\\ude00"', "1e999", "-1e999", "1e400", "1" + "0" * 40, "-0", "0.5",
    "1e20", "-1e20", '"\\u0000"', '"\\u001b]0;title\\u0007"', '"\\u009b31m"', "true", "false", "null", "[]", "{}",
    '"' + "A" * 300 + '"', "[[[[[[[[[[[[]]]]]]]]]]]]", '"\\u202eevil"',
)
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30),
)
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def json_literal(*preferred: object, weight: int = 1) -> st.SearchStrategy[str]:
    """JSON text for one member value: a preferred value (``weight`` times as likely), a random value, or an oddity."""
    options = [st.builds(lambda v, a: json.dumps(v, ensure_ascii=a), json_values, st.booleans()),
               st.sampled_from(JSON_ODDITIES)]
    if preferred:
        options[:0] = [st.sampled_from([json.dumps(v) for v in preferred])] * weight
    return st.one_of(*options)


@st.composite
def json_object_text(draw, members: dict[str, st.SearchStrategy[str]]) -> str:
    """A JSON object as text, member by member: some left out, extras added, duplicates possible."""
    pairs = [(name, draw(value)) for name, value in members.items() if draw(st.sampled_from([True] * 4 + [False]))]
    pairs += draw(st.lists(st.tuples(st.text(max_size=8), json_literal()), max_size=2, unique_by=lambda p: p[0]))
    if pairs and draw(st.sampled_from([False] * 9 + [True])):
        pairs.append(draw(st.sampled_from(pairs)))  # a repeated member
    pairs = draw(st.permutations(pairs))
    return "{" + ",".join(f"{json.dumps(name)}:{value}" for name, value in pairs) + "}"


ALGS = ("none", "None", "nOnE", "HS256", "RS256", "ES256", "EdDSA", "PS256", "")
TYPS = ("at+jwt", "refresh+jwt", "JWT", "application/at+jwt", "AT+JWT")
#: Header members authctl refuses whatever their value: keys named by the token, critical
#: extensions, unencoded or compressed payloads.
REFUSED_HEADER_MEMBERS = {
    "jku": json_literal("https://attacker.example/jwks.json"),
    "x5u": json_literal("https://attacker.example/cert.pem"),
    "jwk": json_literal({"kty": "oct", "k": "c2VjcmV0"}),
    "x5c": json_literal(["MIIB"]),
    "crit": json_literal(["exp"], [], "b64"),
    "b64": json_literal(False),
    "zip": json_literal("DEF"),
}


def header_members(kids: list[str], algs: list[str]) -> dict[str, st.SearchStrategy[str]]:
    return {
        "alg": json_literal(*algs, *ALGS, weight=2),
        "kid": json_literal(*kids * 2, "", "../../etc/passwd", weight=2),
        "typ": json_literal(*TYPS, weight=2),
    }


@st.composite
def header_text(draw, kids: list[str], algs: list[str]) -> str:
    """A JSON header: two in three plausible (string alg, kid and typ, mostly ours), the rest
    hostile (odd values, members missing or repeated, a third with members authctl refuses)."""
    if draw(st.sampled_from([True, True, False])):
        header = {
            "alg": draw(st.one_of(st.sampled_from(algs or ALGS), st.sampled_from(ALGS))),
            "kid": draw(st.sampled_from([*kids * 4, "", "es256-000000000000"])),
            "typ": draw(st.sampled_from(TYPS)),
        }
        return json.dumps(dict(draw(st.permutations(list(header.items())))), ensure_ascii=draw(st.booleans()))
    members = header_members(kids, algs)
    if draw(st.integers(0, 2)) == 0:
        refused = draw(st.sets(st.sampled_from(sorted(REFUSED_HEADER_MEMBERS)), min_size=1, max_size=3))
        members.update({name: REFUSED_HEADER_MEMBERS[name] for name in refused})
    return draw(json_object_text(members))


#: Time offsets far from every boundary (leeway 30 s, max_ttl 30 d), so a verdict cannot
#: change between two calls a few milliseconds apart.
OFFSETS = (-10**7, -86400, -3600, -200, 200, 3600, 86400, 40 * 86400, 10**7)


def time_literal() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(OFFSETS).map(lambda d: str(int(time.time()) + d)), json_literal())


def payload_members(subs: list[str]) -> dict[str, st.SearchStrategy[str]]:
    return {
        "sub": json_literal(*subs, "rahul", ""),
        "iss": json_literal("authctl"),
        "aud": json_literal("authctl", ["authctl", "other"]),
        "exp": time_literal(),
        "iat": time_literal(),
        "nbf": time_literal(),
        "jti": json_literal("j-1", "x" * 300),
        "ver": json_literal(1, 2, True, 1.0),
        "roles": json_literal(["admin"], "admin"),
    }


def spoiled(clean: str) -> st.SearchStrategy[str]:
    """A base64url segment made invalid: padding, '+/' instead of '-_', or a stray character."""
    return st.one_of(
        st.just(clean + "=" * (-len(clean) % 4 or 2)),
        st.just(clean.replace("-", "+").replace("_", "/") + "+/"),
        st.tuples(st.integers(0, len(clean)), st.characters()).map(lambda p: clean[:p[0]] + p[1] + clean[p[0]:]),
    )


@st.composite
def token_shaped(
    draw, kids: list[str] = [], subs: list[str] = [], algs: list[str] = [], framed: bool = True,  # noqa: B006
) -> str:
    """Three base64url parts with hostile or plausible JSON and a random signature.

    Three in ten are spoiled in one place (a segment, or 2, 4 or 5 parts); the rest are well
    formed, so with our kid they reach the algorithm and signature checks. ``framed``
    adds what a pasted header value may carry ("Bearer ", a newline), which the CLI strips.
    """
    header = draw(header_text(kids, algs))
    payload = draw(st.one_of(
        json_object_text(payload_members(subs)), json_object_text(payload_members(subs)),
        json_literal(), st.binary(max_size=40),
    ))
    parts = [b64url(header.encode()), b64url(payload if isinstance(payload, bytes) else payload.encode()),
             b64url(draw(st.binary(max_size=80)))]
    spoil = draw(st.sampled_from(["none"] * 9 + ["header", "payload", "signature", "count"]))
    if spoil in ("header", "payload"):
        index = 0 if spoil == "header" else 1
        parts[index] = draw(spoiled(parts[index]))
    elif spoil == "signature":
        parts[2] = draw(st.one_of(spoiled(parts[2]), st.text(max_size=20)))
    elif spoil == "count":
        parts = (parts + [b64url(b"{}")] * 2)[:draw(st.sampled_from([2, 4, 5]))]
    token = ".".join(parts)
    if not framed:
        return token
    prefix = draw(st.sampled_from(["", "", "", "Bearer ", "bearer\t", "  ", "BEARER  "]))
    return prefix + token + draw(st.sampled_from(["", "", "\n", " \r\n"]))


huge_text = st.builds(lambda chunk, n: (chunk or "A") * n, st.text(min_size=1, max_size=4), st.integers(2000, 20000))
garbage_text = st.one_of(
    st.text(max_size=200),
    st.text(alphabet=st.characters(codec="ascii"), max_size=200),
    st.lists(st.text(max_size=40), min_size=2, max_size=6).map(".".join),
    huge_text,
    st.builds(lambda a, b: f"{a}.{b}.{a}", huge_text, st.text(max_size=10)),
)


def windows(text: str, size: int = 24) -> set[str]:
    """Every run of ``size`` characters of ``text`` (none if it is shorter)."""
    return {text[i:i + size] for i in range(len(text) - size + 1)}


def assert_not_echoed(token: str, output: str) -> None:
    """Neither the token nor 24 characters in a row of its payload or signature appear in ``output``.

    Only base64url runs count: that is what a real token is made of, while a run of spaces
    or box-drawing characters in garbage input could match a table border.
    """
    shown = tokens.strip_token(token)
    assert len(shown) <= 40 or shown not in output, "the whole token was echoed"
    secret = set()
    for part in shown.split(".")[1:3]:
        for run in re.findall(r"[A-Za-z0-9_-]{24,}", part):
            secret |= windows(run)
    leaked = windows(output) & secret
    assert not leaked, f"part of the token was echoed: {sorted(leaked)[0]!r}"


def assert_quiet_refusal(result, command: str, token: str, as_json: bool) -> None:
    """A 401 (exit 3) with the one-line error or the INVALID report; never a crash, never the token."""
    assert result.exit_code == 3, (result.exit_code, result.stdout[-400:], result.stderr)
    assert "internal error" not in result.stderr
    if command == "verify":
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    else:
        assert result.stderr == "", result.stderr  # the report goes to stdout; a database is present
        if as_json:
            report = json.loads(result.stdout, parse_constant=_reject_constant)
            assert report["valid"] is False and report["failing"]
        else:
            assert "Verdict: INVALID" in result.stdout
    assert not CONTROLS.intersection(result.stdout + result.stderr), "a control character reached the terminal"
    assert_not_echoed(token, result.stdout + result.stderr)


#: What a terminal acts on: C0 (but the newline), DEL and C1 (U+009B is a one-byte CSI).
CONTROLS = {chr(c) for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))} - {"\n"}
#: What emit_json escapes on top: line/paragraph separators and bidi controls.
JSON_UNSAFE = CONTROLS | {"\u2028", "\u2029"} | {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def run_token_command(db: TokenDb, command: str, channel: str, payload: str | bytes, as_json: bool):
    """``authctl token COMMAND`` with the token as an argument, on stdin, or in @FILE."""
    options = ["--json"] if as_json else []
    if channel == "argument":
        return db.cli("token", command, *options, "--", payload)
    if channel == "stdin":
        return db.cli("token", command, *options, "-", input=payload)
    db.scratch.write_bytes(payload if isinstance(payload, bytes) else payload.encode("utf-8"))
    return db.cli("token", command, *options, f"@{db.scratch}")


def ours(db: TokenDb, **options) -> st.SearchStrategy[str]:
    """Token-shaped input naming this database's key and user, so it gets past the kid lookup."""
    return token_shaped(kids=[db.kid], subs=[db.uid], algs=[db.alg], **options)


# --------------------------------------------------------------------------- token commands


@settings(SETTINGS, max_examples=120)
@given(
    data=st.data(),
    command=st.sampled_from(["inspect", "verify"]),
    channel=st.sampled_from(["argument", "stdin", "file"]),
    as_json=st.booleans(),
)
def test_token_commands_refuse_any_text_with_a_clean_401(token_db: TokenDb, data, command, channel, as_json) -> None:
    """Whatever text arrives, however it arrives, the answer is exit 3 and one safe line (or the report)."""
    token = data.draw(st.one_of(garbage_text, ours(token_db), ours(token_db)), label="token")
    if channel == "argument":
        assume(not token.startswith("@"))  # @PATH names a file to read, not a token
    result = run_token_command(token_db, command, channel, token, as_json)
    assert_quiet_refusal(result, command, token, as_json)


@settings(SETTINGS, max_examples=60)
@given(
    data=st.data(),
    command=st.sampled_from(["inspect", "verify"]),
    channel=st.sampled_from(["stdin", "file"]),
    as_json=st.booleans(),
)
def test_token_commands_refuse_any_bytes_with_a_clean_401(token_db: TokenDb, data, command, channel, as_json) -> None:
    """Bytes that are not UTF-8 (or not a JWT) on stdin or in @FILE: still exit 3 and one safe line."""
    raw = data.draw(st.one_of(
        st.binary(max_size=300),
        st.builds(lambda t, junk, at: t.encode()[:at] + junk + t.encode()[at:],
                  ours(token_db), st.binary(min_size=1, max_size=4), st.integers(0, 400)),
        st.builds(lambda b, n: b * n, st.binary(min_size=1, max_size=3), st.integers(3000, 30000)),
    ), label="raw")
    result = run_token_command(token_db, command, channel, raw, as_json)
    assert_quiet_refusal(result, command, raw.decode("utf-8", "replace"), as_json)


@settings(SETTINGS, max_examples=200)
@given(data=st.data())
def test_library_refuses_token_shaped_garbage_with_token_errors(token_db: TokenDb, token_store: Store, data) -> None:
    """verify, inspect and revoke raise nothing but AuthctlError subclasses on unsigned input."""
    garbage = data.draw(st.one_of(
        ours(token_db, framed=False), ours(token_db), garbage_text, st.binary(max_size=200),
    ), label="garbage")
    with pytest.raises(TokenError):
        tokens.verify(token_store, garbage, now=NOW)
    with pytest.raises(TokenError):
        tokens.verify(token_store, garbage, expected_type="refresh", now=NOW)
    for expected in (None, "access", "refresh"):
        assert not tokens.inspect(token_store, garbage, expected_type=expected, now=NOW).valid
    with pytest.raises(AuthctlError):
        tokens.revoke(token_store, garbage, now=NOW)


def sign(key, header: str, claims: str) -> str:
    signing_input = f"{b64url(header.encode())}.{b64url(claims.encode())}"
    return f"{signing_input}.{b64url(key.sign(signing_input.encode('ascii')))}"


def valid_claims(db: TokenDb, jti: str) -> dict[str, object]:
    """Claims as authctl issues them for rahul, valid for 15 minutes from now."""
    now = int(time.time())
    return {"iss": "authctl", "sub": db.uid, "aud": "authctl", "iat": now, "nbf": now, "exp": now + 900,
            "jti": jti, "ver": 1}


def valid_token(db: TokenDb, key, jti: str = "valid-example") -> str:
    return sign(key, json.dumps({"alg": key.alg, "kid": key.kid, "typ": "at+jwt"}), json.dumps(valid_claims(db, jti)))


@st.composite
def signed_token(draw, db: TokenDb, key) -> str:
    """A token our own key really signed: often exactly as authctl issues them (so the
    valid path is common), otherwise over headers and claims that may be anything."""
    header = draw(st.one_of(
        st.just(json.dumps({"alg": key.alg, "kid": key.kid, "typ": "at+jwt"})),
        st.just(json.dumps({"typ": "at+jwt", "kid": key.kid, "alg": key.alg})),
        header_text([key.kid], [key.alg]),
    ))
    valid = valid_claims(db, draw(st.uuids()).hex)
    claims = draw(st.one_of(
        st.just(json.dumps(valid)), st.just(json.dumps(valid)),
        json_object_text({name: json_literal(value) for name, value in valid.items()}),
        json_object_text(payload_members([db.uid])),
    ))
    return sign(key, header, claims)


def _accepted(store: Store, token: str, now: int, expected_type: str = "access") -> bool:
    try:
        tokens.verify(store, token, now=now, expected_type=expected_type)
    except TokenError:
        return False
    return True


@settings(SETTINGS, max_examples=150)
@given(data=st.data())
def test_inspect_agrees_with_verify_on_tokens_our_key_signed(token_db: TokenDb, token_store: Store, data) -> None:
    """With a good signature every claim check runs: no crash, and inspect's verdict is verify's."""
    key = KeyRing.for_store(token_store).active
    token = data.draw(signed_token(token_db, key))
    now = int(time.time())
    accepted = _accepted(token_store, token, now)
    assert tokens.inspect(token_store, token, expected_type="access", now=now).valid == accepted


@settings(SETTINGS, max_examples=40)
@given(data=st.data(), as_json=st.booleans())
@example(data=None, as_json=False)  # no data: the plainly valid token, so exit 0 is always seen
@example(data=None, as_json=True)
def test_token_commands_agree_with_the_library_on_signed_tokens(
    token_db: TokenDb, token_store: Store, data, as_json
) -> None:
    """Exit 0 exactly when the library accepts; otherwise 3; the --json report is strict JSON.

    ``verify`` expects an access token; ``inspect`` without ``--type`` accepts either kind.
    """
    key = KeyRing.for_store(token_store).active
    token = valid_token(token_db, key) if data is None else data.draw(signed_token(token_db, key))
    now = int(time.time())
    accepted = _accepted(token_store, token, now)
    accepted_any = accepted or _accepted(token_store, token, now, expected_type="refresh")
    assert accepted or data is not None, "the explicit example must take the valid path"
    inspected = run_token_command(token_db, "inspect", "argument", token, as_json)
    verified = run_token_command(token_db, "verify", "argument", token, as_json)
    for result, expected in ((inspected, accepted_any), (verified, accepted)):
        assert result.exit_code == (0 if expected else 3), (result.stdout[-400:], result.stderr)
        assert "internal error" not in result.stderr
        if as_json and result.stdout:
            json.loads(result.stdout, parse_constant=_reject_constant)
        assert not CONTROLS.intersection(result.stdout + result.stderr)
    if accepted and as_json:
        assert json.loads(inspected.stdout)["valid"] is True and json.loads(verified.stdout)["valid"] is True
    elif accepted:
        assert "Verdict: VALID" in inspected.stdout
    else:
        assert len(verified.stderr.splitlines()) == 1


@pytest.mark.parametrize("command", ["inspect", "verify"])
def test_token_json_output_carries_control_characters_only_as_escapes(token_db: TokenDb, token_store: Store, command) -> None:
    """A claim holding CSI, DEL or a bidi override reaches --json output escaped, and parses back unchanged."""
    key = KeyRing.for_store(token_store).active
    hostile = "\x9b2J\x7f\x85\x1b]0;owned\x07\u202eevil\u2028"
    claims = {**valid_claims(token_db, f"hostile-{command}"), "note": hostile}
    token = sign(key, json.dumps({"alg": key.alg, "kid": key.kid, "typ": "at+jwt"}), json.dumps(claims))
    result = run_token_command(token_db, command, "argument", token, as_json=True)
    assert result.exit_code == 0, (result.stdout[-400:], result.stderr)
    assert json.loads(result.stdout)["claims"]["note"] == hostile
    assert not JSON_UNSAFE.intersection(result.stdout + result.stderr), repr(result.stdout)


@pytest.mark.parametrize("value", [
    "\x9b31m", "\x1b]0;title\x07", "\x7f", "\x85", "\u2028\u2029", "\u202eevil\u202c", "\u2066x\u2069",
    {"\x9bkey": ["\x90", "\x9f", "ok \u00e9 用户"]},
])
def test_emit_json_escapes_every_control_character(capsys, value) -> None:
    """--json output is still JSON and still the same value, but a terminal sees no control character in it."""
    emit_json(value)
    printed = capsys.readouterr().out
    assert json.loads(printed) == value
    assert not JSON_UNSAFE.intersection(printed), repr(printed)
    if isinstance(value, dict):
        assert "ok \u00e9 用户" in printed  # other text is still written as itself, not as escapes


# --------------------------------------------------------------------------- usernames


def caseless_identity(name: str) -> str:
    """Unicode's compatibility caseless match (D146): the reference for "the same username"."""
    nfkd = lambda text: unicodedata.normalize("NFKD", text)  # noqa: E731
    return nfkd(nfkd(unicodedata.normalize("NFD", name).casefold()).casefold())


#: Letters whose case or compatibility forms are known to trip simple folding. Every
#: character that some normal form would change is written as an escape: an editor that
#: normalises the file on save would turn the Kelvin sign into K and the tests about it
#: into no-ops (test_look_alikes_in_this_file_are_escapes pins that).
TRICKY = (
    "abcfijkslmnortuxz" "ABKSI"
    "ß\u1e9e\u017f\u212a\u212b\u00c5\u00e5\u00b5μΜ"  # sharp s, long s, Kelvin, Angstrom, A ring, micro, mu
    "\ufb01\ufb02\ufb00\ufb03\ufb05"  # ligatures fi fl ff ffi, long s + t
    "\u01f0\u0390\u03b0\u1fb7\u1fb3ι\u1fbeı\u0130"  # j caron, dialytika tonos, ypogegrammeni, prosgegrammeni, dotless i, I dot
    "\u01c5\u01c4\u01c6\u03d0βςσΣ\u03d1θ\u1e9b\u0149"  # dz digraphs, beta/theta symbols, long s dot, 'n
    "\u00b2\u2082\u00aa\u00ba"  # superscript/subscript two, ordinal indicators
    "\uff52\uff41\uff48\uff55\uff4c\uff2b\u338f\u210c"  # fullwidth r a h u l K, square kg, black-letter H
    "\u2126\u03a9ω\u03aa"  # Ohm sign, capital omega, capital iota with dialytika
    "\u0301\u0308\u0342\u0345\u030c" "\u00e9" "zo\u00eb" "用户"
)
assert {"\u212a", "\u212b", "\u2126", "\u1fbe"} <= set(TRICKY), "the sign letters must stay distinct from K, A ring, omega, iota"
tricky_names = st.text(alphabet=TRICKY, min_size=1, max_size=12)
LOOKALIKES = {
    "ss": ("ß", "\u1e9e", "SS", "\u017fs", "\u017f\u017f"),
    "fi": ("\ufb01", "FI", "Fi"),
    "k": ("K", "\u212a", "\uff4b"),
    "K": ("k", "\u212a"),
    "\u00e5": ("\u00c5", "\u212b", "a\u030a"),
    "ω": ("\u03a9", "\u2126"),
    "μ": ("\u00b5", "Μ"),
    "ι": ("\u0345", "Ι", "\u1fbe"),
    "\u0390": ("\u03aa\u0301", "\u03ca\u0301", "ι\u0308\u0301"),
    "\u01f0": ("J\u030c", "j\u030c"),
    "rahul": ("\uff52\uff41\uff48\uff55\uff4c", "RAHUL", "Rahul"),
    "2": ("\u00b2", "\u2082"),
    "a": ("\u00aa", "\uff41"),
}


def _fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


TRANSFORMS = {
    "upper": str.upper, "lower": str.lower, "casefold": str.casefold, "swapcase": str.swapcase, "title": str.title,
    "fullwidth": _fullwidth, **{form: (lambda f: lambda t: unicodedata.normalize(f, t))(form)
                                for form in ("NFC", "NFD", "NFKC", "NFKD")},
}


@st.composite
def spelling_of(draw, name: str) -> str:
    """Another spelling of ``name``: case changes, normal forms, fullwidth, look-alike swaps."""
    for _ in range(draw(st.integers(0, 3))):
        step = draw(st.sampled_from(sorted(TRANSFORMS) + ["swap"]))
        if step != "swap":
            name = TRANSFORMS[step](name)
            continue
        for plain, alikes in LOOKALIKES.items():
            if plain in name and draw(st.booleans()):
                name = name.replace(plain, draw(st.sampled_from(alikes)))
    return name


@settings(max_examples=300, deadline=None)
@given(st.one_of(tricky_names, st.text(min_size=1, max_size=64)))
def test_normalising_a_username_twice_changes_nothing(name: str) -> None:
    """The stored spelling is a fixed point, and its key is the key of the spelling typed."""
    try:
        stored = normalize_username(name)
    except InvalidInput:
        return
    assert normalize_username(stored) == stored
    key = username_key(name)
    assert username_key(stored) == key
    if len(key) <= 64:  # a key may be longer than a name may be ("ß" * 64 folds to 128 letters)
        assert username_key(key) == key


@settings(SETTINGS, max_examples=150)
@given(base=tricky_names, data=st.data())
def test_a_username_is_unique_up_to_compatibility_caseless_match(blank_db, base: str, data) -> None:
    """Any spelling with the same D146 identity is the same user (Conflict, found by lookup); any other is not,
    and is refused as a look-alike exactly when its UTS #39 skeleton is the first name's.
    (Mixed scripts allowed here: that rule has tests of its own.)"""
    other = data.draw(st.one_of(spelling_of(base), tricky_names), label="other")
    store = blank_db()
    try:
        try:
            first = store.add_user(base, None, allow_mixed_script=True)
        except InvalidInput:
            assume(False)
        try:
            normalize_username(other)
        except InvalidInput:
            assert store.find_user(other) is None
            with pytest.raises(InvalidInput):
                store.add_user(other, None, allow_mixed_script=True)
            return
        if caseless_identity(other) == caseless_identity(base):
            found = store.find_user(other)
            assert found is not None and found.uid == first.uid, (base, other)
            with pytest.raises(Conflict):
                store.add_user(other, None, allow_mixed_script=True)
            assert store.user_count() == 1
        elif skeleton(other) == skeleton(base):
            assert store.find_user(other) is None, (base, other)
            with pytest.raises(Conflict, match="looks like existing user"):
                store.add_user(other, None, allow_mixed_script=True)
            assert store.user_count() == 1
        else:
            assert store.find_user(other) is None, (base, other)
            second = store.add_user(other, None, allow_mixed_script=True)
            assert second.uid != first.uid
            assert store.get_user(other).uid == second.uid
            assert store.get_user(base).uid == first.uid
    finally:
        store.close()


@pytest.mark.parametrize(
    ("existing", "variant"),
    [("rahul", "\uff52\uff41\uff48\uff55\uff4c"), ("rahul", "RAHUL"), ("\ufb01le", "file"), ("straße", "STRASSE"),
     ("kelvin", "\u212aelvin"), ("\u212aELVIN", "kelvin"), ("\u00e5sa", "\u212bSA"), ("ωmega", "\u2126MEGA"),
     ("\u00b5", "μ"), ("\u017fun", "SUN"), ("\u0390", "\u0390".upper()), ("\u1fb7", "\u1fbc\u0342")],
)
def test_known_look_alikes_are_the_same_user(blank_db, existing: str, variant: str) -> None:
    """The examples the property above is about, pinned so they never depend on the search."""
    store = blank_db()
    try:
        user = store.add_user(existing, None, allow_mixed_script=True)
        assert store.get_user(variant).uid == user.uid
        with pytest.raises(Conflict):
            store.add_user(variant, None, allow_mixed_script=True)
    finally:
        store.close()


def test_look_alikes_in_this_file_are_escapes() -> None:
    """An editor that normalises on save must not be able to turn the Kelvin sign into K here."""
    source = Path(__file__).read_text(encoding="utf-8")
    for form in ("NFC", "NFD", "NFKC", "NFKD"):
        assert unicodedata.normalize(form, source) == source, f"{form} changes this file: write such letters as escapes"
    for sign, letter in (("\u212a", "K"), ("\u212b", "\u00c5"), ("\u2126", "\u03a9"), ("\u1fbe", "ι")):
        assert sign != letter and unicodedata.normalize("NFC", sign) == letter
        assert sign in TRICKY and any(sign in alikes for alikes in LOOKALIKES.values())


def _as_schema_3(store: Store, keys: dict[int, str]) -> Path:
    """Give users the keys an older authctl stored (plain casefold) and mark the file schema 3."""
    with store.transaction():
        for user_id, key in keys.items():
            store.conn.execute("UPDATE users SET username_key = ? WHERE id = ?", (key, user_id))
    store.conn.execute("PRAGMA user_version=3")
    store.close()
    return store.path


@settings(SETTINGS, max_examples=25)
@given(names=st.lists(tricky_names, min_size=1, max_size=5))
@example(names=["\u0390"])  # casefold leaves three code points where the key has one
@example(names=["\u01f0", "\u212aelvin", "\ufb01"])
def test_upgrading_rekeys_users_so_every_spelling_finds_them(blank_db, names: list[str]) -> None:
    """Users keyed by an older authctl are re-keyed on open, so lookups by any equal spelling still work."""
    store = blank_db()
    users = []
    for name in names:
        try:
            users.append(store.add_user(name, None, allow_mixed_script=True))
        except (InvalidInput, Conflict):
            pass
    old_keys = {user.id: user.username.casefold() for user in users}
    if not any(old_keys[user.id] != username_key(user.username) for user in users):
        store.close()
        assume(False)  # nothing to re-key: the upgrade would have nothing to prove
    path = _as_schema_3(store, old_keys)
    with Store.open(path) as upgraded:
        assert upgraded.schema_version == SCHEMA_VERSION
        stored = dict(upgraded.conn.execute("SELECT id, username_key FROM users").fetchall())
        assert stored == {user.id: username_key(user.username) for user in users}
        for user in users:
            for spelling in {user.username, user.username.upper(), unicodedata.normalize("NFD", user.username)}:
                try:
                    normalize_username(spelling)
                except InvalidInput:
                    continue
                if caseless_identity(spelling) == caseless_identity(user.username):
                    assert upgraded.get_user(spelling).uid == user.uid, (user.username, spelling)


def test_upgrading_refuses_two_users_who_are_now_one_name(blank_db) -> None:
    """An older authctl let U+0390 and its upper case coexist; the upgrade stops and names both, changing nothing."""
    store = blank_db()
    first = store.add_user("\u0390", None)
    store.conn.execute(
        "INSERT INTO users (uid, username, username_key, disabled, token_version) VALUES ('u2', ?, ?, 0, 1)",
        ("\u0390".upper(), unicodedata.normalize("NFKC", "\u0390".upper()).casefold()),
    )
    store.conn.commit()
    path = _as_schema_3(store, {first.id: first.username.casefold()})
    with pytest.raises(DatabaseError, match="one name"):
        Store.open(path)
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
        assert conn.execute("SELECT count(*) FROM users").fetchone()[0] == 2


# --------------------------------------------------------------------------- roles and decisions


ROLE_NAMES = ("viewer", "editor", "auditor", "admin", "support", "owner")
USERS = ("ana", "ben", "cyd")
RESOURCES = ("docs", "users")
ACTIONS = ("read", "write", "delete")
CONCRETE = tuple(f"{r}:{a}" for r in RESOURCES for a in ACTIONS)
PERMISSIONS = CONCRETE + tuple(f"{r}:*" for r in RESOURCES)


@dataclass
class Model:
    """Plain-Python reference for roles, inheritance, grants and decisions."""

    roles: set[str] = field(default_factory=set)
    inherits: dict[str, set[str]] = field(default_factory=dict)
    grants: dict[str, set[str]] = field(default_factory=dict)
    assigned: dict[str, set[str]] = field(default_factory=dict)

    def closure(self, start: set[str]) -> set[str]:
        seen, todo = set(), list(start)
        while todo:
            role = todo.pop()
            if role not in seen:
                seen.add(role)
                todo.extend(self.inherits.get(role, ()))
        return seen

    def effective(self, user: str) -> set[str]:
        return {p for role in self.closure(self.assigned[user]) for p in self.grants.get(role, ())}

    def allows(self, user: str, permission: str) -> bool:
        granted = self.effective(user)
        return permission in granted or permission.split(":")[0] + ":*" in granted

    def apply(self, op: tuple) -> str:
        """The outcome the store must report: ok, conflict or notfound."""
        kind, a, b = op
        if kind == "add":
            if a in self.roles:
                return "conflict"
            self.roles.add(a)
            return "ok"
        if kind in ("assign", "unassign"):
            if b not in self.roles:
                return "notfound"
            if kind == "unassign" and b not in self.assigned[a]:
                return "notfound"
            (self.assigned[a].add if kind == "assign" else self.assigned[a].discard)(b)
            return "ok"
        if a not in self.roles:
            return "notfound"
        if kind == "remove":
            self.roles.discard(a)
            self.grants.pop(a, None)
            self.inherits.pop(a, None)
            for included in self.inherits.values():
                included.discard(a)
            for roles in self.assigned.values():
                roles.discard(a)
            return "ok"
        if kind == "grant":
            self.grants.setdefault(a, set()).add(b)
            return "ok"
        if kind == "revoke":
            if b not in self.grants.get(a, ()):
                return "notfound"
            self.grants[a].discard(b)
            return "ok"
        if b not in self.roles:
            return "notfound"
        if kind == "inherit":
            if a == b or a in self.closure({b}):
                return "conflict"
            self.inherits.setdefault(a, set()).add(b)
            return "ok"
        assert kind == "uninherit"
        if b not in self.inherits.get(a, ()):
            return "notfound"
        self.inherits[a].discard(b)
        return "ok"


def apply_to_store(store: Store, op: tuple) -> str:
    kind, a, b = op
    calls = {
        "add": lambda: store.add_role(a), "remove": lambda: store.remove_role(a, force=True),
        "grant": lambda: store.grant(a, [b]), "revoke": lambda: store.revoke(a, [b]),
        "inherit": lambda: store.include_roles(a, [b]), "uninherit": lambda: store.exclude_roles(a, [b]),
        "assign": lambda: store.assign(a, [b]), "unassign": lambda: store.unassign(a, [b]),
    }
    try:
        calls[kind]()
    except Conflict:
        return "conflict"
    except NotFound:
        return "notfound"
    return "ok"


roles_ = st.sampled_from(ROLE_NAMES)
operations = st.one_of(
    st.tuples(st.just("inherit"), roles_, roles_), st.tuples(st.just("inherit"), roles_, roles_),
    st.tuples(st.just("uninherit"), roles_, roles_),
    st.tuples(st.sampled_from(["grant", "grant", "revoke"]), roles_, st.sampled_from(PERMISSIONS)),
    st.tuples(st.sampled_from(["assign", "assign", "unassign"]), st.sampled_from(USERS), roles_),
    st.tuples(st.sampled_from(["add", "remove"]), roles_, st.none()),
)
requirements = st.lists(
    st.builds(lambda perms, any_of: policy.permission(*perms, any_of=any_of),
              st.lists(st.sampled_from(PERMISSIONS), min_size=2, max_size=3, unique=True), st.booleans()),
    max_size=3,
)


def assert_store_matches(store: Store, model: Model, extra: list[policy.Requirement]) -> None:
    """Every user's roles, effective permissions and every decision equal the reference's."""
    for name in USERS:
        user = store.get_user(name)
        assert set(user.roles) == model.assigned[name]
        access = store.access(user)
        closure = model.closure(model.assigned[name])
        assert set(access.roles) == closure
        for role, via in access.roles.items():
            assert (via is None) == (role in model.assigned[name])
            if via is not None:
                assert via in closure and role in model.inherits.get(via, ())
        assert set(access.permissions) == model.effective(name)
        for permission, role in access.permissions.items():
            assert role in closure and permission in model.grants.get(role, ())
        identity = tokens.Identity(user=user, claims={}, header={}, token_type="access", kid="k", jti="j", expires_at=0)
        authentication = policy.Authentication(identity=identity, given=True)
        for requirement in [policy.permission(p) for p in PERMISSIONS] + extra:
            decision = policy.authorize(store, authentication, requirement)
            wanted = [model.allows(name, p) for p in requirement.permissions]
            expected = any(wanted) if requirement.mode == "any" else all(wanted)
            assert decision.allowed == expected, (name, requirement.describe(), model)
            assert decision.status == (policy.ALLOWED if expected else policy.FORBIDDEN)
            for permission, role in decision.granted_by.items():
                assert role in closure and model.allows(name, permission)


@settings(SETTINGS, max_examples=70)
@given(
    initial=st.integers(2, len(ROLE_NAMES)),
    assignments=st.fixed_dictionaries({user: st.sets(roles_, max_size=2) for user in USERS}),
    ops=st.lists(operations, max_size=25),
    extra=requirements,
)
def test_role_inheritance_and_wildcards_match_a_reference_model(blank_db, initial, assignments, ops, extra) -> None:
    """Cycles refused exactly when the reference finds one; access and every decision agree after each change."""
    store = blank_db()
    model = Model(assigned={user: set() for user in USERS})
    try:
        for role in ROLE_NAMES[:initial]:
            assert apply_to_store(store, ("add", role, None)) == model.apply(("add", role, None)) == "ok"
        for user, wanted in assignments.items():
            roles = sorted(wanted & model.roles)
            store.add_user(user, None, roles)
            model.assigned[user] = set(roles)
        assert_store_matches(store, model, extra)
        for op in ops:
            assert apply_to_store(store, op) == model.apply(op), (op, model)
            assert_store_matches(store, model, extra)
        for role in model.roles:
            assert set(store.get_role(role).inherits) == model.inherits.get(role, set())
            assert set(store.role_permissions(role)) == {
                p for r in model.closure({role}) for p in model.grants.get(r, ())
            }
    finally:
        store.close()
