"""``authctl token ...``: issue, inspect, verify, revoke."""

from __future__ import annotations

import sys
import time
from enum import Enum
from typing import Annotated, List, Optional

import typer

from .. import render
from ..errors import InvalidInput, TokenError
from .common import AnyAlg, complete_target, complete_user, parse_claim_options, read_bounded, state

app = typer.Typer(no_args_is_help=True)

TokenArg = Annotated[
    Optional[str],
    typer.Argument(help="The token, - for stdin, or @FILE (default: stdin). A leading 'Bearer ' is fine.",
                   metavar="TOKEN", show_default=False),
]


class TokenType(str, Enum):
    access = "access"
    refresh = "refresh"


TypeOption = Annotated[
    Optional[TokenType], typer.Option("--type", help="Expect an access or refresh token.", show_default=False)
]
TargetOption = Annotated[
    Optional[str], typer.Option("--target", help="Check against this target's key (authctl target add).",
                                show_default=False, autocompletion=complete_target)
]
_READ_LIMIT = 64 * 1024  # far above the 8 KB token limit: the size check still sees oversized input
_KEY_LIMIT = 1024 * 1024  # a key or JWK Set file: the parsers refuse what is cut


def read_token(argument: Optional[str]) -> str | bytes:
    """TOKEN, ``-`` or nothing (stdin), or ``@FILE``; bytes when they are not UTF-8 (refused later)."""
    if argument is None or argument == "-":
        if argument is None and sys.stdin.isatty():
            raise InvalidInput("no token: pass it as an argument, @FILE, or on stdin")
        raw = read_bounded("-", _READ_LIMIT)
    elif argument.startswith("@"):
        raw = read_bounded(argument[1:], _READ_LIMIT)
    else:
        return _strip(argument)
    try:
        return _strip(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return raw.strip()


def _strip(text: str) -> str:
    from ..tokens import strip_token

    return strip_token(text)


def _expected(type_option: Optional[TokenType]) -> Optional[str]:
    return None if type_option is None else type_option.value


@app.command("issue")
def issue(
    username: Annotated[str, typer.Option("--as", help="The user the token is for.", show_default=False,
                                          autocompletion=complete_user)],
    refresh: Annotated[bool, typer.Option("--refresh", help="A refresh token (typ refresh+jwt) instead of an access token.")] = False,
    ttl: Annotated[Optional[str], typer.Option("--ttl", help="Lifetime: 15m, 1h, 7d (at most settings.max_ttl).", show_default=False)] = None,
    aud: Annotated[Optional[str], typer.Option("--aud", help="Audience instead of the configured one ('' omits it).", show_default=False)] = None,
    claim: Annotated[Optional[List[str]], typer.Option("--claim", help="Extra claim key=value (repeatable; JSON values allowed).", show_default=False)] = None,
    expired: Annotated[bool, typer.Option("--expired", help="Already expired (for negative tests).")] = False,
    not_yet_valid: Annotated[bool, typer.Option("--not-yet-valid", help="Valid only from a minute after the leeway (negative tests).")] = False,
) -> None:
    """Sign a token for a user; prints the token alone (pipe-friendly), --json adds claims and expiry.

    Examples:
      authctl token issue --as rahul
      authctl token issue --as suman --ttl 1h30m --claim tenant=acme --json
      authctl token issue --as rahul --expired
    """
    from .. import tokens

    extra = parse_claim_options(claim or [])
    now = int(time.time())
    with state.open_store() as store:
        issued = tokens.issue(
            store, username, refresh=refresh, ttl=ttl, audience=aud, extra_claims=extra,
            expired=expired, not_yet_valid=not_yet_valid, now=now,
        )
    render.emit(render.issued_json(issued, now), lambda data: render.emit_line(issued.token))


@app.command("inspect")
def inspect(
    token: TokenArg = None,
    expected: TypeOption = None,
    key_file: Annotated[Optional[str], typer.Option("--key", help="Verify with this public key or certificate (PEM, DER, JWK, OpenSSH); no database needed.", show_default=False)] = None,
    secret_stdin: Annotated[bool, typer.Option("--secret-stdin", help="Verify with an HMAC secret read from stdin; no database needed.")] = False,
    jwks_file: Annotated[Optional[str], typer.Option("--jwks", help="Verify with the keys of this JWK Set file; no database needed.", show_default=False)] = None,
    alg: Annotated[Optional[AnyAlg], typer.Option("--alg", help="Algorithm of the --key/--secret-stdin key (default: from the key).", show_default=False, case_sensitive=False)] = None,
    target: TargetOption = None,
) -> None:
    """Decode a token and run every check; exit 0 if valid, 3 if any check fails or it is UNVERIFIED.

    Examples:
      authctl token inspect eyJhbGciOi...
      authctl token issue --as rahul | authctl token inspect --json
      authctl token inspect @token.txt --jwks jwks.json
    """
    from .. import tokens

    foreign = _foreign_ring(token, key_file, secret_stdin, jwks_file, alg.value if alg else None)
    if target is not None:
        if foreign is not None:
            raise InvalidInput("choose one of --target and --key/--secret-stdin/--jwks")
        foreign = _target_ring(target)
    text = read_token(token)
    now = int(time.time())
    if foreign is not None:
        inspection = tokens.inspect(None, text, expected_type=_expected(expected), foreign_key=foreign, now=now)
    else:
        from ..store import resolve_db_path

        if not resolve_db_path(state.db_option).exists():
            render.warn("no database: the token is decoded but cannot be verified (see --key, --secret-stdin, --jwks)")
            inspection = tokens.inspect(None, text, expected_type=_expected(expected), now=now)
        else:
            with state.open_store() as store:
                inspection = tokens.inspect(store, text, expected_type=_expected(expected), now=now)
    render.emit(render.inspection_json(inspection, now), lambda data: render.inspection_report(inspection, now))
    if not inspection.valid:
        raise typer.Exit(TokenError.exit_code)


def _foreign_ring(token, key_file, secret_stdin, jwks_file, alg):
    from .. import keys

    chosen = [name for name, given in (("--key", key_file), ("--secret-stdin", secret_stdin), ("--jwks", jwks_file)) if given]
    if len(chosen) > 1:
        raise InvalidInput(f"choose one of {', '.join(chosen)}")
    if alg is not None and not (key_file or secret_stdin):
        raise InvalidInput("--alg goes with --key or --secret-stdin")
    if key_file:
        return keys.foreign_pem(read_bounded(key_file, _KEY_LIMIT), alg)
    if jwks_file:
        return keys.foreign_jwks(read_bounded(jwks_file, _KEY_LIMIT))
    if secret_stdin:
        if token is None or token == "-":
            raise InvalidInput("with --secret-stdin, pass the token as an argument or @FILE")
        stream = getattr(sys.stdin, "buffer", None)
        line = stream.readline() if stream is not None else sys.stdin.readline().encode("utf-8")
        return keys.foreign_secret(line, alg)
    return None


def _target_ring(name: str):
    from .. import targets

    with state.open_store() as store:
        return targets.ring(targets.get(store, name))


@app.command("verify")
def verify(token: TokenArg = None, expected: TypeOption = None, target: TargetOption = None) -> None:
    """Quiet check for scripts: exit 0 if valid (nothing printed, or the identity with --json), 3 if not.

    With --target, the signature and lifetime are checked with that target's key
    (kid-less tokens included); the claims are the app's, so no authctl user is looked up.

    Examples:
      authctl token verify "$TOKEN" && echo valid
      authctl token verify @token.txt --type refresh --json
    """
    from .. import tokens

    if target is not None:
        from .. import targets

        with state.open_store() as store:
            found = targets.get(store, target)
        text = read_token(token)
        if isinstance(text, bytes):
            raise InvalidInput("the token is not UTF-8 text")
        credential = targets.credential_for_token(found, text)
        if not credential.valid:
            from ..errors import TokenError

            raise TokenError(credential.problem or "the token is not valid for this target")
        render.emit({"valid": True, "target": found.name,
                     "scopes": None if credential.scopes is None else list(credential.scopes)}, _quiet)
        return
    text = read_token(token)
    with state.open_store() as store:
        identity = tokens.verify(store, text, expected_type=_expected(expected) or "access")  # type: ignore[arg-type]
    render.emit(render.identity_json(identity), _quiet)


def _quiet(data: dict) -> None:
    """``verify`` for people says nothing: the exit code is the answer."""


@app.command("revoke")
def revoke(
    token: TokenArg = None,
    jti: Annotated[Optional[str], typer.Option("--jti", help="Revoke by token id (when the token itself is gone).", show_default=False)] = None,
    reason: Annotated[str, typer.Option("--reason", help="Recorded in the log.")] = "",
) -> None:
    """Denylist a token by its jti until it would have expired.

    Examples:
      authctl token revoke @stolen.txt --reason "laptop lost"
      authctl token revoke --jti 5f0c... --json
    """
    from .. import tokens

    if jti is not None and token is not None:
        raise InvalidInput("give a token or --jti, not both")
    text = None if jti is not None else read_token(token)
    with state.open_store() as store:
        result = tokens.revoke(store, text, jti=jti, reason=reason)  # type: ignore[arg-type]
    render.emit(render.revocation_json(result), lambda data: _revoked(result))


def _revoked(result) -> None:
    from .. import clock

    if result.already_expired:
        render.note(f"token {result.jti} has already expired; nothing to revoke")
    elif result.newly:
        render.success(f"revoked {result.jti} until {clock.format_utc(result.expires_at)}")
    else:
        render.note(f"{result.jti} was already revoked")
