"""The real server under a bounded load while separate CLI processes change the database.

What it pins: zero 5xx and zero "database is locked" under concurrent writers; every
write present afterwards; a revoked token or a removed role refused from the very next
request; a key rotation never breaking tokens already issued; and the failure counter
raised by exactly fifty by fifty parallel wrong logins.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import jwt
import pytest

from authctl.store import Store
from tests.apphelpers import PASSWORD
from tests.serving import authctl, running_server, seed_demo_db

LOAD_SECONDS = 15
LOAD_CONNECTIONS = 6
WRONG_LOGINS = 50
MAX_USERS_ADDED = 40
MAX_ROTATIONS = 3


@dataclass
class LoadReport:
    statuses: Counter = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)


@dataclass
class CliLog:
    """Every CLI process the writers ran, so a failure anywhere is reported with its stderr."""

    failures: list[str] = field(default_factory=list)
    lock = threading.Lock()

    def run(self, db: Path, cwd: Path, *args: str, input: str | None = None) -> str:
        result = authctl("--db", str(db), *args, input=input, cwd=cwd)
        if result.returncode != 0 or "locked" in result.stderr or "busy" in result.stderr:
            with self.lock:
                self.failures.append(f"{' '.join(args)} -> {result.returncode}: {result.stderr.strip()}")
        return result.stdout.strip()


def _generate_load(url: str, requests: list[tuple[str, str, str | None, int]], stop: threading.Event,
                   report: LoadReport) -> None:
    """LOAD_CONNECTIONS clients cycle through requests whose answers never change during the test."""

    async def client_loop(offset: int) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            i = offset
            while not stop.is_set():
                method, path, token, expected = requests[i % len(requests)]
                i += 1
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                try:
                    status = (await client.request(method, path, headers=headers)).status_code
                except httpx.TransportError as exc:
                    report.unexpected.append(f"{method} {path}: {type(exc).__name__}")
                    continue
                report.statuses[status] += 1
                if status != expected:
                    report.unexpected.append(f"{method} {path}: {status}, expected {expected}")

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


@pytest.mark.slow
def test_serve_under_load_while_cli_processes_write(tmp_path):
    db = tmp_path / "load.db"
    seed_demo_db(db, tmp_path)
    cli = CliLog()
    cli.run(db, tmp_path, "user", "add", "checker", "--role", "admin", "--password-stdin", input=PASSWORD + "\n")
    with Store.open(db) as store:
        failures_before = store.login_failures("priya")[0]
        keys_before = len(store.keys())

    with running_server(db, tmp_path) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        def login(name: str) -> str:
            response = http.post("/token", data={"username": name, "password": PASSWORD})
            assert response.status_code == 200, response.text
            return response.json()["access_token"]

        suman, rahul = login("suman"), login("rahul")
        steady = [
            ("GET", "/whoami", rahul, 200),
            ("GET", "/students", suman, 200),
            ("DELETE", "/student/3", rahul, 403),
            ("GET", "/profile", None, 401),
            ("GET", "/students/2", rahul, 200),
            ("GET", "/admin/dashboard", suman, 200),
        ]
        stop = threading.Event()
        report = LoadReport()
        load = threading.Thread(target=_generate_load, args=(server.url, steady, stop, report))

        added: list[str] = []
        removed: list[str] = []

        def add_and_remove_users() -> None:
            for i in range(MAX_USERS_ADDED):
                if stop.is_set():
                    return
                cli.run(db, tmp_path, "user", "add", f"load-{i}", "--role", "student", "--password-stdin",
                        input=PASSWORD + "\n")
                added.append(f"load-{i}")
                if i % 3 == 2:
                    cli.run(db, tmp_path, "user", "remove", f"load-{i - 1}")
                    removed.append(f"load-{i - 1}")

        rotations: list[str] = []

        def rotate_keys_and_grant() -> None:
            for j in range(MAX_ROTATIONS):
                if stop.is_set():
                    return
                cli.run(db, tmp_path, "role", "add", f"extra-{j}")
                cli.run(db, tmp_path, "role", "grant", f"extra-{j}", "courses:write")
                cli.run(db, tmp_path, "user", "assign", "priya", f"extra-{j}")
                cli.run(db, tmp_path, "key", "rotate")
                rotations.append(f"extra-{j}")

        writers = [threading.Thread(target=add_and_remove_users), threading.Thread(target=rotate_keys_and_grant)]
        for writer in writers:
            writer.start()
        # the burst races the CLI writers for the database; the steady load starts after it, since
        # under a saturating load logins wait behind requests by design (hashing runs at a lower priority)
        wrong_login_statuses = _wrong_logins(server.url, "priya")
        load.start()

        revocation_misses: list[str] = []
        revoked: list[str] = []
        started = time.monotonic()
        rounds = 0
        try:
            while time.monotonic() - started < LOAD_SECONDS or rounds == 0:
                rounds += 1
                token = cli.run(db, tmp_path, "token", "issue", "--as", "checker")
                headers = {"Authorization": f"Bearer {token}"}
                steps = [
                    (None, 200),
                    (("user", "unassign", "checker", "admin"), 403),
                    (("user", "assign", "checker", "admin"), 200),
                    (("token", "revoke", token), 401),
                ]
                for command, expected in steps:
                    if command:
                        cli.run(db, tmp_path, *command)
                    status = http.get("/admin/dashboard", headers=headers).status_code
                    if status != expected:
                        revocation_misses.append(f"round {rounds} after {command}: {status}, expected {expected}")
                revoked.append(token)
        finally:
            stop.set()
            for writer in writers:
                writer.join(timeout=120)
            load.join(timeout=60)

        still_valid = http.get("/whoami", headers={"Authorization": f"Bearer {rahul}"})

    assert cli.failures == []
    assert revocation_misses == []
    assert report.unexpected == [], report.unexpected[:10]
    assert not any(status >= 500 for status in report.statuses)
    assert sum(report.statuses.values()) >= 50  # the load really ran alongside the writers
    assert still_valid.status_code == 200  # tokens from before every rotation still verify
    assert "locked" not in server.stderr and "Traceback" not in server.stderr
    assert wrong_login_statuses == [401] * WRONG_LOGINS

    with Store.open(db) as store:
        assert store.login_failures("priya")[0] == failures_before + WRONG_LOGINS
        for name in added:
            user = store.find_user(name)
            if name in removed:
                assert user is None, name
            else:
                assert user is not None and user.roles == ("student",), name
        assert rotations and set(rotations) <= set(store.get_user("priya").roles)
        keys = store.keys()
        assert len(keys) == keys_before + len(rotations)
        assert [k.status for k in keys].count("active") == 1
        assert store.get_user("checker").roles == ("admin",)
        assert len(revoked) == rounds
        assert all(store.is_revoked(jwt.decode(token, options={"verify_signature": False})["jti"])
                   for token in revoked)
        assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
