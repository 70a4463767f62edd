"""The arbiter of one box: it says hello to the others every few seconds, and when this
box hears the wake word it sends its claim and decides, as soon as it can:

- a better claim from another box (heard before or after ours): lose at once;
- every box it knows has claimed, and ours is best: win at once;
- otherwise, at the end of the window (`rooms.window_ms`): win, unless a better claim
  came, and say so, so that a box that hears it later still defers.

Every box orders the claims the same way (`claims.rank`), so exactly one answers."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from appliance.rooms.claims import Message, rank
from appliance.rooms.messengers import Messenger

_LOGGER = logging.getLogger(__name__)
HELLO_SECONDS = 5.0
RETRY_HELLO_SECONDS = 0.5
FORGET_SECONDS = 30.0
"""A box not heard from for this long is no longer waited for."""
SAME_WAKE_SECONDS = 0.5
"""Claims received this close to this box's own detection are of the same spoken wake
word (the boxes hear it within a chunk or two of each other); older ones are of an
earlier one. Judged by when they arrive here, so the boxes' clocks need not agree."""


@dataclass(frozen=True)
class Decision:
    won: bool
    winner: str
    """The answering box's name."""
    claims: int
    """How many boxes claimed this wake word (this one included)."""
    waited_s: float
    """From this box's claim to its decision: the delay the arbitration adds."""
    early: bool
    """Decided before the window's end (every known box claimed, or a better one did)."""


@dataclass
class _Peer:
    box: str
    seen: float


@dataclass
class _Pending:
    claim: Message
    decided: asyncio.Future[Decision]
    sent: float
    others: list[Message] = field(default_factory=list)


class RoomArbiter:
    def __init__(
        self,
        box: str,
        messenger: Messenger,
        *,
        window_ms: float,
        on_decision: Callable[[Message, Decision], None] | None = None,
        on_conflict: Callable[[str], None] | None = None,
    ) -> None:
        self.box = box
        self.instance = uuid.uuid4().hex[:12]
        self.messenger = messenger
        self.window = window_ms / 1000
        self._on_decision = on_decision
        self._on_conflict = on_conflict
        self.peers: dict[str, _Peer] = {}
        """Other boxes heard from recently, by instance."""
        self._recent: list[tuple[Message, float]] = []
        """Claims and wins lately received, with when (monotonic)."""
        self._pending: _Pending | None = None
        self._hello: asyncio.Task[None] | None = None
        self._conflicts: set[str] = set()
        self.problem = ""
        """Why the box cannot talk to the others ("" when it can)."""

    # -- lifetime ----------------------------------------------------------------------

    async def __aenter__(self) -> RoomArbiter:
        where = self.messenger.where
        try:
            await self.messenger.open(self.received)
        except OSError as err:  # no network yet, a taken port: answer as a lone box
            self.problem = (f"cannot join {where} ({err.strerror or err}); this box "
                            "answers every wake word it hears, as if alone")  # fmt: skip
            _LOGGER.error("rooms: %s", self.problem)
            if self._on_conflict is not None:
                self._on_conflict(self.problem)
            return self
        self._hello = asyncio.create_task(self._say_hello(), name="rooms-hello")
        _LOGGER.info("rooms: %r arbitrates with the boxes on %s", self.box, where)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._hello is not None:
            self._hello.cancel()
        self.messenger.close()

    async def _say_hello(self) -> None:
        while True:
            said = self._send(Message("hello", self.box, self.instance))
            # Not said (the broker is not connected yet): try again soon.
            await asyncio.sleep(HELLO_SECONDS if said else RETRY_HELLO_SECONDS)

    def _send(self, message: Message) -> bool:
        return not self.problem and self.messenger.send(message.encode())

    # -- what the others say -----------------------------------------------------------

    def received(self, data: bytes, sender: str) -> None:
        try:
            message = Message.decode(data)
        except ValueError as err:
            _LOGGER.debug("rooms: ignored a message from %s: %s", sender, err)
            return
        if message.instance == self.instance:
            return  # our own, looped back
        now = time.monotonic()
        new = message.instance not in self.peers
        self.peers[message.instance] = _Peer(message.box, now)
        if new and message.kind == "hello":  # so that it knows this box at once too
            self._send(Message("hello", self.box, self.instance))
        if message.box == self.box and message.instance not in self._conflicts:
            self._conflicts.add(message.instance)
            problem = (f"another box on this network is also named {self.box!r} "
                       f"({sender}); give each box its own name (rooms.name)")  # fmt: skip
            _LOGGER.error("rooms: %s", problem)
            if self._on_conflict is not None:
                self._on_conflict(problem)
        if message.kind == "hello":
            return
        self._recent = [(m, t) for m, t in self._recent if now - t <= SAME_WAKE_SECONDS]
        self._recent.append((message, now))
        pending = self._pending
        if pending is not None and message.wake == pending.claim.wake and \
                now - pending.sent <= SAME_WAKE_SECONDS:  # fmt: skip
            pending.others.append(message)
            self._settle(pending, early=True)

    # -- deciding ----------------------------------------------------------------------

    def known(self) -> int:
        """Other boxes heard from within FORGET_SECONDS."""
        now = time.monotonic()
        self.peers = {k: p for k, p in self.peers.items() if now - p.seen < FORGET_SECONDS}
        return len(self.peers)

    async def decide(self, wake_word: str, score: float, level_db: float) -> bool:
        if self.problem:
            return True  # cut off from the others: never silence
        claim = Message("claim", self.box, self.instance, wake_word, time.time(), score,
                        round(level_db, 2))  # fmt: skip
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        pending = _Pending(claim, loop.create_future(), now)
        pending.others.extend(m for m, t in self._recent
                              if m.wake == wake_word and now - t <= SAME_WAKE_SECONDS)  # fmt: skip
        self._pending = pending
        self._send(claim)
        self._settle(pending, early=True)
        if not pending.decided.done():
            loop.call_later(self.window, self._settle, pending, False)
        try:
            decision = await pending.decided
        finally:
            if self._pending is pending:
                self._pending = None
        if decision.won:
            self._send(Message("won", self.box, self.instance, wake_word, claim.at, score,
                               claim.level_db))  # fmt: skip
        if self._on_decision is not None:
            self._on_decision(claim, decision)
        return decision.won

    def _settle(self, pending: _Pending, early: bool) -> None:
        if pending.decided.done():
            return
        mine = pending.claim
        claims = [m for m in pending.others if m.kind == "claim"]
        won_elsewhere = [m for m in pending.others if m.kind == "won"]
        better = [m for m in claims if rank(m) > rank(mine)]
        alone = self.known() == 0  # no other box known: nobody to wait for
        everyone = alone or {m.instance for m in claims} >= set(self.peers)
        if won_elsewhere:  # decided already (it heard the word before us): it answers
            self._decide(pending, False, won_elsewhere[0].box, early)
        elif better:
            self._decide(pending, False, max(better, key=rank).box, early)
        elif not early or everyone:
            self._decide(pending, True, self.box, early)

    def _decide(self, pending: _Pending, won: bool, winner: str, early: bool) -> None:
        claims = 1 + len({m.instance for m in pending.others if m.kind == "claim"})
        waited = time.monotonic() - pending.sent
        pending.decided.set_result(Decision(won, winner, claims, waited, early))
