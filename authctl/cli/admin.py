"""Top-level commands: ``init``, ``perm list``, ``log``, ``config show|set|unset``."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from .. import render
from .common import Alg, SettingArg, read_stdin, state


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
    alg: Annotated[Alg, typer.Option("--alg", help="First signing key's algorithm.", case_sensitive=False)] = Alg.ES256,
    demo: Annotated[bool, typer.Option("--demo", help="Also create the demo app's roles, users (suman, rahul, priya) and data.")] = False,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="With --demo: the demo users' password, from stdin.")] = False,
) -> None:
    """Create a new auth database (mode 0600) and its first signing key.

    Examples:
      authctl init
      authctl init --demo
      authctl --db staging.db init --alg EdDSA --issuer https://auth.example.com
    """
    from ..bootstrap import create_database
    from ..store import resolve_db_path

    demo_passwords = _demo_passwords(demo, password_stdin)
    path = resolve_db_path(state.db_option)
    store, key, demo_users = create_database(
        path, alg=alg.value, issuer=issuer, audience=audience, demo=demo, demo_passwords=demo_passwords
    )
    with store:
        data = {"database": str(path), "schema_version": store.schema_version, "key": render.key_json(key)}
    if demo_users:
        data["demo"] = _demo_json(demo_users)

    def human(data: dict) -> None:
        render.success(f"created {path} (schema version {data['schema_version']}), signing key {key.kid} ({key.alg})")
        if demo_users:
            _print_demo(demo_users)
        else:
            render.note("next: authctl role add admin && authctl user add NAME --role admin")

    render.emit(data, human)


perm_app = typer.Typer(no_args_is_help=True)


@perm_app.command("list")
def perm_list(
    show_routes: Annotated[bool, typer.Option("--routes", help="Also list the routes of the app that need each permission.")] = False,
    app_spec: Annotated[Optional[str], typer.Option("--app", help="module:attr of the app for --routes (default: the bundled demo).")] = None,
) -> None:
    """Every permission, the roles that grant it directly, and (--routes) the routes that need it.

    Examples:
      authctl perm list
      authctl perm list --routes --app myapp.main:app --json
    """
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
    render.emit([render.permission_json(p, None if routes_needing is None else routes_needing.get(p.name, []))
                 for p in permissions], lambda data: _permissions(permissions, routes_needing))


def _permissions(permissions: list, routes_needing: dict | None) -> None:
    if permissions:
        render.permissions_table(permissions, routes_needing)
    else:
        render.note("no permissions yet: `authctl role grant ROLE resource:action`")


def log(
    limit: Annotated[int, typer.Option("--limit", min=1, max=100000, help="Newest entries to show.")] = 50,
    action: Annotated[Optional[str], typer.Option("--action", help="Filter: an action (user.add) or a group (user).")] = None,
    target: Annotated[Optional[str], typer.Option("--target", help="Filter: the user, role or key changed.")] = None,
) -> None:
    """Who changed what, and when (newest first).

    Examples:
      authctl log --limit 20
      authctl log --action user --target rahul --json
    """
    with state.open_store() as store:
        entries = store.audit_log(limit=limit, action=action, target=target)
    render.emit([render.audit_json(entry) for entry in entries],
                lambda data: render.audit_table(entries) if entries else render.note("no matching log entries"))


config_app = typer.Typer(no_args_is_help=True)


@config_app.command("show")
def config_show() -> None:
    """Effective settings and where each comes from: default, stored, or env AUTHCTL_X.

    --json gives {"settings": {...}, "sources": {...}}.

    Examples:
      authctl config show
      AUTHCTL_ACCESS_TTL=5m authctl config show --json
    """
    from ..config import sources

    with state.open_store() as store:
        settings, stored = store.settings(), store.stored_settings()
    origin = sources(stored)
    render.emit({"settings": settings.as_dict(), "sources": origin},
                lambda data: render.settings_table(settings, origin))


def _setting_json(key: str, store) -> dict:
    from ..config import sources

    stored = store.stored_settings()
    return {"key": key, "value": getattr(store.settings(), key), "stored": stored.get(key),
            "source": sources(stored)[key]}


@config_app.command("set")
def config_set(
    key: SettingArg,
    value: Annotated[str, typer.Argument(help="New value (durations as 15m, 1h30m, 7d, 2w).", metavar="VALUE", show_default=False)],
) -> None:
    """Change a stored setting (validated; recorded in the log).

    Examples:
      authctl config set access_ttl 1h30m
      authctl config set issuer https://auth.example.com --json
    """
    with state.open_store() as store:
        store.set_setting(key, value)
        data = _setting_json(key, store)
    render.emit(data, _setting_changed)


@config_app.command("unset")
def config_unset(key: SettingArg) -> None:
    """Remove a stored setting: its default (or AUTHCTL_X) applies again (recorded in the log).

    Examples:
      authctl config unset access_ttl
    """
    from ..config import SPECS, parse_setting

    if key not in SPECS:
        parse_setting(key, "")  # the one "unknown setting ...; known: ..." error
    with state.open_store() as store:
        removed = store.unset_setting(key)
        data = {**_setting_json(key, store), "removed": removed}
    render.emit(data, _setting_changed)


def _setting_changed(data: dict) -> None:
    from ..config import format_duration

    value = data["value"]
    shown = format_duration(value) if data["key"].endswith(("_ttl", "leeway")) else value
    if data.get("removed") is False:
        render.note(f"{data['key']} was not stored; it stays {shown} ({data['source']})")
    else:
        render.success(f"{data['key']} = {shown} ({data['source']})")


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.add_typer(perm_app, name="perm", help="Permissions: who grants them, which routes need them.")
    app.command("log")(log)
    app.add_typer(config_app, name="config", help="Settings: issuer, audience, lifetimes, hashing, password policy.")
