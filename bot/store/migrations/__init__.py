"""Alembic migrations for the store (SQLite and PostgreSQL); run with `jobwatch db upgrade`."""
