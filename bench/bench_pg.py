"""PostgreSQL against SQLite: the request path, replicas, and store scale.

1. ``GET /whoami`` (authenticated) and rahul's ``DELETE /student/3`` (the 403 path) on a real
   uvicorn server (1 worker) over an SQLite file and over PostgreSQL, interleaved in short
   slices; goal: PostgreSQL at least 0.8x SQLite's requests per second.
2. Replicas: ``GET /whoami`` spread over two servers on one PostgreSQL database vs one server
   (same total connections). Reported only: on 2 cores the client, both servers and
   PostgreSQL share the machine, so the machine is the limit.
3. Store scale on PostgreSQL: ``user show``, ``token issue`` and ``user list --limit 50`` as
   whole subprocess runs on a 100,000-user vs a 100-user database (goal <= 1.1x), as
   bench/bench_store.py measures on SQLite.

The PostgreSQL server is ``AUTHCTL_BENCH_PG`` (a server URL) or a throwaway cluster
(tests/pgcluster.py). Loopback only; every load is bounded in time and count.

    python bench/bench_pg.py [--quick]
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if __package__ in (None, ""):
    sys.path.insert(0, str(HERE))
    sys.path.insert(1, str(HERE.parent))

import bench_app  # noqa: E402
import benchlib  # noqa: E402

APP_TARGET = 0.8
STORE_TARGET = 1.1
STATS_SETTLE_S = 3.0


@contextlib.contextmanager
def _server_url():
    url = os.environ.get("AUTHCTL_BENCH_PG")
    if url:
        yield url
        return
    from tests import pgcluster

    cluster = pgcluster.temporary()
    try:
        cluster.start()  # over its Unix socket, as a server on the same host is reached
        yield f"postgresql://postgres@/authctl?host={cluster.directory}&port={cluster.port}"
    finally:
        cluster.stop()


def _fresh_database(server: str, cleanup: contextlib.ExitStack):
    """A DatabaseURL on a new schema of ``server`` (an empty database for authctl), dropped again
    when ``cleanup`` closes: a server of your own (AUTHCTL_BENCH_PG) keeps nothing of the run."""
    import psycopg

    from authctl.store import DatabaseURL

    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")

    def drop() -> None:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {name} CASCADE")

    cleanup.callback(drop)
    return DatabaseURL(f"{server}{'&' if '?' in server else '?'}options=-csearch_path%3D{name}")


def _load(port: int, method: str, path: str, token: str, connections: int, seconds: float) -> dict[str, Any]:
    raw = bench_app._request(method, path, port, {"Authorization": f"Bearer {token}"})
    return asyncio.run(bench_app._load(port, raw, connections, seconds))


async def _spread(ports: list[int], token: str, connections: int, seconds: float) -> list[dict[str, Any]]:
    return await asyncio.gather(*[
        bench_app._load(port, bench_app._request("GET", "/whoami", port, {"Authorization": f"Bearer {token}"}),
                        connections // len(ports), seconds)
        for port in ports
    ])


def _stamp_reads(db: Any) -> int:
    """Reads of the stamp row so far (every request's freshness check reads it), from PostgreSQL's
    own table statistics; a backend publishes them within about a second of going idle."""
    import time

    import psycopg

    time.sleep(STATS_SETTLE_S)
    with psycopg.connect(db.raw, autocommit=True) as conn:
        return conn.execute(
            "SELECT seq_scan + coalesce(idx_scan, 0) FROM pg_stat_user_tables "
            "WHERE relname = 'authctl_schema' AND schemaname = current_schema()").fetchone()[0]


def app_rows(server: str, quick: bool, cleanup: contextlib.ExitStack) -> list[dict[str, Any]]:
    rounds, slice_s, connections = (2, 0.5, 16) if quick else (6, 1.0, 32)
    with tempfile.TemporaryDirectory(prefix="authctl-bench-pg-") as tmp:
        sqlite_db, pg_db = Path(tmp) / "bench.db", _fresh_database(server, cleanup)
        for db in (sqlite_db, pg_db):
            bench_app._prepare(db, None)
        ports = {"sqlite": bench_app._free_port(), "postgresql": bench_app._free_port(),
                 "postgresql replica": bench_app._free_port()}
        with contextlib.ExitStack() as stack:
            stack.enter_context(bench_app._server(sqlite_db, ports["sqlite"]))
            stack.enter_context(bench_app._server(pg_db, ports["postgresql"]))
            stack.enter_context(bench_app._server(pg_db, ports["postgresql replica"]))
            tokens = {}
            for engine in ("sqlite", "postgresql"):
                port = ports[engine]
                tokens[engine] = {u: asyncio.run(bench_app._login(port, u))["access_token"] for u in ("suman", "rahul")}
            scenarios = [("GET /whoami", "GET", "/whoami", "suman"), ("DELETE /student/3 (403)", "DELETE", "/student/3",
                                                                       "rahul")]
            slices: dict[str, list[dict[str, Any]]] = {}
            reads_before = 0
            for number in range(rounds + 1):  # round 0 warms up
                if number == 1:
                    reads_before = _stamp_reads(pg_db)
                for name, method, path, user in scenarios:
                    for engine in ("sqlite", "postgresql"):
                        piece = _load(ports[engine], method, path, tokens[engine][user], connections,
                                      slice_s if number else 0.2)
                        if number:
                            slices.setdefault(f"{name} @{engine}", []).append(piece)
                one = _load(ports["postgresql"], "GET", "/whoami", tokens["postgresql"]["suman"], connections,
                            slice_s if number else 0.2)
                two = asyncio.run(_spread([ports["postgresql"], ports["postgresql replica"]],
                                          tokens["postgresql"]["suman"], connections, slice_s if number else 0.2))
                if number:
                    slices.setdefault("replicas: one server", []).append(one)
                    merged = {"latencies": two[0]["latencies"] + two[1]["latencies"],
                              "statuses": {k: two[0]["statuses"].get(k, 0) + two[1]["statuses"].get(k, 0)
                                           for k in set(two[0]["statuses"]) | set(two[1]["statuses"])},
                              "errors": two[0]["errors"] + two[1]["errors"], "seconds": two[0]["seconds"]}
                    slices.setdefault("replicas: two servers", []).append(merged)
            stamp_reads = _stamp_reads(pg_db) - reads_before
    pg_requests = sum(sum(piece["statuses"].values()) for name, pieces in slices.items()
                      if "sqlite" not in name for piece in pieces)
    summary = {name: bench_app._summary(pieces) for name, pieces in slices.items()}
    rows = []
    for name, *_ in scenarios:
        sqlite, pg = summary[f"{name} @sqlite"], summary[f"{name} @postgresql"]
        ratio = round(pg["rps"] / (sqlite["rps"] or 1.0), 2)
        rows.append({"scenario": name, "sqlite_rps": sqlite["rps"], "postgresql_rps": pg["rps"],
                     "sqlite_p50_ms": sqlite["p50_ms"], "postgresql_p50_ms": pg["p50_ms"],
                     "statuses": {"sqlite": sqlite["statuses"], "postgresql": pg["statuses"]},
                     "ratio": ratio, "target": f">= {APP_TARGET}x", "meets_target": ratio >= APP_TARGET})
    one, two = summary["replicas: one server"], summary["replicas: two servers"]
    rows.append({"scenario": "GET /whoami, two replicas vs one (PostgreSQL)", "one_rps": one["rps"],
                 "two_rps": two["rps"], "ratio": round(two["rps"] / (one["rps"] or 1.0), 2),
                 "statuses": {"one": one["statuses"], "two": two["statuses"]}, "target": "reported"})
    rows.append({"scenario": "stamp reads per request (PostgreSQL, all measured slices)", "requests": pg_requests,
                 "stamp_reads": stamp_reads, "ratio": round(stamp_reads / (pg_requests or 1), 3),
                 "target": "reported"})
    return rows


def store_rows(server: str, quick: bool, cleanup: contextlib.ExitStack) -> list[dict[str, Any]]:
    from bench_store import COMMANDS, LARGE, SMALL

    rounds, seconds = (8, 20.0) if quick else (24, 80.0)
    databases = {SMALL: _fresh_database(server, cleanup), LARGE: _fresh_database(server, cleanup)}
    insert_s = 0.0
    for size, db in databases.items():
        benchlib.init_demo(db)
        took = benchlib.add_bulk_users(db, size - 3)
        insert_s = took if size == LARGE else insert_s
    argv = benchlib.authctl_argv()
    commands, environ = {}, {}
    for label, args in COMMANDS.items():
        for size, db in databases.items():
            commands[f"{label} @{size}"] = argv + ["--db", db.raw, *args]
            environ[f"{label} @{size}"] = benchlib.env()
    samples, done = benchlib.interleaved(commands, environ, rounds=rounds, seconds=seconds)
    rows = []
    for label in COMMANDS:
        large, small = benchlib.stats(samples[f"{label} @{LARGE}"]), benchlib.stats(samples[f"{label} @{SMALL}"])
        ratio = round(large["median"] / small["median"], 3)
        rows.append({"name": f"authctl {label} (PostgreSQL)", "large_median_s": large["median"],
                     "small_median_s": small["median"], "ratio": ratio, "target": f"<= {STORE_TARGET}",
                     "meets_target": ratio <= STORE_TARGET, "rounds": done})
    rows.append({"name": "bulk insert (PostgreSQL)", "users": LARGE - 3, "seconds": round(insert_s, 2)})
    return rows


def run(quick: bool = False, store: bool = True) -> dict[str, list[dict[str, Any]]]:
    """Every PostgreSQL figure in one run (``store=False``: the request path and replicas only)."""
    with _server_url() as server, contextlib.ExitStack() as cleanup:
        return {"app": app_rows(server, quick, cleanup), "store": store_rows(server, quick, cleanup) if store else []}


def _table(app: list[dict[str, Any]], store: list[dict[str, Any]]) -> str:
    lines = []
    for row in app[:-2]:
        lines.append(f"{row['scenario']:<26} sqlite {row['sqlite_rps']:8.1f} req/s  postgresql {row['postgresql_rps']:8.1f}"
                     f" req/s  {row['ratio']:.2f}x {row['target']} {'met' if row['meets_target'] else 'NOT met'}"
                     f"  statuses {row['statuses']}")
    rep, reads = app[-2], app[-1]
    lines.append(f"{rep['scenario']}: one {rep['one_rps']:.1f} req/s, two {rep['two_rps']:.1f} req/s "
                 f"({rep['ratio']:.2f}x, reported; 2 cores) statuses {rep['statuses']}")
    lines.append(f"{reads['scenario']}: {reads['stamp_reads']:,} reads for {reads['requests']:,} requests "
                 f"({reads['ratio']:.3f} per request)")
    for row in store[:-1]:
        lines.append(f"{row['name']:<44} 100,000 users {row['large_median_s'] * 1000:6.1f} ms vs 100 users "
                     f"{row['small_median_s'] * 1000:6.1f} ms  {row['ratio']:.2f}x {row['target']} "
                     f"{'met' if row['meets_target'] else 'NOT met'} ({row['rounds']} rounds)")
    lines.append(f"{store[-1]['name']}: {store[-1]['users']:,} users in {store[-1]['seconds']} s")
    return "\n".join(lines)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--skip-store", action="store_true", help="only the request path and replicas")
    options = parser.parse_args()
    result = run(options.quick, store=not options.skip_store)
    app_result, store_result = result["app"], result["store"]
    if store_result:
        print(_table(app_result, store_result))
    else:
        print(_table(app_result, [{"name": "store scale", "users": 0, "seconds": 0}]))
