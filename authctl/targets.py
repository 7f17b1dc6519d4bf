"""Targets: how authctl authenticates to an app that has its own security.

A target is a named object in the database saying how to speak one app's
credentials, for ``check``, ``probe`` and ``matrix`` (``--target NAME``):

- a token template: algorithm and key (HS secret or private PEM; kid-less
  allowed), ``sub`` from the username or a per-user value, a ``scope`` /
  ``scopes`` / ``permissions`` claim from the user's authctl permissions or set
  per user, optional ``iss``/``aud``/extra claims, a lifetime;
- or the app's own OAuth2 password login (its tokenUrl), with each user's
  password read from a private file or stdin;
- or HTTP Basic with those passwords;
- or each user's fixed secret (an API key), read the same way;

and how to send the token: ``Authorization: Bearer``, another scheme word
(``Token``), or an API-key header, query parameter or cookie.

Secrets (key, passwords) are stored as a blob beside the configuration, like
authctl's own key material, and never appear in a listing, a message, the audit
log or ``--json``. A weak HMAC secret (a tutorial's ``"SECRET"``) is accepted
only with an explicit unsafe opt-in, and only here: authctl's own keys are a
different table that ``key import`` guards.
"""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from .errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from .keys import KeyRing
    from .store import Store

MODES = ("token", "login", "basic", "static")
SEND_KINDS = ("bearer", "scheme", "header", "query", "cookie")
SCOPE_CLAIMS = ("scope", "scopes", "permissions")
DEFAULT_TTL = 900
MAX_TTL = 30 * 86400
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_FIELD = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$")  # an HTTP token: header, query or cookie name


@dataclass(frozen=True)
class Credential:
    """What one request carries for one user: headers, query parameters, cookies.

    ``trusted``: built from the target, so the app accepts it as far as authctl
    can tell offline; ``valid``: checked against the target's key (None: not
    checked); ``scopes``: what the token grants (None: unknown). ``login`` is a
    password login still to perform, live, before the request is sent.
    """

    label: str
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    query: dict[str, str] = field(default_factory=dict, repr=False)
    cookies: dict[str, str] = field(default_factory=dict, repr=False)
    scopes: tuple[str, ...] | None = None
    trusted: bool = True
    valid: bool | None = None
    problem: str | None = None
    login: "Login | None" = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Login:
    """An OAuth2 password login (form ``username``/``password`` to ``token_url``), then ``send``."""

    token_url: str
    username: str
    password: str = field(repr=False)
    send: str = "bearer"
    param: str | None = None

    def credential_for(self, access_token: str, label: str) -> Credential:
        return _sent(self.send, self.param, access_token, label, scopes=None)


@dataclass(frozen=True)
class Target:
    name: str
    config: dict[str, Any]
    created_at: str
    secret: dict[str, Any] = field(repr=False)

    @property
    def mode(self) -> str:
        return str(self.config["mode"])

    def as_dict(self) -> dict[str, Any]:
        """Everything but the secrets: which users have a password, never the password."""
        shown = dict(self.config)
        shown["key"] = None
        if self.mode == "token":
            alg = self.config.get("alg", "")
            shown["key"] = f"{alg} {'secret' if str(alg).startswith('HS') else 'private key'} (stored, not shown)"
        shown["passwords_for"] = sorted(self.secret.get("passwords", {}))
        return {"name": self.name, "created_at": self.created_at, **shown}


# --------------------------------------------------------------------------- parsing input


def validate_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise InvalidInput("invalid target name: 1-64 characters from A-Z, a-z, 0-9, '.', '_' and '-'")
    return name


