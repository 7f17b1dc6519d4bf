"""``authctl key ...``: list, rotate, retire, jwks, import."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from .. import render
from ..errors import InvalidInput
from .common import Alg, AnyAlg, KidArg, Yes, confirm, read_bounded, state

app = typer.Typer(no_args_is_help=True)

AlgOption = Annotated[Optional[Alg], typer.Option("--alg", help="Algorithm (default: the active key's, else ES256).", show_default=False, case_sensitive=False)]


@app.command("list")
def list_keys() -> None:
    """Signing keys: kid, algorithm, status, created, public fingerprint (never private material).

    Examples:
      authctl key list
      authctl key list --json
    """
    with state.open_store() as store:
        records = store.keys()
    render.emit([render.key_json(record) for record in records],
                lambda data: render.keys_table(records) if records
                else render.note("no signing keys: `authctl key rotate` creates one"))


@app.command("rotate")
def rotate(
    alg: AlgOption = None,
    rsa_bits: Annotated[int, typer.Option("--rsa-bits", min=2048, max=8192, help="RSA key size.")] = 3072,
) -> None:
    """Make a new active signing key; older keys keep verifying until `key retire KID`.

    Examples:
      authctl key rotate
      authctl key rotate --alg EdDSA --json
    """
    from .. import keys

    with state.open_store() as store:
        previous = [record.kid for record in store.keys() if record.status == "active"]
        record = keys.generate(alg.value if alg else _current_alg(store) or keys.DEFAULT_ALG, rsa_bits=rsa_bits)
        store.add_key(record)
    render.emit({**render.key_json(record), "previous": previous}, lambda data: _rotated(record, previous))


def _rotated(record, previous: list[str]) -> None:
    render.success(f"new active key {record.kid} ({record.alg})")
    for kid in previous:
        render.note(f"{kid} still verifies earlier tokens; `authctl key retire {kid}` when they have expired")


def _current_alg(store) -> str | None:
    """Rotation keeps the algorithm apps already expect, unless --alg says otherwise."""
    return next((record.alg for record in store.keys() if record.status == "active"), None)


@app.command("retire")
def retire(kid: KidArg, yes: Yes = False) -> None:
    """Stop accepting tokens signed by a (non-active) key (asks first; --yes without a terminal).

    Examples:
      authctl key retire 2f1c0a9e
      authctl key retire 2f1c0a9e --yes --json
    """
    with state.open_store() as store:
        found = next((record for record in store.keys() if record.kid == kid), None)
        if found is None or found.status != "verifying":
            store.retire_key(kid)  # raises the one error for it: no such kid, the active key, already retired
        confirm(f"retire key {kid} (tokens it signed stop working)?", yes)
        store.retire_key(kid)
        record = next(r for r in store.keys() if r.kid == kid)
    render.emit(render.key_json(record),
                lambda data: render.success(f"retired {kid}: tokens it signed are no longer accepted"))


@app.command("jwks")
def jwks() -> None:
    """The public JWK Set (active and verifying asymmetric keys), for apps and gateways.

    Always JSON (a JWK Set is JSON); --json is accepted and changes nothing.

    Examples:
      authctl key jwks > jwks.json
    """
    from .. import keys

    with state.open_store() as store:
        records = store.keys()
    document = keys.jwks(records)
    render.emit(document)
    shared = [record.kid for record in records if keys.is_symmetric(record.alg) and record.status != "retired"]
    if shared:
        render.note(f"left out (shared secrets are never published): {', '.join(shared)}")


@app.command("import")
def import_key(
    file: Annotated[str, typer.Argument(help="Private key (PEM, DER, JWK, OpenSSH) or, with --hmac, a secret; - for stdin.", metavar="FILE", show_default=False)],
    alg: Annotated[Optional[AnyAlg], typer.Option("--alg", help="Algorithm (default: from the key; HS256 with --hmac).", show_default=False, case_sensitive=False)] = None,
    hmac: Annotated[bool, typer.Option("--hmac", help="The input is a raw HMAC secret (never guessed; key material is refused).")] = False,
    kid: Annotated[Optional[str], typer.Option("--kid", help="Key id the existing app expects (default: generated).", show_default=False)] = None,
    verify_only: Annotated[bool, typer.Option("--verify-only", help="Accept its tokens, but keep signing with the current key.")] = False,
    yes: Yes = False,
) -> None:
    """Import a signing key so authctl mints tokens an existing app accepts (never from an argument).

    A key that becomes the active one replaces the current signer: that asks first
    (--yes without a terminal); --verify-only never does.

    Examples:
      authctl key import app-key.pem --kid app-2024
      authctl key import - --hmac --kid legacy < secret.bin --yes
      authctl key import partner.pem --verify-only --json
    """
    from .. import keys

    data = _read_secret_input(file)
    record = keys.import_key(data, alg=alg.value if alg else None, kid=kid, activate=not verify_only, hmac=hmac)
    del data
    with state.open_store() as store:
        active = [r.kid for r in store.keys() if r.status == "active"]
        if active and not verify_only:
            confirm(f"make {record.kid} the active signing key in place of {active[0]}?", yes)
        store.add_key(record, make_active=not verify_only)
        stored = next(r for r in store.keys() if r.kid == record.kid)
    render.emit(render.key_json(stored), lambda data: render.success(
        f"imported {stored.kid} ({stored.alg}, {stored.status}), fingerprint {stored.fingerprint}"))


_MAX_INPUT = 1024 * 1024


def _read_secret_input(file: str) -> bytes:
    """The whole input, at most 1 MiB: a longer one is refused, never cut (a cut secret is another secret)."""
    data = read_bounded(file, _MAX_INPUT, refuse_over="key input")
    if not data.strip():
        raise InvalidInput("no key material in the input")
    return data
