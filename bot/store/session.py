"""What the features know of a store transaction: its type (`Session`, as bot/store/db.py
`Database.write()` and `read()` open it, handed on to the store's functions) and `Conflict`, the
error a unique key raises when another transaction committed the same row first."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError as Conflict
from sqlmodel import Session

__all__ = ["Conflict", "Session"]