def _parse_send(text: str) -> tuple[str, str | None]:
    """``bearer``, ``scheme:WORD``, ``header:NAME``, ``query:NAME`` or ``cookie:NAME``."""
    kind, _, param = (text or "bearer").strip().partition(":")
    kind = kind.lower()
    if kind not in SEND_KINDS:
        raise InvalidInput(f"--send {text[:40]!r}: use bearer, scheme:WORD, header:NAME, query:NAME or cookie:NAME")
    if kind == "bearer":
        return kind, None
    if not _FIELD.match(param):
        raise InvalidInput(f"--send {kind}: needs a name, e.g. {kind}:{'Token' if kind == 'scheme' else 'X-API-Key'}")
    return kind, param


def parse_target_key(data: bytes, alg: str | None, *, allow_weak: bool) -> tuple[str, bytes, bool]:
    """(algorithm, material, weak) of a target's signing key: a private key (PEM, DER, JWK or
    OpenSSH, stored as PEM), or an HMAC secret.

    Key material is recognised first (``keyformats.recognise``): a public key or a
    certificate is refused, never taken as an HMAC secret (RFC 8725 §2.1). A weak HMAC
    secret (too short, or too little entropy) passes only with ``allow_weak`` (the
    unsafe opt-in): it signs tokens for this target, never for authctl itself.
    """
    from . import keys
    from .keyformats import PRIVATE, SECRET, recognise

    chosen = keys.normalize_alg(alg) if alg else None
    material = recognise(data)
    if material is not None and material.kind == PRIVATE:
        if material.key is None:
            raise InvalidInput(f"this is {material.label}")
        if chosen is not None and keys.is_symmetric(chosen):
            raise InvalidInput(f"{chosen} needs a shared secret, but this is {material.label}")
        declared = keys.normalize_alg(material.alg) if material.alg else None
        if chosen is not None and declared is not None and chosen != declared:
            raise InvalidInput(f"alg {chosen} contradicts the key's own alg {declared}")
        chosen = chosen or declared or keys.infer_alg(material.key)
        keys.check_strength(chosen, material.key)
        return chosen, keys._pem_of(material.key), False
    if material is not None and material.kind == SECRET:  # an oct JWK says it is a shared secret
        secret = bytes(material.key)
    elif material is not None:
        raise InvalidInput(f"this is {material.label}; a target signs, so it needs the private key or a shared "
                           "secret (key material is never an HMAC secret)")
    else:
        secret = data.rstrip(b"\r\n")
    chosen = chosen or "HS256"
    if not keys.is_symmetric(chosen):
        raise InvalidInput(f"{chosen} needs a PEM private key (or DER, JWK, OpenSSH); this input is none of them")
    if not secret:
        raise InvalidInput("the secret is empty")
    try:
        keys.check_strength(chosen, secret)
    except InvalidInput as exc:
        if not allow_weak:
            raise InvalidInput(str(exc), hint="weak_secret") from None
        return chosen, secret, True
    return chosen, secret, False


#: The largest secret file read: a bigger one is refused, never cut short (a passwords file would lose users).
PRIVATE_FILE_LIMIT = 1024 * 1024


def read_private_file(path: str, what: str) -> bytes:
    """A secret file's bytes; one readable by group or others is refused (its secrets are already exposed)."""
    try:
        info = os.stat(path)
        if stat.S_IMODE(info.st_mode) & 0o077:
            raise InvalidInput(f"{path} is readable by others (mode {stat.S_IMODE(info.st_mode):o}): chmod 600 it first")
        with open(path, "rb") as handle:
            data = handle.read(PRIVATE_FILE_LIMIT + 1)
    except OSError as exc:
        raise InvalidInput(f"cannot read the {what} {path}: {exc.strerror}") from None
    if len(data) > PRIVATE_FILE_LIMIT:
        raise InvalidInput(f"the {what} {path} is larger than 1 MiB: nothing was read from it")
    return data


def parse_passwords(text: str) -> dict[str, str]:
    """``username:password`` lines (the first colon splits; blank lines and ``#`` comments skipped)."""
    found: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        username, sep, password = line.partition(":")
        if not sep or not username.strip() or not password:
            raise InvalidInput(f"passwords line {number}: expected username:password")
        found[username.strip()] = password
    if not found:
        raise InvalidInput("no username:password lines")
    return found


