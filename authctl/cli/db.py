"""``authctl db``: whole-database operations (copy between SQLite files and PostgreSQL)."""

from __future__ import annotations

from typing import Annotated

import typer

from .. import render

app = typer.Typer(no_args_is_help=True)


@app.command("copy")
def copy(
    source: Annotated[str, typer.Argument(help="An SQLite file or postgresql:// URL.", metavar="SRC", show_default=False)],
    destination: Annotated[str, typer.Argument(help="A new file, or an empty PostgreSQL database.", metavar="DST",
                                               show_default=False)],
) -> None:
    """Copy a whole database (users, roles, keys, tokens, audit log, ...) from SRC to DST, then verify it.

    DST must not exist (a file) or be empty (PostgreSQL). Every table is compared after the copy:
    row counts and a SHA-256 of its content. On any failure DST is removed again.

    Examples:
      authctl db copy authctl.db postgresql://authctl@db.internal/authctl
      authctl --json db copy postgresql:///authctl backup.db
    """
    from ..app import data  # noqa: F401 - registers the demo's tables, copied when the source has them
    from ..store.copy import copy_database

    report = copy_database(source, destination)
    total = sum(t.rows for t in report.tables)
    render.emit(report.as_dict(), lambda _: render.success(
        f"copied {report.source} to {report.destination}: {len(report.tables)} tables, {total} rows, "
        "every table verified (row count and SHA-256)"))
