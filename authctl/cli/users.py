"""``authctl user ...``"""

from __future__ import annotations

import sys
from typing import Annotated, List, Optional, cast

import typer

from .. import render
from ..errors import Conflict, InvalidInput
from .common import Generate, JsonFlag, PasswordStdin, read_new_password, read_stdin, state

app = typer.Typer(no_args_is_help=True)

Name = Annotated[str, typer.Argument(help="Username (case-insensitive).", show_default=False)]
RoleOpt = Annotated[Optional[List[str]], typer.Option("--role", "-r", help="Role to assign (repeatable).")]
MixedScript = Annotated[bool, typer.Option(
    "--allow-mixed-script", help="Accept a username that mixes scripts (Latin with Cyrillic, Greek, ...).",
)]


def _show(store, user, as_json: bool) -> None:
    from ..names import username_key

    access = store.access(user)
    login = store.login_failures(username_key(user.username))
    if as_json:
        render.emit_json(render.user_json(user, access, login))
    else:
        render.user_detail(user, access, login)


@app.command("add")
def add(
    name: Name,
    role: RoleOpt = None,
    password_stdin: PasswordStdin = False,
    generate: Generate = False,
    disabled: Annotated[bool, typer.Option("--disabled", help="Create the account disabled.")] = False,
    allow_mixed_script: MixedScript = False,
    json_output: JsonFlag = False,
) -> None:
    """Add a user with a password (prompted twice, --password-stdin or --generate)."""
    from ..names import new_username
    from ..passwords import Hasher

    with state.open_store() as store:
        username = new_username(name, allow_mixed_script=allow_mixed_script)
        if store.find_user(username):
            raise Conflict(f"user {username!r} already exists")
        store.refuse_look_alike(username)  # before the password is asked for; add_user checks again
        for each in role or []:
            store.get_role(each)
        settings = store.settings()
        password, generated = read_new_password(
            username, settings, from_stdin=password_stdin, generate=generate, user_inputs=tuple(role or ())
        )
        user = store.add_user(username, Hasher.from_settings(settings).hash(password), role or [], disabled=disabled,
                              allow_mixed_script=allow_mixed_script)
        if state.wants_json(json_output):
            data = render.user_json(user)
            if generated:
                data["password"] = password
            render.emit_json(data)
        else:
            if generated:
                render.emit_line(password)
                render.note("generated password shown once above; it is not stored anywhere")
            render.success(f"added user {user.username}" + (f" with roles {', '.join(user.roles)}" if user.roles else ""))


