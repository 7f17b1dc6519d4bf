"""Awaited change stamps (authctl/store/stamps.py): shared reads that never serve a request older than it.

The rule under test: a request takes only a read that began after it asked, so a commit that
finished before the request was sent is always seen; callers that ask during a read share the
next one, which is what keeps PostgreSQL's request path off the event loop's critical path.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from authctl.errors import DatabaseError
from authctl.store import DatabaseURL, Store
from authctl.store.stamps import CoalescedReads, PostgresStamps

from .apphelpers import issue, make_demo_db
from .conftest import Cli


class Counter:
    """A stand-in database: each read returns the current value, after the test lets it finish."""

    def __init__(self) -> None:
        self.value = 0
        self.started: list[int] = []  # the value each read saw when it began
        self.gate: asyncio.Event | None = None
        self.fail_next = False

    async def read(self) -> int:
        seen = self.value
        self.started.append(seen)
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_next:
            self.fail_next = False
            raise DatabaseError("database unavailable (test); try again")
        return seen


def run(scenario: Any) -> Any:
    """Run one scenario with a deadline: a broken reader fails the test instead of hanging it."""
    return asyncio.run(asyncio.wait_for(scenario, timeout=20))


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_a_caller_who_asks_during_a_read_gets_the_next_read() -> None:
    async def scenario() -> tuple[Any, Any, list[int]]:
        db = Counter()
        db.gate = asyncio.Event()
        reads = CoalescedReads(db.read)
        first = asyncio.ensure_future(reads.fresh())
        await _settle()  # the first read has begun and is on the wire
        second = asyncio.ensure_future(reads.fresh())
        await _settle()
        db.value = 1  # a commit after the second caller asked, before the first read returns
        db.gate.set()
        return await first, await second, db.started

    first, second, started = run(scenario())
    assert first == 0  # began before the commit: the first caller may see the old stamp
    assert second == 1  # the second caller never takes the read that began before it asked
    assert started == [0, 1]


def test_callers_who_ask_together_share_one_read() -> None:
    async def scenario() -> tuple[list[int], int]:
        db = Counter()
        reads = CoalescedReads(db.read)
        values = await asyncio.gather(*(reads.fresh() for _ in range(50)))
        return list(values), reads.reads

    values, count = run(scenario())
    assert values == [0] * 50
    assert count == 1


def test_a_failed_read_fails_its_callers_and_the_next_call_reads_again() -> None:
    async def scenario() -> tuple[list[Any], int]:
        db = Counter()
        db.fail_next = True
        reads = CoalescedReads(db.read)
        failed = await asyncio.gather(reads.fresh(), reads.fresh(), return_exceptions=True)
        db.value = 7
        return [*failed, await reads.fresh()], reads.reads

    (one, two, recovered), count = run(scenario())
    assert isinstance(one, DatabaseError) and isinstance(two, DatabaseError)
    assert recovered == 7
    assert count == 2


def test_a_cancelled_caller_leaves_the_others_their_read() -> None:
    async def scenario() -> tuple[bool, int]:
        db = Counter()
        db.gate = asyncio.Event()
        reads = CoalescedReads(db.read)
        leaving = asyncio.ensure_future(reads.fresh())
        staying = asyncio.ensure_future(reads.fresh())
        await _settle()
        leaving.cancel()  # e.g. its client hung up
        await _settle()
        db.gate.set()
        return leaving.cancelled(), await staying

    cancelled, value = run(scenario())
    assert cancelled and value == 0


# --------------------------------------------------------------------------- the real app on PostgreSQL


@pytest.fixture
def pg_app(pg_url: str):
    from authctl.app.main import build

    cli = Cli(DatabaseURL(pg_url))
    make_demo_db(cli)
    app = build(pg_url)
    yield app, cli.db
    app.state.auth.close()


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def test_a_request_that_arrives_during_a_read_sees_a_change_committed_meanwhile(pg_app, monkeypatch) -> None:
    """Request B arrives while request A's stamp read is on the wire; another connection then
    removes priya's role. A began first and may pass; B must be refused."""
    app, url = pg_app
    real_read = PostgresStamps._read_once
    held = {"gate": None, "read": None}

    async def read_then_hold(self: PostgresStamps) -> int:
        value = await real_read(self)  # the read is done: its snapshot predates what follows
        gate = held["gate"]
        if gate is not None and held["read"] is None:
            held["read"] = value
            await gate.wait()
        return value

    monkeypatch.setattr(PostgresStamps, "_read_once", read_then_hold)

    async def scenario() -> tuple[int, int, int]:
        with Store.open(url) as store:
            priya = {"Authorization": "Bearer " + issue(store, "priya")}
        async with _client(app) as client:
            warm = (await client.get("/students", headers=priya)).status_code  # her lookup is now kept
            held["gate"] = asyncio.Event()
            first = asyncio.ensure_future(client.get("/students", headers=priya))
            while held["read"] is None:
                await asyncio.sleep(0.001)
            second = asyncio.ensure_future(client.get("/students", headers=priya))
            await asyncio.sleep(0.05)  # B is parked on the next read
            with Store.open(url) as other:  # another connection, as another process's CLI would be
                other.unassign("priya", ["instructor"])
            held["gate"].set()
            return warm, (await first).status_code, (await second).status_code

    warm, first, second = run(scenario())
    assert warm == 200
    assert first == 200  # its read began before the change
    assert second == 403


