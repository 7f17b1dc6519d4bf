"""Store scale: the same commands on a 100-user and a 100,000-user database, interleaved.

Both databases are made by ``authctl init --demo`` and then filled with users
sharing one precomputed argon2id hash (one hashing, not 100,000), inserted
through ``Store.add_users`` in one transaction, each with the role ``student``.
Then, as whole subprocess runs, one round after another in a shuffled order:

    authctl user show rahul
    authctl token issue --as rahul
    authctl user list --limit 50

on each database. Target: the 100,000-user median within 1.1x of the 100-user
median, per command. Also reported: database bytes per user (the file growth
per added user) and how long the bulk insert took.

    python bench/bench_store.py [--quick]
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib  # noqa: E402

SMALL, LARGE = 100, 100_000
TARGET = 1.1
COMMANDS = {
    "user show rahul": ["user", "show", "rahul"],
    "token issue --as rahul": ["token", "issue", "--as", "rahul"],
    "user list --limit 50": ["user", "list", "--limit", "50"],
}


def _db_bytes(db: Path) -> int:
    return sum(os.path.getsize(p) for p in (db, Path(f"{db}-wal")) if p.exists())


def _make(db: Path, users: int) -> float:
    """A demo database with ``users`` users in all; returns the seconds the bulk insert took."""
    from authctl.store import Store

    benchlib.init_demo(db)
    with Store.open(db) as store:
        existing = store.user_count()
    return benchlib.add_bulk_users(db, users - existing)


def run(quick: bool = False, rounds: int | None = None, seconds: float | None = None) -> list[dict[str, Any]]:
    rounds = rounds or (8 if quick else 24)
    seconds = seconds or (20.0 if quick else 80.0)
    with tempfile.TemporaryDirectory(prefix="authctl-bench-store-") as name:
        tmp = Path(name)
        small, large = tmp / "small.db", tmp / "large.db"
        _make(small, SMALL)
        insert_s = _make(large, LARGE)
        bytes_small, bytes_large = _db_bytes(small), _db_bytes(large)
        argv = benchlib.authctl_argv()
        commands, environ = {}, {}
        for label, args in COMMANDS.items():
            for size, db in ((SMALL, small), (LARGE, large)):
                key = f"{label} @{size}"
                commands[key] = argv + ["--db", str(db), *args]
                environ[key] = benchlib.env(db)
        samples, done = benchlib.interleaved(commands, environ, rounds=rounds, seconds=seconds)
    rows = []
    for label in COMMANDS:
        a, b = benchlib.stats(samples[f"{label} @{LARGE}"]), benchlib.stats(samples[f"{label} @{SMALL}"])
        ratio = a["median"] / b["median"]
        rows.append({
            "name": f"authctl {label}", "large_users": LARGE, "small_users": SMALL,
            "large_median_s": a["median"], "large_min_s": a["min"], "large_max_s": a["max"],
            "small_median_s": b["median"], "small_min_s": b["min"], "small_max_s": b["max"],
            "ratio": round(ratio, 3), "target": f"<= {TARGET}", "meets_target": ratio <= TARGET, "rounds": done,
        })
    rows.append({
        "name": "database size", "large_bytes": bytes_large, "small_bytes": bytes_small,
        "bytes_per_user": round((bytes_large - bytes_small) / (LARGE - SMALL), 1),
        "bulk_insert_s": round(insert_s, 2), "bulk_insert_users_per_s": round((LARGE - 3) / insert_s),
    })
    return rows


def _table(rows: list[dict[str, Any]]) -> str:
    lines = []
    for row in rows[:-1]:
        lines.append(
            f"{row['name']:<34} {LARGE:,} users {row['large_median_s'] * 1000:6.1f} ms "
            f"({row['large_min_s'] * 1000:.0f}-{row['large_max_s'] * 1000:.0f})  vs {SMALL} users "
            f"{row['small_median_s'] * 1000:6.1f} ms ({row['small_min_s'] * 1000:.0f}-{row['small_max_s'] * 1000:.0f})"
            f"  {row['ratio']:.2f}x {row['target']} {'met' if row['meets_target'] else 'NOT met'}"
        )
    size = rows[-1]
    lines.append(f"database: {size['large_bytes']:,} bytes with {LARGE:,} users, {size['small_bytes']:,} with {SMALL}: "
                 f"{size['bytes_per_user']} bytes per user; bulk insert {size['bulk_insert_s']} s "
                 f"({size['bulk_insert_users_per_s']:,} users/s)")
    lines.append(f"rounds: {rows[0]['rounds']}")
    return "\n".join(lines)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="8 rounds (at most 20 s) instead of 24 (80 s)")
    parser.add_argument("--rounds", type=int, default=None)
    options = parser.parse_args()
    print(_table(run(quick=options.quick, rounds=options.rounds)))
