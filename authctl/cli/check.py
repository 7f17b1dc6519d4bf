"""``authctl check``: who is this request, and what may it do?"""

from __future__ import annotations

import sys
from enum import Enum
from typing import Annotated, Optional

import typer

from .. import render
from ..errors import InvalidInput, Mismatch
from .common import complete_target, complete_user, state

AppOption = Annotated[Optional[str], typer.Option("--app", help="module:attr of your FastAPI app (default: the bundled demo).")]
AsUser = Annotated[Optional[str], typer.Option("--as", help="Mint a token for this user with the active key.",
                                               autocompletion=complete_user)]
TokenOpt = Annotated[Optional[str], typer.Option("--token", help="A token to use: TOKEN, - (stdin) or @FILE ('Bearer ' is stripped).")]
Anonymous = Annotated[bool, typer.Option("--anonymous", help="Send no token at all.")]
UrlOpt = Annotated[Optional[str], typer.Option("--url", help="Also send it to this running server, e.g. http://127.0.0.1:8000.")]
Unsafe = Annotated[bool, typer.Option("--unsafe", help=(
    "Send methods other than GET/HEAD/OPTIONS where they may change real data: a running server (--url), "
    "or an app authctl could not rebind to a snapshot. Not needed on a proven snapshot."))]
TargetOpt = Annotated[Optional[str], typer.Option("--target", help="Speak this target's credentials (authctl target add): for an app with its own security.", show_default=False, autocompletion=complete_target)]
Method = Annotated[str, typer.Argument(help="HTTP method, e.g. DELETE.", metavar="METHOD", show_default=False)]
Path = Annotated[str, typer.Argument(help="Request path, e.g. /student/3.", metavar="PATH", show_default=False)]


class MatrixFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"
    junit = "junit"
    html = "html"
    markdown = "markdown"


class Columns(str, Enum):
    user = "user"
    role_set = "role-set"



def pick_subject(store, as_user: Optional[str], token: Optional[str], anonymous: bool, overrides=None, target=None):  # store: None unless --as
    """Exactly one of --as, --token, --anonymous; ``overrides``: the app's own settings, for minting;
    ``target``: a ``targets.Target`` whose credentials the request speaks."""
    from .. import explain

    chosen = [flag for flag, given in (("--as", as_user), ("--token", token), ("--anonymous", anonymous)) if given]
    if len(chosen) != 1:
        raise typer.BadParameter("give exactly one of --as USER, --token TOKEN|- or --anonymous")
    text = None
    if token is not None:
        from .tokens import read_token

        read = read_token(token)
        if isinstance(read, bytes):
            raise InvalidInput("the token is not UTF-8 text")
        text = read
    return explain.subject(store, user=as_user or None, token=text, overrides=overrides, target=target)


def load_target(store, name: Optional[str]):
    if name is None:
        return None
    from .. import targets

    return targets.get(store, name)


def check(
    method: Method,
    path: Path,
    as_user: AsUser = None,
    token: TokenOpt = None,
    anonymous: Anonymous = False,
    app_spec: AppOption = None,
    live: Annotated[bool, typer.Option("--live", help=(
        "Also run the request in-process: on a snapshot copy of the database when authctl can rebind the app "
        "to it (the output says where it went)."))] = False,
    url: UrlOpt = None,
    unsafe: Unsafe = False,
    target_name: TargetOpt = None,
) -> None:
    """Explain, step by step, whether METHOD PATH is allowed, a 401 or a 403, and why.

    Exit 0 allowed, 3 unauthenticated (401), 4 forbidden (403), 5 no such route,
    6 the live answer disagrees with the offline decision. On a route whose own
    code (a guard) decides, offline is undecided: exit 1 unless --live/--url
    gives the answer.

    Examples:
      authctl check DELETE /student/3 --as rahul
      authctl check GET /items/1 --anonymous --app myapp.main:app --live
      authctl token issue --as suman | authctl check GET /student/3 --token -
    """
    from .. import explain, routes

    try:
        method = explain.normalize_method(method)
    except InvalidInput as exc:
        raise typer.BadParameter(str(exc), param_hint="METHOD") from None
    if live and url:
        raise typer.BadParameter("choose one of --live and --url")
    with state.open_store() as store:
        app = routes.load_app(app_spec)
        target = load_target(store, target_name)
        subject = pick_subject(store, as_user, token, anonymous, explain.app_overrides(app), target)
        result = explain.check(store, app, method, path, subject)
        if url or live:
            explain.check_live(result, store, app_spec, url=url, unsafe=unsafe)
    render.emit(result.as_dict(), render.check_report)
    if result.undecided and result.live is None:
        render.note(f"undecided offline: {result.undecided} decides in code; --live or --url gives the answer")
    raise typer.Exit(result.exit_code)


