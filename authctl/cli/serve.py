"""``authctl serve`` and ``authctl routes``. FastAPI and uvicorn are imported inside the commands."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from .. import render
from ..errors import AuthctlError, InvalidInput
from .common import state

AppOpt = Annotated[
    Optional[str],
    typer.Option("--app", help="The app as module:attribute (default: the bundled demo app authctl.app:app)."),
]


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    if host in ("0.0.0.0", "::"):
        shown = "127.0.0.1"
    return f"http://{shown}:{port}"


def _redact_query_class() -> type:
    import logging

    class RedactQuery(logging.Filter):
        """Access-log filter: drop query strings (a token someone put in a URL never reaches the log)."""

        def filter(self, record: logging.LogRecord) -> bool:
            args = record.args
            if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and "?" in args[2]:
                record.args = (*args[:2], args[2].split("?", 1)[0] + "?…", *args[3:])
            return True

    RedactQuery.__module__, RedactQuery.__qualname__ = __name__, "RedactQuery"
    return RedactQuery


def __getattr__(name: str) -> Any:
    """``RedactQuery`` is made on first use, so that listing commands does not import logging."""
    if name == "RedactQuery":
        cls = globals()["RedactQuery"] = _redact_query_class()
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _log_config() -> dict:
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["authctl_redact_query"] = {"()": "authctl.cli.serve.RedactQuery"}
    config["handlers"]["access"].setdefault("filters", []).append("authctl_redact_query")
    return config


def serve(
    host: Annotated[str, typer.Option("--host", help="Address to bind (loopback unless you mean it).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on.")] = 8000,
    app_spec: AppOpt = None,
    reload: Annotated[bool, typer.Option("--reload", help="Restart when code changes (development).")] = False,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="Worker processes.")] = 1,
) -> None:
    """Run an app (default: the bundled demo) with uvicorn on this database.

    Examples:
      authctl serve
      authctl serve --app myapp.main:app --port 8080 --reload
    """
    import os
    import signal
    import sys

    from ..store import location_env, resolve_db_path

    path = resolve_db_path(state.db_option)
    with state.open_store() as store:  # fail now, in one line, if the database or a setting is unusable
        store.settings()
    if reload and workers > 1:
        raise InvalidInput("choose one of --reload and --workers")
    from ..routes import DEFAULT_APP

    spec = app_spec or DEFAULT_APP
    os.environ["AUTHCTL_DB"] = location_env(path)
    if state.insecure_permissions:
        render.warn("--insecure-permissions does not reach the server; fix the file mode instead")
    from ..routes import load_app

    load_app(spec)  # a one-line error now rather than a traceback from uvicorn
    import uvicorn

    url = _url(host, port)
    from ..probe import is_loopback

    if not is_loopback(host):
        render.warn(f"binding to {host}: the server is reachable from other machines, not just this one")
    if port == 0:  # the system picks the port when uvicorn binds; uvicorn's own line below names it
        render.success(f"serving {spec} on a free port of {host} (database {path})")
    else:
        render.success(f"serving {spec} on {url} (database {path})")
        render.banner(f"docs:  {url}/docs")
        curl = f"curl -s -X POST {url}/token -d username=NAME -d password=..."
        render.banner(f"token: {curl} (or: authctl token issue --as NAME)", keep=(curl, "authctl token issue --as NAME"))
    render.banner("stop:  Ctrl-C")
    sys.stderr.flush()

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        uvicorn.run(
            spec, host=host, port=port, reload=reload, workers=workers if workers > 1 else None,
            log_config=_log_config(), server_header=False, proxy_headers=False,
        )
    except KeyboardInterrupt:
        pass
    except SystemExit as exc:  # uvicorn exits 3 when it cannot start (port in use, ...)
        if exc.code not in (0, None):
            raise AuthctlError("the server could not start (see the message above)") from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    render.note("server stopped")


def routes(app_spec: AppOpt = None) -> None:
    """Every route with what guards it, and open routes that look like a mistake flagged.

    A guard is an authctl requirement, or the app's own schemes, scopes and guard dependencies.

    Examples:
      authctl routes
      authctl routes --app myapp.main:app --json
    """
    from ..routes import inventory, load_app

    infos = inventory(load_app(app_spec))
    render.emit([info.as_dict() for info in infos], lambda data: _routes_report(infos))


def _routes_report(infos: list) -> None:
    if not infos:
        render.note("the app has no routes")
        return
    render.routes_table(infos)
    flagged = [info for info in infos if info.unprotected]
    if flagged:
        render.warn(
            f"{len(flagged)} open route(s) look like a mistake: "
            + ", ".join(f"{i.method} {i.path} ({i.flag})" for i in flagged[:5]) + (" …" if len(flagged) > 5 else "")
            + "; protect them, or mark them with Depends(auth.public)"
        )
    guarded = sorted({g.name for i in infos if i.native is not None for g in i.native.guards})
    if guarded:
        render.note(f"guards decide in code (authctl cannot read them offline): {', '.join(guarded)}")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("routes")(routes)