def parse_per_user(pairs: list[str], option: str) -> dict[str, str]:
    found = {}
    for pair in pairs:
        user, sep, value = pair.partition("=")
        if not sep or not user.strip():
            raise InvalidInput(f"{option} takes USER=VALUE, got {pair[:40]!r}")
        found[user.strip()] = value.strip()
    return found


# --------------------------------------------------------------------------- storing


def make_config(
    mode: str, *, send: str = "bearer", alg: str | None = None, kid: str | None = None, weak: bool = False,
    sub: Mapping[str, str] | None = None, scope_claim: str | None = None, scopes: Mapping[str, Any] | None = None,
    iss: str | None = None, aud: str | None = None, claims: Mapping[str, Any] | None = None, ttl: int = DEFAULT_TTL,
    token_url: str | None = None,
) -> dict[str, Any]:
    """A target's configuration (never a secret), validated the same way for ``target add`` and a policy file."""
    from . import keys

    if mode not in MODES:
        raise InvalidInput(f"unknown target mode {str(mode)[:20]!r}: use {', '.join(MODES)}")
    send_kind, send_param = _parse_send(send)
    config: dict[str, Any] = {"mode": mode, "send": send_kind, "send_param": send_param}
    if mode == "token":
        if not alg:
            raise InvalidInput("a token target needs its algorithm")
        alg = keys.normalize_alg(alg)
        if kid is not None:
            keys.validate_kid(kid)
        if scope_claim is not None and scope_claim not in SCOPE_CLAIMS:
            raise InvalidInput(f"scope claim: use one of {', '.join(SCOPE_CLAIMS)}")
        if not 10 <= ttl <= MAX_TTL:
            raise InvalidInput("a target's token lifetime must be between 10 seconds and 30 days")
        config.update({
            "alg": alg, "kid": kid, "weak_secret": bool(weak), "sub": dict(sub or {}), "scope_claim": scope_claim,
            "scopes": {u: _scope_list(v) for u, v in (scopes or {}).items()},
            "iss": iss, "aud": aud, "claims": dict(claims or {}), "ttl": ttl,
        })
    elif mode == "login":
        if not token_url or not token_url.startswith("/") or token_url.startswith("//"):
            raise InvalidInput("the login is the app's token path, e.g. /token")
        config["token_url"] = token_url
    return config


def _scope_list(value: Any) -> list[str]:
    items = value.replace(",", " ").split() if isinstance(value, str) else [str(v) for v in value]
    return [item for item in items if item]


def make_secret(mode: str, data: "bytes | Mapping[str, str]", alg: str | None, *,
                allow_weak: bool) -> tuple[bytes, str | None, bool]:
    """(stored secret, algorithm, weak) from what a private file or stdin gave: a token
    target's signing key, or the ``username:password`` lines of the other modes (or that mapping)."""
    if mode == "token":
        if isinstance(data, Mapping):
            raise InvalidInput("a token target needs its signing key, not passwords", hint="target_key")
        alg, material, weak = parse_target_key(data, alg, allow_weak=allow_weak)
        return json.dumps({"key": base64.b64encode(material).decode("ascii")}).encode("utf-8"), alg, weak
    if isinstance(data, Mapping):
        passwords = dict(data)
    else:
        try:
            passwords = parse_passwords(data.decode("utf-8"))
        except UnicodeDecodeError:
            raise InvalidInput("the passwords are not UTF-8 text") from None
    return json.dumps({"passwords": passwords}).encode("utf-8"), None, False


