"""``authctl demo``: the article's three requests, a token and the matrix, on a throwaway database."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .explain import CheckResult
    from .matrix import Cell
    from .tokens import Inspection

STEPS = (
    ("No token at all: who are you? → 401", None),
    ("rahul, a student: authenticated, but not allowed → 403", "rahul"),
    ("suman, an admin: authenticated and allowed → 200", "suman"),
)


@dataclass
class Walkthrough:
    steps: list[tuple[str, "CheckResult"]]
    inspected: "Inspection"  # rahul's token
    users: list[str]
    cells: list["Cell"]

    @property
    def failed(self) -> bool:
        return any(result.agrees is False for _, result in self.steps) or any(cell.failed for cell in self.cells)


def run(directory: str | os.PathLike) -> Walkthrough:
    """``init --demo`` in ``directory``, then ``DELETE /student/3`` three ways, checked and sent
    in-process, rahul's token inspected, and everyone × every route, live."""
    from . import explain, matrix, tokens
    from .app import create_app
    from .bootstrap import create_database

    store, _, demo_users = create_database(Path(directory) / "authctl.db", demo=True)
    with store:
        app = create_app(store=store)
        steps = []
        for title, username in STEPS:
            subject = explain.subject(store, user=username)
            result = explain.check(store, app, "DELETE", "/student/3", subject)
            explain.attach_live([result], app=app, source="in-process demo app")
            steps.append((title, result))
        inspected = tokens.inspect(store, steps[1][1].subject.token or "")
        users = [user.username for user in demo_users] + [matrix.ANONYMOUS]
        cells = matrix.offline_cells(store, app, users, {"id": "2"}, token_per_cell=True)  # rahul's own record (3 is deleted above)
        matrix.attach_live(cells, app=app, unsafe=True)
    return Walkthrough(steps, inspected, users, cells)
