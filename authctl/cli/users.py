"""``authctl user ...``"""

from __future__ import annotations

import sys
from enum import Enum
from typing import Annotated, Any, List, Optional, cast

import typer

from .. import render
from ..errors import Conflict, InvalidInput
from .common import (Generate, PasswordStdin, UserArg, Yes, complete_role, confirm, read_new_password, read_stdin,
                     state)

app = typer.Typer(no_args_is_help=True)

Name = UserArg
RoleOpt = Annotated[Optional[List[str]], typer.Option("--role", "-r", help="Role to assign (repeatable).",
                                                      autocompletion=complete_role)]


class Status(str, Enum):
    active = "active"
    disabled = "disabled"


class FileFormat(str, Enum):
    csv = "csv"
    jsonl = "jsonl"

MixedScript = Annotated[bool, typer.Option(
    "--allow-mixed-script", help="Accept a username that mixes scripts (Latin with Cyrillic, Greek, ...).",
)]


def _changed(user, message: str, **extra) -> None:
    """A changed user: its JSON under --json, else one line on stderr."""
    render.emit({**render.user_json(user), **extra}, lambda data: render.success(message))


@app.command("add")
def add(
    name: Name,
    role: RoleOpt = None,
    password_stdin: PasswordStdin = False,
    generate: Generate = False,
    disabled: Annotated[bool, typer.Option("--disabled", help="Create the account disabled.")] = False,
    allow_mixed_script: MixedScript = False,
) -> None:
    """Add a user with a password (prompted twice, --password-stdin or --generate).

    Examples:
      authctl user add suman --role admin
      authctl user add rahul --role student --password-stdin < password.txt
      authctl user add ci-bot --generate --json
    """
    from .. import passwords
    from ..names import new_username

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
        user = passwords.add_user(store, username, password, role or [], disabled=disabled,
                                  allow_mixed_script=allow_mixed_script, settings=settings)
        message = f"added user {user.username}" + (f" with roles {', '.join(user.roles)}" if user.roles else "")
        render.emit({**render.user_json(user), **({"password": password} if generated else {})},
                    lambda data: _generated(data.get("password"), message))


def _generated(password: Optional[str], message: str) -> None:
    if password is not None:
        render.emit_line(password)
        render.note("generated password shown once above; it is not stored anywhere")
    render.success(message)


