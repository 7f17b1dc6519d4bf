"""A custom scheme word: ``Authorization: Token <jwt>`` (read through an API-key header named Authorization)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI
from fastapi.security import APIKeyHeader

from tests.nativeapps.common import unauthorized, user_from_token

token_header = APIKeyHeader(name="Authorization", scheme_name="TokenAuth")
app = FastAPI(title="notes (Token scheme)")


def token_user(value: Annotated[str, Depends(token_header)]) -> dict[str, Any]:
    word, _, token = value.partition(" ")
    if word != "Token" or not token:
        raise unauthorized("send Authorization: Token <token>", "Token")
    user, _ = user_from_token(token)
    return user


@app.get("/notes")
def notes(user: Annotated[dict, Depends(token_user)]) -> list[str]:
    return [f"note of {user['username']}"]
