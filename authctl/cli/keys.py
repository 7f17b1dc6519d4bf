"""``authctl key ...``: list, rotate, retire, jwks, import."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from .. import render
from ..errors import InvalidInput
from .common import JsonFlag, read_bounded, state

app = typer.Typer(no_args_is_help=True)

AlgOption = Annotated[
    Optional[str], typer.Option("--alg", help="ES256 (default), EdDSA, RS256 or HS256.", show_default=False)
]


@app.command("list")
def list_keys(json_output: JsonFlag = False) -> None:
    """Signing keys: kid, algorithm, status, created, public fingerprint (never private material)."""
    with state.open_store() as store:
        records = store.keys()
    if state.wants_json(json_output):
        render.emit_json([render.key_json(record) for record in records])
    elif records:
        render.keys_table(records)
    else:
        render.note("no signing keys: `authctl key rotate` creates one")


@app.command("rotate")
def rotate(
    alg: AlgOption = None,
    rsa_bits: Annotated[int, typer.Option("--rsa-bits", min=2048, max=8192, help="RSA key size.")] = 3072,
    json_output: JsonFlag = False,
) -> None:
    """Make a new active signing key; older keys keep verifying until `key retire KID`."""
    from .. import keys

    with state.open_store() as store:
        previous = [record.kid for record in store.keys() if record.status == "active"]
        record = keys.generate(alg or _current_alg(store) or keys.DEFAULT_ALG, rsa_bits=rsa_bits)
        store.add_key(record)
    if state.wants_json(json_output):
        render.emit_json({**render.key_json(record), "previous": previous})
        return
    render.success(f"new active key {record.kid} ({record.alg})")
    for kid in previous:
        render.note(f"{kid} still verifies earlier tokens; `authctl key retire {kid}` when they have expired")


def _current_alg(store) -> str | None:
    """Rotation keeps the algorithm apps already expect, unless --alg says otherwise."""
    return next((record.alg for record in store.keys() if record.status == "active"), None)


@app.command("retire")
def retire(kid: Annotated[str, typer.Argument(help="The kid to retire.", show_default=False)]) -> None:
    """Stop accepting tokens signed by a (non-active) key."""
    with state.open_store() as store:
        store.retire_key(kid)
    render.success(f"retired {kid}: tokens it signed are no longer accepted")


@app.command("jwks")
def jwks() -> None:
    """The public JWK Set (active and verifying asymmetric keys), for apps and gateways."""
    from .. import keys

    with state.open_store() as store:
        records = store.keys()
    document = keys.jwks(records)
    render.emit_json(document)
    shared = [record.kid for record in records if keys.is_symmetric(record.alg) and record.status != "retired"]
    if shared:
        render.note(f"left out (shared secrets are never published): {', '.join(shared)}")


@app.command("import")
def import_key(
    file: Annotated[str, typer.Argument(help="Private key (PEM, DER, JWK, OpenSSH) or, with --hmac, a secret; - for stdin.", show_default=False)],
    alg: Annotated[Optional[str], typer.Option("--alg", help="Algorithm (default: from the key; HS256 with --hmac).", show_default=False)] = None,
    hmac: Annotated[bool, typer.Option("--hmac", help="The input is a raw HMAC secret (never guessed; key material is refused).")] = False,
    kid: Annotated[Optional[str], typer.Option("--kid", help="Key id the existing app expects (default: generated).", show_default=False)] = None,
    verify_only: Annotated[bool, typer.Option("--verify-only", help="Accept its tokens, but keep signing with the current key.")] = False,
    json_output: JsonFlag = False,
) -> None:
    """Import a signing key so authctl mints tokens an existing app accepts (never from an argument)."""
    from .. import keys

    data = _read_secret_input(file)
    record = keys.import_key(data, alg=alg, kid=kid, activate=not verify_only, hmac=hmac)
    del data
    with state.open_store() as store:
        store.add_key(record, make_active=not verify_only)
        stored = next(r for r in store.keys() if r.kid == record.kid)
    if state.wants_json(json_output):
        render.emit_json(render.key_json(stored))
    else:
        render.success(f"imported {stored.kid} ({stored.alg}, {stored.status}), fingerprint {stored.fingerprint}")


_MAX_INPUT = 1024 * 1024


def _read_secret_input(file: str) -> bytes:
    """The whole input, at most 1 MiB: a longer one is refused, never cut (a cut secret is another secret)."""
    data = read_bounded(file, _MAX_INPUT, refuse_over="key input")
    if not data.strip():
        raise InvalidInput("no key material in the input")
    return data
