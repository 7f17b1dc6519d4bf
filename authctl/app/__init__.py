"""The bundled demo app: the article's learning platform, built only from ``authctl.fastapi``.

``create_app(db_path=None)`` builds it on an authctl database (default: ``AUTHCTL_DB``
or ``./authctl.db``, opened on the first request). The module attribute ``app`` is
built lazily on first access, so ``uvicorn authctl.app:app`` and
``authctl serve --app authctl.app:app`` work, and importing this package stays
cheap (FastAPI is imported only when an app is built). Seed a database for it with
``authctl init --demo``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ..fastapi import Auth

__all__ = ["create_app", "app"]

_app: "FastAPI | None" = None


def create_app(db_path: Any = None, *, auth: "Auth | None" = None, **auth_options: Any) -> "FastAPI":
    """A new demo app. ``auth`` (or ``auth_options`` for ``Auth``) customises the integration."""
    from .main import build

    return build(db_path, auth=auth, **auth_options)


def __getattr__(name: str) -> Any:
    if name == "app":
        global _app
        if _app is None:
            _app = create_app()
        return _app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