@app.command("list")
def list_users(
    role: Annotated[Optional[str], typer.Option("--role", "-r", help="Only users with this role (directly).",
                                                autocompletion=complete_role)] = None,
    status: Annotated[Optional[Status], typer.Option("--status", help="Only active or only disabled users.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000, help="Page size.")] = 100,
    offset: Annotated[int, typer.Option("--offset", min=0, help="Skip this many users.")] = 0,
) -> None:
    """List users, filtered by role and status, a page at a time.

    --json gives {"users": [...], "total": N, "next_offset": K or null}.

    Examples:
      authctl user list --role admin
      authctl user list --status disabled --json
      authctl user list --limit 50 --offset 50
    """
    with state.open_store() as store:
        if role is not None:
            store.get_role(role)
        chosen = status.value if status is not None else None
        users = store.list_users(role=role, status=chosen, limit=limit, offset=offset)
        total = store.user_count(role=role, status=chosen)
    following = offset + len(users)
    render.emit({"users": [render.user_json(user) for user in users], "total": total,
                 "next_offset": following if following < total else None},
                lambda data: _users_page(users, data, offset))


def _users_page(users, data: dict, offset: int) -> None:
    if not users:
        render.note("no users match" + (f" from offset {offset} (total {data['total']})" if data["total"] else ""))
        return
    render.users_table(users)
    if data["next_offset"] is not None:
        render.note(f"showing {len(users)} of {data['total']} users from offset {offset}; "
                    f"next page: --offset {data['next_offset']}")


@app.command("show")
def show(name: Name) -> None:
    """Status, roles (direct and inherited) and effective permissions of a user.

    Examples:
      authctl user show suman
      authctl user show suman --json
    """
    from ..names import username_key

    with state.open_store() as store:
        user = store.get_user(name)
        access, login = store.access(user), store.login_failures(username_key(user.username))
    render.emit(render.user_json(user, access, login), lambda data: render.user_detail(user, access, login))


@app.command("passwd")
def passwd(name: Name, password_stdin: PasswordStdin = False, generate: Generate = False) -> None:
    """Set a new password; every token issued before stops working.

    Examples:
      authctl user passwd rahul
      authctl user passwd rahul --generate --json
    """
    from .. import passwords

    with state.open_store() as store:
        user = store.get_user(name)
        settings = store.settings()
        password, generated = read_new_password(
            user.username, settings, from_stdin=password_stdin, generate=generate, user_inputs=user.roles
        )
        user = passwords.set_password(store, user.username, password, settings=settings)
    message = f"password of {user.username} changed; earlier tokens are no longer valid"
    render.emit({**render.user_json(user), **({"password": password} if generated else {})},
                lambda data: _generated(data.get("password"), message))


def _toggle(name: str, disabled: bool) -> None:
    with state.open_store() as store:
        user = store.set_disabled(name, disabled)
    _changed(user, f"{user.username} is now {user.status}")


@app.command("disable")
def disable(name: Name) -> None:
    """Disable a user: logins and tokens are refused from the next request on.

    Examples:
      authctl user disable rahul
      authctl user disable rahul --json
    """
    _toggle(name, True)


@app.command("enable")
def enable(name: Name) -> None:
    """Enable a disabled user.

    Examples:
      authctl user enable rahul
    """
    _toggle(name, False)


@app.command("remove")
def remove(name: Name, yes: Yes = False) -> None:
    """Remove a user and their role assignments (asks first; --yes without a terminal).

    Examples:
      authctl user remove rahul
      authctl user remove rahul --yes --json
    """
    with state.open_store() as store:
        user = store.get_user(name)
        confirm(f"remove user {user.username}?", yes)
        store.remove_user(user.username)
    _changed(user, f"removed user {user.username}", removed=True)


def _set_roles(name: str, roles: List[str], *, assign: bool) -> None:
    with state.open_store() as store:
        user = (store.assign if assign else store.unassign)(name, roles)
    _changed(user, f"{user.username} now has roles: {', '.join(user.roles) or 'none'}")


RolesArg = Annotated[List[str], typer.Argument(help="Roles.", metavar="ROLE", show_default=False,
                                               autocompletion=complete_role)]


@app.command("assign")
def assign(name: Name, roles: RolesArg) -> None:
    """Assign roles to a user.

    Examples:
      authctl user assign rahul student
      authctl user assign priya student teacher --json
    """
    _set_roles(name, roles, assign=True)


@app.command("unassign")
def unassign(name: Name, roles: RolesArg) -> None:
    """Take roles away from a user.

    Examples:
      authctl user unassign priya teacher
    """
    _set_roles(name, roles, assign=False)


@app.command("logout")
def logout(name: Name) -> None:
    """End every session of a user: all tokens issued so far stop working.

    Examples:
      authctl user logout rahul
    """
    with state.open_store() as store:
        user = store.bump_token_version(name)
    _changed(user, f"every earlier token of {user.username} is now invalid (token version {user.token_version})")


@app.command("unlock")
def unlock(name: Name) -> None:
    """Lift a lock left by too many failed logins.

    Examples:
      authctl user unlock rahul
    """
    with state.open_store() as store:
        user = store.unlock(name)
    _changed(user, f"{user.username} is unlocked and its failure counter reset")


@app.command("import")
def import_users(
    file: Annotated[str, typer.Argument(help="CSV or JSON Lines file; - for stdin.", metavar="FILE", show_default=False)],
    fmt: Annotated[Optional[FileFormat], typer.Option("--format", help="Default: from the name or content.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Validate every row; write nothing.")] = False,
    workers: Annotated[Optional[int], typer.Option("--workers", min=1, max=64, help="Hashing processes (default: all cores).")] = None,
    generate: Annotated[bool, typer.Option("--generate", help="Rows without a password get a generated one (printed once).")] = False,
    keep_disabled: Annotated[bool, typer.Option("--keep-disabled", help="Rows without a password are imported disabled, with none.")] = False,
    allow_mixed_script: MixedScript = False,
) -> None:
    """Import users all-or-nothing: any bad row is reported by line and nothing is written.

    A row with neither password nor password_hash (as `user export` writes them) needs
    --generate (a generated password, printed once) or --keep-disabled (imported disabled,
    with no password: `user passwd` and `user enable` later).

    Examples:
      authctl user import users.csv
      authctl user export > users.jsonl && authctl --db new.db user import users.jsonl --generate
      authctl user import users.jsonl --keep-disabled --dry-run --json
    """
    from .. import bulk, passwords

    if generate and keep_disabled:
        raise InvalidInput("choose one of --generate and --keep-disabled")
    text = read_stdin(bom=True) if file == "-" else bulk.read_text(file)
    file_format = fmt.value if fmt is not None else bulk.detect_format(file, text)
    with state.open_store() as store:
        settings = store.settings()
        report = bulk.parse_import(
            text, file_format,
            existing_user=lambda name: store.find_user(name) is not None,
            known_roles={role.name for role in store.list_roles()},
            check_password=lambda pw, user: passwords.check_new(pw, user, settings),
            check_hash=passwords.check_importable_hash,
            look_alike=lambda name: getattr(store.find_look_alike(name), "username", None),
            allow_mixed_script=allow_mixed_script, passwordless=generate or keep_disabled,
        )
        generated = _fill_passwordless(report.rows, generate)
        if report.errors:
            from . import with_hint

            for row_error in report.errors:
                render.err().print(render.text(with_hint(row_error), "red"))
            raise InvalidInput(f"{len(report.errors)} bad row(s) in {file}; nothing was imported")
        if not report.rows:
            raise InvalidInput(f"{file} holds no users")
        if dry_run:
            generated.clear()  # nothing is created, so no password is shown
            result: dict[str, Any] = {"valid": len(report.rows), "imported": 0, "dry_run": True}
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
    result["generated"] = [{"username": name, "password": password} for name, password in generated.items()]
    result["disabled_without_password"] = [row.username for row in report.rows
                                           if row.password is None and row.password_hash is None]
    render.emit(result, _import_report)


def _fill_passwordless(rows, generate: bool) -> dict[str, str]:
    """Rows with no password: a generated one (returned, to show once), or kept disabled."""
    from .. import passwords

    generated: dict[str, str] = {}
    for row in rows:
        if row.password is None and row.password_hash is None:
            if generate:
                row.password = generated[row.username] = passwords.generate()
            else:
                row.disabled = True
    return generated


def _import_report(result: dict) -> None:
    for each in result["generated"]:
        render.emit_line(f"{each['username']} {each['password']}")
    if result["generated"]:
        render.note("generated passwords shown once above; they are not stored anywhere")
    if result["disabled_without_password"]:
        render.note(f"{len(result['disabled_without_password'])} user(s) imported disabled without a password: "
                    "`authctl user passwd NAME` then `authctl user enable NAME`")
    if result["dry_run"]:
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
    fmt: Annotated[FileFormat, typer.Option("--format", help="File format.")] = FileFormat.jsonl,
    with_hashes: Annotated[bool, typer.Option("--with-hashes", help="Include password hashes (treat the file as secret).")] = False,
    output: Annotated[Optional[str], typer.Option("--output", "-o", help="Write to this file (created 0600; - is stdout).")] = None,
) -> None:
    """Export users for a re-import; no password hashes unless --with-hashes.

    Without hashes the rows have no password: `user import` needs --generate or
    --keep-disabled for them. With --json (and no --output) the users are one JSON document.

    Examples:
      authctl user export > users.jsonl
      authctl user export --format csv --with-hashes -o users.csv
      authctl user export --json
    """
    import os

    from .. import bulk

    with state.open_store() as store:
        records = bulk.export_records(store.list_users(), with_hashes=with_hashes)
    if output in (None, "-"):
        render.emit({"users": records}, lambda data: bulk.write_records(records, fmt.value, sys.stdout))
        return
    from ..files import create_private_file

    with os.fdopen(create_private_file(output), "w", encoding="utf-8", newline="") as stream:
        bulk.write_records(records, fmt.value, stream)
    render.emit({"exported": len(records), "output": output, "format": fmt.value},
                lambda data: render.success(f"exported {len(records)} users to {output}"))
