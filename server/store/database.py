"""Engine, migrations and the group-commit writer.

`Database.connect(url)` creates the async engine (SQLite gets WAL mode and a busy timeout), and
`migrate()` runs the Alembic migrations to head on a connection of that engine, so start-up and
`testbed db upgrade` share one code path.

`GroupCommitter` runs write operations in batches: every caller awaits its own operation, which
completes only after the transaction holding it has committed ("acknowledge after commit"). While
one transaction commits, new operations queue up and go into the next one, so throughput grows
with load without delaying a lone writer. Under a steady trickle (a fleet whose notifications
arrive one by one, spread over time) that alone would commit every operation on its own, paying a
transaction per notification. So when operations kept arriving while the last transaction
committed (independent writers, not one caller awaiting each write in turn) and fewer than
`GATHER_BELOW` wait, the committer lingers until `GATHER_BELOW` are queued or `GATHER_WINDOW` has
passed, whichever comes first: a bounded batching window. Only operations that said they may wait
(`deferrable`: a device's notification, whose ACK follows the commit) ever do; any other queued
operation (an API call's write, a read's values) closes the window at once, and a sequential
writer never opens it.

Bulk writes (`GroupCommitter.run_bulk`): callers that append rows to the same tables (reported
values) queue an item for a shared `BulkWriter`; within one transaction every such item is written
by a single `writer(conn, items)` call, i.e. one executemany per statement instead of one per
caller. Each caller still waits for the commit that holds its item. Bulk items are written before
the next plain operation of the batch, so the order between them and plain operations holds; when
a transaction fails, every operation and item is retried alone, so only the culprit fails.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Connection, CursorResult
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"

T = TypeVar("T")
# A write operation runs synchronously on the database connection, inside the worker thread of
# the async driver: a whole batch costs one hop to that thread, not one per statement.
WriteOp = Callable[[Connection], Any]
# Writes many callers' items in one go (an executemany per statement); returns one result per
# item, in order (e.g. the primary keys of inserted rows), or None when there is nothing to return.
BulkWriter = Callable[[Connection, list[Any]], Sequence[Any] | None]


def inserted_id(result: CursorResult[Any]) -> int:
    """The primary key of the one row an INSERT wrote."""
    key = result.inserted_primary_key
    if key is None:
        raise RuntimeError("the INSERT returned no primary key")
    return int(key[0])


class _BulkItem:
    __slots__ = ("item", "writer")

    def __init__(self, writer: BulkWriter, item: Any) -> None:
        self.writer = writer
        self.item = item

    def __call__(self, conn: Connection) -> Any:
        results = self.writer(conn, [self.item])
        return None if results is None else results[0]


# (operation, the caller's future or None, whether it may wait for the gather window)
_Entry = tuple[WriteOp, asyncio.Future[Any] | None, bool]


def _execute_batch(conn: Connection, batch: list[_Entry], prelude: str | None = None) -> list[Any]:
    """Run a batch in order, gathering the items of each bulk writer into one call; `prelude` is a
    statement run first in the transaction."""
    if prelude is not None:
        conn.exec_driver_sql(prelude)
    results: list[Any] = []
    # writer -> (positions in `results`, items)
    bulks: dict[BulkWriter, tuple[list[int], list[Any]]] = {}

    def flush() -> None:
        for writer, (positions, items) in bulks.items():
            written = writer(conn, items)
            if written is not None:
                for position, result in zip(positions, written, strict=True):
                    results[position] = result
        bulks.clear()

    for op, _future, _deferrable in batch:
        if isinstance(op, _BulkItem):
            positions, items = bulks.setdefault(op.writer, ([], []))
            positions.append(len(results))
            items.append(op.item)
            results.append(None)
        else:
            if bulks:
                flush()
            results.append(op(conn))
    flush()
    return results


def _prepare_sqlite_path(url: str) -> None:
    prefix = "sqlite+aiosqlite:///"
    if url.startswith(prefix):
        file = url[len(prefix) :].split("?", 1)[0]
        if file and file != ":memory:":
            Path(file).parent.mkdir(parents=True, exist_ok=True)


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


class Database:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

    @classmethod
    def connect(cls, url: str) -> Database:
        _prepare_sqlite_path(url)
        if url.startswith("sqlite"):
            engine = create_async_engine(url, connect_args={"timeout": 30})

            @event.listens_for(engine.sync_engine, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                cursor = dbapi_conn.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
                cursor.execute("PRAGMA foreign_keys=ON")
                cursor.close()

        else:
            engine = create_async_engine(url, pool_size=5, max_overflow=10, pool_pre_ping=True)
        return cls(engine)

    async def migrate(self, revision: str = "head") -> None:
        """Apply the Alembic migrations up to `revision` (idempotent)."""

        def upgrade(sync_conn: Connection) -> None:
            cfg = alembic_config()
            cfg.attributes["connection"] = sync_conn
            command.upgrade(cfg, revision)

        async with self.engine.begin() as conn:
            await conn.run_sync(upgrade)

    async def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        def read(sync_conn: Connection) -> str | None:
            return MigrationContext.configure(sync_conn).get_current_revision()

        async with self.engine.connect() as conn:
            return await conn.run_sync(read)

    async def dispose(self) -> None:
        await self.engine.dispose()


GATHER_WINDOW = 0.02
GATHER_BELOW = 16


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class GroupCommitter:
    """Runs write operations in shared transactions; each caller waits for its commit."""

    def __init__(
        self,
        engine: AsyncEngine,
        max_batch: int = 1000,
        *,
        gather_window: float = GATHER_WINDOW,
        gather_below: int = GATHER_BELOW,
        durable: bool = True,
    ) -> None:
        self._engine = engine
        # A writer of soft state (a cluster's ownership claims, heartbeats) need not wait for the
        # WAL flush: on PostgreSQL its transactions commit with `synchronous_commit = off`.
        self._prelude: str | None = (
            None if durable or engine.dialect.name != "postgresql" else "SET LOCAL synchronous_commit TO OFF"
        )
        self._max_batch = max_batch
        self._gather_window = gather_window
        self._gather_below = gather_below
        self._arrivals = 0  # operations queued so far
        self._arrived_while_committing = 0
        self._enough: asyncio.Future[None] | None = None  # set while lingering
        self.gathered = 0  # batches that waited the gather window
        self._queue: list[_Entry] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.commits = 0
        self.operations = 0
        self.failures = 0

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="group-committer")

    async def run(self, op: WriteOp, *, deferrable: bool = False) -> Any:
        """Queue `op` and wait until the transaction that ran it has committed. A `deferrable`
        operation (a device's notification, waiting for its ACK) may wait for the gather window;
        any other one (somebody is waiting for an answer) closes it."""
        if self._closing:
            raise RuntimeError("the store is closed")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._enqueue((op, future, deferrable))
        return await future

    async def run_bulk(self, writer: BulkWriter, item: Any, *, deferrable: bool = False) -> Any:
        """Queue `item` for `writer` (called once per transaction with every queued item), wait
        until the transaction that wrote it has committed and return the writer's result for it."""
        return await self.run(_BulkItem(writer, item), deferrable=deferrable)

    def submit(self, op: WriteOp) -> None:
        """Queue `op` without waiting (event log, statistics); it never holds a commit back."""
        if self._closing:
            return
        self._enqueue((op, None, True))

    def _enqueue(self, entry: _Entry) -> None:
        self._queue.append(entry)
        self._arrivals += 1
        self._wakeup.set()
        enough = self._enough
        if (
            enough is not None
            and not enough.done()
            and (not entry[2] or len(self._queue) >= self._gather_below)
        ):
            enough.set_result(None)

    def _may_linger(self) -> bool:
        return (
            self._gather_window > 0
            and self._arrived_while_committing > 0
            and len(self._queue) < self._gather_below
            and all(deferrable for _op, _future, deferrable in self._queue)
        )

    async def _linger(self) -> None:
        """Wait for `gather_below` queued operations, at most `gather_window` seconds."""
        loop = asyncio.get_running_loop()
        self._enough = enough = loop.create_future()
        timer = loop.call_later(self._gather_window, _resolve, enough)
        try:
            await enough
        finally:
            timer.cancel()
            self._enough = None

    async def flush(self) -> None:
        """Wait until everything queued so far has committed."""

        def nothing(_conn: Connection) -> None:
            return None

        await self.run(nothing)

    async def close(self) -> None:
        if self._task is None:
            return
        await self.flush()
        self._closing = True
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        self._task = None

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                if self._may_linger():
                    self.gathered += 1
                    await self._linger()
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                arrivals = self._arrivals
                await self._commit_batch(batch)
                self._arrived_while_committing = self._arrivals - arrivals

    async def _commit_batch(self, batch: list[_Entry]) -> None:
        try:
            async with self._engine.begin() as conn:
                results = await conn.run_sync(_execute_batch, batch, self._prelude)
        except Exception as exc:
            # One operation spoiled the transaction: run each alone so only the culprit fails.
            if len(batch) > 1:
                for item in batch:
                    await self._commit_batch([item])
                return
            _op, future, _deferrable = batch[0]
            self.failures += 1
            log.exception("store write failed")
            if future is not None and not future.done():
                future.set_exception(exc)
            return
        self.commits += 1
        self.operations += len(batch)
        for (_op, future, _deferrable), result in zip(batch, results, strict=True):
            if future is not None and not future.done():
                future.set_result(result)