def add(
    store: "Store", name: str, *, mode: str, send: str = "bearer", key: bytes | None = None, alg: str | None = None,
    kid: str | None = None, allow_weak: bool = False, sub: Mapping[str, str] | None = None,
    scope_claim: str | None = None, scopes: Mapping[str, str] | None = None, iss: str | None = None,
    aud: str | None = None, claims: Mapping[str, Any] | None = None, ttl: int = DEFAULT_TTL,
    token_url: str | None = None, passwords: "Mapping[str, str] | bytes | None" = None,
) -> Target:
    """Validate and store a target; nothing is written when any part is wrong.

    ``passwords``: each user's password or key, or their ``username:password`` lines as read.
    """
    validate_name(name)
    given = key if mode == "token" else passwords
    if not given:
        raise (InvalidInput("a token target needs its signing key", hint="target_key") if mode == "token" else
               InvalidInput(f"a {mode} target needs each user's password or key", hint="target_passwords"))
    secret, alg, weak = make_secret(mode, given, alg, allow_weak=allow_weak)
    config = make_config(mode, send=send, alg=alg, kid=kid, weak=weak, sub=sub, scope_claim=scope_claim, scopes=scopes,
                         iss=iss, aud=aud, claims=claims, ttl=ttl, token_url=token_url)
    store.add_target(name, config, secret)
    return get(store, name)


def check_stored_key(target: Target, alg: str, weak: bool) -> None:
    """The stored signing key still fits ``alg``, and is weak exactly when ``weak`` says (the opt-in)."""
    if target.mode != "token":
        raise InvalidInput(f"target {target.name} has no signing key stored (it logs in with passwords)")
    chosen, _, found_weak = parse_target_key(_key_material(target), alg, allow_weak=weak)
    if found_weak != weak or chosen != alg:
        raise InvalidInput(f"target {target.name}: its stored key is not weak: weak_secret = true is not needed")


def get(store: "Store", name: str) -> Target:
    rows = store.target_rows(name)
    if not rows:
        known = [row[0] for row in store.target_rows()]
        hint = f" (targets: {', '.join(known[:5])})" if known else " (add one with `authctl target add`)"
        raise NotFound(f"no target named {name[:64]!r}{hint}")
    return _target(rows[0])


def list_all(store: "Store") -> list[Target]:
    return [_target(row) for row in store.target_rows()]


def _target(row: tuple[str, dict[str, Any], bytes, str]) -> Target:
    name, config, secret, created_at = row
    return Target(name, config, created_at, json.loads(secret.decode("utf-8")))


# --------------------------------------------------------------------------- speaking


def _key_material(target: Target) -> bytes:
    return base64.b64decode(target.secret["key"])


def ring(target: Target) -> "KeyRing":
    """A key ring that verifies the target's tokens, kid-less ones included."""
    from . import keys

    if target.mode != "token":
        raise InvalidInput(f"target {target.name!r} logs in with passwords; it has no key to verify tokens with")
    alg = target.config["alg"]
    material = _key_material(target)
    if keys.is_symmetric(alg):
        verify_key: Any = material
    else:
        verify_key = keys.load_private_pem(material).public_key()
    loaded = keys.LoadedKey(f"(target {target.name})", alg, "verifying", verify_key)
    return keys.KeyRing([loaded], any_kid=True, source=f"target {target.name}")


def credential(store: "Store", target: Target, username: str) -> Credential:
    """The credential ``username`` sends to the target's app (a login is performed live)."""
    user = store.get_user(username)
    label = f"target {target.name} as {user.username}"
    passwords = target.secret.get("passwords", {})
    if target.mode in ("login", "basic", "static"):
        password = passwords.get(user.username)
        if password is None:
            raise InvalidInput(f"target {target.name!r} has no password or key for {user.username!r}")
        if target.mode == "static":
            return _sent(target.config["send"], target.config.get("send_param"), password, label, scopes=None)
        if target.mode == "basic":
            encoded = base64.b64encode(f"{user.username}:{password}".encode("utf-8")).decode("ascii")
            return Credential(label, headers={"Authorization": f"Basic {encoded}"})
        login = Login(target.config["token_url"], user.username, password, target.config["send"],
                      target.config.get("send_param"))
        shape = login.credential_for("(the token the login returns)", label)  # offline: where the token will go
        return Credential(label, shape.headers, shape.query, shape.cookies, login=login)
    token, scopes = mint(store, target, user.username)
    return _sent(target.config["send"], target.config.get("send_param"), token, label, scopes=scopes)


