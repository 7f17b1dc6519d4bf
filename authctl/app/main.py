"""The demo app's routes. Every protection comes from ``authctl.fastapi`` dependencies."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from fastapi import Depends, FastAPI, HTTPException
from pydantic import BaseModel, Field

from ..fastapi import Auth, internal_error_handler, offline_docs, public
from . import data

DESCRIPTION = """The learning platform from *Authentication vs Authorization*:
**suman** is an admin, **rahul** a student, **priya** an instructor.
Only admins may `DELETE /student/{id}`: anyone else gets **403** (authenticated, not allowed);
without a token it is **401** (who are you?).

Use **Authorize** with a demo user's password (printed by `authctl init --demo`)."""


class CourseIn(BaseModel):
    title: str = Field(min_length=1, max_length=200)


def build(db_path: Any = None, *, auth: Auth | None = None, **auth_options: Any) -> FastAPI:
    auth = auth or Auth(db=db_path, **auth_options)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        auth.close()

    app = FastAPI(
        title="authctl demo: learning platform",
        description=DESCRIPTION,
        version="1.0",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.auth = auth
    internal_error_handler(app)
    offline_docs(app)
    auth.add_routes(app)  # = app.include_router(auth.router), minus included-router matching cost

    @app.get("/health", tags=["demo"], dependencies=[Depends(public)])
    async def health() -> dict[str, str]:
        """Public: is the server up?"""
        return {"status": "ok"}

    @app.get("/profile", tags=["demo"])
    async def profile(user: Any = Depends(auth.current_user)) -> dict[str, Any]:
        """Any authenticated user: their own profile."""
        return {"message": "Your profile is here", "username": user.username, "user_id": user.id,
                "roles": list(user.roles)}

    @app.get("/students", tags=["demo"], dependencies=[Depends(auth.require("students:read"))])
    async def list_students() -> list[dict[str, Any]]:
        """students:read: every student."""
        return data.list_students(auth.store)

    @app.get("/students/{id:int}", tags=["demo"],
             dependencies=[Depends(auth.require("students:read", owner_param="id"))])
    async def get_student(id: int) -> dict[str, Any]:
        """students:read, or the student themselves (the id is their user id)."""
        student = data.get_student(auth.store, id)
        if student is None:
            raise HTTPException(404, f"no student {id}")
        return student

    @app.delete("/student/{id:int}", tags=["demo"], dependencies=[Depends(auth.require("students:delete"))])
    # the writers are plain `def`: a write may wait for the database lock, in a worker thread, not the event loop
    def delete_student(id: int) -> dict[str, str]:
        """students:delete (admins only): the article's protected route."""
        if not data.delete_student(auth.store, id):
            raise HTTPException(404, f"no student {id}")
        return {"message": f"Student {id} deleted"}

    @app.get("/courses", tags=["demo"], dependencies=[Depends(public)])
    async def list_courses() -> list[dict[str, Any]]:
        """Public: the course catalogue."""
        return data.list_courses(auth.store)

    @app.post("/courses", tags=["demo"], status_code=201)
    def add_course(course: CourseIn, user: Any = Depends(auth.require("courses:write"))) -> dict[str, Any]:
        """courses:write (instructors and admins): add a course."""
        return data.add_course(auth.store, course.title, user.username)

    @app.get("/admin/dashboard", tags=["demo"], dependencies=[Depends(auth.require("admin:access"))])
    async def dashboard() -> dict[str, Any]:
        """admin:access: platform counts."""
        return {"message": "Welcome to the admin dashboard", **data.counts(auth.store)}

    return app
