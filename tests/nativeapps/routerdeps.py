"""HTTP Bearer with router-level dependencies. Planted mistake: /admin/orders/{order_id} sits outside the guarded router."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tests.nativeapps.common import user_from_token

bearer = HTTPBearer()
app = FastAPI(title="back office (router dependencies)")


def staff_member(credentials: Annotated[HTTPAuthorizationCredentials, Depends(bearer)]) -> dict[str, Any]:
    user, _ = user_from_token(credentials.credentials)
    if not user["staff"]:
        raise HTTPException(403, "staff only")
    return user


admin = APIRouter(prefix="/admin", dependencies=[Depends(staff_member)])


@admin.get("/stats")
def stats() -> dict[str, int]:
    return {"orders": 3}


@admin.get("/users")
def users() -> list[str]:
    return ["rahul", "suman"]


app.include_router(admin)


@app.get("/admin/orders/{order_id}")
def order(order_id: int) -> dict[str, int]:  # the mistake: added to the app, not to the guarded router
    return {"order": order_id}


@app.get("/debug/settings")
def debug_settings() -> dict[str, bool]:
    return {"debug": True}


@app.get("/")
def home() -> dict[str, str]:
    return {"hello": "world"}