def mint(store: "Store", target: Target, username: str, *, now: int | None = None) -> tuple[str, tuple[str, ...] | None]:
    """A token in the target's template for one user, and the scopes it carries (None: no scope claim)."""
    import jwt

    from . import keys

    config = target.config
    user = store.get_user(username)
    now = int(time.time()) if now is None else now
    claims: dict[str, Any] = {"sub": config["sub"].get(user.username, user.username), "iat": now,
                              "exp": now + int(config["ttl"])}
    if config.get("iss"):
        claims["iss"] = config["iss"]
    if config.get("aud"):
        claims["aud"] = config["aud"]
    scopes: tuple[str, ...] | None = None
    if config.get("scope_claim"):
        per_user = config.get("scopes", {}).get(user.username)
        scopes = tuple(per_user) if per_user is not None else tuple(sorted(store.access(user).permissions))
        claims[config["scope_claim"]] = " ".join(scopes) if config["scope_claim"] == "scope" else list(scopes)
    claims.update(config.get("claims") or {})
    material = _key_material(target)
    key: Any = material if keys.is_symmetric(config["alg"]) else keys.load_private_pem(material)
    headers = {"kid": config["kid"]} if config.get("kid") else None
    return jwt.encode(claims, key, algorithm=config["alg"], headers=headers), scopes


def credential_for_token(target: Target, token: str) -> Credential:
    """A given token sent the target's way, checked against the target's key (signature, exp)."""
    problem = None
    claims: dict[str, Any] = {}
    if target.mode == "token":
        import jwt

        config = target.config
        try:
            key = ring(target).lookup(None)
            claims = jwt.decode(token, key.verify_key, algorithms=[config["alg"]],  # type: ignore[union-attr]
                                audience=config.get("aud") or None, issuer=config.get("iss") or None,
                                options={"verify_aud": bool(config.get("aud")), "require": ["exp"]})
        except jwt.ExpiredSignatureError:
            problem = "the token has expired"
        except jwt.InvalidSignatureError:
            problem = f"the signature does not verify with target {target.name!r}'s key (forged, or another key)"
        except jwt.PyJWTError as exc:
            problem = f"the target's checks reject it ({type(exc).__name__})"
    scopes = _scopes_of(claims, target.config.get("scope_claim")) if claims else None
    sent = _sent(target.config["send"], target.config.get("send_param"), token, f"the given token (target {target.name})",
                 scopes=scopes)
    return Credential(sent.label, sent.headers, sent.query, sent.cookies, scopes, trusted=problem is None and bool(claims),
                      valid=None if target.mode != "token" else problem is None, problem=problem, token=token)


def _scopes_of(claims: Mapping[str, Any], claim: str | None) -> tuple[str, ...] | None:
    if not claim or claim not in claims:
        return None
    value = claims[claim]
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    return None


def _sent(kind: str, param: str | None, token: str, label: str, *, scopes: tuple[str, ...] | None) -> Credential:
    if kind == "bearer":
        return Credential(label, headers={"Authorization": f"Bearer {token}"}, scopes=scopes, token=token)
    if kind == "scheme":
        return Credential(label, headers={"Authorization": f"{param} {token}"}, scopes=scopes, token=token)
    if kind == "header":
        return Credential(label, headers={str(param): token}, scopes=scopes, token=token)
    if kind == "query":
        return Credential(label, query={str(param): token}, scopes=scopes, token=token)
    return Credential(label, cookies={str(param): token}, scopes=scopes, token=token)

