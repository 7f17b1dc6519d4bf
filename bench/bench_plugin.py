"""The pytest plugin's costs, each against a baseline measured in the same run, interleaved.

* request: ``GET /students`` as suman through ``authctl.testing.Client.as_user`` (what the
  ``authctl_client`` fixture gives) vs the same request through a plain
  ``httpx.AsyncClient(transport=ASGITransport(app))`` with a hand-made ``Authorization``
  header, on the same app and database (goal: ratio <= 1.2);
* table: asserting a 100 users x 50 routes expectation table in-process
  (``authctl.testing.run_expectations``, what ``authctl_matrix.check()`` runs: every cell
  expected) vs the offline matrix of the same size (``authctl.matrix.offline_cells``)
  (goal: ratio <= 2).

The app for the table has 50 routes, each guarded by ``auth.require`` on its own permission;
the database has 100 users, each given 5 of 10 roles (one policy, applied once).

    python bench/bench_plugin.py [--quick]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib  # noqa: E402

USERS, ROUTES, ROLES = 100, 50, 10


def _policy() -> Any:
    from authctl import policyfile

    roles = {f"r{i}": {"permissions": [f"res{j}:read" for j in range(ROUTES) if j % ROLES == i]} for i in range(ROLES)}
    users = {f"u{i:03d}": {"roles": [f"r{(i + k) % ROLES}" for k in range(5)]} for i in range(USERS)}
    users["suman"] = {"roles": list(roles)}
    return policyfile.parse({"roles": roles, "users": users})


def _app() -> Any:
    from fastapi import Depends, FastAPI

    from authctl.fastapi import Auth

    auth = Auth()
    app = FastAPI()
    app.include_router(auth.router)
    for j in range(ROUTES):
        async def handler() -> dict[str, int]:
            return {"ok": 1}

        app.add_api_route(f"/res{j}/{{id}}", handler, methods=["GET"], dependencies=[Depends(auth.require(f"res{j}:read"))])
    return app


def _requests(quick: bool, store: Any) -> dict[str, Any]:
    import asyncio

    import httpx

    from authctl import testing
    from authctl.app import create_app

    app = create_app(store=store)
    client = testing.Client(app, store)
    suman = client.as_user("suman")
    token = client.token("suman")
    loop = asyncio.new_event_loop()
    plain = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
    headers = {"Authorization": f"Bearer {token}"}

    def ours() -> None:
        assert suman.get("/students").status_code == 200

    def theirs() -> None:
        assert loop.run_until_complete(plain.get("/students", headers=headers)).status_code == 200

    batch, rounds = (200, 5) if quick else (500, 11)
    samples: dict[str, list[float]] = {"as_user": [], "plain": []}
    for function in (ours, theirs):  # warm-up
        for _ in range(50):
            function()
    for index in range(rounds):
        order = [("as_user", ours), ("plain", theirs)]
        for label, function in order if index % 2 else reversed(order):
            start = time.perf_counter()
            for _ in range(batch):
                function()
            samples[label].append((time.perf_counter() - start) / batch)
    loop.run_until_complete(plain.aclose())
    loop.close()
    client.close()
    a, b = benchlib.stats(samples["as_user"]), benchlib.stats(samples["plain"])
    return {"name": "plugin: GET /students through as_user vs a plain ASGI client with a hand-made header",
            "median_s": a["median"], "min_s": a["min"], "max_s": a["max"], "baseline_median_s": b["median"],
            "baseline_min_s": b["min"], "baseline_max_s": b["max"], "ratio": a["median"] / b["median"], "goal": 1.2,
            "rounds": rounds, "batch": batch}


def _table(quick: bool, store: Any) -> dict[str, Any]:
    from authctl import matrix, testing

    app = _app()
    users = sorted(u.username for u in store.list_users())[:USERS]
    probe_cells = matrix.offline_cells(store, app, users, {})
    expectations: dict[tuple[str, str], dict[str, str]] = {}
    for cell in probe_cells:  # every cell expected, as it is: the assertion passes (no traces to build)
        expectations.setdefault((cell.route.method, cell.route.template), {})[cell.user] = cell.outcome
    rounds = 3 if quick else 7
    samples: dict[str, list[float]] = {"assert": [], "offline": []}
    cells = 0
    for index in range(rounds):
        order = ["assert", "offline"] if index % 2 else ["offline", "assert"]
        for label in order:
            start = time.perf_counter()
            if label == "assert":
                report = testing.run_expectations(store, app, expectations)
                assert report.ok, report.text()[:500]
                cells = len(report.cells)
            else:
                matrix.offline_cells(store, app, [*users, matrix.ANONYMOUS], {})
            samples[label].append(time.perf_counter() - start)
    a, b = benchlib.stats(samples["assert"]), benchlib.stats(samples["offline"])
    return {"name": f"plugin: assert a {USERS} users x {len(expectations)} routes table vs the offline matrix",
            "median_s": a["median"], "min_s": a["min"], "max_s": a["max"], "baseline_median_s": b["median"],
            "baseline_min_s": b["min"], "baseline_max_s": b["max"], "ratio": a["median"] / b["median"], "goal": 2.0,
            "rounds": rounds, "cells": cells}


def run(quick: bool = False) -> list[dict[str, Any]]:
    from authctl import testing

    with tempfile.TemporaryDirectory(prefix="authctl-bench-plugin-") as name:
        with testing.temporary_store(_policy(), Path(name) / "plugin.db") as store:
            store.add_role("admin")
            store.grant("admin", ["students:read"])
            store.assign("suman", ["admin"])
            return [_requests(quick, store), _table(quick, store)]


def _report(rows: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{row['name']}: {benchlib.fmt_seconds(row['median_s'])} ({benchlib.fmt_seconds(row['min_s'])}-"
        f"{benchlib.fmt_seconds(row['max_s'])}) vs {benchlib.fmt_seconds(row['baseline_median_s'])}: "
        f"{row['ratio']:.2f}x (goal <= {row['goal']}x)"
        for row in rows
    )


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    options = parser.parse_args()
    print(_report(run(quick=options.quick)))
