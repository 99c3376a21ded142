"""Alembic: the migrations build exactly the models' schema, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from bot.core.config import ConfigError, Settings, parse_config
from bot.runtime import build_runtime
from bot.store.db import BASELINE, Database
from bot.store.refs import resolve_job
from bot.store.tables import schema
from tests.test_cli import run

pytestmark = pytest.mark.unmigrated  # every test here starts from a database without tables


def diff(db: Database) -> list[Any]:
    with db.engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), schema()))


@pytest.fixture
def empty(database_url: str) -> Any:
    database = Database(database_url)
    yield database
    database.dispose()


def test_upgrade_on_an_empty_database_matches_the_models(empty: Database) -> None:
    assert empty.revision() is None and not empty.at_head()
    empty.upgrade()
    assert diff(empty) == []
    assert empty.at_head()
    empty.upgrade()  # again: nothing to do
    assert diff(empty) == [] and empty.at_head()


def test_a_database_from_the_old_create_all_is_adopted(empty: Database) -> None:
    """Tables but no alembic_version (start-up used to call create_all): missing tables are
    created, the baseline is stamped, rows are kept."""
    empty.create_all()
    with empty.engine.begin() as conn:
        conn.execute(text("DROP TABLE audit"))  # as if made by a version before the audit table
        conn.execute(
            text("INSERT INTO lease (name, owner, expires_at, fence) VALUES ('poller', 'x', '2030-01-01 00:00:00', 7)")
        )
    empty.upgrade()
    assert empty.revision() is not None and empty.at_head()
    assert diff(empty) == []
    with empty.engine.connect() as conn:
        assert conn.execute(text("SELECT fence FROM lease")).scalar_one() == 7
        assert "audit" in inspect(conn).get_table_names()


def test_baseline_is_the_first_revision(empty: Database) -> None:
    empty.upgrade(BASELINE)
    assert empty.revision() == BASELINE


def test_job_refs_are_filled_from_the_snapshots_stored_before_them(empty: Database) -> None:
    """0003 fills job_ref from what the adapters stored before Job.refs existed."""
    empty.upgrade("0002")
    batch_arn = "arn:aws:batch:us-east-1:123456789012:service-job/ABC-123"
    legacy = {  # job id: (name, extra), as the adapters stored them
        "personalRecommend/V7": (
            "personalRecommend V7",
            {"service_id": "s", "type": "personalRecommend", "version": "V7"},
        ),
        batch_arn: ("train", {"type": "SAGEMAKER_TRAINING"}),
        "run-1": ("My Run", {"source_type": "DLC", "source_id": "dlc-XYZ"}),
    }
    with empty.engine.begin() as conn:
        for job_id, (name, extra) in legacy.items():
            job = {
                "queue": "q",
                "id": job_id,
                "name": name,
                "status": "succeeded",
                "native_status": "x",
                "extra": extra,
            }
            conn.execute(
                text(
                    "INSERT INTO jobsnapshot (queue, job_id, name, status, live, fingerprint, seen_at, data)"
                    " VALUES ('q', :id, :name, 'succeeded', :live, 'f', '2026-01-01 00:00:00', :data)"
                ),
                {"id": job_id, "name": name, "live": False, "data": json.dumps(job)},
            )
    empty.upgrade()
    typed = {
        "v7": "personalRecommend/V7",
        "PERSONALRECOMMEND v7": "personalRecommend/V7",
        "abc-123": batch_arn,
        batch_arn.upper(): batch_arn,
        "TRAIN": batch_arn,
        "DLC-xyz": "run-1",
        "my run": "run-1",
        "RUN-1": "run-1",
    }
    with empty.read() as session:
        for ref, job_id in typed.items():
            assert resolve_job(session, "q", ref).job.id == job_id, ref


def test_db_upgrade_command(tmp_path: Path, database_url: str) -> None:
    done = run("db", "upgrade", env={"DATABASE_URL": database_url}, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "database at revision" in done.stdout
    current = run("db", "current", env={"DATABASE_URL": database_url}, cwd=tmp_path)
    assert current.returncode == 0 and current.stdout == done.stdout


def test_start_up_without_auto_migrate_refuses_an_old_schema(tmp_path: Path, database_url: str) -> None:
    settings = Settings(database_url=database_url, jobwatch_auto_migrate=False)
    config = parse_config(tmp_path / "jobwatch.toml", {})
    with pytest.raises(ConfigError, match="jobwatch db upgrade"):
        build_runtime(settings, config=config, sources={})
    Database(database_url).upgrade()
    runtime = build_runtime(settings, config=config, sources={})
    runtime.db.dispose()
