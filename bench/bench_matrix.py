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
    return [
        {"name": f"matrix offline ({USERS} users x {route_count} routes)", "cells": len(cells), "rounds": offline_rounds,
         "median_per_s": a["median"], "min_per_s": a["min"], "max_per_s": a["max"]},
        {"name": f"matrix --live in-process ({USERS} users x {route_count} routes, snapshot)", "cells": sent,
         "rounds": live_rounds, "median_per_s": b["median"], "min_per_s": b["min"], "max_per_s": b["max"],
         "mismatches": mismatches, "skipped": skipped},
    ]


def _table(rows: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{row['name']}: {row['median_per_s']:,.0f} cells/s ({row['min_per_s']:,.0f}-{row['max_per_s']:,.0f}), "
        f"{row['cells']} cells, {row['rounds']} rounds" + (f", {row['mismatches']} disagree" if "mismatches" in row else "")
        for row in rows
    )


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 offline and 1 live round instead of 5 and 3")
    options = parser.parse_args()
    print(_table(run(quick=options.quick)))
