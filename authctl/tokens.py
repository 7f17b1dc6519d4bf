"""Issue, verify and inspect JWTs: the claim checks over ``jose``'s strict compact parsing.

``verify`` is on every request's path, so it parses the compact form itself
(strict base64url, UTF-8 JSON that refuses duplicate members), verifies the
signature with PyJWT's algorithm objects over keys parsed once (``KeyRing``),
and reads the database once: one statement gives the revocation (by primary
key), the user (by unique index) and a change stamp that keeps the cached keys
and settings honest. ``inspect`` runs the very same checks without stopping at
the first failure, so its verdict matches ``verify``.

Rules: the algorithm comes from the key, never the token; ``exp``, ``iat``,
``sub``, ``iss``, ``aud`` (when configured) and ``jti`` are required; a leeway
of ``settings.leeway``; a maximum lifetime; access and refresh tokens are told
apart by the ``typ`` header; ``jku``/``x5u``/``jwk``/``x5c`` are refused, never
fetched; an unknown ``crit`` is refused. Messages may name a kid, a jti or a
claim, never a token, secret or key.
"""

from __future__ import annotations

import math
import re
import secrets
import time
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from .clock import format_span, format_utc, relative
from .config import Settings, format_duration, parse_duration
from .errors import (
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
from . import jose
from .jose import MAX_TOKEN_BYTES, TYP
from .keys import KeyRing, LoadedKey
from .names import quoted

if TYPE_CHECKING:
    from .store import Store, User

# Claims authctl sets itself; --claim may not override them.
RESERVED_CLAIMS = frozenset({"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "ver", "roles", "name", "fam", "typ", "uid"})
INFORMATIONAL_CHECKS = frozenset({"roles"})  # drift is shown, but authorization reads the database
_MAX_ID = 256
# A jti given by hand (``revoke --jti``): ours are base64url; others' UUIDs, ULIDs or base64.
_JTI_FORM = re.compile(r"^[A-Za-z0-9._~:+/=-]{1,256}\Z")


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Check:
    """One line of a trace; ``ok`` is None when not checked or not applicable."""

    name: str
    ok: bool | None
    detail: str


@dataclass(frozen=True)
class Identity:
    user: "User"
    claims: dict
    header: dict
    token_type: str
    kid: str
    jti: str
    expires_at: int


@dataclass(frozen=True)
class IssuedToken:
    token: str = field(repr=False)
    header: dict
    claims: dict
    expires_at: int

    @property
    def token_type(self) -> str:
        return jose.token_type(self.header) or "access"


@dataclass
class Inspection:
    header: dict | None
    claims: dict | None
    verified: bool
    valid: bool
    checks: list[Check]
    warnings: list[str]
    key_source: str = "database"

    @property
    def failing(self) -> list[Check]:
        return [check for check in self.checks if check.ok is False]


@dataclass(frozen=True)
class Revocation:
    jti: str
    expires_at: int
    newly: bool
    already_expired: bool = False


# --------------------------------------------------------------------------- small helpers


def strip_token(text: str) -> str:
    """Whitespace and a leading ``Bearer `` (any case) removed: paste a header value as is."""
    text = text.strip()
    if text[:7].lower() == "bearer ":
        text = text[7:].strip()
    return text


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# --------------------------------------------------------------------------- the checks
#
# Each returns (ok, detail, error class for verify). Shared by verify (stops at the
# first failure) and inspect (collects all), so the two can never disagree.

_Result = tuple["bool | None", str, "type[TokenError] | None"]
_OK: _Result = (True, "", None)


def _ok(detail: str = "") -> _Result:
    return (True, detail, None)


def _fail(cls: type[TokenError], detail: str) -> _Result:
    return (False, detail, cls)


def _kid_result(ring: KeyRing | None, header: Mapping[str, Any], key: LoadedKey | None, retired: LoadedKey | None) -> _Result:
    kid = header.get("kid")
    if ring is None:
        return (None, "not checked: no keys to check against", None)
    if key is not None:
        if ring.any_kid and kid != key.kid:
            return _ok(f"checked against the key given with {ring.source}" + (f" (token kid {quoted(kid)})" if kid else ""))
        return _ok(f"{key.kid} ({key.status} key, {key.alg})")
    if retired is not None:
        return _fail(UnknownKey, f"key {retired.kid} was retired: its tokens are no longer accepted")
    if kid is None:
        return _fail(UnknownKey, "the header has no kid: authctl tokens always name their key")
    if not isinstance(kid, str):
        return _fail(TokenMalformed, "the kid header is not a string")
    return _fail(UnknownKey, f"unknown key id {quoted(kid)}: no such signing key")


def _alg_result(header: Mapping[str, Any], key: LoadedKey | None) -> _Result:
    alg = header.get("alg")
    if not isinstance(alg, str) or not alg:
        return _fail(TokenMalformed, "the header has no alg")
    if alg.lower() == "none":
        return _fail(TokenSignatureInvalid, f"unsigned token (alg {quoted(alg)}) is never accepted")
    if key is None:
        return (None, f"{quoted(alg)} claimed; no key to compare with", None)
    if alg != key.alg:
        return _fail(
            TokenSignatureInvalid,
            f"the token claims {quoted(alg)} but key {key.kid} is {key.alg}; the algorithm comes from the key",
        )
    return _ok(f"{key.alg}, the key's own algorithm")


def _typ_result(header: Mapping[str, Any], expected: str | None, strict: bool, explain: bool = True) -> _Result:
    found = jose.token_type(header)
    if expected is not None and found == expected and not explain:
        return _OK
    shown = quoted(header.get("typ")) if "typ" in header else "none"
    if expected is not None:
        if found == expected:
            return _ok(f"{found} token (typ {shown})")
        if found is None:
            return _fail(TokenTypeMismatch, f"typ {shown} is not an authctl {expected} token")
        return _fail(TokenTypeMismatch, f"a {found} token cannot be used as an {expected} token" if expected == "access"
                     else f"an {found} token cannot be used as a {expected} token")
    if found is not None:
        return _ok(f"{found} token (typ {shown})")
    if strict:
        return _fail(TokenTypeMismatch, f"typ {shown} is neither an access nor a refresh token of authctl")
    return (None, f"typ {shown}", None)


def _exp_result(claims: Mapping[str, Any], now: int, leeway: int, max_ttl: int | None, explain: bool) -> _Result:
    if "exp" not in claims:
        return _fail(TokenClaimInvalid, "no exp claim: tokens must expire")
    exp = _number(claims["exp"])
    if exp is None:
        return _fail(TokenClaimInvalid, "the exp claim is not a number")
    if exp <= now - leeway:
        return _fail(TokenExpired, f"the token expired {format_span(now - exp)} ago ({format_utc(exp)})")
    if max_ttl is not None:
        if exp - now > max_ttl + leeway:
            return _fail(
                TokenClaimInvalid,
                f"exp is {format_span(exp - now)} ahead, beyond the maximum lifetime {format_duration(max_ttl)}",
            )
        iat = _number(claims.get("iat"))
        if iat is not None and exp - iat > max_ttl + leeway:
            return _fail(
                TokenClaimInvalid,
                f"the lifetime (exp - iat) of {format_span(exp - iat)} exceeds the maximum {format_duration(max_ttl)}",
            )
    if not explain:
        return (True, "", None)
    if exp <= now:
        return _ok(f"expired {format_span(now - exp)} ago, still inside the {leeway} s leeway ({format_utc(exp)})")
    return _ok(f"expires {relative(exp, now)} ({format_utc(exp)})")


def _nbf_result(claims: Mapping[str, Any], now: int, leeway: int, explain: bool) -> _Result:
    if "nbf" not in claims:
        return (None, "no nbf claim (optional)", None)
    nbf = _number(claims["nbf"])
    if nbf is None:
        return _fail(TokenClaimInvalid, "the nbf claim is not a number")
    if nbf > now + leeway:
        return _fail(TokenNotYetValid, f"the token is not valid until {format_utc(nbf)} ({relative(nbf, now)})")
    return _ok(f"valid since {format_utc(nbf)}" if explain else "")


def _iat_result(claims: Mapping[str, Any], now: int, leeway: int, strict: bool, explain: bool) -> _Result:
    if "iat" not in claims:
        return _fail(TokenClaimInvalid, "no iat claim") if strict else (None, "no iat claim", None)
    iat = _number(claims["iat"])
    if iat is None:
        return _fail(TokenClaimInvalid, "the iat claim is not a number")
    if iat > now + leeway:
        return _fail(TokenClaimInvalid, f"the token claims to be issued {relative(iat, now)}, in the future")
    return _ok(f"issued {relative(iat, now)} ({format_utc(iat)})" if explain else "")


def _iss_result(claims: Mapping[str, Any], settings: Settings | None, explain: bool = True) -> _Result:
    iss = claims.get("iss")
    if not explain and settings is not None and iss == settings.issuer and isinstance(iss, str):
        return _OK
    if settings is None:
        return (None, f"{quoted(iss)} (not checked: no database settings)" if "iss" in claims else "no iss claim", None)
    if "iss" not in claims:
        return _fail(TokenClaimInvalid, "no iss claim")
    if iss != settings.issuer:
        return _fail(TokenClaimInvalid, f"issuer {quoted(iss)} is not the expected {quoted(settings.issuer)}")
    return _ok(f"{quoted(iss)}")


def _aud_result(claims: Mapping[str, Any], settings: Settings | None, explain: bool = True) -> _Result:
    aud = claims.get("aud")
    if not explain and settings is not None and settings.audience and aud == settings.audience:
        return _OK
    if settings is None:
        return (None, f"{quoted(aud)} (not checked: no database settings)" if "aud" in claims else "no aud claim", None)
    expected = settings.audience
    if not expected:
        if aud in (None, "", []):
            return (None, "no audience configured, none in the token", None)
        return _fail(TokenClaimInvalid, f"the token is for audience {quoted(aud)}, but this deployment has none")
    if "aud" not in claims:
        return _fail(TokenClaimInvalid, f"no aud claim; expected {quoted(expected)}")
    audiences = [aud] if isinstance(aud, str) else aud
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
        return _fail(TokenClaimInvalid, "the aud claim is neither a string nor a list of strings")
    if expected not in audiences:
        return _fail(TokenClaimInvalid, f"audience {quoted(aud)} does not include {quoted(expected)}")
    return _ok(f"{quoted(expected)}")


def _jti(claims: Mapping[str, Any]) -> str | None:
    jti = claims.get("jti")
    return jti if isinstance(jti, str) and 0 < len(jti) <= _MAX_ID else None


def _jti_result(claims: Mapping[str, Any], strict: bool) -> _Result:
    if _jti(claims) is None:
        detail = "no jti claim: the token could not be revoked" if "jti" not in claims else "the jti claim is not a short string"
        return _fail(TokenClaimInvalid, detail) if strict else (None, detail, None)
    return _ok()


def _sub(claims: Mapping[str, Any]) -> str | None:
    sub = claims.get("sub")
    return sub if isinstance(sub, str) and 0 < len(sub) <= _MAX_ID else None


def _find_user(store: "Store", settings: Settings, sub: str) -> "User | None":
    if settings.sub_claim == "uid":
        return store.find_user_by_uid(sub)
    return store.find_user(sub)


def _user_result(user: "User | None", claims: Mapping[str, Any]) -> _Result:
    if _sub(claims) is None:
        return _fail(TokenClaimInvalid, "no sub claim" if "sub" not in claims else "the sub claim is not a short string")
    if user is None:
        return _fail(TokenUserInvalid, "the token's subject is not a user (removed, or another database)")
    return _ok(f"{user.username} (uid {user.uid})")


def _enabled_result(user: "User") -> _Result:
    if user.disabled:
        return _fail(TokenUserInvalid, f"user {user.username} is disabled")
    return _ok("the account is enabled")


def _version_result(user: "User", claims: Mapping[str, Any]) -> _Result:
    ver = claims.get("ver")
    if isinstance(ver, bool) or not isinstance(ver, int):
        return _fail(TokenClaimInvalid, "no ver claim" if "ver" not in claims else "the ver claim is not a whole number")
    if ver != user.token_version:
        return _fail(
            TokenUserInvalid,
            f"token version {ver} is no longer current ({user.token_version}): "
            f"{user.username} logged out or changed password since",
        )
    return _ok(f"version {ver} is current")


def _account_result(user: "User", claims: Mapping[str, Any], sub_claim: str) -> _Result:
    """With ``sub_claim=username`` the name can come back with a re-created account (its version
    restarting at 1, in the same second): the token also carries the account's random uid."""
    if sub_claim != "username":
        return _ok()  # sub is the uid itself: never given to another account
    uid = claims.get("uid")
    if uid is None:
        return _fail(TokenClaimInvalid, "no uid claim: with sub_claim=username a token names its account's uid too")
    if uid != user.uid:
        return _fail(TokenUserInvalid, f"issued to an earlier account named {user.username} (removed since)")
    return _ok()


def _roles_result(user: "User", claims: Mapping[str, Any]) -> _Result:
    if "roles" not in claims:
        return (None, "no roles claim", None)
    roles = claims["roles"]
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        return (False, "the roles claim is not a list of names (informational only)", None)
    if set(roles) == set(user.roles):
        return _ok("the same as in the database" if roles else "none, as in the database")
    return (
        False,
        f"the token says [{', '.join(sorted(roles)[:10])}], the database now [{', '.join(user.roles[:10])}]; "
        "permissions always come from the database",
        None,
    )


# --------------------------------------------------------------------------- the cached context


@dataclass(frozen=True)
class _Context:
    stamp: tuple[int, int, int]
    settings: Settings
    ring: KeyRing
    #: (signing input, signature) -> (kid, valid?), for signatures this context's keys checked.
    #: A client sends the same token on every request until it expires (and a forger the
    #: same forgery); the signature check is the costliest step and its answer cannot
    #: change while the keys do not (any key change gives a new context). Every other
    #: check still runs each time.
    verified: dict = field(default_factory=dict, compare=False)


#: Bound of each context's cache of verified signatures; 0 turns the cache off.
SIGNATURE_CACHE_SIZE = 4096


_CONTEXTS: "weakref.WeakKeyDictionary[Store, dict[tuple, _Context]]" = weakref.WeakKeyDictionary()


def _context_key(store: "Store", overrides: Mapping[str, Any] | None) -> tuple:
    """One context per thread's connection (change stamps count per connection) and overrides."""
    return store.connection_id, tuple(sorted((overrides or {}).items()))


def _cached_context(store: "Store", overrides: Mapping[str, Any] | None) -> "_Context | None":
    return _CONTEXTS.get(store, {}).get(_context_key(store, overrides))


def _context(store: "Store", overrides: Mapping[str, Any] | None = None) -> _Context:
    """Settings (with an app's ``Auth(settings=...)`` overrides) and parsed keys per open
    store, rebuilt when the database has changed."""
    stamp = store.change_stamp()
    key = _context_key(store, overrides)
    per_store = _CONTEXTS.setdefault(store, {})
    ctx = per_store.get(key)
    if ctx is None or ctx.stamp != stamp:
        ctx = _Context(stamp, store.settings(dict(overrides) if overrides else None), KeyRing.for_store(store))
        per_store[key] = ctx
    return ctx


def current_settings(store: "Store", overrides: Mapping[str, Any] | None = None) -> Settings:
    """The settings verify and issue use, from the same cache (rebuilt when the database changes)."""
    return _context(store, overrides).settings


class _Stale(Exception):
    """The cached keys or settings were older than the database: verify again."""


# --------------------------------------------------------------------------- issue


def check_extra_claims(extra: Mapping[str, Any]) -> dict[str, Any]:
    """Extra claims for ``issue``: JSON values under names authctl does not set itself."""
    clean: dict[str, Any] = {}
    for name, value in extra.items():
        if not isinstance(name, str) or not name or len(name) > 64:
            raise InvalidInput(f"invalid claim name {quoted(name)}")
        if name in RESERVED_CLAIMS:
            raise InvalidInput(f"claim {name!r} is set by authctl and cannot be overridden")
        try:
            jose.dumps({name: value})
        except (TypeError, ValueError):
            raise InvalidInput(f"claim {name!r} has a value that is not JSON") from None
        clean[name] = value
    return clean


def issue(
    store: "Store",
    username: str,
    *,
    refresh: bool = False,
    ttl: int | str | None = None,
    audience: str | list[str] | None = None,
    extra_claims: Mapping[str, Any] | None = None,
    expired: bool = False,
    not_yet_valid: bool = False,
    now: int | None = None,
    family: str | None = None,
    allow_disabled: bool = False,
    overrides: Mapping[str, Any] | None = None,
) -> IssuedToken:
    """Sign a token for a user with the active key. ``audience=""`` omits ``aud``.

    ``allow_disabled`` signs even for a disabled account: offline explanations use it
    to show the 401 such a token really gets. The CLI never sets it. ``overrides``
    are an app's own settings (``Auth(settings=...)``) over the stored ones.
    """
    ctx = _context(store, overrides)
    settings = ctx.settings
    if expired and not_yet_valid:
        raise InvalidInput("a token cannot be both expired and not yet valid", hint="expired")
    user = store.get_user(username)
    if user.disabled and not allow_disabled:
        raise InvalidInput(f"user {user.username} is disabled; `authctl user enable {user.username}` first")
    lifetime = (settings.refresh_ttl if refresh else settings.access_ttl) if ttl is None else parse_duration(ttl)
    if lifetime <= 0:
        raise InvalidInput("the lifetime must be positive")
    if lifetime > settings.max_ttl:
        raise InvalidInput(
            f"a lifetime of {format_duration(lifetime)} is above max_ttl ({format_duration(settings.max_ttl)})",
            hint="ttl",
        )
    key = ctx.ring.active
    if key is None:
        raise NotFound("no active signing key: `authctl key rotate` creates one")
    now = int(time.time()) if now is None else int(now)
    margin = settings.leeway + 60  # presets fail by a clear minute beyond the leeway
    iat = nbf = now
    if expired:
        iat = nbf = now - lifetime - margin
    elif not_yet_valid:
        nbf = now + margin
    exp = max(iat + lifetime, nbf + 1)
    aud = settings.audience if audience is None else audience
    if family is not None and (not isinstance(family, str) or not 0 < len(family) <= _MAX_ID):
        raise InvalidInput("the refresh family must be a short string")
    claims: dict[str, Any] = {
        "iss": settings.issuer,
        "sub": user.uid if settings.sub_claim == "uid" else user.username,
    }
    if aud:
        claims["aud"] = aud
    claims.update({
        "name": user.username, "iat": iat, "nbf": nbf, "exp": exp, "jti": secrets.token_urlsafe(16),
        "ver": user.token_version, "roles": list(user.roles),
    })
    if settings.sub_claim == "username":
        claims["uid"] = user.uid  # a re-created account of the same name is another account
    if family is not None:
        claims["fam"] = family
    if extra_claims:
        claims.update(check_extra_claims(extra_claims))
    header = {"alg": key.alg, "kid": key.kid, "typ": TYP["refresh" if refresh else "access"]}
    signing_input = f"{jose.b64url_encode(jose.dumps(header))}.{jose.b64url_encode(jose.dumps(claims))}".encode("ascii")
    token = f"{signing_input.decode('ascii')}.{jose.b64url_encode(key.sign(signing_input))}"
    if len(token) > MAX_TOKEN_BYTES:
        raise InvalidInput(f"the token would be larger than {MAX_TOKEN_BYTES // 1024} KB; use fewer or smaller claims")
    return IssuedToken(token=token, header=header, claims=claims, expires_at=int(exp))


# --------------------------------------------------------------------------- verify


def _signing_key(ring: KeyRing, header: Mapping[str, Any]) -> LoadedKey:
    """The key that must have signed: refused headers, then alg none, then the kid, then alg == key's alg."""
    problem = jose.header_problem(header)
    if problem:
        raise TokenMalformed(problem)
    ok, detail, cls = _alg_result(header, None)
    if ok is False:
        raise cls(detail)  # type: ignore[misc]
    key = ring.lookup(header.get("kid"))
    if key is None:
        _ok_, detail, cls = _kid_result(ring, header, None, ring.retired(header.get("kid")))
        raise (cls or UnknownKey)(detail)
    ok, detail, cls = _alg_result(header, key)
    if ok is False:
        raise cls(detail)  # type: ignore[misc]
    return key


def verify(
    store: "Store", token: str, *, expected_type: str = "access", now: int | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Identity:
    """The identity behind a valid token, or a specific ``TokenError`` with one safe line.

    The cached keys and settings are checked for freshness by the same statement that
    reads the revocation and the user; a failure is confirmed against a fresh cache
    before it is reported, so another process's rotate, retire or `config set` counts
    from its very next request.
    """
    if expected_type not in TYP:
        raise ValueError("expected_type must be 'access' or 'refresh'")
    now = int(time.time()) if now is None else int(now)
    ctx = _cached_context(store, overrides) or _context(store, overrides)
    for _attempt in range(3):
        try:
            return _verify(store, ctx, token, expected_type, now, final=False)
        except _Stale:
            pass
        except TokenError:
            if store.change_stamp() == ctx.stamp:
                raise
        ctx = _context(store, overrides)
    return _verify(store, ctx, token, expected_type, now, final=True)


def _verify(store: "Store", ctx: _Context, token: str, expected_type: str, now: int, *, final: bool) -> Identity:
    parsed = jose.parse(token)
    header = parsed.header
    key = _signing_key(ctx.ring, header)
    signed = (parsed.signing_input, parsed.signature)
    known = ctx.verified.get(signed) if SIGNATURE_CACHE_SIZE else None
    if known is None or known[0] != key.kid:
        known = (key.kid, key.verify(parsed.signing_input, parsed.signature))
        if SIGNATURE_CACHE_SIZE:
            if len(ctx.verified) >= SIGNATURE_CACHE_SIZE:
                ctx.verified.clear()
            ctx.verified[signed] = known
    if not known[1]:
        raise TokenSignatureInvalid(f"the signature does not match key {key.kid}")
    claims = jose.payload(parsed)
    settings = ctx.settings
    leeway = settings.leeway
    for ok, detail, cls in (
        _typ_result(header, expected_type, True, False),
        _exp_result(claims, now, leeway, settings.max_ttl, False),
        _nbf_result(claims, now, leeway, False),
        _iat_result(claims, now, leeway, True, False),
        _iss_result(claims, settings, False),
        _aud_result(claims, settings, False),
        _jti_result(claims, True),
    ):
        if ok is False:
            raise cls(detail)  # type: ignore[misc]
    jti, sub = claims["jti"], _sub(claims)
    if sub is None:
        ok, detail, cls = _user_result(None, claims)
        raise cls(detail)  # type: ignore[misc]
    stamp, revoked, user = store.token_state(jti, sub, by=settings.sub_claim)
    if stamp != ctx.stamp and not final:
        raise _Stale()
    if revoked:
        raise TokenRevoked(f"token {quoted(jti)} was revoked")
    if user is None:
        raise TokenUserInvalid(_user_result(None, claims)[1])
    for ok, detail, cls in (
        _account_result(user, claims, settings.sub_claim), _enabled_result(user), _version_result(user, claims),
    ):
        if ok is False:
            raise cls(detail)  # type: ignore[misc]
    return Identity(
        user=user, claims=claims, header=header, token_type=expected_type,
        kid=key.kid, jti=jti, expires_at=int(claims["exp"]),
    )


# --------------------------------------------------------------------------- inspect


def inspect(
    store: "Store | None",
    token: str | bytes,
    *,
    expected_type: str | None = None,
    foreign_key: KeyRing | None = None,
    now: int | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Inspection:
    """Decode whatever can be decoded and run every check, collecting all failures.

    Without a store and a foreign key nothing can be verified: the token is only
    decoded (``verified`` False). ``foreign_key`` (``keys.foreign_pem`` /
    ``foreign_secret`` / ``foreign_jwks``) verifies tokens of another issuer.
    """
    if expected_type is not None and expected_type not in TYP:
        raise ValueError("expected_type must be 'access', 'refresh' or None")
    now = int(time.time()) if now is None else int(now)
    ctx = _context(store, overrides) if store is not None else None
    settings = ctx.settings if ctx is not None else None
    ring = foreign_key or (ctx.ring if ctx is not None else None)
    source = ring.source if ring is not None else "none"
    checks: list[Check] = []
    warnings: list[str] = []

    def add(name: str, result: _Result) -> None:
        checks.append(Check(name, result[0], result[1]))

    def done(header: dict | None, claims: dict | None, verified: bool) -> Inspection:
        valid = verified and not any(c.ok is False for c in checks if c.name not in INFORMATIONAL_CHECKS)
        return Inspection(header, claims, verified, valid, checks, warnings, source)

    # size and format: refuse oversized input before decoding anything
    try:
        text = jose.as_text(token)
    except TokenMalformed as exc:
        add("size" if "larger" in str(exc) else "format", (False, str(exc), None))
        return done(None, None, False)
    if len(text) > MAX_TOKEN_BYTES:
        add("size", (False, f"{len(text)} bytes: larger than {MAX_TOKEN_BYTES // 1024} KB, refused before decoding", None))
        return done(None, None, False)
    add("size", _ok(f"{len(text)} bytes"))
    try:
        parsed = jose.parse(text)
    except TokenMalformed as exc:
        add("format", (False, str(exc), None))
        return done(None, None, False)
    header = parsed.header
    claims: dict | None
    format_problems = []
    try:
        claims = jose.payload(parsed)
    except TokenMalformed as exc:
        claims = None
        format_problems.append(str(exc))
    problem = jose.header_problem(header)
    if problem:
        format_problems.append(problem)
    for name in jose.REFUSED_HEADERS:
        if name in header:
            warnings.append(f"header {name!r} present: never followed (no request is made); the token is refused")
    add("format", (False, "; ".join(format_problems), None) if format_problems else _ok("three segments, JSON header and payload"))

    # key, algorithm, signature
    kid = header.get("kid")
    key = ring.lookup(kid) if ring is not None else None
    retired = ring.retired(kid) if ring is not None and key is None else None
    add("kid", _kid_result(ring, header, key, retired))
    candidate = key or retired
    alg_result = _alg_result(header, candidate)
    add("alg", alg_result)
    alg = header.get("alg")
    if isinstance(alg, str) and alg.lower() == "none":
        warnings.append("alg none: the token is unsigned and can be forged by anyone")
    verified = False
    if candidate is None:
        add("signature", (False, "UNVERIFIED: none of the known keys can check it" if ring is not None
                          else "UNVERIFIED: no key to check it with (no database, --key, --secret-stdin or --jwks)", None))
    elif alg_result[0] is False:
        add("signature", (False, "UNVERIFIED: not checked, the algorithm does not match the key", None))
    elif candidate.verify(parsed.signing_input, parsed.signature):
        verified = True
        add("signature", _ok(f"valid, made by key {candidate.kid}" if not ring.any_kid else f"valid ({ring.source})"))  # type: ignore[union-attr]
    else:
        add("signature", _fail(TokenSignatureInvalid, f"does not match key {candidate.kid}: altered, or signed by another key"))

    if claims is None:
        for name in ("exp", "nbf", "iat", "iss", "aud", "typ", "revoked", "user", "enabled", "version", "roles"):
            add(name, (None, "not checked: the payload cannot be read", None))
        return done(header, None, verified)

    strict = settings is not None
    leeway = settings.leeway if settings else Settings().leeway
    max_ttl = settings.max_ttl if settings else None
    add("exp", _exp_result(claims, now, leeway, max_ttl, True))
    add("nbf", _nbf_result(claims, now, leeway, True))
    add("iat", _iat_result(claims, now, leeway, strict, True))
    add("iss", _iss_result(claims, settings))
    add("aud", _aud_result(claims, settings))
    add("typ", _typ_result(header, expected_type, strict))

    exp, iat = _number(claims.get("exp")), _number(claims.get("iat"))
    if "exp" not in claims:
        warnings.append("no exp: the token never expires")
    elif exp is not None and exp <= now < exp + leeway:
        warnings.append(f"expired {format_span(now - exp)} ago; accepted only thanks to the {leeway} s leeway")
    limit = max_ttl if max_ttl is not None else Settings().max_ttl
    if exp is not None and iat is not None and exp - iat > limit:
        warnings.append(f"lifetime of {format_span(exp - iat)} is above the maximum {format_duration(limit)}")
    elif exp is not None and exp - now > limit:
        warnings.append(f"expires {format_span(exp - now)} from now, above the maximum lifetime {format_duration(limit)}")

    # revocation and the user: only with a database
    jti_result = _jti_result(claims, strict)
    if store is None or ctx is None:
        jti = _jti(claims)
        add("revoked", jti_result if jti_result[0] is not True else (None, f"jti {quoted(jti)} (not checked: no database)", None))
        for name in ("user", "enabled", "version", "roles"):
            add(name, (None, "not checked: no database", None))
        return done(header, claims, verified)
    if jti_result[0] is False:
        add("revoked", jti_result)
    elif store.is_revoked(claims["jti"]):
        add("revoked", _fail(TokenRevoked, f"token {quoted(claims['jti'])} was revoked"))
    else:
        add("revoked", _ok(f"jti {quoted(claims['jti'])} is not revoked"))
    sub = _sub(claims)
    user = _find_user(store, settings, sub) if sub is not None and settings is not None else None
    account = _account_result(user, claims, settings.sub_claim) if user is not None and settings is not None else _ok()
    add("user", _user_result(user, claims) if account[0] is not False else account)
    if user is None:
        for name in ("enabled", "version", "roles"):
            add(name, (None, "not checked: no such user", None))
    else:
        add("enabled", _enabled_result(user))
        add("version", _version_result(user, claims))
        roles = _roles_result(user, claims)
        add("roles", roles)
        if roles[0] is False:
            warnings.append("roles changed since the token was issued (informational: authorization reads the database)")
    if retired is not None:
        warnings.append(f"signed by retired key {retired.kid}")
    return done(header, claims, verified)


# --------------------------------------------------------------------------- revoke


def revoke(
    store: "Store", token: str | None = None, *, jti: str | None = None, reason: str = "", now: int | None = None
) -> Revocation:
    """Denylist a token by its jti until it would have expired (pruned after that).

    With a token, its signature must check out against our keys (so its ``exp`` can
    be trusted); with a bare jti, the entry lasts the longest any token may live.
    """
    ctx = _context(store)
    now = int(time.time()) if now is None else int(now)
    settings = ctx.settings
    if (token is None) == (jti is None):
        raise InvalidInput("give a token or a jti, not both")
    if token is not None:
        parsed = jose.parse(token)
        key = _signing_key(ctx.ring, parsed.header)
        if not key.verify(parsed.signing_input, parsed.signature):
            raise TokenSignatureInvalid(f"the signature does not match key {key.kid}; not one of our tokens")
        claims = jose.payload(parsed)
        jti = _jti(claims)
        if jti is None:
            raise TokenClaimInvalid("the token has no usable jti claim, so it cannot be revoked")
        exp = _number(claims.get("exp"))
        if exp is None:
            raise TokenClaimInvalid("the token has no usable exp claim")
        expires_at = int(math.ceil(exp)) + settings.leeway
        if expires_at < now:
            return Revocation(jti, expires_at, newly=False, already_expired=True)
    else:
        assert jti is not None
        jti = jti.strip()
        if not _JTI_FORM.match(jti):
            raise InvalidInput("--jti needs a token id (the jti claim): 1-256 characters from A-Z, a-z, 0-9 and ._~:+/=-")
        expires_at = now + settings.max_ttl + settings.leeway
    newly = store.revoke_jti(jti, expires_at, reason)
    return Revocation(jti, expires_at, newly=newly)


__all__ = [
    "Check", "Identity", "IssuedToken", "Inspection", "Revocation", "issue", "verify", "inspect", "revoke",
    "strip_token", "check_extra_claims", "TYP", "MAX_TOKEN_BYTES",
]
