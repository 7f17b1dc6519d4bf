"""``authctl target ...``: how authctl authenticates to an app with its own security."""

from __future__ import annotations

from typing import Annotated, List, Optional

import typer

from .. import render
from ..errors import InvalidInput
from .common import AnyAlg, TargetArg, Yes, confirm, parse_claim_options, read_bounded, state

app = typer.Typer(no_args_is_help=True)


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Target name, e.g. shop.", metavar="TARGET", show_default=False)],
    key_file: Annotated[Optional[str], typer.Option("--key-file", help="Token template: the app's signing key (HS secret or private PEM; the file must be private).", show_default=False)] = None,
    key_stdin: Annotated[bool, typer.Option("--key-stdin", help="Token template: read the signing key from stdin.")] = False,
    alg: Annotated[Optional[AnyAlg], typer.Option("--alg", help="Algorithm (default: from the key; HS256 for a secret).", show_default=False, case_sensitive=False)] = None,
    kid: Annotated[Optional[str], typer.Option("--kid", help="kid header (default: none, a kid-less token).", show_default=False)] = None,
    unsafe_weak_secret: Annotated[bool, typer.Option("--unsafe-weak-secret", help="UNSAFE: accept a short HMAC secret (a tutorial's \"SECRET\") for this target only.")] = False,
    user_sub: Annotated[Optional[List[str]], typer.Option("--user-sub", help="USER=VALUE: the sub claim for a user (default: the username; repeatable).", show_default=False)] = None,
    scope_claim: Annotated[Optional[str], typer.Option("--scope-claim", help="Put scopes in this claim: scope (space-separated), scopes or permissions (lists).", show_default=False)] = None,
    user_scopes: Annotated[Optional[List[str]], typer.Option("--user-scopes", help="USER=a,b: a user's scopes (default: the user's authctl permissions; repeatable).", show_default=False)] = None,
    iss: Annotated[Optional[str], typer.Option("--iss", help="iss claim.", show_default=False)] = None,
    aud: Annotated[Optional[str], typer.Option("--aud", help="aud claim.", show_default=False)] = None,
    claim: Annotated[Optional[List[str]], typer.Option("--claim", help="Extra claim key=value (repeatable; JSON values allowed).", show_default=False)] = None,
    ttl: Annotated[str, typer.Option("--ttl", help="Token lifetime: 15m, 1h, ...")] = "15m",
    login: Annotated[Optional[str], typer.Option("--login", help="Log in through the app's own OAuth2 password endpoint, e.g. /token.", show_default=False)] = None,
    basic: Annotated[bool, typer.Option("--basic", help="Send HTTP Basic with each user's password.")] = False,
    static: Annotated[bool, typer.Option("--static", help="Send each user's fixed secret (an API key) from the passwords file, the --send way.")] = False,
    passwords_file: Annotated[Optional[str], typer.Option("--passwords-file", help="username:password (or username:key) lines, for --login/--basic/--static (the file must be private).", show_default=False)] = None,
    passwords_stdin: Annotated[bool, typer.Option("--passwords-stdin", help="Read username:password lines from stdin.")] = False,
    send: Annotated[str, typer.Option("--send", help="How to send the token: bearer, scheme:WORD (e.g. scheme:Token), header:NAME, query:NAME, cookie:NAME.", autocompletion=lambda incomplete: [
        choice for choice in ("bearer", "scheme:", "header:", "query:", "cookie:") if choice.startswith(incomplete)])] = "bearer",
) -> None:
    """Describe how to authenticate to an app: a token template, its own login, HTTP Basic, or fixed keys.

    Examples:
      authctl target add shop --key-file shop-secret.key --send header:X-Token
      authctl target add legacy --login /token --passwords-file passwords.txt
      authctl target add partner --basic --passwords-stdin < passwords.txt --json
    """
    from .. import config, targets

    if sum(bool(x) for x in (login, basic, static)) > 1:
        raise InvalidInput("choose one of --login, --basic and --static")
    mode = "login" if login else "basic" if basic else "static" if static else "token"
    if mode == "token" and (passwords_file or passwords_stdin):
        raise InvalidInput("passwords go with --login, --basic or --static")
    if mode != "token" and (key_file or key_stdin):
        raise InvalidInput("a signing key goes with a token template, not with --login/--basic/--static")
    if key_file and key_stdin or passwords_file and passwords_stdin:
        raise InvalidInput("read each secret from one place: a file or stdin")
    key = None
    if key_file:
        key = targets.read_private_file(key_file, "key file")
    elif key_stdin:
        key = _stdin_bytes()
    passwords = None  # the username:password lines as read: the library parses them
    if passwords_file or passwords_stdin:
        passwords = targets.read_private_file(passwords_file, "passwords file") if passwords_file else _stdin_bytes()
    with state.open_store() as store:
        target = targets.add(
            store, name, mode=mode, send=send, key=key, alg=alg.value if alg else None, kid=kid, allow_weak=unsafe_weak_secret,
            sub=targets.parse_per_user(user_sub or [], "--user-sub"), scope_claim=scope_claim,
            scopes=targets.parse_per_user(user_scopes or [], "--user-scopes"), iss=iss, aud=aud,
            claims=parse_claim_options(claim or []), ttl=config.parse_duration(ttl), token_url=login,
            passwords=passwords,
        )
    del key, passwords
    render.emit(target.as_dict(), lambda data: _added(target))


def _added(target) -> None:
    render.success(f"target {target.name} ({target.mode}, sends {_send_text(target)})")
    if target.config.get("weak_secret"):
        render.warn(f"target {target.name} signs with a weak secret (--unsafe-weak-secret): anyone who guesses it can forge tokens for that app")


def _send_text(target) -> str:
    if target.mode == "basic":
        return "HTTP Basic"
    kind, param = target.config["send"], target.config.get("send_param")
    return {"bearer": "Authorization: Bearer", "scheme": f"Authorization: {param}", "header": f"header {param}",
            "query": f"query parameter {param}", "cookie": f"cookie {param}"}[kind]


def _stdin_bytes() -> bytes:
    data = read_bounded("-", 1024 * 1024)
    if not data.strip():
        raise InvalidInput("nothing on stdin")
    return data


@app.command("list")
def list_targets() -> None:
    """Every target: name, mode and how it sends credentials (never a key or password).

    Examples:
      authctl target list --json
    """
    from .. import targets

    with state.open_store() as store:
        found = targets.list_all(store)
    render.emit([t.as_dict() for t in found], lambda data: _listed(found))


def _listed(found: list) -> None:
    if found:
        render.targets_table([(t.name, t.mode, _send_text(t), t.created_at) for t in found])
    else:
        render.note("no targets: `authctl target add NAME ...` describes how to authenticate to an app")


@app.command("show")
def show(name: TargetArg) -> None:
    """One target's configuration (secrets are stored, never shown).

    Examples:
      authctl target show shop
    """
    from .. import targets

    with state.open_store() as store:
        target = targets.get(store, name)
    render.emit(target.as_dict(), lambda data: render.target_detail(data, _send_text(target)))


@app.command("remove")
def remove(name: TargetArg, yes: Yes = False) -> None:
    """Delete a target and its stored secrets (asks first; --yes without a terminal).

    Examples:
      authctl target remove shop --yes
    """
    from .. import targets

    with state.open_store() as store:
        target = targets.get(store, name)
        confirm(f"remove target {target.name} and its stored secrets?", yes)
        store.remove_target(target.name)
    render.emit({**target.as_dict(), "removed": True}, lambda data: render.success(f"removed target {target.name}"))
