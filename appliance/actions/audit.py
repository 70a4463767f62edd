"""The audit log: every action, who asked, what was said, the tool, its arguments and
result, in an append-only SQLite table (`data_dir()/audit.sqlite3`).

Rows are never changed (a trigger refuses UPDATE); only retention deletes old ones.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.actions.storage import open_database

_LOGGER = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS actions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    origin TEXT NOT NULL,
    path TEXT NOT NULL,
    turn INTEGER NOT NULL,
    transcript TEXT NOT NULL,
    tool TEXT NOT NULL,
    arguments TEXT NOT NULL,
    ok INTEGER NOT NULL,
    result TEXT NOT NULL,
    intent TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS actions_time ON actions(time);
CREATE TRIGGER IF NOT EXISTS actions_append_only BEFORE UPDATE ON actions
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""


@dataclass(frozen=True)
class AuditEntry:
    time: float
    """Unix time of the action."""
    origin: str
    """Who asked: voice, typed, button, mqtt, api or timer."""
    path: str
    """How it was decided: fast, llm, button, mqtt or api."""
    turn: int
    transcript: str
    """What was said or typed ("" for a button or an API call)."""
    tool: str
    arguments: dict[str, Any] = field(default_factory=dict)
    ok: bool = True
    result: str = ""
    """What the appliance answered."""
    intent: str = ""
    """The recognised intent behind it, as JSON: intent, slots, score and path (library,
    fuzzy, confirm); "" for a call no sentence was matched for."""


class AuditLog:
    def __init__(
        self, path: Path, *, retention_days: float = 90.0, max_rows: int = 100_000
    ) -> None:
        self.path = path
        self.retention_days = retention_days
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self._db, self.problem = open_database(path, _SCHEMA, "the audit log")
        self._add_intent_column()
        self._appended = 0

    def _add_intent_column(self) -> None:
        """Logs written before intents were recorded get the column (empty for them)."""
        try:
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(actions)")}
            if "intent" not in columns:
                with self._lock:
                    self._db.execute(
                        "ALTER TABLE actions ADD COLUMN intent TEXT NOT NULL DEFAULT ''"
                    )
        except sqlite3.Error as err:
            self.problem = self.problem or f"cannot update the audit log's table in {self.path}"
            _LOGGER.error("audit log: cannot add the intent column (%s)", err)

    def append(self, entry: AuditEntry) -> None:
        try:
            self._insert(entry)
        except sqlite3.Error as err:  # a full card must not undo the action itself
            _LOGGER.error("audit log: cannot record %s (%s)", entry.tool, err)

    def _insert(self, entry: AuditEntry) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO actions (time, origin, path, turn, transcript, tool, arguments, ok,"
                " result, intent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (entry.time, entry.origin, entry.path, entry.turn, entry.transcript, entry.tool,
                 json.dumps(entry.arguments, ensure_ascii=False), int(entry.ok), entry.result,
                 entry.intent),
            )  # fmt: skip
            self._appended += 1
        if self._appended % 500 == 0:
            self.prune()

    def prune(self, now: float | None = None) -> int:
        """Apply retention: drop entries older than `retention_days`, then the oldest
        beyond `max_rows`. Returns how many were deleted."""
        cutoff = (now if now is not None else time.time()) - self.retention_days * 86400
        with self._lock:
            old = self._db.execute("DELETE FROM actions WHERE time < ?", (cutoff,)).rowcount
            extra = self._db.execute(
                "DELETE FROM actions WHERE id <= (SELECT id FROM actions ORDER BY id DESC"
                " LIMIT 1 OFFSET ?)",
                (self.max_rows,),
            ).rowcount
        return old + extra

    def entries(self, limit: int | None = None) -> list[AuditEntry]:
        """Newest last; `limit` keeps the newest N."""
        query = (
            "SELECT time, origin, path, turn, transcript, tool, arguments, ok, result, intent"
            " FROM actions"
        )
        with self._lock:
            if limit is None:
                rows = self._db.execute(query + " ORDER BY id").fetchall()
            else:
                rows = self._db.execute(query + " ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
                rows.reverse()
        return [
            AuditEntry(
                r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), bool(r[7]), r[8], r[9]
            )  # fmt: skip
            for r in rows
        ]

    def close(self) -> None:
        with self._lock:
            self._db.close()
