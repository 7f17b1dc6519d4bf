"""Top-level commands: ``init``, ``perm list``, ``log``, ``config show|set``."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from .. import render
from .common import JsonFlag, read_stdin, state


def _demo_passwords(demo: bool, password_stdin: bool) -> dict[str, str] | None:
    """--password-stdin with --demo: one line, the password of every demo user."""
    from ..errors import InvalidInput

    if password_stdin and not demo:
        raise InvalidInput("--password-stdin goes with --demo (user passwords: `authctl user add`)")
    if not password_stdin:
        return None
    line = read_stdin(line=True).rstrip("\r\n")
    if not line:
        raise InvalidInput("no password on stdin")
    from ..app.data import DEMO_USERS

    return {username: line for username, _ in DEMO_USERS}


def _demo_json(users: list) -> dict:
    return {"users": [{"username": u.username, "role": u.role, "user_id": u.user_id, "password": u.password}
                      for u in users]}


def _emit_init_json(data: dict, demo_users: list) -> None:
    if demo_users:
        data["demo"] = _demo_json(demo_users)
    render.emit_json(data)


def _print_demo(users: list) -> None:
    """Data on stdout: one line per demo user (name, role, generated password shown once)."""
    for user in users:
        render.emit_line(f"{user.username:<8} {user.role:<11} {user.password or ''}".rstrip())
    if any(user.password for user in users):
        render.note("demo passwords shown once above; they are not stored anywhere")
    render.note("next: authctl serve, then POST /token as rahul (403 on DELETE /student/3) and suman (200)")


def init(
    issuer: Annotated[Optional[str], typer.Option("--issuer", help="iss claim of issued tokens.")] = None,
    audience: Annotated[Optional[str], typer.Option("--audience", help="aud claim ('' omits it).")] = None,
    alg: Annotated[str, typer.Option("--alg", help="First signing key: ES256, EdDSA, RS256 or HS256.")] = "ES256",
    demo: Annotated[bool, typer.Option("--demo", help="Also create the demo app's roles, users (suman, rahul, priya) and data.")] = False,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="With --demo: the demo users' password, from stdin.")] = False,
    json_output: JsonFlag = False,
) -> None:
    """Create a new auth database (mode 0600) and its first signing key."""
    from ..bootstrap import create_database
    from ..store import resolve_db_path

    demo_passwords = _demo_passwords(demo, password_stdin)
    path = resolve_db_path(state.db_option)
    store, key, demo_users = create_database(
        path, alg=alg, issuer=issuer, audience=audience, demo=demo, demo_passwords=demo_passwords
    )
    with store:
        if state.wants_json(json_output):
            _emit_init_json({"database": str(path), "schema_version": store.schema_version,
                             "key": render.key_json(key)}, demo_users)
        else:
            render.success(f"created {path} (schema version {store.schema_version}), signing key {key.kid} ({key.alg})")
            if not demo_users:
                render.note("next: authctl role add admin && authctl user add NAME --role admin")
    if demo_users and not state.wants_json(json_output):
        _print_demo(demo_users)


perm_app = typer.Typer(no_args_is_help=True)


@perm_app.command("list")
def perm_list(
    show_routes: Annotated[bool, typer.Option("--routes", help="Also list the routes of the app that need each permission.")] = False,
    app_spec: Annotated[Optional[str], typer.Option("--app", help="module:attr of the app for --routes (default: the bundled demo).")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Every permission, the roles that grant it directly, and (--routes) the routes that need it."""
    routes_needing = None
    if show_routes or app_spec:
        from .. import routes

        routes_needing = routes.routes_by_permission(routes.load_app(app_spec))
    with state.open_store() as store:
        permissions = store.list_permissions()
    if routes_needing is not None:  # permissions that routes need but no role grants yet
        from ..store import Permission

        known = {p.name for p in permissions}
        permissions += [Permission(name, ()) for name in sorted(routes_needing) if name not in known]
    if state.wants_json(json_output):
        render.emit_json([
            render.permission_json(p, None if routes_needing is None else routes_needing.get(p.name, []))
            for p in permissions
        ])
    elif permissions:
        render.permissions_table(permissions, routes_needing)
    else:
        render.note("no permissions yet: `authctl role grant ROLE resource:action`")


def log(
    limit: Annotated[int, typer.Option("--limit", min=1, max=100000, help="Newest entries to show.")] = 50,
    action: Annotated[Optional[str], typer.Option("--action", help="Filter: an action (user.add) or a group (user).")] = None,
    target: Annotated[Optional[str], typer.Option("--target", help="Filter: the user, role or key changed.")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Who changed what, and when (newest first)."""
    with state.open_store() as store:
        entries = store.audit_log(limit=limit, action=action, target=target)
    if state.wants_json(json_output):
        render.emit_json([render.audit_json(entry) for entry in entries])
    elif entries:
        render.audit_table(entries)
    else:
        render.note("no matching log entries")


config_app = typer.Typer(no_args_is_help=True)


@config_app.command("show")
def config_show(json_output: JsonFlag = False) -> None:
    """Effective settings and where each comes from."""
    with state.open_store() as store:
        settings, stored = store.settings(), store.stored_settings()
    if state.wants_json(json_output):
        render.emit_json(settings.as_dict())
    else:
        render.settings_table(settings, stored)


@config_app.command("set")
def config_set(
    key: Annotated[str, typer.Argument(help="Setting name (see `authctl config show`).", show_default=False)],
    value: Annotated[str, typer.Argument(help="New value (durations as 15m, 1h, 7d).", show_default=False)],
) -> None:
    """Change a stored setting (validated; recorded in the log)."""
    with state.open_store() as store:
        parsed = store.set_setting(key, value)
    render.success(f"{key} = {parsed}")


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.add_typer(perm_app, name="perm", help="Permissions: who grants them, which routes need them.")
    app.command("log")(log)
    app.add_typer(config_app, name="config", help="Settings: issuer, audience, lifetimes, hashing, password policy.")
