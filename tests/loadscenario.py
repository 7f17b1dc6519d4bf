"""The real server under load while separate CLI processes change its database.

One scenario, two users: ``tests/test_load.py`` runs it for seconds in the test suite,
``bench/soak.py`` for minutes. ``run`` drives it and ``problems`` lists every broken
promise, in words:

* zero 5xx, zero transport errors and zero "database is locked" under concurrent writers;
* requests whose answer cannot change get the same answer throughout (200, 401 or 403);
* every CLI write present afterwards, exactly one active key, an intact file;
* a revoked token, a role taken away, a disabled user, "log out everywhere" and a password
  change refused from the very next request (and an enabled user or a role given back
  allowed from it);
* a key rotation never breaks a token issued before it;
* fifty parallel wrong logins raise the failure counter by exactly fifty.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import httpx
import jwt

from authctl.store import DatabaseURL, Store
from tests.apphelpers import PASSWORD
from tests.serving import COMMAND_TIMEOUT_S, Server, authctl, running_server, seed_demo_db

LOAD_CONNECTIONS = 6
WRONG_LOGINS = 50
WRONG_LOGIN_USER = "priya"
ROTATE_EVERY_S = 4.0


@dataclass
class Outcome:
    """What happened, for ``problems`` to judge and ``bench/soak.py`` to report."""

    seconds: float = 0.0
    statuses: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    cli_failures: list[str] = field(default_factory=list)
    cli_runs: int = 0
    revocation_misses: list[str] = field(default_factory=list)
    revoked_tokens: list[str] = field(default_factory=list)
    rounds: int = 0
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    extra_roles: list[str] = field(default_factory=list)
    wrong_login_statuses: list[int] = field(default_factory=list)
    failures_before: int = 0
    keys_before: int = 0
    old_token_status: int = 0
    server_rss_kib: list[int] = field(default_factory=list)
    crashed: list[str] = field(default_factory=list)
    server: Server | None = None


class _Cli:
    """Runs `authctl` processes for the writers; any failure is kept with its stderr."""

    def __init__(self, db: Path | DatabaseURL, cwd: Path, outcome: Outcome):
        self.db, self.cwd, self.outcome = db, cwd, outcome
        self.lock = threading.Lock()

    def __call__(self, *args: str, input: str | None = None) -> str:
        shown = " ".join(args)
        try:
            result = authctl("--db", str(self.db), *args, input=input, cwd=self.cwd)
        except subprocess.TimeoutExpired:
            with self.lock:
                self.outcome.cli_failures.append(f"{shown}: no answer within {COMMAND_TIMEOUT_S} s")
            return ""
        with self.lock:
            self.outcome.cli_runs += 1
            if result.returncode != 0 or "locked" in result.stderr or "busy" in result.stderr:
                self.outcome.cli_failures.append(f"{shown} -> {result.returncode}: {result.stderr.strip()}")
        return result.stdout.strip()


def _recording_crashes(outcome: Outcome, target: Callable[[], None]) -> Callable[[], None]:
    """A thread's exception would vanish with the thread: keep it as a problem instead."""

    def run() -> None:
        try:
            target()
        except BaseException as exc:  # noqa: BLE001 - reported by problems()
            outcome.crashed.append(f"{target.__name__}: {type(exc).__name__}: {exc}")

    return run


