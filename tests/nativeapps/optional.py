"""Optional authentication: anonymous callers get the public feed, signed-in ones their own."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI
from fastapi.security import OAuth2PasswordBearer

from tests.nativeapps.common import user_from_token

maybe_bearer = OAuth2PasswordBearer(tokenUrl="token", auto_error=False)
app = FastAPI(title="feed (optional auth)")


def optional_user(token: Annotated[str | None, Depends(maybe_bearer)]) -> dict[str, Any] | None:
    return None if token is None else user_from_token(token)[0]


@app.get("/feed")
def feed(user: Annotated[dict | None, Depends(optional_user)]) -> dict[str, str]:
    return {"feed": "public" if user is None else f"for {user['username']}"}
