"""OAuth2 password bearer with a superuser guard (get_current_active_superuser)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException
from fastapi.security import OAuth2PasswordBearer, OAuth2PasswordRequestForm

from tests.nativeapps.common import make_token, password_ok, unauthorized, user_from_token

oauth2 = OAuth2PasswordBearer(tokenUrl="/login/access-token")
app = FastAPI(title="accounts (superuser guard)")


def get_current_user(token: Annotated[str, Depends(oauth2)]) -> dict[str, Any]:
    user, _ = user_from_token(token)
    return user


def get_current_active_superuser(user: Annotated[dict, Depends(get_current_user)]) -> dict[str, Any]:
    if not user["superuser"]:
        raise HTTPException(403, "the user doesn't have enough privileges")
    return user


@app.post("/login/access-token")
def login(form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> dict[str, str]:
    user = password_ok(form.username, form.password)
    if user is None:
        raise unauthorized("incorrect username or password")
    return {"access_token": make_token(user["username"]), "token_type": "bearer"}


@app.get("/me")
def me(user: Annotated[dict, Depends(get_current_user)]) -> dict[str, str]:
    return {"username": user["username"]}


@app.get("/admin/users")
def all_users(user: Annotated[dict, Depends(get_current_active_superuser)]) -> list[str]:
    return ["rahul", "suman"]
