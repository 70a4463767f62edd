"""A circuit breaker per remote stage: after a failure the stage goes local at once, and
the remote is tried again only once its health check passes, after a wait that doubles
(30 s, 1 min, … at most 5 min). A dead server costs one timeout, not one per turn."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class RemoteStatus:
    """What a breaker reports when its remote goes down or comes back."""

    stage: str
    """llm, stt or tts."""
    remote: str
    """The server's address, as configured."""
    up: bool
    reason: str = ""
    """Why it is down ("" when up)."""
    retry_seconds: float = 0.0
    """When it is down: the wait before the next health check."""


class Breaker:
    def __init__(
        self,
        stage: str,
        remote: str,
        *,
        health: Callable[[], str | None],
        report: Callable[[RemoteStatus], None],
        first_wait: float = 30.0,
        longest_wait: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`health`: None when the remote answers its health check, else why not (it
        blocks: call it off the event loop). `report`: each change up or down."""
        self.stage = stage
        self.remote = remote
        self._health = health
        self._report = report
        self._first_wait = first_wait
        self._longest_wait = longest_wait
        self._clock = clock
        self._lock = threading.Lock()
        self.up: bool | None = None
        """None until the first use or check."""
        self.reason = ""
        self._wait = 0.0
        self._retry_at = 0.0

    def allows(self) -> bool:
        """Whether this turn may try the remote. While it is down and the wait is over,
        the health check decides (and a failing one starts a longer wait)."""
        with self._lock:
            if self.up is not False:
                return True
            if self._clock() < self._retry_at:
                return False
        problem = self._health()
        if problem is None:
            return True  # one trial: `succeeded` or `failed` follows
        self.failed(problem)
        return False

    def succeeded(self) -> None:
        with self._lock:
            changed = self.up is not True
            self.up, self.reason, self._wait = True, "", 0.0
        if changed:
            _LOGGER.info("remote %s (%s) is up", self.stage, self.remote)
            self._report(RemoteStatus(self.stage, self.remote, up=True))

    def failed(self, reason: str) -> None:
        with self._lock:
            changed = self.up is not False or reason != self.reason
            self._wait = min(self._longest_wait, self._wait * 2 or self._first_wait)
            self._retry_at = self._clock() + self._wait
            self.up, self.reason = False, reason
            wait = self._wait
        _LOGGER.warning("remote %s (%s) is down: %s; local until a check in %.0f s",
                        self.stage, self.remote, reason, wait)  # fmt: skip
        if changed:
            self._report(RemoteStatus(self.stage, self.remote, False, reason, wait))

    def seconds_until_retry(self) -> float | None:
        """While down: how long until the health check is due (0: now); None while up or
        not yet known."""
        with self._lock:
            if self.up is not False:
                return None
            return max(0.0, self._retry_at - self._clock())

    def check(self) -> None:
        """A health check now (at start, for the page), whatever the breaker's state."""
        problem = self._health()
        if problem is None:
            self.succeeded()
        else:
            self.failed(problem)
