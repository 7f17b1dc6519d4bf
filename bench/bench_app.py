"""Throughput of the demo app on a real uvicorn server (1 worker) on 127.0.0.1.

Measures, in one run against one server: unauthenticated ``GET /health`` (the
baseline), authenticated ``GET /whoami`` (token verification, user lookup,
roles and permissions from SQLite; target at least 0.6x the baseline), the 401
paths (no token; a token with a bad signature), the 403 path (rahul
``DELETE /student/3``; each of these at least 0.6x as well), ``POST /token``
alone (logins per second with the configured argon2id parameters; target at
least 50), ``/health`` while a burst of logins hashes passwords (hashing runs
in worker threads, so the event loop keeps serving; target: at least half its
idle throughput), and the server's peak resident memory (VmHWM).

With ``hash_concurrency`` (``--hash-concurrency N``) the server runs
``Auth(hash_concurrency=N)`` (bench/app_factory.py) instead of the default
(``cores - 1`` hashing threads: one core stays with the event loop).

The load generator is wrk when it is installed, else a bounded Python client:
a fixed number of keep-alive HTTP/1.1 connections on asyncio for a fixed time.
Everything is bounded in time and count and stays on 127.0.0.1.

    python bench/bench_app.py [--quick]

``run(quick=False) -> list[dict]`` is the entry point for a runner.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

HOST = "127.0.0.1"
PASSWORD = "Bench-Horse-Battery-42"
TARGET_RATIO = 0.6
MAX_REQUESTS = 2_000_000  # a hard cap per scenario, whatever the duration


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _env(db: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHCTL_")}
    env["AUTHCTL_DB"] = str(db)
    return env


def _prepare(db: Path, alg: str | None) -> None:
    """`authctl init` (database and signing key), then the demo seed with a known password."""
    subprocess.run([sys.executable, "-m", "authctl", "--db", str(db), "init", *(["--alg", alg] if alg else [])],
                   check=True, capture_output=True, timeout=60, env=_env(db))
    code = (
        "import sys; from authctl.store import Store; from authctl.app.data import seed_demo\n"
        "with Store.open(sys.argv[1]) as s: seed_demo(s, {n: sys.argv[2] for n in ('suman', 'rahul', 'priya')})\n"
    )
    subprocess.run([sys.executable, "-c", code, str(db), PASSWORD], check=True, capture_output=True, timeout=60,
                   env=_env(db))


@contextmanager
def _server(db: Path, port: int, hash_concurrency: int | None = None) -> Iterator[subprocess.Popen]:
    """uvicorn, one worker, no access log (the log would cost every route alike)."""
    target = ["authctl.app:app"]
    environ = _env(db)
    if hash_concurrency:
        target = ["--factory", "app_factory:create"]
        environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parent),
                                                              environ.get("PYTHONPATH")]))
        environ["AUTHCTL_BENCH_HASH_CONCURRENCY"] = str(hash_concurrency)
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", *target, "--host", HOST, "--port", str(port),
         "--workers", "1", "--no-access-log", "--log-level", "warning"],
        env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"uvicorn exited: {process.stderr.read().decode()[-500:] if process.stderr else ''}")
            try:
                status, _ = asyncio.run(_one("GET", "/health", port))
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start within 30s")
            time.sleep(0.1)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


# --------------------------------------------------------------------------- the Python load generator


def _request(method: str, path: str, port: int, headers: dict[str, str] | None = None, body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}", "Connection: keep-alive"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


_LENGTH = re.compile(rb"(?im)^content-length:\s*(\d+)")


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    match = _LENGTH.search(head)
    body = await reader.readexactly(int(match.group(1))) if match else b""
    return status, body


async def _one(method: str, path: str, port: int, headers: dict[str, str] | None = None,
               body: bytes = b"") -> tuple[int, bytes]:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 5)
    try:
        writer.write(_request(method, path, port, headers, body))
        return await asyncio.wait_for(_read_response(reader), 30)
    finally:
        writer.close()


async def _load(port: int, raw: bytes, connections: int, seconds: float, warmup: float = 0.0) -> dict[str, Any]:
    """``connections`` keep-alive connections, each sending ``raw`` back to back, for ``seconds``.

    Returns the raw slice (latencies, statuses, errors, seconds); ``_summary`` folds slices.
    """
    start_at = time.perf_counter() + warmup
    stop_at = start_at + seconds
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            while True:
                sent = time.perf_counter()
                if sent >= stop_at or len(latencies) >= MAX_REQUESTS:
                    return
                writer.write(raw)
                try:
                    status, _ = await asyncio.wait_for(_read_response(reader), 30)
                except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
                    errors += 1
                    return
                done = time.perf_counter()
                if sent >= start_at:
                    latencies.append(done - sent)
                    statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    await asyncio.gather(*[worker() for _ in range(connections)])
    return {"latencies": latencies, "statuses": statuses, "errors": errors, "seconds": seconds}


def _summary(slices: list[dict[str, Any]]) -> dict[str, Any]:
    """Fold measurement slices of one scenario into req/s and latency percentiles."""
    latencies = sorted(x for piece in slices for x in piece["latencies"])
    statuses: dict[int, int] = {}
    for piece in slices:
        for status, count in piece["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    seconds = sum(piece["seconds"] for piece in slices) or 1.0

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 2) if latencies else 0.0

    per_slice = [len(piece["latencies"]) / piece["seconds"] for piece in slices if piece["seconds"]] or [0.0]
    return {
        "requests": len(latencies), "rps": round(len(latencies) / seconds, 1), "p50_ms": pct(0.5),
        "rps_median": round(statistics.median(per_slice), 1), "rps_min": round(min(per_slice), 1),
        "rps_max": round(max(per_slice), 1), "slices": len(per_slice),
        "p99_ms": pct(0.99), "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": sum(piece["errors"] for piece in slices), "seconds": round(seconds, 2),
    }


# --------------------------------------------------------------------------- wrk (when installed)


def _wrk(url: str, path: str, method: str, headers: dict[str, str], connections: int, seconds: float,
         body: str = "") -> dict[str, Any]:
    args = ["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "--timeout", "10s"]
    for key, value in headers.items():
        args += ["-H", f"{key}: {value}"]
    script = None
    if method != "GET" or body:
        script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
        script.write(f'wrk.method = "{method}"\n')
        if body:
            script.write(f"wrk.body = {body!r}\n".replace("'", '"'))
        script.close()
        args += ["-s", script.name]
    try:
        output = subprocess.run(args + [url + path], capture_output=True, text=True, timeout=seconds + 30).stdout
    finally:
        if script is not None:
            os.unlink(script.name)
    rps = float(re.search(r"Requests/sec:\s*([\d.]+)", output).group(1))  # type: ignore[union-attr]

    def latency(label: str) -> float:
        match = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s)", output)
        if not match:
            return 0.0
        value, unit = float(match.group(1)), match.group(2)
        return round(value / 1000 if unit == "us" else value * 1000 if unit == "s" else value, 2)

    non2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", output)
    # a slice in _load's shape: wrk gives percentiles, not samples, so p50 stands for each request
    count = int(rps * max(1, round(seconds)))
    return {"latencies": [latency("50") / 1000] * count, "seconds": float(max(1, round(seconds))),
            "statuses": {"non-2xx": int(non2xx.group(1))} if non2xx else {}, "errors": 0}


# --------------------------------------------------------------------------- scenarios


async def _login(port: int, username: str) -> dict[str, Any]:
    body = f"username={username}&password={PASSWORD}".encode()
    status, payload = await _one("POST", "/token", port,
                                 {"Content-Type": "application/x-www-form-urlencoded"}, body)
    if status != 200:
        raise RuntimeError(f"login as {username} failed with {status}")
    import json

    return json.loads(payload)


def _tamper(token: str) -> str:
    head, payload, signature = token.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    return ".".join((head, payload, flipped))


LOGIN_TARGET = 50.0
BURST_TARGET = 0.5


def _peak_rss_mib(pid: int) -> float | None:
    """The high-water mark of a process's resident memory (Linux /proc), MiB."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def run(quick: bool = False, alg: str | None = None, hash_concurrency: int | None = None,
        use_wrk: bool | None = None) -> list[dict[str, Any]]:
    """Run every scenario against one fresh server; one dict per row.

    Scenarios are interleaved in short rounds (each round runs every scenario once),
    so a change in machine load during the run affects all of them alike and the
    ratios stay meaningful. ``alg``: the database's signing algorithm (default:
    what `authctl init` picks). ``use_wrk``: None = wrk when installed.
    """
    rounds, slice_s = (2, 0.5) if quick else (6, 0.5)
    connections = 16 if quick else 32
    if use_wrk is None:
        use_wrk = shutil.which("wrk") is not None
    if use_wrk:
        rounds, slice_s = (1, 1.0) if quick else (3, 1.0)
    generator = "wrk -t2" if use_wrk else f"python asyncio client, {connections} keep-alive connections"
    login_body = f"username=suman&password={PASSWORD}"
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    with tempfile.TemporaryDirectory(prefix="authctl-bench-") as tmp:
        db = Path(tmp) / "bench.db"
        _prepare(db, alg)
        port = _free_port()
        url = f"http://{HOST}:{port}"
        with _server(db, port, hash_concurrency) as process:
            suman = asyncio.run(_login(port, "suman"))["access_token"]
            rahul = asyncio.run(_login(port, "rahul"))["access_token"]
            scenarios = [
                ("GET /health (public, baseline)", "GET", "/health", {}, "", connections),
                ("GET /whoami (authenticated)", "GET", "/whoami", {"Authorization": f"Bearer {suman}"}, "", connections),
                ("GET /profile, no token (401)", "GET", "/profile", {}, "", connections),
                ("GET /profile, bad signature (401)", "GET", "/profile",
                 {"Authorization": f"Bearer {_tamper(suman)}"}, "", connections),
                ("DELETE /student/3 as rahul (403)", "DELETE", "/student/3", {"Authorization": f"Bearer {rahul}"}, "",
                 connections),
                ("POST /token (logins alone, 8 clients)", "POST", "/token", form, login_body, 8),
            ]
            slices: dict[str, list[dict[str, Any]]] = {name: [] for name, *_ in scenarios}
            burst_health: list[dict[str, Any]] = []
            burst_logins: list[dict[str, Any]] = []
            for round_number in range(rounds + 1):  # round 0 warms up and is not recorded
                for name, method, path, headers, body, clients in scenarios:
                    if use_wrk:
                        piece = _wrk(url, path, method, headers, clients, slice_s, body)
                    else:
                        raw = _request(method, path, port, headers, body.encode())
                        piece = asyncio.run(_load(port, raw, clients, slice_s if round_number else 0.2))
                    if round_number:
                        slices[name].append(piece)
                health, logins = _during_login_burst(port, slice_s if round_number else 0.2, connections)
                if round_number:
                    burst_health.append(health)
                    burst_logins.append(logins)
            peak = _peak_rss_mib(process.pid)
    rows = [{"scenario": name, "generator": generator, **_summary(pieces)} for name, pieces in slices.items()]
    logins = _summary(burst_logins)
    rows.append({
        "scenario": "GET /health during a login burst (8 clients)",
        "generator": f"python asyncio client, {connections} + 8 connections", **_summary(burst_health),
        "logins_per_s": logins["rps"], "login_p50_ms": logins["p50_ms"], "login_statuses": logins["statuses"],
    })
    baseline = rows[0]["rps"] or 1.0
    for row in rows:
        row["vs_health"] = round(row["rps"] / baseline, 2)
    for row in rows[1:5]:
        row["target"] = f">= {TARGET_RATIO}x health"
        row["meets_target"] = row["vs_health"] >= TARGET_RATIO
    login_row = rows[5]
    login_row["target"] = f">= {LOGIN_TARGET:g} logins/s"
    login_row["meets_target"] = login_row["rps"] >= LOGIN_TARGET
    burst = rows[6]
    burst["target"] = f">= {BURST_TARGET}x idle health"
    burst["meets_target"] = burst["vs_health"] >= BURST_TARGET
    rows.append({"scenario": "server peak memory (VmHWM)", "peak_rss_mib": peak, "generator": "",
                 "hash_concurrency": hash_concurrency or "default (one per core)"})
    return rows


