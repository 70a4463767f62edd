"""Timers that survive a restart: each one is a row in SQLite (`data_dir()/timers.sqlite3`)
written before it is confirmed, so a power cut does not lose it. When one ends, a chime
and "your ten minute timer is done" are spoken through `announce` (`pipeline.say`).

A timer can be paused (it keeps the time it had left and does not fire), resumed, and
lengthened or shortened; a paused one is still paused, with the same time left, after a
restart.

A timer that ended while the appliance was off is announced as soon as it starts again.
Sleeping is done in short steps against the wall clock, so a clock set by NTP after boot
does not make a timer late.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from rapidfuzz import fuzz

from appliance import events as ev
from appliance.actions.numbers import spoken_duration, timer_label
from appliance.actions.storage import open_database
from appliance.actions.tools import ToolError

_LOGGER = logging.getLogger(__name__)
MIN_SECONDS = 1.0
LATE_SECONDS = 5.0
CLOSE_NAME_RATIO = 80
"""How close (rapidfuzz ratio, 0–100) a misheard timer name must be to a running one's."""
"""A timer announced this much after its end says it ended while the appliance was off."""
_STEP = 1.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS timers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    seconds REAL NOT NULL,
    created_at REAL NOT NULL,
    ends_at REAL NOT NULL,
    state TEXT NOT NULL,
    paused_left REAL
);
"""
ACTIVE = ("running", "paused")
"""The states of a timer that has not ended."""
_IS_ACTIVE = "state IN ('running', 'paused')"
_COLUMNS = "id, name, seconds, created_at, ends_at, state, paused_left"


@dataclasses.dataclass(frozen=True)
class TimerRecord:
    id: int
    name: str
    """Given by the user ("pasta"), or "" for one known by its length."""
    seconds: float
    created_at: float
    ends_at: float
    state: str
    """running, paused, fired or cancelled."""
    paused_left: float | None = None
    """Seconds it had left when it was paused; None unless paused."""

    @property
    def paused(self) -> bool:
        return self.state == "paused"

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
        self._migrate()

    def _migrate(self) -> None:
        """Give a file written before timers could be paused its `paused_left` column."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(timers)")}
        if "paused_left" in columns:
            return
        try:
            self._db.execute("ALTER TABLE timers ADD COLUMN paused_left REAL")
        except sqlite3.Error as err:  # a read-only or full card: keep timers in memory
            self.problem = (
                f"cannot keep timers in {self.path} ({err}): they last only until a restart. "
                "Free some space on the data partition (or fix its permissions)."
            )
            _LOGGER.error("%s", self.problem)
            self._db.close()
            self._db = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
            self._db.executescript(_SCHEMA)

    def add(self, name: str, seconds: float, now: float) -> TimerRecord:
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO timers (name, seconds, created_at, ends_at, state)"
                " VALUES (?, ?, ?, ?, 'running')",
                (name, seconds, now, now + seconds),
            )
        assert cursor.lastrowid is not None
        return TimerRecord(cursor.lastrowid, name, seconds, now, now + seconds, "running")

    def get(self, timer_id: int) -> TimerRecord | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM timers WHERE id = ?", (timer_id,)
            ).fetchone()
        return None if row is None else TimerRecord(*row)

    def running(self) -> list[TimerRecord]:
        """The timers counting down, soonest end first (not the paused ones)."""
        return [t for t in self.active() if t.state == "running"]

    def active(self) -> list[TimerRecord]:
        """The timers not ended, running or paused, by end (a paused one's end is when it
        would have ended had it not been paused)."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM timers WHERE {_IS_ACTIVE} ORDER BY ends_at, id"
            ).fetchall()
        return [TimerRecord(*row) for row in rows]

    def finish(self, timer_id: int, state: str, *, ends_at: float | None = None) -> bool:
        """Mark a timer fired (only a running one, and only if it still ends at `ends_at`
        when that is given) or cancelled (running or paused); False if it was not."""
        query = "UPDATE timers SET state = ? WHERE id = ?"
        args: list[object] = [state, timer_id]
        query += " AND state = 'running'" if state == "fired" else f" AND {_IS_ACTIVE}"
        if ends_at is not None:
            query += " AND ends_at = ?"
            args.append(ends_at)
        with self._lock:
            cursor = self._db.execute(query, args)
            self._db.execute(f"DELETE FROM timers WHERE NOT {_IS_ACTIVE} AND ends_at < ?",
                             (time.time() - 7 * 86400,))  # fmt: skip
        return cursor.rowcount == 1

    def pause(self, timer_id: int, now: float) -> TimerRecord | None:
        """Stop a running timer with the time it has left; None if it was not running."""
        return self._change(
            timer_id,
            "UPDATE timers SET state = 'paused', paused_left = MAX(0.0, ends_at - ?)"
            " WHERE id = ? AND state = 'running'",
            now,
        )

    def resume(self, timer_id: int, now: float) -> TimerRecord | None:
        """Count a paused timer down again from now; None if it was not paused."""
        return self._change(
            timer_id,
            "UPDATE timers SET state = 'running', ends_at = ? + paused_left,"
            " paused_left = NULL WHERE id = ? AND state = 'paused'",
            now,
        )

    def _change(self, timer_id: int, update: str, now: float) -> TimerRecord | None:
        with self._lock:
            if self._db.execute(update, (now, timer_id)).rowcount != 1:
                return None
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM timers WHERE id = ?", (timer_id,)
            ).fetchone()
        return TimerRecord(*row)

    def adjust(self, record: TimerRecord, delta: float) -> TimerRecord | None:
        """Move a timer's end (and its length) by `delta` seconds; None if it changed
        state or end since `record` was read (it fired, was cancelled, paused, changed)."""
        changed = dataclasses.replace(
            record,
            seconds=record.seconds + delta,
            ends_at=record.ends_at + delta,
            paused_left=None if record.paused_left is None else record.paused_left + delta,
        )
        with self._lock:
            cursor = self._db.execute(
                "UPDATE timers SET seconds = ?, ends_at = ?, paused_left = ?"
                " WHERE id = ? AND state = ? AND ends_at = ?",
                (changed.seconds, changed.ends_at, changed.paused_left, record.id,
                 record.state, record.ends_at),
            )  # fmt: skip
        return changed if cursor.rowcount == 1 else None

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
        was off is announced (and published as "fired") straight away. A paused one stays
        paused, with the time it had left, and is published as "paused"."""
        now = self.clock()
        for record in await asyncio.to_thread(self.store.active):
            if record.paused:
                self._publish(record, "paused", 0)
                continue
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
        if math.isnan(seconds) or seconds < MIN_SECONDS:
            raise ToolError("A timer needs a length of at least one second.")
        if seconds > self.max_seconds:
            raise ToolError(
                f"I can only set timers of up to {spoken_duration(self.max_seconds)}; "
                f"{spoken_duration(seconds) if seconds < 10**7 else 'that'} is too long."
            )

    async def set(self, seconds: float, name: str = "", *, turn: int = 0) -> TimerRecord:
        self.check(seconds)
        name = name.strip().lower()
        if name and any(t.name == name for t in self.active()):
            raise ToolError(f"There is already a {name} timer.")
        record = await asyncio.to_thread(self.store.add, name, float(seconds), self.clock())
        self._publish(record, "set", turn)
        self._schedule(record)
        return record

    def running(self) -> list[TimerRecord]:
        """The timers counting down (not the paused ones)."""
        return self.store.running()

    def active(self) -> list[TimerRecord]:
        """The timers not ended, running or paused, least time left first."""
        return sorted(self.store.active(), key=self.remaining)

    def remaining(self, record: TimerRecord) -> float:
        """Seconds left: counting down, or frozen while the timer is paused."""
        if record.paused and record.paused_left is not None:
            return record.paused_left
        return max(0.0, record.ends_at - self.clock())

    def find(self, name: str = "") -> list[TimerRecord]:
        """Timers not ended (running or paused) a spoken name fits: "pasta", "ten
        minute", or "" for all."""
        active = self.active()
        wanted = " ".join(name.lower().replace("timer", "").split())
        if not wanted:
            return active
        found = [t for t in active if wanted in (t.name, timer_label(t.seconds))]
        if found:
            return found
        # A misheard name ("past" for the pasta timer): the one name close enough.
        names = {t.name for t in active if t.name}
        close = [n for n in names if fuzz.ratio(wanted, n) >= CLOSE_NAME_RATIO]
        return [t for t in active if t.name == close[0]] if len(close) == 1 else []

    async def cancel(self, record: TimerRecord, *, turn: int = 0) -> bool:
        """Cancel a running or paused timer; False if it had ended already."""
        done = await asyncio.to_thread(self.store.finish, record.id, "cancelled")
        task = self._tasks.pop(record.id, None)
        if task is not None:
            task.cancel()
        if done:
            self._publish(record, "cancelled", turn)
        return done

    async def pause(self, record: TimerRecord, *, turn: int = 0) -> TimerRecord:
        """Stop a running timer, keeping the time it has left; the paused record. Raises
        ToolError when it is already paused or has ended."""
        paused = await asyncio.to_thread(self.store.pause, record.id, self.clock())
        if paused is None:
            raise ToolError(self._why_not(record, "paused"))
        self._unschedule(record.id)  # after the store: a firing in flight now finds it paused
        self._publish(paused, "paused", turn)
        return paused

    async def resume(self, record: TimerRecord, *, turn: int = 0) -> TimerRecord:
        """Count a paused timer down again from the time it had left; the running record.
        Raises ToolError when it is not paused."""
        resumed = await asyncio.to_thread(self.store.resume, record.id, self.clock())
        if resumed is None:
            raise ToolError(self._why_not(record, "running"))
        self._publish(resumed, "resumed", turn)
        self._schedule(resumed)
        return resumed

    async def adjust(
        self, record: TimerRecord, delta_seconds: float, *, turn: int = 0
    ) -> TimerRecord:
        """Lengthen (positive) or shorten (negative) a running or paused timer; the changed
        record, whose `seconds` is the new total length. Refuses (ToolError) a change that
        would leave less than a second, or a total longer than `max_seconds`."""
        current = await asyncio.to_thread(self.store.get, record.id)
        if current is None or current.state not in ACTIVE:
            raise ToolError(f"The {record.label} is no longer set.")
        if delta_seconds == 0 or math.isnan(delta_seconds):
            raise ToolError(f"By how much should I change the {current.label}?")
        left = self.remaining(current)
        if delta_seconds < 0 and left + delta_seconds < MIN_SECONDS:
            only = "only " if left >= MIN_SECONDS else ""
            raise ToolError(f"The {current.label} has {only}{spoken_duration(left)} left.")
        if delta_seconds > 0:
            self.check(current.seconds + delta_seconds)
        changed = await asyncio.to_thread(self.store.adjust, current, float(delta_seconds))
        if changed is None:
            raise ToolError(f"The {current.label} changed meanwhile; please ask again.")
        if not changed.paused:
            self._unschedule(changed.id)
            self._schedule(changed)
        self._publish(changed, "changed", turn)
        return changed

    def _why_not(self, record: TimerRecord, state: str) -> str:
        """Why a timer cannot be paused or resumed: it is already `state`, or ended."""
        now = self.store.get(record.id)
        if now is not None and now.state == state:
            return f"The {record.label} is already {state}."
        return f"The {record.label} is no longer set."

    def _unschedule(self, timer_id: int) -> None:
        task = self._tasks.pop(timer_id, None)
        if task is not None:
            task.cancel()

    def _schedule(self, record: TimerRecord) -> None:
        task = asyncio.create_task(self._wait(record), name=f"timer-{record.id}")
        self._tasks[record.id] = task

    async def _wait(self, record: TimerRecord) -> None:
        # Polling the wall clock on purpose: an Event cannot notice the clock being set.
        while (left := record.ends_at - self.clock()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(min(left, _STEP))
        self._tasks.pop(record.id, None)
        if not await asyncio.to_thread(
            self.store.finish, record.id, "fired", ends_at=record.ends_at
        ):
            return  # cancelled, paused or changed meanwhile
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
