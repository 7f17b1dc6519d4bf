"""Matrix: decisions per second for 100 users x every route of the bundled app.

The database is ``authctl init --demo`` plus 100 users with the role ``student``
(one precomputed hash, one transaction). The app is ``authctl.routes.load_app(None)``.

* offline: ``authctl.matrix.offline_cells(store, app, users, {})`` -- for every
  cell a fresh token is minted and the route's requirement decided by the engine;
* live: ``authctl.matrix.attach_live(cells, app=..., unsafe=True)`` -- every cell's
  request sent in-process (httpx ASGI transport) to the app running on a snapshot
  copy of the database (``authctl.explain.snapshot_app(store, None)``); also
  counted: cells where the live status disagrees with the offline decision.

Reported: cells per second, median and min-max over rounds.

* grouped: ``authctl.groups`` (``matrix --by role-set``) on 10,000 users in 10 role
  sets x a generated app of 100 routes: the users grouped by everything a decision
  reads, one decision per group and route. Compared, in the same run, with the
  per-user cost (``offline_cells``) measured on 100 of those users (50 with --quick)
  and scaled to 10,000 (it is linear: one token and one decision per cell). Also
  timed: the grouped matrix of the first 100 users alone, so the cost of 100x more
  users shows.

    python bench/bench_matrix.py [--quick]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib  # noqa: E402

USERS = 100


def run(quick: bool = False) -> list[dict[str, Any]]:
    from authctl import explain, matrix, routes
    from authctl.store import Store

    offline_rounds, live_rounds = (2, 1) if quick else (5, 3)
    with tempfile.TemporaryDirectory(prefix="authctl-bench-matrix-") as name:
        db = Path(name) / "matrix.db"
        benchlib.init_demo(db)
        benchlib.add_bulk_users(db, USERS, role="student", prefix="matrix")
        users = [f"matrix{i:06d}" for i in range(USERS)]
        saved = os.environ.get("AUTHCTL_DB")
        os.environ["AUTHCTL_DB"] = str(db)  # the demo app opens its database from here
        try:
            with Store.open(db) as store:
                app = routes.load_app(None)
                route_count = len(matrix.app_routes(app, {}))
                matrix.offline_cells(store, app, users[:2], {})  # warm: key ring, statement cache
                offline: list[float] = []
                cells: list[Any] = []
                for _ in range(offline_rounds):
                    start = time.perf_counter()
                    cells = matrix.offline_cells(store, app, users, {})
                    offline.append(len(cells) / (time.perf_counter() - start))
                live: list[float] = []
                mismatches = skipped = sent = 0
                for _ in range(live_rounds):
                    # sent cells get a token each (as `matrix --live` does): a live logout ends only its own
                    live_cells = matrix.offline_cells(store, app, users, {}, token_per_cell=True)
                    with explain.snapshot_app(store, None) as snapshot:
                        start = time.perf_counter()
                        skipped = matrix.attach_live(live_cells, app=snapshot, unsafe=True)
                        sent = len(live_cells) - skipped
                        live.append(sent / (time.perf_counter() - start))
                    mismatches = sum(1 for cell in live_cells if cell.agrees is False)
        finally:
            if saved is None:
                os.environ.pop("AUTHCTL_DB", None)
            else:
                os.environ["AUTHCTL_DB"] = saved
    a, b = benchlib.stats(offline), benchlib.stats(live)
    return grouped(quick) + [
        {"name": f"matrix offline ({USERS} users x {route_count} routes)", "cells": len(cells), "rounds": offline_rounds,
         "median_per_s": a["median"], "min_per_s": a["min"], "max_per_s": a["max"]},
        {"name": f"matrix --live in-process ({USERS} users x {route_count} routes, snapshot)", "cells": sent,
         "rounds": live_rounds, "median_per_s": b["median"], "min_per_s": b["min"], "max_per_s": b["max"],
         "mismatches": mismatches, "skipped": skipped},
    ]


GROUPED_USERS, ROLE_SETS, ROUTES = 10_000, 10, 100


def _hundred_route_app(db: Path) -> Any:
    """100 routes: mostly permissions (20 of them), some authenticated, some public, a few with an owner rule."""
    from fastapi import Depends, FastAPI

    from authctl.fastapi import Auth, public

    auth = Auth(db=db)
    app = FastAPI()
    app.state.auth = auth

    def handler() -> dict[str, str]:
        return {}

    for i in range(ROUTES):
        if i % 10 == 0:
            dependency = Depends(public)
        elif i % 10 == 1:
            dependency = Depends(auth.require_any(f"res{i % 20}:read", f"res{(i + 7) % 20}:read"))
        elif i % 10 == 2:
            dependency = Depends(auth.require(f"res{i % 20}:read", owner_param="id"))
        else:
            dependency = Depends(auth.require(f"res{i % 20}:read"))
        path = f"/r{i}/{{id:int}}" if i % 10 == 2 else f"/r{i}"
        app.add_api_route(path, handler, methods=["GET"], dependencies=[dependency])
    return app


def grouped(quick: bool = False) -> list[dict[str, Any]]:
    from authctl import groups, matrix
    from authctl.store import Store

    rounds, sample = (2, 50) if quick else (5, 100)
    with tempfile.TemporaryDirectory(prefix="authctl-bench-groups-") as name:
        db = Path(name) / "groups.db"
        benchlib.init_demo(db)
        with Store.open(db) as store:
            for r in range(ROLE_SETS):
                store.add_role(f"set{r}")
                store.grant(f"set{r}", [f"res{(r * 3 + k) % 20}:read" for k in range(r % 4 + 1)])
            password_hash = benchlib.one_hash(benchlib._params_of(store))
            store.add_users([(f"g{i:06d}", password_hash, [f"set{i % ROLE_SETS}"] + (["student"] if i % ROLE_SETS == 9 else []),
                              False) for i in range(GROUPED_USERS)])
            app = _hundred_route_app(db)
            decidable = matrix.decidable_routes(app, {"id": "999999"})  # an id no user has: no owner column
            records = [u for u in store.list_users(status="active") if u.username.startswith("g")]
            names = [u.username for u in records[:sample]]

            def by_group(users: list[Any]) -> tuple[int, list[Any]]:
                found = groups.group_users(users, groups.owner_values(decidable))
                return len(found), groups.decide_groups(store, app, found, decidable)

            by_group(records[:2])  # warm
            full: list[float] = []
            small: list[float] = []
            per_user: list[float] = []
            for _ in range(rounds):
                start = time.perf_counter()
                group_count, cells = by_group([u for u in store.list_users(status="active") if u.username.startswith("g")])
                full.append(time.perf_counter() - start)
                start = time.perf_counter()
                by_group(records[:sample])
                small.append(time.perf_counter() - start)
                start = time.perf_counter()
                matrix.offline_cells(store, app, names, {"id": "999999"})
                per_user.append((time.perf_counter() - start) * len(records) / sample)
            # the same answers: each sampled user's own decisions equal their group's
            column = {m: g.name for g in groups.group_users(records, groups.owner_values(decidable)) for m in g.members}
            decided = {(c.route.key, c.user): c.decision for c in cells}
            own = matrix.offline_cells(store, app, names, {"id": "999999"})
            disagree = sum(decided.get((c.route.key, column[c.user])) != c.decision for c in own)
    f, s_, p = benchlib.stats(full), benchlib.stats(small), benchlib.stats(per_user)
    return [{
        "name": f"matrix --by role-set ({len(records):,} users in {ROLE_SETS} role sets x {len(decidable)} routes)",
        "users": len(records), "routes": len(decidable), "groups": group_count, "rounds": rounds,
        "grouped_s": f, "grouped_small_s": s_, "small_users": sample, "per_user_s": p,
        "ratio": p["median"] / f["median"], "mismatches": disagree,
        "cells": len(records) * len(decidable), "median_per_s": len(records) * len(decidable) / f["median"],
        "min_per_s": len(records) * len(decidable) / f["max"], "max_per_s": len(records) * len(decidable) / f["min"],
    }]


def _table(rows: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{row['name']}: {row['median_per_s']:,.0f} cells/s ({row['min_per_s']:,.0f}-{row['max_per_s']:,.0f}), "
        f"{row['cells']} cells, {row['rounds']} rounds" + (f", {row['mismatches']} disagree" if "mismatches" in row else "")
        + (f"; {row['groups']} columns in {row['grouped_s']['median']:.2f} s vs per user {row['per_user_s']['median']:.1f} s "
           f"(scaled from {row['small_users']}): {row['ratio']:,.0f}x; {row['small_users']} users grouped: "
           f"{row['grouped_small_s']['median']:.2f} s" if "ratio" in row else "")
        for row in rows
    )


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 offline and 1 live round instead of 5 and 3")
    options = parser.parse_args()
    print(_table(run(quick=options.quick)))