def _during_login_burst(port: int, seconds: float, connections: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """/health while 8 clients log in back to back (argon2 in worker threads): two slices."""
    body = f"username=suman&password={PASSWORD}".encode()
    login_raw = _request("POST", "/token", port, {"Content-Type": "application/x-www-form-urlencoded"}, body)
    health_raw = _request("GET", "/health", port)

    async def both() -> tuple[dict[str, Any], dict[str, Any]]:
        # logins start first, so /health is measured while hashes are under way
        logins_task = asyncio.ensure_future(_load(port, login_raw, 8, seconds + 0.2))
        health = await _load(port, health_raw, connections, seconds, warmup=0.2)
        return health, await logins_task

    return asyncio.run(both())


def _table(rows: list[dict[str, Any]]) -> str:
    header = f"{'scenario':<46} {'req/s':>9} {'min-max per slice':>19} {'vs health':>9} {'p50 ms':>8} {'p99 ms':>8}  target"
    lines = [header, "-" * len(header)]
    for row in rows[:-1]:
        extra = f"  (logins/s {row['logins_per_s']}, login p50 {row['login_p50_ms']} ms)" if "logins_per_s" in row else ""
        target = f"{row['target']}: {'met' if row['meets_target'] else 'NOT met'}" if "target" in row else ""
        lines.append(
            f"{row['scenario']:<46} {row['rps']:>9.1f} {row['rps_min']:>9.1f}-{row['rps_max']:<9.1f} "
            f"{row['vs_health']:>8.2f}x {row['p50_ms']:>8.2f} {row['p99_ms']:>8.2f}  {target} {row['statuses']}{extra}"
        )
    memory = rows[-1]
    lines.append("")
    lines.append(f"server peak memory (VmHWM): {memory['peak_rss_mib']} MiB; hashing threads: {memory['hash_concurrency']}")
    lines.append(f"load generator: {rows[0]['generator']}; server: uvicorn, 1 worker, {HOST}")
    return "\n".join(lines)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 s per scenario instead of 3 s")
    parser.add_argument("--alg", help="signing algorithm for the database (default: authctl init's)")
    parser.add_argument("--hash-concurrency", type=int, default=None, help="Auth(hash_concurrency=N) for the server")
    parser.add_argument("--no-wrk", action="store_true", help="use the Python load generator even when wrk is installed")
    options = parser.parse_args()
    print(_table(run(quick=options.quick, alg=options.alg, hash_concurrency=options.hash_concurrency,
                     use_wrk=False if options.no_wrk else None)))