def probe(
    method: Annotated[Optional[str], typer.Argument(help="HTTP method of a request to send after /whoami.", metavar="METHOD", show_default=False)] = None,
    path: Annotated[Optional[str], typer.Argument(help="Its path, e.g. /student/3.", metavar="PATH", show_default=False)] = None,
    as_user: AsUser = None,
    token: TokenOpt = None,
    anonymous: Anonymous = False,
    url: Annotated[Optional[str], typer.Option("--url", envvar="AUTHCTL_URL", help="The running server.")] = "http://127.0.0.1:8000",
    whoami_path: Annotated[str, typer.Option("--whoami-path", help="Where the server answers whoami.")] = "/whoami",
    insecure_transport: Annotated[bool, typer.Option("--insecure-transport", help="Allow a bearer token over plain HTTP to another host.")] = False,
    unsafe: Unsafe = False,
    timeout: Annotated[float, typer.Option("--timeout", min=0.1, max=300, help="Seconds per request.")] = 10.0,
    target_name: TargetOpt = None,
) -> None:
    """Ask a running server who this request is (/whoami), then send METHOD PATH and classify the answer.

    Exit 0 allowed, 3 for a 401, 4 for a 403, 5 for a 404/405, 1 for another error status,
    when the server cannot be reached, or when the identity endpoint is missing or failing.

    Examples:
      authctl probe --as rahul
      authctl probe GET /student/3 --as rahul --url http://127.0.0.1:8000 --json
    """
    from .. import explain, probe as live

    if (method is None) != (path is None):
        raise typer.BadParameter("give both METHOD and PATH, or neither")
    if method is not None:
        try:
            method = explain.normalize_method(method)
        except InvalidInput as exc:
            raise typer.BadParameter(str(exc), param_hint="METHOD") from None
        explain.require_safe_method(method, unsafe)
    if as_user is not None or target_name is not None:
        with state.open_store() as store:
            target = load_target(store, target_name)
            subject = pick_subject(store, as_user, token, anonymous or (as_user is None and token is None), target=target)
    else:
        subject = pick_subject(None, None, token, anonymous or token is None)
    assert url is not None
    live.check_transport(url, sends_token=subject.sends_credentials, insecure_transport=insecure_transport)
    result = live.run_probe(subject.token, url=url, whoami_path=whoami_path,
                            request=(method, path) if method is not None and path is not None else None, timeout=timeout,
                            credential=subject.credential)
    render.emit({
        "url": url, "subject": {"kind": subject.kind, "label": subject.label},
        "whoami": {"path": whoami_path, **result.whoami.as_dict(), "problem": result.problem},
        "request": None if result.response is None else {"method": method, "path": path, **result.response.as_dict()},
    }, lambda data: render.probe_report(result))
    if result.problem:
        render.error(result.problem)
    raise typer.Exit(result.exit_code)


