"""The ``authctl`` command line: parse, call the library, render.

``BoundaryGroup`` is the one error boundary: a known ``AuthctlError`` becomes a
one-line message on stderr and its documented exit code; anything else becomes
a generic one-line "internal error" (``AUTHCTL_DEBUG=1`` shows the traceback).
Tracebacks never show local variables.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any, Optional

import typer

from .. import __version__
from ..errors import AuthctlError
from .common import LazyGroup, make_lazy, state


#: Global options, accepted before or after the command (`authctl user list --db x.db`).
GLOBAL_FLAGS = ("--json", "--insecure-permissions")
GLOBAL_VALUED = ("--db",)


def hoist_globals(args: list[str]) -> list[str]:
    """``args`` with every global option found after the command moved before it.

    The scan stops at ``--``; a value of a command's own option is never taken for one,
    since no command has an option of these names.
    """
    start = 0
    while start < len(args) and args[start].startswith("-") and args[start] != "--":
        start += 2 if args[start] in GLOBAL_VALUED else 1
    front, rest, index = list(args[:start]), [], start
    while index < len(args):
        arg = args[index]
        if arg == "--":
            rest.extend(args[index:])
            break
        if arg in GLOBAL_FLAGS or arg.startswith(tuple(f"{name}=" for name in GLOBAL_VALUED)):
            front.append(arg)
        elif arg in GLOBAL_VALUED and index + 1 < len(args):
            front.extend(args[index:index + 2])
            index += 1
        else:
            rest.append(arg)
        index += 1
    return front + rest


class BoundaryGroup(LazyGroup):
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_globals(args) if ctx.parent is None else args)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except AuthctlError as exc:
            if os.environ.get("AUTHCTL_DEBUG") == "1":
                raise
            from ..render import error

            error(with_hint(exc))
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            if os.environ.get("AUTHCTL_DEBUG") == "1" or _is_click_exception(exc):
                raise
            from ..render import error

            if _is_sqlite_error(exc):  # e.g. a damaged page met by a query after the file opened fine
                error(_sqlite_message(exc))
                raise typer.Exit(AuthctlError.exit_code) from None
            error(f"internal error ({type(exc).__name__}); rerun with AUTHCTL_DEBUG=1 for the traceback")
            raise typer.Exit(AuthctlError.exit_code) from None


#: The one place library errors meet command-line options: a library message never names a
#: flag; an error that carries ``hint`` gets this advice appended (``errors.AuthctlError``).
HINTS = {
    "unsafe": ": add --unsafe to send it",
    "insecure_transport": ", or --insecure-transport",
    "url_host": " (the host comes from --url)",
    "mixed_script": "; pass --allow-mixed-script if it is really meant",
    "force": "; pass --force to remove it everywhere",
    "insecure_permissions": ", or pass --insecure-permissions",
    "db": " (or pass --db / set AUTHCTL_DB)",
    "weak_secret": "; if the app really uses it, add --unsafe-weak-secret (for this target only)",
    "hmac": "; to import a raw HMAC secret, pass --hmac",
    "secret_stdin": "; for an HMAC secret use --secret-stdin",
    "secret_stdin_hmac": "; verify HMAC tokens with --secret-stdin",
    "public_keys": ": use --key or --jwks for keys",
    "openapi_url": "; give --openapi-url PATH if it is served elsewhere",
    "ttl": "; shorten --ttl or raise it with `authctl config set max_ttl ...`",
    "strict": " (--strict needs --expect FILE)",
    "url": ": give --url",
    "target_key": ": --key-file FILE or --key-stdin",
    "target_passwords": ": --passwords-file FILE or --passwords-stdin",
    "expired": ": choose one of --expired and --not-yet-valid",
}


def with_hint(exc: AuthctlError) -> str:
    """The error's one line, with the CLI's advice for its ``hint``: its own, or that of the
    error it was raised from (a library error re-raised with more context keeps its hint)."""
    cause: BaseException | None = exc
    while cause is not None:
        hint = getattr(cause, "hint", None)
        if hint:
            return str(exc) + HINTS.get(hint, "")
        cause = cause.__cause__ or cause.__context__
    return str(exc)


def _is_click_exception(exc: Exception) -> bool:
    return type(exc).__module__.startswith(("typer", "click"))


def _is_sqlite_error(exc: Exception) -> bool:
    sqlite3 = sys.modules.get("sqlite3")
    return sqlite3 is not None and isinstance(exc, sqlite3.Error)


def _sqlite_message(exc: Exception) -> str:
    from ..store import resolve_db_path

    damaged = getattr(exc, "sqlite_errorname", "").startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB"))
    hint = "; the file is damaged: restore it from a backup" if damaged else ""
    return f"{resolve_db_path(state.db_option)}: database error ({exc}){hint}"


app = typer.Typer(
    cls=BoundaryGroup,
    name="authctl",
    help="Administer, issue and test authentication (401) and authorization (403) for FastAPI apps.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"authctl {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    db: Annotated[Optional[str], typer.Option("--db", help="Database file or postgresql:// URL (env AUTHCTL_DB; default ./authctl.db).", show_default=False)] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout (every command; also after it).")] = False,
    insecure_permissions: Annotated[bool, typer.Option("--insecure-permissions", help="Open a database readable by group/others.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")] = False,
) -> None:
    state.db_option = db
    from .. import render

    render.output.json = json_output
    state.insecure_permissions = insecure_permissions
    from ..config import check_environment

    check_environment()  # a bad AUTHCTL_* value stops every command here, in one line


def _register() -> None:
    from . import admin, db, keys, policy, roles, targets, tokens, users

    app.add_typer(users.app, name="user", help="Users: add, list, show, passwords, roles, import/export.")
    app.add_typer(roles.app, name="role", help="Roles: permissions and inheritance.")
    app.add_typer(keys.app, name="key", help="Signing keys: list, rotate, retire, jwks, import.")
    app.add_typer(tokens.app, name="token", help="Tokens: issue, inspect, verify, revoke.")
    app.add_typer(targets.app, name="target", help="Targets: how to authenticate to an app with its own security.")
    app.add_typer(policy.app, name="policy", help="The whole policy as a reviewable file: export, apply, diff, test.")
    app.add_typer(db.app, name="db", help="The database as a whole: copy between SQLite and PostgreSQL.")
    admin.register(app)
    from . import check, serve, whocan

    serve.register(app)
    check.register(app)
    whocan.register(app)
    make_lazy(app)  # commands are built when a run looks them up, not all at start-up


_register()


def main() -> None:
    if any(0xD800 <= ord(c) <= 0xDFFF for arg in sys.argv[1:] for c in arg):
        sys.stderr.write("error: an argument is not valid UTF-8 text\n")  # bytes the shell passed undecoded
        raise SystemExit(2)
    app(prog_name="authctl")


if __name__ == "__main__":  # pragma: no cover
    main()
