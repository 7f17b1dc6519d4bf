"""Bulk import: argon2id hashing in 1 and 2 worker processes, and `authctl user import` of many users.

* Hashing: ``authctl.passwords.hash_many(passwords, params, workers)`` with the
  argon2id parameters a new database is configured with, 1 worker against 2,
  interleaved round by round. Throughput includes starting the worker processes,
  as an import sees it. Target: 2 workers >= 1.8x one. Beside them, the ceiling
  of this machine: two plain processes hashing half each (no pool, no ordering),
  so a shortfall can be told apart from the cores' own parallel scaling.
* Import: ``authctl user import users.csv`` (1,000 users with passwords; 200 with
  --quick) as a whole subprocess on a pseudo-terminal, so the live progress bar
  is really drawn; users/s from the wall time, and whether the bar was seen.

    python bench/bench_bulk.py [--quick]
"""

from __future__ import annotations

import os
import secrets
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib  # noqa: E402

TARGET = 1.8


def _params() -> tuple[int, int, int]:
    from authctl.store import Store

    with tempfile.TemporaryDirectory(prefix="authctl-bench-bulk-") as tmp, Store.create(Path(tmp) / "p.db") as store:
        settings = store.settings()
        return settings.argon2_memory_kib, settings.argon2_time_cost, settings.argon2_parallelism


def _hash_part(passwords: list[str], params: tuple[int, int, int]) -> None:
    from authctl.passwords import Hasher

    hasher = Hasher(*params)
    for password in passwords:
        hasher.hash(password)


def _bare_pair(passwords: list[str], params: tuple[int, int, int]) -> float:
    """Hashes/s of two plain processes hashing half each: what this machine's two cores give, no pool."""
    import multiprocessing

    context = multiprocessing.get_context("fork") if hasattr(os, "fork") else multiprocessing.get_context()
    half = len(passwords) // 2
    start = time.perf_counter()
    processes = [context.Process(target=_hash_part, args=(part, params)) for part in (passwords[:half], passwords[half:])]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=300)
    return len(passwords) / (time.perf_counter() - start)


def hashing(count: int, rounds: int) -> dict[str, Any]:
    from authctl.passwords import hash_many

    params = _params()
    passwords = [f"Bench-{secrets.token_urlsafe(12)}" for _ in range(count)]
    rates: dict[Any, list[float]] = {1: [], 2: [], "bare": []}
    list(hash_many(passwords[:2], params, 1))  # warm: passlib and argon2 loaded, as in both sides' workers
    for _ in range(rounds):
        for workers in (1, 2):
            start = time.perf_counter()
            hashed = list(hash_many(passwords, params, workers))
            rates[workers].append(len(hashed) / (time.perf_counter() - start))
        rates["bare"].append(_bare_pair(passwords, params))
    one, two, bare = benchlib.stats(rates[1]), benchlib.stats(rates[2]), benchlib.stats(rates["bare"])
    ratio = two["median"] / one["median"]
    return {
        "bare_median": bare["median"], "bare_min": bare["min"], "bare_max": bare["max"],
        "bare_ratio": round(bare["median"] / one["median"], 3), "of_bare": round(two["median"] / bare["median"], 3),
        "name": "hash_many, 2 workers vs 1", "params": f"argon2id m={params[0]} KiB, t={params[1]}, p={params[2]}",
        "passwords": count, "rounds": rounds,
        "two_median": two["median"], "two_min": two["min"], "two_max": two["max"],
        "one_median": one["median"], "one_min": one["min"], "one_max": one["max"],
        "ratio": round(ratio, 3), "target": f">= {TARGET}", "meets_target": ratio >= TARGET,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
    }


def _run_on_pty(argv: list[str], environ: dict[str, str], timeout: float) -> tuple[int, bytes, float]:
    """Run ``argv`` with stdout and stderr on a pseudo-terminal; (exit code, everything drawn, seconds)."""
    import pty

    master, slave = pty.openpty()
    start = time.perf_counter()
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=environ)
    os.close(slave)
    drawn = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                drawn += chunk
            elif process.poll() is not None:
                break
        else:
            process.kill()
            raise RuntimeError(f"user import did not finish within {timeout:.0f} s")
        code = process.wait(timeout=30)
    finally:
        os.close(master)
    return code, bytes(drawn), time.perf_counter() - start


def user_import(count: int) -> dict[str, Any]:
    from authctl.store import Store

    with tempfile.TemporaryDirectory(prefix="authctl-bench-import-") as name:
        tmp = Path(name)
        db = tmp / "import.db"
        benchlib.init_demo(db)
        csv = tmp / "users.csv"
        lines = ["username,password,roles"]
        lines += [f"import{i:05d},Bench-{secrets.token_urlsafe(12)},student" for i in range(count)]
        csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
        environ = benchlib.env(db)
        environ.update({"TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30"})
        code, drawn, seconds = _run_on_pty(benchlib.authctl_argv() + ["user", "import", str(csv)], environ,
                                           timeout=30 + count * 0.2)
        text = drawn.decode("utf-8", "replace")
        if code != 0:
            raise RuntimeError(f"authctl user import exited {code}: {text[-500:]}")
        with Store.open(db) as store:
            imported = store.user_count() - 3
        redraws = text.count("\r") + text.count("\x1b[2K")
    return {
        "name": f"authctl user import ({count:,} users, live progress bar)", "users": imported, "seconds": seconds,
        "users_per_s": round(imported / seconds, 1), "progress_bar_seen": f"hashing {count} passwords" in text,
        "progress_redraws": redraws,
    }


def run(quick: bool = False) -> list[dict[str, Any]]:
    hash_count, rounds, import_count = (48, 2, 200) if quick else (96, 3, 1000)
    return [hashing(hash_count, rounds), user_import(import_count)]


def _table(rows: list[dict[str, Any]]) -> str:
    h, imp = rows
    return "\n".join([
        f"{h['name']} ({h['params']}, {h['passwords']} passwords, {h['rounds']} rounds): "
        f"2 workers {h['two_median']:.1f}/s ({h['two_min']:.1f}-{h['two_max']:.1f}) vs 1 worker "
        f"{h['one_median']:.1f}/s ({h['one_min']:.1f}-{h['one_max']:.1f}): {h['ratio']:.2f}x {h['target']} "
        + ("met" if h["meets_target"] else "NOT met")
        + f"; two plain processes {h['bare_median']:.1f}/s ({h['bare_min']:.1f}-{h['bare_max']:.1f}) = "
          f"{h['bare_ratio']:.2f}x one; hash_many reaches {h['of_bare']:.0%} of that",
        f"{imp['name']}: {imp['users']} users in {imp['seconds']:.1f} s = {imp['users_per_s']} users/s; "
        f"progress bar seen: {imp['progress_bar_seen']} ({imp['progress_redraws']} redraws)",
    ])


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="48 hashes x 2 rounds and 200 users instead of 96 x 3 and 1,000")
    options = parser.parse_args()
    print(_table(run(quick=options.quick)))
