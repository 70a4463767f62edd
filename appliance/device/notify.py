"""systemd's notify protocol in a few lines: datagrams to `$NOTIFY_SOCKET`.

`appliance run` under `Type=notify` sends READY=1 once the models are loaded, WATCHDOG=1
from its event loop (a loop that hangs stops the pings and systemd restarts the service),
and STATUS= lines that `systemctl status appliance` shows. With no `NOTIFY_SOCKET` (run
by hand) every call does nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path

from appliance import events as ev

_LOGGER = logging.getLogger(__name__)

SEND_TIMEOUT = 1.0
"""Seconds a READY/STATUS/STOPPING line may wait for room in systemd's queue."""


class SystemdNotifier:
    """Sends `KEY=value` lines to systemd's notification socket, if there is one."""

    def __init__(self, address: str | None, watchdog_seconds: float | None = None) -> None:
        self.address = address
        self.watchdog_seconds = watchdog_seconds
        """How often systemd expects WATCHDOG=1 (WatchdogSec=), or None without a watchdog."""
        self._socket: socket.socket | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> SystemdNotifier:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET") or None
        watchdog: float | None = None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        # WATCHDOG_PID names the process the watchdog is meant for (not a child we started).
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            watchdog = int(usec) / 1_000_000
        return cls(address, watchdog)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *lines: str, wait: bool = True) -> bool:
        """Send one datagram; False (logged) if systemd cannot be reached. This runs on
        the event loop: a receiver that stopped reading (its queue holds 10 datagrams)
        blocks it for at most SEND_TIMEOUT, or not at all with `wait=False`."""
        if self.address is None:
            return False
        # A leading "@" is Linux's abstract socket namespace.
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        data = "\n".join(lines).encode()
        try:
            if self._socket is None:
                kind = socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
                self._socket = socket.socket(socket.AF_UNIX, kind)
                # Connected, so that select() waits for room in systemd's queue.
                self._socket.connect(target)
            try:
                self._socket.send(data)
            except BlockingIOError:
                if not wait:
                    return False  # a ping systemd has not read yet: the next one will do
                _, writable, _ = select.select([], [self._socket], [], SEND_TIMEOUT)
                if not writable:
                    raise TimeoutError(f"no room in its queue after {SEND_TIMEOUT:g} s") from None
                self._socket.send(data)
            return True
        except OSError as err:
            _LOGGER.warning("cannot notify systemd at %s: %s", self.address, err)
            self.close()  # connect afresh next time (systemd may have re-executed)
            return False

    def ready(self, status: str) -> bool:
        return self.send("READY=1", f"STATUS={status}")

    def status(self, status: str) -> bool:
        return self.send(f"STATUS={status}")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1", wait=False)

    def stopping(self) -> bool:
        return self.send("STOPPING=1", "STATUS=stopping")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


async def _ping_watchdog(notifier: SystemdNotifier, interval: float) -> None:
    # Runs on the event loop itself: if the loop is stuck, the pings stop.
    while True:
        notifier.watchdog()
        await asyncio.sleep(interval)


async def _watch_storage(
    notifier: SystemdNotifier,
    check: Callable[[], str | None],
    on_problem: Callable[[str | None], None],
    interval: float,
) -> None:
    previous: str | None = None
    while True:
        problem = await asyncio.to_thread(check)
        if problem != previous:
            on_problem(problem)
            previous = problem
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def service_notifications(
    notifier: SystemdNotifier,
    bus: ev.EventBus,
    *,
    data_dir: Path | None = None,
    storage_interval: float = 60.0,
) -> AsyncIterator[None]:
    """While the service runs: READY=1 now (the models are loaded), WATCHDOG=1 at half the
    watchdog period, STATUS= on every state change and when the data partition fills up or
    frees again; STOPPING=1 at the end."""
    from appliance.device.storage import check_writable

    problem: str | None = None

    def on_state(event: ev.Event) -> None:
        if isinstance(event, ev.StateChanged):
            notifier.status(_status_line(event.state, problem))

    def on_problem(found: str | None) -> None:
        nonlocal problem
        problem = found
        if found:
            _LOGGER.error("%s", found)
        else:
            _LOGGER.warning("data directory %s is writable again", data_dir)
        notifier.status(_status_line("idle", found))

    unsubscribe = bus.subscribe(on_state)
    tasks: list[asyncio.Task[None]] = []
    try:
        if data_dir is not None:
            problem = await asyncio.to_thread(check_writable, data_dir)
            if problem:
                _LOGGER.error("%s", problem)
        notifier.ready(_status_line("idle", problem))
        if notifier.watchdog_seconds:
            tasks.append(
                asyncio.create_task(
                    _ping_watchdog(notifier, notifier.watchdog_seconds / 2), name="watchdog"
                )
            )
        if data_dir is not None:
            dir_ = data_dir
            tasks.append(
                asyncio.create_task(
                    _watch_storage(
                        notifier, lambda: check_writable(dir_), on_problem, storage_interval
                    ),
                    name="storage-watch",
                )
            )
        yield
    finally:
        unsubscribe()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        notifier.stopping()
        notifier.close()


def _status_line(state: str, problem: str | None) -> str:
    return f"{state}; {problem}" if problem else state
