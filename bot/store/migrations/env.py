"""Alembic environment: the connection comes from `bot.store.db.Database.upgrade` (no alembic.ini at runtime).

For developers, `alembic -c bot/store/migrations/alembic.ini revision --autogenerate -m "..."` works too:
then the URL comes from DATABASE_URL.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.types import TypeDecorator
from sqlmodel.sql.sqltypes import AutoString

from bot.store.tables import schema

target_metadata = schema()


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Plain SQLAlchemy types in revisions: UTCDateTime is sa.DateTime(), AutoString is sa.String()."""
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl_instance!r}"
    if type_ == "type" and isinstance(obj, AutoString):
        return "sa.String()" if obj.length is None else f"sa.String(length={obj.length})"
    return False


def run(connection: Any) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        render_item=render_item,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    engine = create_engine(os.environ.get("DATABASE_URL", "sqlite:///jobwatch.db"))
    with engine.begin() as conn:
        run(conn)
    engine.dispose()
