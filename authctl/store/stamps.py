"""Fresh change stamps for the requests of one event loop: one PostgreSQL read serves all who wait.

Every request must see each change committed before it arrived, from any process. On
PostgreSQL that is one read of the stamp row per request (``PostgresEngine.read_stamp``),
and a synchronous read blocks the event loop for a whole round trip. Here requests await
the stamp instead, and requests that ask while a read is on the wire share the next one.

The rule that keeps it exact: a request only takes a read that *began after it asked*. A
commit its client saw finish before sending the request is then in that read's snapshot.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

from ..errors import DatabaseError


class CoalescedReads:
    """Run ``read`` for whoever awaits ``fresh()``; callers that arrive during a read get the next one."""

    def __init__(self, read: Callable[[], Awaitable[Any]]):
        self._read = read
        self._waiting: list[asyncio.Future[Any]] = []
        self._reader: asyncio.Task[None] | None = None
        self.reads = 0  # reads made: under load, far fewer than the callers

    async def fresh(self) -> Any:
        """A value read after this call began."""
        future = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        if self._reader is None:
            self._reader = asyncio.get_running_loop().create_task(self._serve())
        return await future  # a caller's own future: cancelling one request leaves the others' read alone

    async def _serve(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []  # whoever asks from here on waits for the next read
                self.reads += 1
                try:
                    value = await self._read()
                except asyncio.CancelledError:
                    for future in batch + self._waiting:
                        future.cancel()
                    self._waiting = []
                    raise
                except Exception as exc:  # the batch's error, raised in each waiting request
                    for future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for future in batch:
                    if not future.done():
                        future.set_result(value)
        finally:
            self._reader = None


class PostgresStamps:
    """The stamp row of one PostgreSQL database, read on the running loop's own connection."""

    def __init__(self, url: Any, query: str, timeout: float, describe: Callable[[BaseException], str]):
        self._url = url
        self._query = query
        self._timeout = timeout
        self._describe = describe  # the engine's masked, one-line wording of a psycopg error
        self._conn: Any = None
        self._shared = CoalescedReads(self._read_once)

    async def fresh(self) -> int:
        """The stamp, from a read that began after this call (shared with whoever else waits for it)."""
        return await self._shared.fresh()

    async def _read_once(self) -> int:
        """One read, bounded: a server that does not answer (a partition, a held lock) is a
        ``DatabaseError`` (a 503) after ``timeout`` seconds, not a request that hangs."""
        try:
            return await asyncio.wait_for(self._read_or_reconnect(), self._timeout)
        except TimeoutError:
            self.close()  # the cancelled statement leaves the connection mid-query: start afresh
            raise DatabaseError(f"database unavailable (no answer in {self._timeout:g} s); try again") from None

    async def _read_or_reconnect(self) -> int:
        """A connection found dead (a server restart) is replaced and the read tried once more, as
        ``PostgresEngine.execute`` does, so a recovered server answers the very next request."""
        import psycopg

        for attempt in (1, 2):
            fresh = self._conn is None or self._conn.closed
            try:
                if fresh:
                    self._conn = await psycopg.AsyncConnection.connect(
                        self._url.raw, autocommit=True, connect_timeout=max(1, int(self._timeout)))
                cursor = await self._conn.execute(self._query, prepare=True)
                row = await cursor.fetchone()
                return int(row[0])
            except psycopg.Error as exc:
                self.close()
                if fresh or attempt == 2 or not isinstance(exc, psycopg.OperationalError):
                    raise DatabaseError(f"database unavailable ({self._describe(exc)}); try again") from None
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Drop the connection without the loop (it may be closed already): the socket closes now."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.pgconn.finish()
            except Exception:
                pass
