"""Shared fixtures: the fake Slack server, a fresh store (SQLite, and PostgreSQL when
JOBWATCH_TEST_PG_URL names a database to create throwaway schemas in), the SageMaker simulator.

A test that uses the store (`database_url`, `db` or a fixture built on them) runs on both backends,
unless it is marked:
- `sqlite_only`: the store is incidental to what it checks (signatures, rendering, usage errors),
  so a second backend would add time, not coverage;
- `postgresql_with(name=value, ...)`: a matrix over providers whose store code is the same for
  every provider; PostgreSQL runs the one variant named, SQLite all of them (the other
  PostgreSQL variants are deselected).

The tests run in parallel processes (pytest-xdist, `-n` in pyproject.toml). Each worker has a
PostgreSQL database of its own (`pg_database`), its tmp_path under its own base directory, its own
environment, and its own band of ports for child processes (tests/test_cli.py `free_port`).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import ProgrammingError

from bot.core.clock import FastForward
from bot.sim.batch import BatchSim
from bot.sim.sagemaker import SageMakerSim
from bot.sim.slack import FakeSlack
from bot.store.db import Database

TOKEN = "xoxb-test"
TEAM = "T0001"
SECRET = "test-signing-secret"
AWS_ENV = {"TEST_AWS_KEY": "AKIATEST", "TEST_AWS_SECRET": "test-secret"}
PG_URL = os.environ.get("JOBWATCH_TEST_PG_URL", "")
NO_PG = (
    "PostgreSQL: JOBWATCH_TEST_PG_URL is not set "
    "(e.g. postgresql+psycopg://jobwatch@127.0.0.1:5432/jobwatch_test; .ci/run starts one)"
)
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.skipif(not PG_URL, reason=NO_PG))]


def pg_schema_url(database: str, schema: str) -> str:
    """The URL of `database` with `schema` first on the search path (tables, alembic_version go there)."""
    url = make_url(database).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database_url" in metafunc.fixturenames:
        sqlite_only = metafunc.definition.get_closest_marker("sqlite_only") is not None
        metafunc.parametrize("database_url", ["sqlite"] if sqlite_only else BACKENDS, indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        marker = item.get_closest_marker("postgresql_with")
        params = item.callspec.params if isinstance(item, pytest.Function) and hasattr(item, "callspec") else {}
        on_pg = params.get("database_url") == "postgresql"
        other = marker is not None and any(params.get(k) != v for k, v in marker.kwargs.items())
        (drop if on_pg and other else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = sorted(keep, key=lambda item: item.get_closest_marker("long") is None)  # `long` first


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """The PostgreSQL database this test process makes its schemas in: JOBWATCH_TEST_PG_URL's own
    when the tests run in one process; under pytest-xdist, one created for each worker and dropped
    at the end. The store's advisory locks (bot/store/db.py: the writer lock, the upgrade lock) are
    per database, so workers sharing one would queue up behind each other's writes and a test timing
    a writer could see another worker's."""
    worker_id = os.environ.get("PYTEST_XDIST_WORKER")  # gw0, gw1, ...: set in pytest-xdist's workers
    if not worker_id:
        yield PG_URL
        return
    base = make_url(PG_URL)
    name = f"{base.database}_{worker_id}_{uuid.uuid4().hex[:8]}"  # two runs at once on one server: two names
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        except ProgrammingError as err:
            pytest.fail(
                f"cannot create the database of worker {worker_id}; the role needs CREATEDB (.ci/postgres "
                f"grants it), or run the tests in one process with -n 0: {err}"
            )
        yield base.set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database: a SQLite file, or a fresh PostgreSQL schema dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'jobwatch.db'}"
        return
    database: str = request.getfixturevalue("pg_database")
    schema = f"test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(database)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        yield pg_schema_url(database, schema)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


@pytest.fixture
def slack(request: pytest.FixtureRequest) -> Iterator[FakeSlack]:
    """The fake Slack. A bot in this process (tests/harness.py) paces its posts on the same
    FastForward time, so 1 post/s per channel costs no waiting; a test marked `real_pacing` (one that
    needs deliveries to take real time) gets real time."""
    real = request.node.get_closest_marker("real_pacing") is not None
    monotonic = time.monotonic if real else FastForward()
    server = FakeSlack(tokens={TOKEN: TEAM, "xoxb-other": "T0002"}, monotonic=monotonic).start()
    yield server
    server.stop()


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    database.upgrade()
    yield database
    database.dispose()


@pytest.fixture
def sagemaker() -> Iterator[SageMakerSim]:
    sim = SageMakerSim().start()
    yield sim
    sim.stop()


@pytest.fixture
def batch() -> Iterator[BatchSim]:
    sim = BatchSim().start()
    yield sim
    sim.stop()
