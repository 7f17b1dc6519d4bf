"""The real server under a bounded load while separate CLI processes write (see tests/loadscenario.py).

The same scenario runs for minutes in ``bench/soak.py``.
"""

from __future__ import annotations

import pytest

from authctl.store import DatabaseURL
from tests import loadscenario

LOAD_SECONDS = 15


@pytest.mark.slow
def test_serve_under_load_while_cli_processes_write(tmp_path):
    """Every promise listed in tests/loadscenario.py holds through a bounded run."""
    outcome = loadscenario.run(tmp_path, LOAD_SECONDS)
    assert loadscenario.problems(outcome, tmp_path / "load.db") == []
    # the parts ran alongside each other, so the promises above were kept under contention
    assert outcome.rounds >= 1 and outcome.added and outcome.removed and outcome.extra_roles
    assert outcome.statuses[200] and outcome.statuses[401] and outcome.statuses[403]


@pytest.mark.slow
def test_serve_on_postgresql_under_load_while_cli_processes_write(tmp_path, pg_url: str):
    """The same promises on PostgreSQL, where concurrent requests share their stamp reads: each
    revocation round still counts from the very next request."""
    db = DatabaseURL(pg_url)
    outcome = loadscenario.run(tmp_path, LOAD_SECONDS, db=db)
    assert loadscenario.problems(outcome, db) == []
    assert outcome.rounds >= 1 and outcome.added and outcome.removed and outcome.extra_roles
    assert outcome.statuses[200] and outcome.statuses[401] and outcome.statuses[403]