def run(tmp: Path, seconds: float, *, db: Path | DatabaseURL | None = None, max_users: int = 40,
        max_rotations: int = 3) -> Outcome:
    """Seed a demo database (``db``: an empty PostgreSQL database, or by default an SQLite file in
    ``tmp``), serve it, and run the load, the writers and the probes for ``seconds``."""
    outcome = Outcome()
    ttl = f"{int(seconds) + 900}s"  # every token outlives the run, however long
    db = tmp / "load.db" if db is None else db
    seed_demo_db(db, tmp)
    cli = _Cli(db, tmp, outcome)
    cli("user", "add", "checker", "--role", "admin", "--password-stdin", input=PASSWORD + "\n")
    with Store.open(db) as store:
        outcome.failures_before = store.login_failures(WRONG_LOGIN_USER)[0]
        outcome.keys_before = len(store.keys())

    with running_server(db, tmp) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        outcome.server = server
        suman, rahul = cli("token", "issue", "--as", "suman", "--ttl", ttl), cli("token", "issue", "--as", "rahul",
                                                                                  "--ttl", ttl)
        steady = [
            ("GET", "/whoami", rahul, 200),
            ("GET", "/students", suman, 200),
            ("DELETE", "/student/3", rahul, 403),
            ("GET", "/profile", None, 401),
            ("GET", "/students/2", rahul, 200),
            ("GET", "/admin/dashboard", suman, 200),
        ]
        stop = threading.Event()

        def add_and_remove_users() -> None:
            for i in range(max_users):
                if stop.is_set():
                    return
                cli("user", "add", f"load-{i}", "--role", "student", "--password-stdin", input=PASSWORD + "\n")
                outcome.added.append(f"load-{i}")
                if i % 3 == 2:
                    cli("user", "remove", "--yes", f"load-{i - 1}")
                    outcome.removed.append(f"load-{i - 1}")

        def rotate_keys_and_grant() -> None:
            for j in range(max_rotations):
                if stop.wait(0 if j == 0 else ROTATE_EVERY_S):
                    return
                cli("role", "add", f"extra-{j}")
                cli("role", "grant", f"extra-{j}", "courses:write")
                cli("user", "assign", WRONG_LOGIN_USER, f"extra-{j}")
                cli("key", "rotate")
                outcome.extra_roles.append(f"extra-{j}")

        def sample_server_memory() -> None:
            while not stop.wait(1.0):
                outcome.server_rss_kib.append(_rss_kib(server.process.pid))

        def generate_load() -> None:
            _generate_load(server.url, steady, stop, outcome)

        threads = [threading.Thread(target=_recording_crashes(outcome, f)) for f in (
            add_and_remove_users, rotate_keys_and_grant, sample_server_memory, generate_load)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        try:
            # the burst races the steady load and the CLI writers for the database
            outcome.wrong_login_statuses = _wrong_logins(server.url, WRONG_LOGIN_USER)
            while time.monotonic() - started < seconds or outcome.rounds == 0:
                _revocation_round(cli, http, outcome, ttl)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=120)
                if thread.is_alive():
                    outcome.crashed.append("a load or writer thread did not stop within 120 s")
            outcome.seconds = time.monotonic() - started
        outcome.old_token_status = http.get("/whoami", headers={"Authorization": f"Bearer {rahul}"}).status_code
    return outcome


#: One round of changes to the user ``checker`` (an admin), each followed by one request
#: with the round's current token: the change must count from that very request.
#: "issue" takes a fresh token; "revoke" denylists the current one.
ROUND = (
    ("issue", 200),
    (("user", "unassign", "checker", "admin"), 403),
    (("user", "assign", "checker", "admin"), 200),
    (("user", "disable", "checker"), 401),
    (("user", "enable", "checker"), 200),
    ("revoke", 401),
    ("issue", 200),
    (("user", "logout", "checker"), 401),
    ("issue", 200),
    (("user", "passwd", "checker", "--password-stdin"), 401),
)


def _revocation_round(cli: _Cli, http: httpx.Client, outcome: Outcome, ttl: str) -> None:
    outcome.rounds += 1
    token = ""
    for step, expected in ROUND:
        if step == "issue":
            token = cli("token", "issue", "--as", "checker", "--ttl", ttl)
        elif step == "revoke":
            cli("token", "revoke", "-", input=token)
            outcome.revoked_tokens.append(token)
        else:
            cli(*step, input=PASSWORD + "\n" if "--password-stdin" in step else None)
        status = http.get("/admin/dashboard", headers={"Authorization": f"Bearer {token}"}).status_code
        if status != expected:
            shown = step if isinstance(step, str) else " ".join(step)
            outcome.revocation_misses.append(f"round {outcome.rounds}, after {shown}: {status}, expected {expected}")


