"""Engine and sessions. SQLite gets WAL, synchronous=FULL, busy_timeout and BEGIN IMMEDIATE writes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event
from sqlmodel import Session, SQLModel, create_engine

from bot import tables  # noqa: F401  (registers the tables on SQLModel.metadata)


def make_engine(url: str) -> Engine:
    """An engine for `url`; on SQLite, the pragmas and locking reliability.md §5 asks for."""
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=30000", "foreign_keys=ON"):
            cur.execute(f"PRAGMA {pragma}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        mode = "DEFERRED" if conn.get_execution_options().get("jobwatch_read") else "IMMEDIATE"
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


class Database:
    """The store: `write()` for one transaction that takes the writer lock, `read()` for queries."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._reader = self.engine.execution_options(jobwatch_read=True)

    def create_all(self) -> None:
        """Create missing tables."""
        SQLModel.metadata.create_all(self.engine)

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction, committed on success and rolled back on error."""
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session that never takes the writer lock."""
        with Session(self._reader, expire_on_commit=False) as session:
            yield session

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def upsert(session: Session, table: type[SQLModel], rows: list[dict[str, Any]], *, keys: list[str]) -> None:
    """Insert rows, updating every non-key column of rows that already exist (SQLite, PostgreSQL).

    One statement run with many parameter sets (executemany): SQLAlchemy compiles it once, where a
    multi-row VALUES builds a bind parameter per cell (most of a 1,000-change cycle's CPU).
    """
    if not rows:
        return
    for group in _same_keys(rows):
        stmt = _insert(session, table)
        update = {c: stmt.excluded[c] for c in group[0] if c not in keys}
        session.flush()  # what session.execute() would autoflush; the Core call below does not
        session.connection().execute(stmt.on_conflict_do_update(index_elements=keys, set_=update), group)


def insert_ignore(session: Session, table: type[SQLModel], rows: list[dict[str, Any]]) -> int:
    """Insert rows, skipping any that collide with a unique key; returns how many were new."""
    if not rows:
        return 0
    if session.get_bind().dialect.name != "sqlite":  # psycopg's executemany rowcount is not a sum
        result = session.execute(_insert(session, table).values(rows).on_conflict_do_nothing())
        return int(getattr(result, "rowcount", 0) or 0)
    new = 0
    for group in _same_keys(rows):
        session.flush()
        result = session.connection().execute(_insert(session, table).on_conflict_do_nothing(), group)
        new += int(getattr(result, "rowcount", 0) or 0)
    return new


def _same_keys(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Rows grouped by their set of columns (executemany needs the same columns in every row)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    return list(groups.values())


def _insert(session: Session, table: type[SQLModel]) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)
