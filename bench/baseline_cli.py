"""The cold-start baseline: a minimal two-command Typer app.

``hello`` does nothing but print; ``decode`` imports PyJWT lazily (inside the
command) and verifies a token's signature with a public key read from a PEM
file (or an HMAC secret for HS*), checking ``aud`` and ``iss`` -- the least a
command can do to "inspect a token with signature verification". authctl's
commands are measured against this app's ``--help`` and ``decode``, in the same
run, interleaved (bench/bench_coldstart.py).

    python bench/baseline_cli.py --help
    python bench/baseline_cli.py decode TOKEN --key-file public.pem --alg ES256 --audience authctl --issuer authctl
"""

import typer

app = typer.Typer(help="Baseline: a minimal two-command Typer app.")


@app.command()
def hello(name: str = typer.Option("world", help="Who to greet.")) -> None:
    """Print a greeting."""
    typer.echo(f"hello {name}")


@app.command()
def decode(
    token: str = typer.Argument(..., help="The JWT."),
    key_file: str = typer.Option(..., "--key-file", help="Public key (PEM) or HMAC secret file."),
    alg: str = typer.Option("ES256", "--alg", help="The one algorithm accepted."),
    audience: str = typer.Option(None, "--audience", help="Expected aud."),
    issuer: str = typer.Option(None, "--issuer", help="Expected iss."),
) -> None:
    """Verify a token's signature and print its header and claims."""
    import json

    import jwt

    with open(key_file, "rb") as handle:
        key = handle.read()
    claims = jwt.decode(token, key, algorithms=[alg], audience=audience, issuer=issuer)
    typer.echo(json.dumps({"header": jwt.get_unverified_header(token), "claims": claims}, indent=2))


if __name__ == "__main__":
    app()
