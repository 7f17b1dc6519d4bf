"""Creating a new auth database: the file, its first signing key, and optionally the demo."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Mapping

if TYPE_CHECKING:
    from .app.data import DemoUser
    from .store import DatabaseURL, SigningKey, Store


def create_database(
    path: "str | os.PathLike | DatabaseURL",
    *,
    alg: str = "ES256",
    issuer: str | None = None,
    audience: str | None = None,
    demo: bool = False,
    demo_passwords: Mapping[str, str] | None = None,
) -> tuple["Store", "SigningKey", list["DemoUser"]]:
    """All or nothing: on any failure the new file (or the new tables) is removed again."""
    from . import keys
    from .store import Store

    key = keys.generate(alg)  # before the file exists: a bad algorithm leaves nothing behind
    store = Store.create(path)
    try:
        with store.transaction():
            if issuer is not None:
                store.set_setting("issuer", issuer)
            if audience is not None:
                store.set_setting("audience", audience)
            store.add_key(key)
        demo_users: list = []
        if demo:
            from .app.data import seed_demo

            demo_users = seed_demo(store, demo_passwords)
    except BaseException:
        store.discard()  # the file removed, or the PostgreSQL tables dropped
        raise
    return store, key, demo_users
