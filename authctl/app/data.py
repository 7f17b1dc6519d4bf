"""The demo's roles, users and data, seeded into the auth database by ``authctl init --demo``.

No FastAPI here: ``init`` imports this module. The demo data lives in the same
SQLite file, in its own tables (``demo_students``, ``demo_courses``) created by
``seed_demo`` (not by the store's migrations). Without them (a database that was
not seeded) the data routes answer with empty lists and 404s.

Student records are keyed by the student's user id where the student has an
account: rahul (user id 2 on a fresh database) owns student record 2, which is
what the "or the student themselves" rule of ``GET /students/{id}`` compares.
Deleting a student marks it deleted; deleting it again still answers 200 (DELETE
is idempotent), so repeated live checks of ``DELETE /student/3`` agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from ..store.schema import create_app_table, register_app_table

if TYPE_CHECKING:
    from ..store import Store

# role -> (description, permissions, inherits)
DEMO_ROLES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "student": ("learners: may read their own record (ownership), nothing else", (), ()),
    "instructor": ("teaches: reads student records, writes courses", ("students:read", "courses:write"), ("student",)),
    "admin": ("runs the platform: deletes students, sees the dashboard", ("students:delete", "admin:access"), ("instructor",)),
}
# In creation order: suman gets user id 1, rahul 2, priya 3 on a fresh database.
DEMO_USERS: tuple[tuple[str, str], ...] = (("suman", "admin"), ("rahul", "student"), ("priya", "instructor"))

_STUDENTS = ("Ananya Iyer", "Kabir Mehta", "Meera Nair")
_COURSES = (
    ("FastAPI for AI Engineers", "priya"),
    ("Authentication vs Authorization", "priya"),
    ("Validating data with Pydantic", "suman"),
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS demo_students (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, course TEXT, user_id INTEGER, deleted INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS demo_courses (
    id INTEGER PRIMARY KEY, title TEXT NOT NULL, instructor TEXT
);
"""


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str
    user_id: int
    password: str | None  # only when generated here (shown once), never when given


def seed_demo(store: "Store", passwords: Mapping[str, str] | None = None) -> list[DemoUser]:
    """Create the demo roles, users (random passwords unless given) and data in one transaction.

    ``passwords`` maps each demo username to its password (policy-checked); a
    missing name gets a generated one, returned once in ``DemoUser.password``.
    """
    from .. import passwords as pw

    settings = store.settings()
    chosen: dict[str, tuple[str, bool]] = {}
    for username, role in DEMO_USERS:
        given = (passwords or {}).get(username)
        if given is None:
            chosen[username] = (pw.generate(), True)
        else:
            chosen[username] = (pw.check_new(given, username, settings, [role]), False)

    created: list[DemoUser] = []
    # hashed inside the transaction: the demo seeds a database that init has just created, so no
    # one else waits on its write lock (policy apply, on a live database, hashes before its own)
    with store.transaction():
        for role in ("student", "instructor", "admin"):
            description, permissions, inherits = DEMO_ROLES[role]
            store.add_role(role, description, inherits)
            if permissions:
                store.grant(role, permissions)
        for username, role in DEMO_USERS:
            password, generated = chosen[username]
            user = pw.add_user(store, username, password, [role], settings=settings)
            created.append(DemoUser(username, role, user.id, password if generated else None))
        _create_tables(store)
        by_name = {user.username: user for user in created}
        rahul = by_name["rahul"].user_id
        store.execute(
            "INSERT INTO demo_students (id, name, course, user_id) VALUES (?, ?, ?, ?)",
            (rahul, "Rahul", _COURSES[0][0], rahul),
        )
        other_ids = [i for i in range(2, 2 + len(_STUDENTS) + 1) if i != rahul][: len(_STUDENTS)]
        for student_id, name, course in zip(other_ids, _STUDENTS, [c[0] for c in _COURSES]):
            store.execute(
                "INSERT INTO demo_students (id, name, course, user_id) VALUES (?, ?, ?, NULL)", (student_id, name, course)
            )
        store.executemany("INSERT INTO demo_courses (title, instructor) VALUES (?, ?)", _COURSES)
        store._audit("demo.seed", str(store.path), {"users": [u.username for u in created]})
    return created


register_app_table("demo_students", {"id": int, "name": str, "course": str, "user_id": int, "deleted": int},
                   pk="id", not_null={"name", "deleted"}, defaults={"deleted": 0})
register_app_table("demo_courses", {"id": int, "title": str, "instructor": str}, pk="id", not_null={"title"})


def _create_tables(store: "Store") -> None:
    """The demo's own tables, through the store's schema builder (the same on SQLite and PostgreSQL)."""
    create_app_table(store.db, "demo_students")
    create_app_table(store.db, "demo_courses")


# --------------------------------------------------------------------------- data access (the app's handlers)


def list_students(store: "Store") -> list[dict[str, Any]]:
    if not _has_demo_tables(store):
        return []
    rows = store.execute("SELECT id, name, course FROM demo_students WHERE deleted = 0 ORDER BY id").fetchall()
    return [{"id": r[0], "name": r[1], "course": r[2]} for r in rows]


def get_student(store: "Store", student_id: int) -> dict[str, Any] | None:
    if not _has_demo_tables(store):
        return None
    row = store.execute(
        "SELECT id, name, course FROM demo_students WHERE id = ? AND deleted = 0", (student_id,)
    ).fetchone()
    return {"id": row[0], "name": row[1], "course": row[2]} if row else None


def delete_student(store: "Store", student_id: int) -> bool:
    """Mark a student deleted; True if the record exists (deleted now or before)."""
    if not _has_demo_tables(store):
        return False
    with store.transaction():
        row = store.execute("SELECT deleted FROM demo_students WHERE id = ?", (student_id,)).fetchone()
        if row is None:
            return False
        if not row[0]:
            store.execute("UPDATE demo_students SET deleted = 1 WHERE id = ?", (student_id,))
    return True


def _has_demo_tables(store: "Store") -> bool:
    return {"demo_students", "demo_courses"} <= set(store.table_names())


def list_courses(store: "Store") -> list[dict[str, Any]]:
    if not _has_demo_tables(store):
        return []
    rows = store.execute("SELECT id, title, instructor FROM demo_courses ORDER BY id").fetchall()
    return [{"id": r[0], "title": r[1], "instructor": r[2]} for r in rows]


def add_course(store: "Store", title: str, instructor: str) -> dict[str, Any]:
    with store.transaction():
        _create_tables(store)
        course_id = store.execute(
            "INSERT INTO demo_courses (title, instructor) VALUES (?, ?) RETURNING id", (title, instructor)
        ).fetchone()[0]
    return {"id": course_id, "title": title, "instructor": instructor}


def counts(store: "Store") -> dict[str, int]:
    return {"users": store.user_count(), "students": len(list_students(store)), "courses": len(list_courses(store))}
