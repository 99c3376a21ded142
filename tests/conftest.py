"""Shared fixtures: the fake Slack server, a fresh store (SQLite, and PostgreSQL when
JOBWATCH_TEST_PG_URL names a database to create throwaway schemas in), the SageMaker simulator.

A test that uses the store (`database_url`, `db` or a fixture built on them) runs on both backends,
unless it is marked:
- `sqlite_only`: the store is incidental to what it checks (signatures, rendering, usage errors),
  so a second backend would add time, not coverage;
- `postgresql_with(name=value, ...)`: a matrix over providers whose store code is the same for
  every provider; PostgreSQL runs the one variant named, SQLite all of them (the other
  PostgreSQL variants are deselected);
- `unmigrated`: the test needs a database without any table (migrations, adoption); every other
  test gets one already at the newest revision, copied from a template each test process migrates
  once (`migrated_template`), since migrating from scratch costs most of a second a test. The
  migrations from an empty database are checked by tests/test_migrations.py on both backends, and
  start-up's own migration by the tests that start the bot on a database of their own.

The tests run in parallel processes (pytest-xdist, `-n` in pyproject.toml). Each worker has a
PostgreSQL database of its own (`pg_database`), its tmp_path under its own base directory, its own
environment, and its own band of ports for child processes (tests/test_cli.py `free_port`).
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.exc import DBAPIError, ProgrammingError

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
    name = f"{make_url(PG_URL).database}_{worker_id}_{uuid.uuid4().hex[:8]}"  # two runs at once on one server
    try:
        with scratch_database(name) as url:
            yield url
    except ProgrammingError as err:
        pytest.fail(
            f"cannot create the database of worker {worker_id}; the role needs CREATEDB (.ci/postgres "
            f"grants it), or run the tests in one process with -n 0: {err}"
        )


@contextmanager
def scratch_database(name: str, template: str | None = None) -> Iterator[str]:
    """Create database `name` on JOBWATCH_TEST_PG_URL's server (empty, or a copy of `template`),
    give its URL, and drop it afterwards."""
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    copy = f' TEMPLATE "{template}" STRATEGY FILE_COPY' if template else ""
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"{copy}'))
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
        _drop(admin, name)
    finally:
        admin.dispose()


def _drop(admin: Engine, name: str, tries: int = 40) -> None:
    """DROP DATABASE `name` WITH (FORCE), tried again for up to ~10 s: an autovacuum worker on it
    is a backend of another role, which FORCE may not terminate (InsufficientPrivilege; seen twice
    in a CI run of ~500 PostgreSQL tests), and it leaves within moments."""
    for attempt in range(tries):
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            return
        except DBAPIError:
            if attempt == tries - 1:
                raise
            time.sleep(0.25)


@dataclass(frozen=True)
class Template:
    """Databases at the newest revision, each test's copied from these: a SQLite file, and (with
    PostgreSQL) a database of this test process's to CREATE DATABASE ... TEMPLATE from."""

    sqlite: Path
    postgresql: str | None


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Template]:
    path = tmp_path_factory.mktemp("template") / "jobwatch.db"
    migrate(f"sqlite:///{path}")
    if not PG_URL:
        yield Template(path, None)
        return
    name = (
        f"{make_url(PG_URL).database}_template_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{uuid.uuid4().hex[:8]}"
    )
    with scratch_database(name) as url:
        migrate(url)
        yield Template(path, name)


def migrate(url: str) -> None:
    database = Database(url)
    database.upgrade()
    database.dispose()  # no connection left: PostgreSQL copies a template nobody is connected to


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of a database at the newest revision (a copy of `migrated_template`), or, for a test
    marked `unmigrated`, of an empty one: a SQLite file, or a PostgreSQL database (a fresh schema
    when empty) dropped afterwards."""
    empty = request.node.get_closest_marker("unmigrated") is not None
    if request.param == "sqlite":
        path = tmp_path / "jobwatch.db"
        if not empty:
            shutil.copyfile(request.getfixturevalue("migrated_template").sqlite, path)
        yield f"sqlite:///{path}"
        return
    if not empty:
        yield from pg_copy(request.getfixturevalue("migrated_template"))
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


def pg_copy(template: Template) -> Iterator[str]:
    """A database of its own for one test, copied from the template (tens of milliseconds); its own
    database also gives the test the store's advisory locks to itself."""
    assert template.postgresql is not None
    with scratch_database(f"{make_url(PG_URL).database}_{uuid.uuid4().hex[:16]}", template.postgresql) as url:
        yield url


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