def matrix(
    users_option: Annotated[Optional[str], typer.Option("--users", help="Comma-separated users (default: every user); 'anonymous' is always added.")] = None,
    app_spec: AppOption = None,
    live: Annotated[bool, typer.Option("--live", help=(
        "Also observe every cell in-process: on a snapshot copy of the database when authctl can rebind the app "
        "to it (mutating cells are then sent too)."))] = False,
    url: UrlOpt = None,
    openapi: Annotated[bool, typer.Option("--openapi", help="With --url: routes and their declared security from the server's OpenAPI document (an app authctl cannot import).")] = False,
    openapi_url: Annotated[Optional[str], typer.Option("--openapi-url", help="Where the server serves its OpenAPI document (default: the --app's openapi_url, else /openapi.json).", show_default=False)] = None,
    params: Annotated[Optional[list[str]], typer.Option("--param", help="Path parameter value, name=value (repeatable); otherwise a sample of the parameter's type.")] = None,
    expect: Annotated[Optional[str], typer.Option("--expect", help="TOML file of expected outcomes; unmet ones exit 6, a route or user that matches nothing exits 1.")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="With --expect: also fail (exit 6) on every route the file has no expectation for.")] = False,
    unsafe: Unsafe = False,
    target_name: TargetOpt = None,
    fmt: Annotated[MatrixFormat, typer.Option("--format", help="Output; html is one self-contained file.")] = MatrixFormat.table,
    by: Annotated[Optional[Columns], typer.Option("--by", help=(
        "Columns: user, or role-set (users whose decisions cannot differ share one column). "
        "Default: role-set for table, html and markdown; user for json, csv and junit, and with --target."))] = None,
) -> None:
    """Users (and anonymous) × routes: the outcome of each, offline, live, or both.

    Exit 6 when a live cell disagrees with the offline decision (a 404, 4xx or 5xx never
    agrees with "allowed"), an expectation is unmet (a cell never sent, or undecided
    offline because a guard decides in code, meets none), or, with --strict, a route
    has no expectation.

    Examples:
      authctl matrix
      authctl matrix --app myapp.main:app --live --format html > matrix.html
      authctl matrix --expect expect.toml --strict --format junit > matrix.xml
    """
    from .. import groups
    from .. import matrix as grid

    chosen = render.output.format(fmt.value)
    # a target's per-user sub and scopes are not part of a role set: its columns stay per user unless asked
    columns = by.value if by is not None else (
        "role-set" if chosen in ("table", "html", "markdown") and target_name is None else "user")
    if live and url:
        raise typer.BadParameter("choose one of --live and --url")
    if openapi and not url:
        raise typer.BadParameter("--openapi needs --url")
    if openapi_url and not openapi:
        raise typer.BadParameter("--openapi-url goes with --openapi")
    if strict and not expect:
        raise typer.BadParameter("--strict needs --expect FILE", param_hint="--strict")
    expectations = grid.load_expectations(expect) if expect else None
    build = groups.build if columns == "role-set" else grid.build
    with state.open_store() as store, render.live_progress("sending the matrix's requests") as progress:
        result = build(
            store, users=grid.parse_users(users_option), app_spec=app_spec, live=live, url=url, openapi=openapi,
            params=grid.parse_params(params or []), unsafe=unsafe, expectations=expectations, strict=strict,
            progress=progress, target=load_target(store, target_name), openapi_url=openapi_url,
        )
    cells, users = result.cells, result.users
    data = {"users": users, "target": result.target, "cells": [cell.as_dict() for cell in cells],
            "skipped_routes": result.notes, "without_expectation": result.without_expectation}
    if result.groups is not None:
        data["groups"] = [group.as_dict() for group in result.groups]

    def document(kind: str):
        from .. import report

        return lambda data: sys.stdout.write(report.to_html(result) if kind == "html" else report.to_markdown(result))

    writers = {  # json has no writer: render.emit prints the data itself
        "csv": lambda data: sys.stdout.write(grid.to_csv(cells)),
        "junit": lambda data: sys.stdout.write(grid.to_junit(cells, result.without_expectation)),
        "html": document("html"), "markdown": document("markdown"),
        "table": lambda data: render.matrix_table(cells, users, result.groups),
    }
    render.emit(data, writers.get(chosen))
    render.matrix_notes(result)
    raise typer.Exit(Mismatch.exit_code if result.failed else 0)


def register(app: typer.Typer) -> None:
    app.command("check")(check)
    app.command("probe")(probe)
    app.command("matrix")(matrix)
    app.command("demo")(demo)


def demo(
    keep: Annotated[Optional[str], typer.Option("--keep", help="Keep the demo database in this directory.", metavar="DIR")] = None,
) -> None:
    """The guided first five minutes: a 401, a 403 and a 200 on the bundled app, explained.

    Non-interactive: it creates a demo database in a temporary directory
    (or --keep DIR), runs the app in-process, and leaves nothing behind
    unless --keep is given.

    Examples:
      authctl demo
      authctl demo --keep ./demo --json
    """
    import tempfile
    import time
    from contextlib import nullcontext
    from pathlib import Path

    from .. import demo as walkthrough

    if keep is not None:
        try:
            Path(keep).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InvalidInput(f"cannot use {keep} for --keep: {exc.strerror}") from None
    with (nullcontext(keep) if keep is not None else tempfile.TemporaryDirectory(prefix="authctl-demo-")) as directory:
        result = walkthrough.run(directory)
    now = int(time.time())
    render.emit({
        "directory": keep,
        "steps": [{"title": title, **step.as_dict()} for title, step in result.steps],
        "token": render.inspection_json(result.inspected, now),
        "matrix": {"users": result.users, "cells": [cell.as_dict() for cell in result.cells]},
    }, lambda data: render.demo_report(result, now, keep))
    raise typer.Exit(Mismatch.exit_code if result.failed else 0)
