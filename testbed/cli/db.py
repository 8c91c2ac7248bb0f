"""`testbed db`: the database schema (migrations)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import typer

from server.settings import Settings
from testbed.cli.app import console
from testbed.cli.errors import database_problem, database_url_problem
from testbed.cli.options import DbOption, explain

if TYPE_CHECKING:
    from server.store.database import Database

db_app = typer.Typer(help="Database schema: migrations.", no_args_is_help=True)


def _run_on_database(db: str | None, work: Callable[[Database], Awaitable[None]]) -> None:
    """Run `await work(database)` on the --db database; a database that is not reachable (or a
    URL that is none) ends in two lines."""
    from server.store.database import Database

    url = db or Settings().database_url
    problem = database_url_problem(url)
    if problem is not None:
        explain(problem)

    async def main() -> None:
        database = Database.connect(url)
        try:
            await work(database)
        finally:
            await database.dispose()

    try:
        asyncio.run(main())
    except Exception as exc:
        problem = database_problem(url, exc)
        if problem is None:
            raise
        explain(problem)


@db_app.command("upgrade")
def db_upgrade(db: DbOption = None, revision: str = "head") -> None:
    """Apply the migrations (the server also does this at start)."""

    async def work(database: Database) -> None:
        await database.migrate(revision)
        console.print(f"database at revision {await database.current_revision()}")

    _run_on_database(db, work)


@db_app.command("current")
def db_current(db: DbOption = None) -> None:
    """Print the schema revision of the database."""

    async def work(database: Database) -> None:
        console.print(await database.current_revision() or "empty")

    _run_on_database(db, work)
