"""OAuth2 password flow + JWT with scopes (Security(..., scopes=[...])). Planted mistake: DELETE /items/{item_id} is open."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Security
from fastapi.security import OAuth2PasswordBearer, OAuth2PasswordRequestForm, SecurityScopes

from tests.nativeapps.common import make_token, password_ok, user_from_token

oauth2 = OAuth2PasswordBearer(tokenUrl="token", scopes={"items:read": "read items", "items:write": "change items"})
app = FastAPI(title="shop (OAuth2 scopes)")


def caller(security_scopes: SecurityScopes, token: Annotated[str, Depends(oauth2)]) -> dict[str, Any]:
    user, claims = user_from_token(token)
    granted = str(claims.get("scope", "")).split()
    missing = [scope for scope in security_scopes.scopes if scope not in granted]
    if missing:
        challenge = f'Bearer error="insufficient_scope", scope="{security_scopes.scope_str}"'
        raise HTTPException(403, "insufficient scope", headers={"WWW-Authenticate": challenge})
    return user


@app.post("/token")
def login(form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> dict[str, str]:
    user = password_ok(form.username, form.password)
    if user is None:
        raise HTTPException(401, "wrong username or password", headers={"WWW-Authenticate": "Bearer"})
    scopes = [s for s in form.scopes if s in user["scopes"]] if form.scopes else user["scopes"]
    return {"access_token": make_token(user["username"], scopes), "token_type": "bearer"}


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/users/me")
def me(user: Annotated[dict, Security(caller)]) -> dict[str, str]:
    return {"username": user["username"]}


@app.get("/items")
def list_items(user: Annotated[dict, Security(caller, scopes=["items:read"])]) -> list[str]:
    return ["lamp", "desk"]


@app.post("/items")
def add_item(user: Annotated[dict, Security(caller, scopes=["items:write"])]) -> dict[str, str]:
    return {"added": "chair"}


@app.delete("/items/{item_id}")
def delete_item(item_id: int) -> dict[str, int]:  # the mistake: no dependency at all
    return {"deleted": item_id}
