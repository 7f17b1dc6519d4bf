"""An API key in a header (X-API-Key), one key per user."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Security
from fastapi.security import APIKeyHeader

from tests.nativeapps.common import USERS, unauthorized

api_key = APIKeyHeader(name="X-API-Key")
app = FastAPI(title="data (API key)")


def key_owner(key: Annotated[str, Security(api_key)]) -> dict[str, Any]:
    user = next((u for u in USERS.values() if u["api_key"] == key), None)
    if user is None:
        raise unauthorized("unknown API key", "APIKey")
    return user


@app.get("/data")
def data(user: Annotated[dict, Security(key_owner)]) -> dict[str, str]:
    return {"for": user["username"]}
