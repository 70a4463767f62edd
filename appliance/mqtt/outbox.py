"""A bounded, persistent queue of outgoing MQTT messages (SQLite).

Every message the appliance publishes is written here first and deleted only after the
broker has acknowledged it, so messages made while the broker is down, or before a power
cut, are delivered in order when it is back (at least once). When the queue is full the
oldest messages are dropped, counted and logged: the newest state matters most.

The methods block (SQLite, fsync): call them from one worker thread (`MqttLink` does).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

_LOGGER = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    retain INTEGER NOT NULL,
    created REAL NOT NULL,
    expires REAL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class OutMessage:
    topic: str
    payload: bytes
    """The raw payload (UTF-8 text for everything the appliance publishes)."""
    qos: int = 1
    retain: bool = False
    expires: float | None = None
    """Unix time after which it is not worth sending (a light switched an hour late);
    None = never expires."""


@dataclass(frozen=True)
class StoredMessage:
    id: int
    """Row id: increases with every message, so it is also the delivery order."""
    message: OutMessage


class Outbox:
    def __init__(self, path: Path, max_messages: int) -> None:
        self.path = path
        self.max_messages = max_messages
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = self._open(path)
        except sqlite3.DatabaseError as err:
            # A corrupt file must not keep MQTT down: keep it aside for inspection.
            aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
            _LOGGER.error("MQTT outbox %s is unreadable (%s); moved to %s", path, err, aside)
            path.rename(aside)
            self._db = self._open(path)

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            db.execute("SELECT count(*) FROM outbox").fetchone()
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def put(self, messages: list[OutMessage]) -> int:
        """Append messages in order; returns how many old ones were dropped to make room."""
        if not messages:
            return 0
        now = time.time()
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT INTO outbox (topic, payload, qos, retain, created, expires) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(m.topic, m.payload, m.qos, int(m.retain), now, m.expires) for m in messages],
            )
            (count,) = self._db.execute("SELECT count(*) FROM outbox").fetchone()
            excess = max(0, count - self.max_messages)
            if excess:
                self._db.execute(
                    "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT ?)",
                    (excess,),
                )
                self._db.execute(
                    "INSERT INTO counters VALUES ('dropped', ?) "
                    "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                    (excess,),
                )
        if excess:
            _LOGGER.warning(
                "MQTT outbox full (%d messages): dropped the %d oldest", self.max_messages, excess
            )
        return excess

    def peek(self, limit: int) -> list[StoredMessage]:
        """The oldest `limit` messages, oldest first (they stay until `remove`)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, payload, qos, retain, expires FROM outbox ORDER BY id LIMIT ?",
                (limit,),
            ).fetchall()
        return [
            StoredMessage(row[0], OutMessage(row[1], bytes(row[2]), row[3], bool(row[4]), row[5]))
            for row in rows
        ]

    def remove(self, ids: list[int]) -> None:
        if not ids:
            return
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])

    def count_expired(self, count: int) -> None:
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO counters VALUES ('expired', ?) "
                "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                (count,),
            )

    def __len__(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT count(*) FROM outbox").fetchone()
        return int(count)

    def counter(self, name: str) -> int:
        """Messages ever dropped ("dropped": queue full; "expired": too late to send)."""
        with self._lock:
            row = self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        with self._lock:
            self._db.close()