def _generate_load(url: str, requests: list[tuple[str, str, str | None, int]], stop: threading.Event,
                   outcome: Outcome) -> None:
    """LOAD_CONNECTIONS clients cycle through requests whose answers never change during the run."""

    async def client_loop(offset: int) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            i = offset
            while not stop.is_set():
                method, path, token, expected = requests[i % len(requests)]
                i += 1
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                sent = time.perf_counter()
                try:
                    status = (await client.request(method, path, headers=headers)).status_code
                except httpx.TransportError as exc:
                    outcome.unexpected.append(f"{method} {path}: {type(exc).__name__}")
                    continue
                outcome.latencies.append(time.perf_counter() - sent)
                outcome.statuses[status] += 1
                if status != expected:
                    outcome.unexpected.append(f"{method} {path}: {status}, expected {expected}")

    async def main() -> None:
        await asyncio.gather(*(client_loop(n) for n in range(LOAD_CONNECTIONS)))

    asyncio.run(main())


def _wrong_logins(url: str, username: str) -> list[int]:
    async def burst() -> list[int]:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            responses = await asyncio.gather(*(
                client.post("/token", data={"username": username, "password": f"wrong-password-{i}"})
                for i in range(WRONG_LOGINS)
            ))
        return [r.status_code for r in responses]

    return asyncio.run(burst())


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def problems(outcome: Outcome, db: Path | DatabaseURL) -> list[str]:
    """Every broken promise of the run, one line each (empty: all kept)."""
    found: list[str] = []
    found += [f"thread: {line}" for line in outcome.crashed]
    found += [f"CLI: {line}" for line in outcome.cli_failures]
    found += [f"revocation: {line}" for line in outcome.revocation_misses]
    found += [f"load: {line}" for line in outcome.unexpected[:20]]
    if any(status >= 500 for status in outcome.statuses):
        found.append(f"5xx answers: {dict(outcome.statuses)}")
    if sum(outcome.statuses.values()) < 50:
        found.append(f"the load hardly ran: {dict(outcome.statuses)}")
    if outcome.old_token_status != 200:
        found.append(f"a token from before the rotations got {outcome.old_token_status}")
    stderr = outcome.server.stderr if outcome.server else ""
    for marker in ("locked", "Traceback"):
        if marker in stderr:
            found.append(f"server stderr mentions {marker!r}")
    if "on a free port of 127.0.0.1" not in stderr:
        found.append("the server's banner did not say it took a free port")
    if outcome.wrong_login_statuses != [401] * WRONG_LOGINS:
        found.append(f"wrong logins answered {Counter(outcome.wrong_login_statuses)}")
    if not outcome.extra_roles:
        found.append("no key rotation ran")

    with Store.open(db) as store:
        failures = store.login_failures(WRONG_LOGIN_USER)[0]
        if failures != outcome.failures_before + WRONG_LOGINS:
            found.append(f"failure counter {outcome.failures_before} -> {failures}, expected +{WRONG_LOGINS}")
        for name in outcome.added:
            user = store.find_user(name)
            if name in outcome.removed and user is not None:
                found.append(f"{name} was removed but is still there")
            if name not in outcome.removed and (user is None or user.roles != ("student",)):
                found.append(f"{name} was added as a student but is {user}")
        missing_roles = set(outcome.extra_roles) - set(store.get_user(WRONG_LOGIN_USER).roles)
        if missing_roles:
            found.append(f"{WRONG_LOGIN_USER} lacks the assigned roles {sorted(missing_roles)}")
        keys = store.keys()
        if len(keys) != outcome.keys_before + len(outcome.extra_roles):
            found.append(f"{len(keys)} keys after {len(outcome.extra_roles)} rotations from {outcome.keys_before}")
        if [key.status for key in keys].count("active") != 1:
            found.append("not exactly one active key")
        if store.get_user("checker").roles != ("admin",):
            found.append(f"checker ends with roles {store.get_user('checker').roles}")
        not_revoked = [t for t in outcome.revoked_tokens
                       if not store.is_revoked(jwt.decode(t, options={"verify_signature": False})["jti"])]
        if len(outcome.revoked_tokens) != outcome.rounds or not_revoked:  # tokens outlive the run: none pruned
            found.append(f"{len(not_revoked)} of {outcome.rounds} revoked tokens are not in the denylist")
        if store.engine_name == "sqlite":  # PostgreSQL keeps its own files whole
            integrity = store.conn.execute("PRAGMA integrity_check").fetchone()[0]
            if integrity != "ok":
                found.append(f"integrity_check: {integrity}")
    return found
