"""Helpers for the app, integration and route tests: a seeded demo database and an ASGI client."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from authctl.store import Store

PASSWORD = "Correct-Horse-Battery-9"
DEMO_PASSWORDS = {"suman": PASSWORD, "rahul": PASSWORD, "priya": PASSWORD}


def make_demo_db(cli: Any) -> Path:
    """``authctl init`` (database + first signing key), then the demo seed with known passwords."""
    from authctl.app.data import seed_demo

    result = cli("init")
    assert result.exit_code == 0, result.stderr
    with Store.open(cli.db) as store:
        seed_demo(store, DEMO_PASSWORDS)
    return cli.db


def add_article_users(store: Store, password_hash: str | None = None) -> None:
    """The article's roles and users straight through the library: suman (admin), rahul (student)."""
    store.add_role("student")
    store.add_role("admin", inherits=["student"])
    store.grant("student", ["students:read"])
    store.grant("admin", ["students:delete"])
    store.add_user("suman", password_hash, ["admin"])
    store.add_user("rahul", password_hash, ["student"])


class Client:
    """A synchronous face over ``httpx.AsyncClient(transport=ASGITransport(app))`` on one event loop.

    ``Client.at(url)`` is the same face over a real socket, for a running server.
    """

    def __init__(self, app: Any, *, raise_app_exceptions: bool = True):
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
        self.client = httpx.AsyncClient(transport=self.transport, base_url="http://test")

    @classmethod
    def at(cls, base_url: str, *, timeout: float = 10.0) -> Client:
        """A client of the server at ``base_url`` (a plain ``httpx.AsyncClient``, no app in process)."""
        client = cls.__new__(cls)
        client.app = None
        client.loop = asyncio.new_event_loop()
        client.transport = None
        client.client = httpx.AsyncClient(base_url=base_url, timeout=timeout)
        return client

    def request(self, method: str, url: str, *, token: str | None = None, **kwargs: Any) -> httpx.Response:
        if token is not None:
            kwargs["headers"] = {**kwargs.get("headers", {}), "Authorization": f"Bearer {token}"}
        return self.run(self.client.request(method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)

    def login(self, username: str, password: str = PASSWORD) -> httpx.Response:
        return self.post("/token", data={"username": username, "password": password})

    def token(self, username: str, password: str = PASSWORD) -> str:
        response = self.login(username, password)
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.run(self.client.aclose())
        self.loop.close()


def issue(store: Store, username: str, **kwargs: Any) -> str:
    """A token straight from the library (no password hashing): fast for authorization tests."""
    from authctl import tokens

    return tokens.issue(store, username, **kwargs).token


#: The article's roles, users and one expectation table, as a policy file (policy and plugin tests).
ARTICLE_POLICY = '''
[roles.student]
permissions = ["students:read"]

[roles.admin]
inherits = ["student"]
permissions = ["students:delete"]

[users.rahul]
roles = ["student"]

[users.suman]
roles = ["admin"]

[expect."DELETE /student/{id}"]
rahul = 403
suman = "allow"
anonymous = 401
'''
