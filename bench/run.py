"""Run every authctl benchmark and write bench/RESULTS.md.

    python bench/run.py            # everything, about 7 minutes on 2 cores (at most 10)
    python bench/run.py --quick    # a reduced set, under 2 minutes
    python bench/run.py --only coldstart,store --output /tmp/results.md

Sections (each a module of bench/ with ``run(quick=False) -> list[dict]``):

* coldstart  whole ``authctl`` processes against a minimal Typer app (bench_coldstart)
* store      the same commands on 100 and 100,000 users (bench_store)
* tokens     issue / verify against raw PyJWT with the same keys (bench_tokens)
* app        the demo app on uvicorn: whoami, 401, 403, logins, peak memory (bench_app)
* bulk       hashing in 1 and 2 processes; `authctl user import` on a terminal (bench_bulk)
* matrix     offline and in-process live decisions for 100 users x every route; grouped by role set (bench_matrix)
* native     `routes` and an offline matrix on a generated 1,000-route app with its own security (bench_native)
* plugin     the pytest plugin: an as_user request vs a plain ASGI client; a 100 x 50 table vs the offline matrix (bench_plugin)

Every figure is a median with its min-max, next to a baseline measured in the
same run, interleaved with it. The app section uses wrk when it is installed and
a Python load generator otherwise (``--no-wrk`` forces the latter).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import benchlib  # noqa: E402  (also puts the checkout's package first on sys.path)

SECTIONS = ("coldstart", "store", "tokens", "app", "bulk", "matrix", "native", "plugin")
PACKAGES = ("authctl", "typer", "rich", "fastapi", "starlette", "pydantic", "uvicorn", "httpx", "PyJWT",
            "cryptography", "sqlite-utils", "libpass", "argon2-cffi")


# --------------------------------------------------------------------------- machine


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "absent"


def _git() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=BENCH, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=BENCH,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head + (" (with uncommitted changes)" if dirty else "") if head else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine() -> dict[str, Any]:
    import sqlite3

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    wrk = shutil.which("wrk")
    wrk_version = ""
    if wrk:
        done = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=10)
        wrk_version = (done.stdout or done.stderr).splitlines()[0].split(" Copyright")[0] if (done.stdout or done.stderr) else "wrk"
    return {
        "cpu": _cpu_model(), "cores": cores, "python": platform.python_version(),
        "implementation": platform.python_implementation(), "os": f"{platform.system()} {platform.release()}",
        "sqlite": sqlite3.sqlite_version, "wrk": wrk_version or "not installed",
        "packages": {name: _version(name) for name in PACKAGES}, "commit": _git(),
        "load": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


# --------------------------------------------------------------------------- sections


def _tokens(quick: bool) -> list[dict[str, Any]]:
    """bench_tokens, with the rate of every round kept (its rows report the best round only)."""
    import bench_tokens

    samples: list[tuple[list[float], list[float]]] = []

    def compare(ours: Callable[[], Any], theirs: Callable[[], Any], rounds: int, seconds: float) -> tuple[float, float]:
        ours(), theirs()  # as bench_tokens._compare: warm, then interleave round by round
        a: list[float] = []
        b: list[float] = []
        for _ in range(rounds):
            a.append(bench_tokens._rate(ours, seconds))
            b.append(bench_tokens._rate(theirs, seconds))
        samples.append((a, b))
        return max(a), max(b)

    original = bench_tokens._compare
    bench_tokens._compare = compare
    try:
        rows = bench_tokens.run(quick=quick)
    finally:
        bench_tokens._compare = original
    for row, (a, b) in zip(rows, samples):
        row["authctl"], row["baseline"] = benchlib.stats(a), benchlib.stats(b)
    return rows


def _app(quick: bool, use_wrk: bool | None) -> list[dict[str, Any]]:
    import bench_app

    rows = bench_app.run(quick=quick, use_wrk=use_wrk)
    for row in rows:
        row["variant"] = "default"
    if not quick:  # the trade-off behind the login target: a second hashing thread
        for row in bench_app.run(quick=True, hash_concurrency=2, use_wrk=use_wrk):
            if row["scenario"].startswith(("POST /token", "GET /health", "server peak")):
                row["variant"] = "hash_concurrency=2"
                rows.append(row)
    return rows


def run_section(name: str, quick: bool, use_wrk: bool | None) -> list[dict[str, Any]]:
    if name == "coldstart":
        import bench_coldstart

        return bench_coldstart.run(quick=quick)
    if name == "store":
        import bench_store

        return bench_store.run(quick=quick)
    if name == "tokens":
        return _tokens(quick)
    if name == "app":
        return _app(quick, use_wrk)
    if name == "bulk":
        import bench_bulk

        return bench_bulk.run(quick=quick)
    if name == "matrix":
        import bench_matrix

        return bench_matrix.run(quick=quick)
    if name == "native":
        import bench_native

        return bench_native.run(quick=quick)
    if name == "plugin":
        import bench_plugin

        return bench_plugin.run(quick=quick)
    raise ValueError(name)


# --------------------------------------------------------------------------- the report


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def _range_ms(median: float, low: float, high: float) -> str:
    return f"{_ms(median)} ({low * 1000:.0f}–{high * 1000:.0f})"


def _range_rate(stats: dict[str, float], unit: str = "/s") -> str:
    return f"{stats['median']:,.0f}{unit} ({stats['min']:,.0f}–{stats['max']:,.0f})"


def _status(ok: bool | None) -> str:
    return "—" if ok is None else ("met" if ok else "**NOT met**")


def summary_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str, str, str]]:
    """(figure, authctl, baseline, ratio, target, status) for every target of the issue, and the key figures."""
    out: list[tuple[str, str, str, str, str, str]] = []
    for row in results.get("coldstart") or []:
        heavy = f"; imports {', '.join(row['heavy_imports'])}" if row.get("heavy_imports") else ""
        out.append((
            f"cold start: {row['name']}", _range_ms(row["authctl_median_s"], row["authctl_min_s"], row["authctl_max_s"]),
            f"{row['baseline']}: " + _range_ms(row["baseline_median_s"], row["baseline_min_s"], row["baseline_max_s"]),
            f"{row['ratio']:.2f}x", row["target"] + heavy, _status(row["meets_target"]),
        ))
    store = results.get("store") or []
    for row in store[:-1]:
        out.append((
            f"store: {row['name']}", "100,000 users: " + _range_ms(row["large_median_s"], row["large_min_s"], row["large_max_s"]),
            "100 users: " + _range_ms(row["small_median_s"], row["small_min_s"], row["small_max_s"]),
            f"{row['ratio']:.2f}x", row["target"], _status(row["meets_target"]),
        ))
    if store:
        size = store[-1]
        out.append(("store: database bytes per user", f"{size['bytes_per_user']:,.0f} B/user",
                     f"{size['large_bytes']:,} B at 100,000 users", "", "report", "—"))
    for row in results.get("tokens") or []:
        if "authctl" not in row:
            continue
        a, b = row["authctl"], row["baseline"]
        ratio = a["median"] / b["median"] if b["median"] else 0.0
        target = row.get("target")
        out.append((
            f"tokens: {row['name']}", _range_rate(a, " ops/s"), "PyJWT: " + _range_rate(b, " ops/s"), f"{ratio:.2f}x",
            f">= {target}" if target is not None else "", _status(ratio >= target if target is not None else None),
        ))
    app = [row for row in results.get("app") or [] if row.get("variant") == "default"]
    if app:
        health = app[0]
        base = health["rps_median"] or 1.0
        for row in app[1:]:
            if "rps_median" not in row:
                out.append(("app: server peak memory (VmHWM)", f"{row['peak_rss_mib']} MiB", "", "", "report", "—"))
                continue
            stats = {"median": row["rps_median"], "min": row["rps_min"], "max": row["rps_max"]}
            if row["scenario"].startswith("POST /token"):
                out.append((f"app: {row['scenario']}", _range_rate(stats, " logins/s"), "", "",
                            ">= 50 logins/s", _status(row["rps_median"] >= 50)))
                continue
            ratio = row["rps_median"] / base
            wanted = 0.5 if "burst" in row["scenario"] else 0.6
            name = row["scenario"] + (f" (logins/s meanwhile: {row['logins_per_s']})" if "logins_per_s" in row else "")
            out.append((f"app: {name}", _range_rate(stats, " req/s"),
                        "GET /health idle: " + _range_rate({"median": base, "min": health["rps_min"], "max": health["rps_max"]}, " req/s"),
                        f"{ratio:.2f}x", f">= {wanted}", _status(ratio >= wanted)))
    bulk = results.get("bulk") or []
    if bulk:
        h, imp = bulk
        out.append((
            f"bulk: hash_many, 2 workers vs 1 ({h['params']}, {h['passwords']} passwords)",
            "2 workers: " + _range_rate({"median": h["two_median"], "min": h["two_min"], "max": h["two_max"]}, " hashes/s"),
            "1 worker: " + _range_rate({"median": h["one_median"], "min": h["one_min"], "max": h["one_max"]}, " hashes/s"),
            f"{h['ratio']:.2f}x", h["target"], _status(h["meets_target"]),
        ))
        out.append((
            "bulk: machine ceiling, two plain processes hashing half each (no pool)",
            _range_rate({"median": h["bare_median"], "min": h["bare_min"], "max": h["bare_max"]}, " hashes/s"),
            "1 worker (as above)", f"{h['bare_ratio']:.2f}x",
            f"report; hash_many = {h['of_bare']:.0%} of it", "—",
        ))
        out.append((f"bulk: {imp['name']}", f"{imp['users_per_s']} users/s ({imp['seconds']:.1f} s)",
                    "", "", "report; progress bar drawn", _status(imp["progress_bar_seen"])))
    for row in results.get("matrix") or []:
        if "ratio" in row:  # grouped: against the per-user cost of the same run
            out.append((f"matrix: {row['name']}", f"{row['groups']} columns: " + _range_ms(
                row["grouped_s"]["median"], row["grouped_s"]["min"], row["grouped_s"]["max"]),
                f"per user (scaled from {row['small_users']}): {row['per_user_s']['median']:.1f} s",
                f"{row['ratio']:,.0f}x faster", f"grows with role sets x routes ({row['small_users']} users grouped: "
                f"{_ms(row['grouped_small_s']['median'])}); {row['mismatches']} cells disagree",
                _status(row["mismatches"] == 0)))
            continue
        extra = f"; {row['mismatches']} cells disagree" if "mismatches" in row else ""
        out.append((f"matrix: {row['name']}", _range_rate(
            {"median": row["median_per_s"], "min": row["min_per_s"], "max": row["max_per_s"]}, " cells/s"),
            f"{row['cells']} cells{extra}", "", "report", _status(row.get("mismatches", 0) == 0 if "mismatches" in row else None)))
    for row in results.get("native") or []:
        out.append((f"native: {row['name']}", _range_ms(row["step_median_s"], row["step_min_s"], row["step_max_s"]),
                    "app import-and-build: " + _range_ms(row["build_median_s"], row["build_min_s"], row["build_max_s"]),
                    f"{row['ratio']:.2f}x", row["target"], _status(row["meets_target"])))
    for row in results.get("plugin") or []:
        def span(median: float, low: float, high: float) -> str:
            return f"{benchlib.fmt_seconds(median)} ({benchlib.fmt_seconds(low)}–{benchlib.fmt_seconds(high)})"

        out.append((row["name"], span(row["median_s"], row["min_s"], row["max_s"]),
                    span(row["baseline_median_s"], row["baseline_min_s"], row["baseline_max_s"]),
                    f"{row['ratio']:.2f}x", f"≤ {row['goal']}x", _status(row["ratio"] <= row["goal"])))
    return out


def _detail_app(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| variant | scenario | req/s median (min–max per slice) | p50 ms | p99 ms | statuses |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        if "rps_median" not in row:
            lines.append(f"| {row['variant']} | {row['scenario']} | {row['peak_rss_mib']} MiB | | | |")
            continue
        extra = f" (logins meanwhile {row['logins_per_s']}/s, p50 {row['login_p50_ms']} ms)" if "logins_per_s" in row else ""
        lines.append(f"| {row['variant']} | {row['scenario']}{extra} | {row['rps_median']:,.1f} ({row['rps_min']:,.1f}–"
                     f"{row['rps_max']:,.1f}) | {row['p50_ms']} | {row['p99_ms']} | {row['statuses']} |")
    if rows:
        lines.append("")
        lines.append(f"Load generator: {rows[0]['generator']}; server: uvicorn, 1 worker, 127.0.0.1; "
                     "slices of every scenario interleaved round by round.")
    return lines


def write_report(path: Path, results: dict[str, Any], errors: dict[str, str], info: dict[str, Any], command: str,
                 timings: dict[str, float], quick: bool) -> None:
    packages = ", ".join(f"{k} {v}" for k, v in info["packages"].items())
    load = info["load"]
    lines = [
        "# authctl benchmark results",
        "",
        f"Produced by `{command}` on {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}"
        f" ({'reduced set' if quick else 'full set'}; {sum(timings.values()):.0f} s in all:"
        f" {', '.join(f'{k} {v:.0f} s' for k, v in timings.items())}).",
        "",
        f"**Machine:** {info['cpu']}, {info['cores']} cores; {info['implementation']} {info['python']} on {info['os']};"
        f" SQLite {info['sqlite']}; wrk: {info['wrk']}; load average at start"
        f" {', '.join(f'{x:.2f}' for x in load) if load else 'n/a'}; commit {info['commit']}.",
        "",
        f"**Packages:** {packages}.",
        "",
        "## Targets",
        "",
        "Medians with min–max; the baseline is measured in the same run, interleaved; ratio = authctl / baseline"
        " (medians).",
        "",
        "| figure | authctl | baseline | ratio | target | status |",
        "|---|---|---|---|---|---|",
    ]
    for row in summary_rows(results):
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    for name, message in errors.items():
        lines.append(f"| {name} | failed: {message} | | | | **NOT met** |")
    if results.get("app"):
        lines += ["", "## App scenarios", ""] + _detail_app(results["app"])
    lines += [
        "",
        "## How it is measured",
        "",
        "- **Cold start**: each figure is a whole subprocess (interpreter start, imports, the command, exit), timed by"
        " the parent. One round runs every command once in a shuffled order; rounds repeat (bounded in count and"
        " time), so load drifting on the shared machine hits authctl and the baselines alike. The baseline app is"
        " `bench/baseline_cli.py` (two Typer commands; `decode` imports PyJWT lazily and verifies the same token with"
        " the same public key, aud and iss). A separate `python -X importtime` run of `--help`, `token inspect` and"
        " `user show` checks that none of them imports fastapi, starlette, uvicorn or httpx. Child processes cache"
        " bytecode as an installed package does (in a private `PYTHONPYCACHEPREFIX`, even where"
        " `PYTHONDONTWRITEBYTECODE` is set); the first run of each command, which fills it, is not recorded.",
        "- **Store**: `authctl init --demo`, then users sharing one precomputed argon2id hash inserted by"
        " `Store.add_users` in one transaction, role `student`; bytes per user = file growth / users added.",
        "- **Tokens**: `bench_tokens.run` (authctl issue/verify against PyJWT encode/decode with the same parsed key"
        " objects); every round's rate kept here, median and min–max shown.",
        "- **App**: `bench_app.run`: one uvicorn worker on 127.0.0.1; scenarios interleaved in slices; ratio against"
        " `GET /health` of the same run. The full set also runs the login scenarios with `Auth(hash_concurrency=2)`"
        " to show the trade-off behind the login target (the default keeps one of two cores for the event loop).",
        "- **Bulk**: `authctl.passwords.hash_many` with the configured argon2id parameters, 1 and 2 worker processes"
        " interleaved (process start-up included); `authctl user import` as a subprocess on a pseudo-terminal, so"
        " its progress bar is really drawn.",
        "- **Matrix**: `authctl.matrix.offline_cells` and `attach_live(..., app=snapshot, unsafe=True)` in-process,"
        " on `authctl init --demo` plus 100 students. `matrix --by role-set`: `authctl.groups.group_users` and"
        " `decide_groups` on 10,000 users in 10 role sets x a generated 100-route app, against `offline_cells` on"
        " 100 of the same users scaled to 10,000, in the same run; each sampled user's decisions checked against"
        " their group's.",
        "- **Native**: a generated app of 1,000 routes in nested routers with its own security (OAuth2 scopes, HTTP"
        " Bearer guard, API key); `routes.inventory` and `matrix.offline_cells` through a token target, each as a"
        " ratio to the app's import-and-build (FastAPI's lazy route build included; the import alone is in the JSON).",
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="sections: " + ", ".join(SECTIONS))
    parser.add_argument("--quick", action="store_true", help="a reduced set, under 2 minutes")
    parser.add_argument("--only", default="", help="comma-separated sections to run (default: all)")
    parser.add_argument("--output", default=str(BENCH / "RESULTS.md"), help="where to write the report")
    parser.add_argument("--no-wrk", action="store_true", help="use the Python load generator even if wrk is installed")
    options = parser.parse_args(argv)
    chosen = [name.strip() for name in options.only.split(",") if name.strip()] or list(SECTIONS)
    unknown = [name for name in chosen if name not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s): {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    command = "python bench/run.py" + "".join(f" {arg}" for arg in (argv if argv is not None else sys.argv[1:]))
    info = machine()
    results: dict[str, Any] = {}
    errors: dict[str, str] = {}
    timings: dict[str, float] = {}
    for name in chosen:
        print(f"== {name} ...", file=sys.stderr, flush=True)
        start = time.monotonic()
        try:
            results[name] = run_section(name, options.quick, False if options.no_wrk else None)
        except Exception as exc:  # one failing section must not lose the others
            traceback.print_exc()
            errors[name] = f"{type(exc).__name__}: {str(exc)[:200]}"
        timings[name] = time.monotonic() - start
        print(f"   {name}: {timings[name]:.0f} s", file=sys.stderr, flush=True)
    output = Path(options.output)
    write_report(output, results, errors, info, command, timings, options.quick)
    for row in summary_rows(results):
        print(" | ".join(row))
    print(f"wrote {output} ({sum(timings.values()):.0f} s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
