"""Engine, sessions and schema migrations.

SQLite gets WAL, synchronous=FULL, busy_timeout and BEGIN IMMEDIATE writes. PostgreSQL gets the same
discipline: every write() transaction first takes one transaction-scoped advisory lock, so writers run
one at a time (as with BEGIN IMMEDIATE) while reads never wait. At READ COMMITTED each statement then
sees every earlier writer's commit, so the read-then-write code (lease renewal, fence checks, claiming
outbox rows, subscribe's find-or-insert, expiring mutes) needs no retry loop. The lease row is also read
FOR UPDATE (see bot/store/lease.py), which keeps the fence safe on its own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, event, inspect, text
from sqlmodel import Session, SQLModel, create_engine

from bot.store import tables  # noqa: F401  (registers the tables on SQLModel.metadata)

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
BASELINE = "0001"  # the schema that create_all() made before there were migrations
WRITE_LOCK = 0x6A6F6277  # pg_advisory_xact_lock key ("jobw"): one write() transaction at a time
UPGRADE_LOCK = WRITE_LOCK + 1  # one `db upgrade` at a time per database


def make_engine(url: str) -> Engine:
    """An engine for `url`; on SQLite, the pragmas and locking of docs/reliability.md §SQLite."""
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=FULL",
            "busy_timeout=30000",
            "foreign_keys=ON",
            # Each pooled connection keeps at most 512 KiB of pages (SQLite's default is 2 MiB):
            # with the scheduler's threads every pooled connection filled its cache, 10 MB of RSS
            # in all; a miss costs a read from the OS page cache (bench/run.py section (d)).
            "cache_size=-512",
        ):
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
        self.postgresql = self.engine.dialect.name == "postgresql"
        self._reader = self.engine.execution_options(jobwatch_read=True)

    def create_all(self) -> None:
        """Create missing tables straight from the models, without Alembic (a fast path; prefer upgrade())."""
        SQLModel.metadata.create_all(self.engine)

    def upgrade(self, revision: str = "head") -> None:
        """Migrate the schema to `revision` (Alembic), in one transaction that holds the writer lock.

        A database made by the old start-up `create_all()` has tables but no alembic_version: it gets
        its missing tables created (what start-up used to do) and is stamped at the baseline revision,
        then migrated like any other.
        """
        with self.engine.begin() as conn:  # SQLite: BEGIN IMMEDIATE, so concurrent start-ups queue up
            if self.postgresql:
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": UPGRADE_LOCK})
            config = alembic_config(conn)
            names = set(inspect(conn).get_table_names())
            if "alembic_version" not in names and names & set(SQLModel.metadata.tables):
                log.info("db_adopt: tables without alembic_version; creating missing ones, stamping %s", BASELINE)
                SQLModel.metadata.create_all(conn)
                command.stamp(config, BASELINE)
            command.upgrade(config, revision)

    def at_head(self) -> bool:
        """Whether the schema is at the newest revision shipped with this code."""
        from alembic.script import ScriptDirectory

        return self.revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()

    def revision(self) -> str | None:
        """The schema's current Alembic revision (None before the first upgrade)."""
        from alembic.runtime.migration import MigrationContext

        with self._reader.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction, committed on success and rolled back on error."""
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            if self.postgresql:  # the writer lock; released at commit or rollback
                session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITE_LOCK})
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session that never takes the writer lock."""
        with Session(self._reader, expire_on_commit=False) as session:
            yield session

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic configured in code: the revisions shipped in bot/store/migrations, run on `connection`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


# Rows per multi-row INSERT on PostgreSQL (SQLite runs one statement with many parameter sets), and
# ids per `IN (...)`: SQLite caps bound variables (250,000 since 3.32; 32,766 before).
ROWS_PER_STATEMENT = 500
T = TypeVar("T")


def chunks(items: Sequence[T], size: int = ROWS_PER_STATEMENT) -> Iterator[Sequence[T]]:
    """`items` in slices of at most `size`, one per statement."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


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
    inserted = 0
    if session.get_bind().dialect.name != "sqlite":
        # psycopg reports rowcount -1 here and executemany's is not a sum: count from RETURNING.
        key = list(table.__table__.primary_key.columns)  # type: ignore[attr-defined]
        for group in _same_keys(rows):
            for chunk in chunks(group):
                result = session.execute(_insert(session, table).values(chunk).on_conflict_do_nothing().returning(*key))
                inserted += len(result.all())
        return inserted
    for group in _same_keys(rows):
        session.flush()
        result = session.connection().execute(_insert(session, table).on_conflict_do_nothing(), group)
        inserted += int(getattr(result, "rowcount", 0) or 0)
    return inserted


def _same_keys(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Rows grouped by their set of columns (one statement needs the same columns in every row)."""
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
