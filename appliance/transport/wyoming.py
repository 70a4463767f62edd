"""One blocking exchange with a Wyoming service (`tcp://host:port`): the events of the
`wyoming` package over a socket, with a connect timeout, a longest silence, a deadline for
the whole exchange, and bounds on what the other side may send. The STT and TTS clients
(appliance/stt/wyoming.py, appliance/tts/wyoming.py) call it from their stage threads."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import urlsplit

from wyoming.event import Event, read_event, write_event
from wyoming.info import Describe, Info

MAX_LINE = 64 * 1024
"""An event's header line; a longer one is no Wyoming server's."""
MAX_PAYLOAD = 32 * 1024 * 1024
"""An event's data or audio payload (a minute of 48 kHz stereo is 11 MB)."""


class WyomingFailure(Exception):
    """The exchange failed; the message says why, for the person reading the log."""


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    @classmethod
    def parse(cls, uri: str) -> Address:
        parts = urlsplit(uri)
        if parts.scheme != "tcp" or not parts.hostname or not parts.port:
            raise ValueError(f"a Wyoming address is tcp://HOST:PORT, not {uri!r}")
        return cls(parts.hostname, parts.port)

    def __str__(self) -> str:
        return f"tcp://{self.host}:{self.port}"


class _Bounded:
    """The socket's byte stream as `read_event` reads it, within the deadline and the
    bounds above."""

    def __init__(self, stream: BinaryIO, deadline: float, where: Address) -> None:
        self._stream = stream
        self._deadline = deadline
        self._where = where

    def _in_time(self) -> None:
        if time.monotonic() > self._deadline:
            raise WyomingFailure(f"{self._where} was still sending at the deadline")

    def readline(self) -> bytes:
        self._in_time()
        line = self._stream.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise WyomingFailure(f"{self._where} is not a Wyoming service (a line over 64 KB)")
        if line and not line.lstrip().startswith(b"{"):
            shown = line[:60].decode("utf-8", "replace").strip()
            raise WyomingFailure(f"{self._where} is not a Wyoming service: it sent {shown!r}")
        return line

    def read(self, size: int) -> bytes:
        self._in_time()
        if size > MAX_PAYLOAD:
            raise WyomingFailure(f"{self._where} announced {size:,} bytes in one event")
        return self._stream.read(size)


class Exchange:
    """A connection for one request; a context manager."""

    def __init__(self, where: Address, *, timeout: float, deadline: float) -> None:
        self.where = where
        self.timeout = timeout
        started = time.monotonic()
        self._deadline = started + deadline
        try:
            self._sock = socket.create_connection((where.host, where.port), timeout=timeout)
        except TimeoutError:
            raise WyomingFailure(
                f"{where} did not accept a connection within {timeout:g} s"
            ) from None
        except OSError as err:
            raise WyomingFailure(f"cannot reach {where} ({err.strerror or err})") from None
        self._sock.settimeout(timeout)
        self._writer = self._sock.makefile("wb")
        self._stream = self._sock.makefile("rb")
        self._reader = _Bounded(self._stream, self._deadline, where)

    def __enter__(self) -> Exchange:
        return self

    def __exit__(self, *exc: object) -> None:
        # The socket closes only when the files made from it are closed too.
        for closing in (self._writer, self._stream, self._sock):
            try:
                closing.close()
            except OSError:
                pass

    def abort(self) -> None:
        """End the exchange from another thread: a read or write waiting on it fails."""
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # not connected, or already closed

    def send(self, events: Iterable[Event]) -> None:
        try:
            for event in events:
                write_event(event, self._writer)  # type: ignore[arg-type]
        except OSError as err:
            raise WyomingFailure(f"{self.where} closed the connection ({err})") from None

    def events(self) -> Iterator[Event]:
        """What the service sends, until it closes; each within `timeout` of the last."""
        while True:
            try:
                event = read_event(self._reader)  # type: ignore[arg-type]
            except TimeoutError:
                raise WyomingFailure(f"{self.where} went silent for {self.timeout:g} s") from None
            except OSError as err:
                raise WyomingFailure(f"{self.where} closed the connection ({err})") from None
            if event is None:
                raise WyomingFailure(
                    f"{self.where} closed the connection, or sent what is not a Wyoming event"
                )
            yield event


def describe(where: Address, *, timeout: float) -> Info:
    """The service's `info`: its health check, and what it offers."""
    with Exchange(where, timeout=timeout, deadline=timeout * 2) as exchange:
        exchange.send([Describe().event()])
        for event in exchange.events():
            if Info.is_type(event.type):
                try:
                    return Info.from_event(event)
                except (KeyError, TypeError, ValueError) as err:
                    raise WyomingFailure(
                        f"{where} sent an info that cannot be read ({err})"
                    ) from None
    raise WyomingFailure(f"{where} did not describe itself")  # pragma: no cover


def missing(where: Address, kind: str, *, timeout: float) -> str | None:
    """The service's health check: None when it answers `describe` and offers `kind`
    ("asr", "tts" or "wake") installed, else why not."""
    try:
        info = describe(where, timeout=timeout)
    except WyomingFailure as err:
        return str(err)
    if not any(program.installed for program in getattr(info, kind)):
        what = {"asr": "speech-to-text", "tts": "text-to-speech", "wake": "wake word"}[kind]
        return f"{where} offers no {what} (its info lists no {kind} program)"
    return None
