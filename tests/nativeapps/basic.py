"""HTTP Basic: each request carries the username and password."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI
from fastapi.security import HTTPBasic, HTTPBasicCredentials

from tests.nativeapps.common import password_ok, unauthorized

basic = HTTPBasic(realm="reports")
app = FastAPI(title="reports (HTTP Basic)")


def account(credentials: Annotated[HTTPBasicCredentials, Depends(basic)]) -> dict[str, Any]:
    user = password_ok(credentials.username, credentials.password)
    if user is None:
        raise unauthorized("wrong username or password", 'Basic realm="reports"')
    return user


@app.get("/reports")
def reports(user: Annotated[dict, Depends(account)]) -> dict[str, str]:
    return {"owner": user["username"]}


@app.get("/ping")
def ping() -> str:
    return "pong"