@app.command("list")
def list_users(
    role: Annotated[Optional[str], typer.Option("--role", "-r", help="Only users with this role (directly).")] = None,
    status: Annotated[Optional[str], typer.Option("--status", help="active or disabled.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000, help="Page size.")] = 100,
    offset: Annotated[int, typer.Option("--offset", min=0, help="Skip this many users.")] = 0,
    json_output: JsonFlag = False,
) -> None:
    """List users, filtered by role and status, a page at a time."""
    with state.open_store() as store:
        if role is not None:
            store.get_role(role)
        users = store.list_users(role=role, status=status, limit=limit, offset=offset)
        if state.wants_json(json_output):
            render.emit_json([render.user_json(user) for user in users])
        elif users:
            render.users_table(users)
            if len(users) == limit:
                render.note(f"showing {limit} users from offset {offset}; next page: --offset {offset + limit}")
        else:
            render.note("no users match")


@app.command("show")
def show(name: Name, json_output: JsonFlag = False) -> None:
    """Status, roles (direct and inherited) and effective permissions of a user."""
    with state.open_store() as store:
        _show(store, store.get_user(name), state.wants_json(json_output))


@app.command("passwd")
def passwd(name: Name, password_stdin: PasswordStdin = False, generate: Generate = False) -> None:
    """Set a new password; every token issued before stops working."""
    from ..passwords import Hasher

    with state.open_store() as store:
        user = store.get_user(name)
        settings = store.settings()
        password, generated = read_new_password(
            user.username, settings, from_stdin=password_stdin, generate=generate, user_inputs=user.roles
        )
        store.set_password_hash(user.username, Hasher.from_settings(settings).hash(password))
        if generated:
            render.emit_line(password)
        render.success(f"password of {user.username} changed; earlier tokens are no longer valid")


def _toggle(name: str, disabled: bool, json_output: bool) -> None:
    with state.open_store() as store:
        user = store.set_disabled(name, disabled)
        if state.wants_json(json_output):
            render.emit_json(render.user_json(user))
        else:
            render.success(f"{user.username} is now {user.status}")


@app.command("disable")
def disable(name: Name, json_output: JsonFlag = False) -> None:
    """Disable a user: logins and tokens are refused from the next request on."""
    _toggle(name, True, json_output)


@app.command("enable")
def enable(name: Name, json_output: JsonFlag = False) -> None:
    """Enable a disabled user."""
    _toggle(name, False, json_output)


@app.command("remove")
def remove(name: Name) -> None:
    """Remove a user and their role assignments."""
    with state.open_store() as store:
        user = store.get_user(name)
        store.remove_user(user.username)
        render.success(f"removed user {user.username}")


def _set_roles(name: str, roles: List[str], *, assign: bool, json_output: bool) -> None:
    with state.open_store() as store:
        user = (store.assign if assign else store.unassign)(name, roles)
    if state.wants_json(json_output):
        render.emit_json(render.user_json(user))
    else:
        render.success(f"{user.username} now has roles: {', '.join(user.roles) or 'none'}")


@app.command("assign")
def assign(
    name: Name,
    roles: Annotated[List[str], typer.Argument(help="Roles to assign.", show_default=False)],
    json_output: JsonFlag = False,
) -> None:
    """Assign roles to a user."""
    _set_roles(name, roles, assign=True, json_output=json_output)


@app.command("unassign")
def unassign(
    name: Name,
    roles: Annotated[List[str], typer.Argument(help="Roles to take away.", show_default=False)],
    json_output: JsonFlag = False,
) -> None:
    """Take roles away from a user."""
    _set_roles(name, roles, assign=False, json_output=json_output)


@app.command("logout")
def logout(name: Name) -> None:
    """End every session of a user: all tokens issued so far stop working."""
    with state.open_store() as store:
        user = store.bump_token_version(name)
        render.success(f"every earlier token of {user.username} is now invalid (token version {user.token_version})")


@app.command("unlock")
def unlock(name: Name) -> None:
    """Lift a lock left by too many failed logins."""
    with state.open_store() as store:
        user = store.unlock(name)
        render.success(f"{user.username} is unlocked and its failure counter reset")


@app.command("import")
def import_users(
    file: Annotated[str, typer.Argument(help="CSV or JSON Lines file; - for stdin.", show_default=False)],
    fmt: Annotated[Optional[str], typer.Option("--format", help="csv or jsonl (default: from the name or content).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate every row; write nothing.")] = False,
    workers: Annotated[Optional[int], typer.Option("--workers", min=1, max=64, help="Hashing processes (default: all cores).")] = None,
    allow_mixed_script: MixedScript = False,
    json_output: JsonFlag = False,
) -> None:
    """Import users all-or-nothing: any bad row is reported by line and nothing is written."""
    from .. import bulk, passwords

    text = read_stdin(bom=True) if file == "-" else bulk.read_text(file)
    if fmt is not None and fmt not in ("csv", "jsonl"):
        raise InvalidInput("--format must be csv or jsonl")
    fmt = fmt or bulk.detect_format(file, text)
    with state.open_store() as store:
        settings = store.settings()
        report = bulk.parse_import(
            text, fmt,
            existing_user=lambda name: store.find_user(name) is not None,
            known_roles={role.name for role in store.list_roles()},
            check_password=lambda pw, user: passwords.check_new(pw, user, settings),
            check_hash=passwords.check_importable_hash,
            look_alike=lambda name: getattr(store.find_look_alike(name), "username", None),
            allow_mixed_script=allow_mixed_script,
        )
        if report.errors:
            from . import with_hint

            for row_error in report.errors:
                render.err().print(render.text(with_hint(row_error), "red"))
            raise InvalidInput(f"{len(report.errors)} bad row(s) in {file}; nothing was imported")
        if not report.rows:
            raise InvalidInput(f"{file} holds no users")
        if dry_run:
            result = {"valid": len(report.rows), "imported": 0, "dry_run": True}
        else:
            to_hash = [row.password for row in report.rows if row.password is not None]
            params = (settings.argon2_memory_kib, settings.argon2_time_cost, settings.argon2_parallelism)
            hashes = _hash_with_progress(to_hash, params, workers or bulk.default_workers())
            records = [
                (row.username, cast(str, row.password_hash) if row.password is None else next(hashes), row.roles, row.disabled)
                for row in report.rows  # a row without a password was validated to have a hash
            ]
            store.add_users(records, allow_mixed_script=allow_mixed_script)
            result = {"valid": len(report.rows), "imported": len(records), "dry_run": False}
        if state.wants_json(json_output):
            render.emit_json(result)
        elif dry_run:
            render.success(f"{result['valid']} rows valid; nothing written (dry run)")
        else:
            render.success(f"imported {result['imported']} users")


def _hash_with_progress(to_hash: list[str], params: tuple[int, int, int], workers: int):
    """Hash every password first (with a progress bar on stderr), then hand them out in order."""
    from rich.progress import Progress

    from ..passwords import hash_many

    hashes: list[str] = []
    with Progress(console=render.err(), transient=True, disable=not to_hash) as progress:
        task = progress.add_task(f"hashing {len(to_hash)} passwords ({workers} processes)", total=len(to_hash))
        for hashed in hash_many(to_hash, params, workers):
            hashes.append(hashed)
            progress.advance(task)
    return iter(hashes)


@app.command("export")
def export_users(
    fmt: Annotated[str, typer.Option("--format", help="jsonl or csv.")] = "jsonl",
    with_hashes: Annotated[bool, typer.Option("--with-hashes", help="Include password hashes (treat the file as secret).")] = False,
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Write to this file (created 0600; - is stdout).")] = None,
) -> None:
    """Export users for a re-import; no password hashes unless --with-hashes."""
    import os

    from .. import bulk

    if fmt not in ("csv", "jsonl"):
        raise InvalidInput("--format must be csv or jsonl")
    with state.open_store() as store:
        records = bulk.export_records(store.list_users(), with_hashes=with_hashes)
    if output in (None, "-"):
        bulk.write_records(records, fmt, sys.stdout)
        return
    from ..files import create_private_file

    with os.fdopen(create_private_file(output), "w", encoding="utf-8", newline="") as stream:
        bulk.write_records(records, fmt, stream)
    render.success(f"exported {len(records)} users to {output}")