def test_concurrent_requests_share_stamp_reads_and_repeat_tokens_need_no_statement(pg_app, monkeypatch) -> None:
    from authctl.store.engines import PostgresEngine

    app, url = pg_app
    statements: list[str] = []
    real_execute = PostgresEngine.execute

    def counted(self: PostgresEngine, sql: str, params: Any = ()) -> Any:
        statements.append(sql)
        return real_execute(self, sql, params)

    reads = {"n": 0}
    real_read = PostgresStamps._read_once

    async def counted_read(self: PostgresStamps) -> int:
        reads["n"] += 1
        return await real_read(self)

    monkeypatch.setattr(PostgresStamps, "_read_once", counted_read)

    async def scenario() -> list[int]:
        with Store.open(url) as store:
            tokens = [issue(store, name) for name in ("suman", "rahul", "priya")]
        async with _client(app) as client:
            for token in tokens:  # first sight of each token: the full lookup
                assert (await client.get("/whoami", headers={"Authorization": f"Bearer {token}"})).status_code == 200
            reads["n"] = 0
            monkeypatch.setattr(PostgresEngine, "execute", counted)
            responses = await asyncio.gather(*(
                client.get("/whoami", headers={"Authorization": f"Bearer {tokens[i % 3]}"}) for i in range(60)))
        return [r.status_code for r in responses]

    statuses = run(scenario())
    assert statuses == [200] * 60
    assert statements == []  # repeat tokens, nothing changed: the awaited stamp was the only read
    assert 1 <= reads["n"] < 60


def test_a_killed_reader_connection_is_replaced_at_once_and_a_down_server_answers_503(
        pg_app, pg_server: str, monkeypatch) -> None:
    """The awaited read fails as the synchronous one does: a dead connection is replaced and the
    read tried again (200); a server that refuses connections is a 503 with Retry-After, not a 500."""
    import psycopg

    app, url = pg_app
    pids: list[int] = []
    real_read = PostgresStamps._read_once

    async def noting_pid(self: PostgresStamps) -> int:
        value = await real_read(self)
        pids.append(self._conn.info.backend_pid)
        return value

    monkeypatch.setattr(PostgresStamps, "_read_once", noting_pid)

    real_connect = psycopg.AsyncConnection.connect
    down = {"on": False}

    async def connect(*args: Any, **kwargs: Any) -> Any:
        if down["on"]:
            raise psycopg.OperationalError("connection refused (test)")
        return await real_connect(*args, **kwargs)

    monkeypatch.setattr(psycopg.AsyncConnection, "connect", connect)

    async def scenario() -> list[httpx.Response]:
        with Store.open(url) as store:
            suman = {"Authorization": "Bearer " + issue(store, "suman")}
        async with _client(app) as client:
            before = await client.get("/whoami", headers=suman)
            with psycopg.connect(pg_server, autocommit=True) as admin:  # a restart, as the reader sees it
                admin.execute("SELECT pg_terminate_backend(%s)", (pids[-1],))
            replaced = await client.get("/whoami", headers=suman)
            with psycopg.connect(pg_server, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pids[-1],))
            down["on"] = True  # and now the server is down
            refused = await client.get("/whoami", headers=suman)
            down["on"] = False
            back = await client.get("/whoami", headers=suman)
        return [before, replaced, refused, back]

    before, replaced, refused, back = run(scenario())
    assert [r.status_code for r in (before, replaced, refused, back)] == [200, 200, 503, 200]
    assert len(pids) == 3 and len(set(pids)) == 3  # each read after a kill came over a new connection
    assert refused.headers["retry-after"] == "5"
    assert refused.json() == {"detail": "authentication service unavailable"}


def test_a_stamp_read_that_gets_no_answer_is_a_503_and_the_next_request_recovers(pg_app, monkeypatch) -> None:
    """A server that accepts the read and never answers (here: a held table lock) answers 503 once
    the bound passes, instead of holding every authenticated request; released, it answers 200."""
    import psycopg

    from authctl.store import engines

    monkeypatch.setattr(engines, "STAMP_READ_TIMEOUT_S", 0.5)
    app, url = pg_app

    async def scenario() -> list[httpx.Response]:
        with Store.open(url) as store:
            suman = {"Authorization": "Bearer " + issue(store, "suman")}
        async with _client(app) as client:
            before = await client.get("/whoami", headers=suman)
            with psycopg.connect(url.raw) as holder:  # one transaction, open until the block ends
                holder.execute("LOCK TABLE authctl_schema IN ACCESS EXCLUSIVE MODE")
                held = await client.get("/whoami", headers=suman)
                holder.rollback()
            after = await client.get("/whoami", headers=suman)
        return [before, held, after]

    before, held, after = run(scenario())
    assert [r.status_code for r in (before, held, after)] == [200, 503, 200]
    assert held.json() == {"detail": "authentication service unavailable"}
