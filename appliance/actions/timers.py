"""Timers that survive a restart: each one is a row in SQLite (`data_dir()/timers.sqlite3`)
written before it is confirmed, so a power cut does not lose it. When one ends, a chime
and "your ten minute timer is done" are spoken through `announce` (`pipeline.say`).

A timer that ended while the appliance was off is announced as soon as it starts again.
Sleeping is done in short steps against the wall clock, so a clock set by NTP after boot
does not make a timer late.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from appliance import events as ev
from appliance.actions.numbers import spoken_duration, timer_label
from appliance.actions.storage import open_database
from appliance.actions.tools import ToolError

_LOGGER = logging.getLogger(__name__)
MIN_SECONDS = 1.0
LATE_SECONDS = 5.0
"""A timer announced this much after its end says it ended while the appliance was off."""
_STEP = 1.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS timers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    seconds REAL NOT NULL,
    created_at REAL NOT NULL,
    ends_at REAL NOT NULL,
    state TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class TimerRecord:
    id: int
    name: str
    """Given by the user ("pasta"), or "" for one known by its length."""
    seconds: float
    created_at: float
    ends_at: float
    state: str
    """running, fired or cancelled."""

    @property
    def label(self) -> str:
        """How it is spoken of: "pasta timer", "ten minute timer"."""
        return f"{self.name or timer_label(self.seconds)} timer"


class TimerStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        # synchronous=FULL: a confirmed timer is on the card.
        self._db, self.problem = open_database(
            path, _SCHEMA, "timers", pragmas=("PRAGMA synchronous=FULL",)
        )

    def add(self, name: str, seconds: float, now: float) -> TimerRecord:
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO timers (name, seconds, created_at, ends_at, state)"
                " VALUES (?, ?, ?, ?, 'running')",
                (name, seconds, now, now + seconds),
            )
        assert cursor.lastrowid is not None
        return TimerRecord(cursor.lastrowid, name, seconds, now, now + seconds, "running")

    def running(self) -> list[TimerRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, name, seconds, created_at, ends_at, state FROM timers"
                " WHERE state = 'running' ORDER BY ends_at"
            ).fetchall()
        return [TimerRecord(*row) for row in rows]

    def finish(self, timer_id: int, state: str) -> bool:
        """Mark a running timer fired or cancelled; False if it was not running any more."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE timers SET state = ? WHERE id = ? AND state = 'running'", (state, timer_id)
            )
            self._db.execute("DELETE FROM timers WHERE state != 'running' AND ends_at < ?",
                             (time.time() - 7 * 86400,))  # fmt: skip
        return cursor.rowcount == 1

    def close(self) -> None:
        with self._lock:
            self._db.close()


Announce = Callable[[str], Awaitable[None]]


class Timers:
    def __init__(
        self,
        store: TimerStore,
        bus: ev.EventBus,
        announce: Announce,
        *,
        max_seconds: float = 24 * 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.bus = bus
        self.announce = announce
        self.max_seconds = max_seconds
        self.clock = clock
        self._tasks: dict[int, asyncio.Task[None]] = {}

    async def start(self) -> None:
        """Schedule every timer still running in the store (after a restart). Each one
        that has not ended yet is published as a `timer` event with state "restored", so
        the MQTT timer sensors show it again at once; one that ended while the appliance
        was off is announced (and published as "fired") straight away."""
        now = self.clock()
        for record in await asyncio.to_thread(self.store.running):
            if record.ends_at > now:
                self._publish(record, "restored", 0)
            self._schedule(record)

    async def close(self) -> None:
        """Stop waiting; running timers stay in the store for the next start."""
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def check(self, seconds: float) -> None:
        """Refuse a length no one means (zero, ten years), with a sentence to say."""
        if seconds < MIN_SECONDS:
            raise ToolError("A timer needs a length of at least one second.")
        if seconds > self.max_seconds:
            raise ToolError(
                f"I can only set timers of up to {spoken_duration(self.max_seconds)}; "
                f"{spoken_duration(seconds) if seconds < 10**7 else 'that'} is too long."
            )

    async def set(self, seconds: float, name: str = "", *, turn: int = 0) -> TimerRecord:
        self.check(seconds)
        name = name.strip().lower()
        if name and any(t.name == name for t in self.running()):
            raise ToolError(f"There is already a {name} timer.")
        record = await asyncio.to_thread(self.store.add, name, float(seconds), self.clock())
        self._publish(record, "set", turn)
        self._schedule(record)
        return record

    def running(self) -> list[TimerRecord]:
        return self.store.running()

    def remaining(self, record: TimerRecord) -> float:
        return max(0.0, record.ends_at - self.clock())

    def find(self, name: str = "") -> list[TimerRecord]:
        """Running timers a spoken name fits: "pasta", "ten minute", or "" for all."""
        running = self.running()
        wanted = " ".join(name.lower().replace("timer", "").split())
        if not wanted:
            return running
        return [t for t in running if wanted in (t.name, timer_label(t.seconds))]

    async def cancel(self, record: TimerRecord, *, turn: int = 0) -> bool:
        done = await asyncio.to_thread(self.store.finish, record.id, "cancelled")
        task = self._tasks.pop(record.id, None)
        if task is not None:
            task.cancel()
        if done:
            self._publish(record, "cancelled", turn)
        return done

    def _schedule(self, record: TimerRecord) -> None:
        task = asyncio.create_task(self._wait(record), name=f"timer-{record.id}")
        self._tasks[record.id] = task

    async def _wait(self, record: TimerRecord) -> None:
        # Polling the wall clock on purpose: an Event cannot notice the clock being set.
        while (left := record.ends_at - self.clock()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(min(left, _STEP))
        self._tasks.pop(record.id, None)
        if not await asyncio.to_thread(self.store.finish, record.id, "fired"):
            return  # cancelled meanwhile
        self._publish(record, "fired", 0)
        late = self.clock() - record.ends_at
        if late > LATE_SECONDS:
            text = f"Your {record.label} ended while I was off, {spoken_duration(late)} ago."
        else:
            text = f"Your {record.label} is done."
        try:
            await self.announce(text)
        except Exception:
            _LOGGER.exception("could not announce the end of timer %d", record.id)

    def _publish(self, record: TimerRecord, state: str, turn: int) -> None:
        self.bus.publish(
            ev.Timer(
                turn=turn,
                stream_time=0.0,
                timer_id=record.id,
                name=record.name,
                state=state,
                seconds=record.seconds,
                ends_at=round(record.ends_at, 3),
            )
        )
