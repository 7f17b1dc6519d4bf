"""``authctl who-can``: the reverse of ``check``."""

from __future__ import annotations

import typer

from .. import render
from ..errors import InvalidInput
from .check import AppOption, Method, Path
from .common import state


def who_can(
    method: Method,
    path: Path,
    app_spec: AppOption = None,
) -> None:
    """Which users (and roles) may send METHOD PATH, each with the role that grants it.

    Every user is decided as `authctl check --as USER` would decide. Exit 0, or 5 for no such route.

    Examples:
      authctl who-can DELETE /student/3
      authctl who-can GET /items/1 --app myapp.main:app --json
    """
    from .. import explain, routes, whocan

    try:
        method = explain.normalize_method(method)
    except InvalidInput as exc:
        raise typer.BadParameter(str(exc), param_hint="METHOD") from None
    with state.open_store() as store:
        result = whocan.who_can(store, routes.load_app(app_spec), method, path)
    render.emit(result.as_dict(), lambda data: render.who_can_report(result))


def register(app: typer.Typer) -> None:
    app.command("who-can")(who_can)
