"""The actions' SQLite files (timers, audit log), opened so that a full or read-only data
partition degrades them instead of stopping the appliance: the data then lives in memory
until a restart, and the problem is logged with its fix."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

_LOGGER = logging.getLogger(__name__)


def open_database(
    path: Path, schema: str, what: str, *, pragmas: tuple[str, ...] = ()
) -> tuple[sqlite3.Connection, str | None]:
    """(connection, None), or an in-memory stand-in and the problem in plain words."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        for pragma in ("PRAGMA journal_mode=WAL", *pragmas):
            db.execute(pragma)
        db.executescript(schema)
        return db, None
    except (sqlite3.Error, OSError) as err:
        problem = (
            f"cannot keep {what} in {path} ({err}): they last only until a restart. "
            "Free some space on the data partition (or fix its permissions)."
        )
        _LOGGER.error("%s", problem)
        db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        db.executescript(schema)
        return db, problem
