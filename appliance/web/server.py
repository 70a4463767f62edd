"""uvicorn inside the appliance's event loop: start, report the bound port, stop."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Iterator
from typing import Any

import uvicorn

_LOGGER = logging.getLogger(__name__)
FALLBACK_PORT = 8080


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The appliance's own loop handles SIGINT/SIGTERM and stops us cleanly.
        yield


def bind(host: str, port: int) -> socket.socket:
    """A listening socket; port 80 without the right to bind it falls back to 8080
    (port 0 picks a free port, for tests)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for attempt in (port, FALLBACK_PORT):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, attempt))
        except PermissionError:
            sock.close()
            if attempt == FALLBACK_PORT:
                raise
            _LOGGER.warning(
                "no permission to listen on port %d; using %d (run as root or give "
                "CAP_NET_BIND_SERVICE for port 80)", attempt, FALLBACK_PORT,
            )  # fmt: skip
            continue
        except OSError as err:
            sock.close()
            if err.errno == errno.EADDRINUSE:
                raise OSError(err.errno, f"port {attempt} on {host} is in use (web.port)") from err
            raise
        sock.listen(64)
        sock.setblocking(False)
        return sock
    raise AssertionError("unreachable")


class WebServer:
    """Serve an ASGI app on a bound socket as a task of the running loop."""

    def __init__(self, app: Any, sock: socket.socket) -> None:
        self.sock = sock
        config = uvicorn.Config(
            app, log_config=None, access_log=False, lifespan="off",
            timeout_graceful_shutdown=1, proxy_headers=False, server_header=False,
        )  # fmt: skip
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    @property
    def host(self) -> str:
        return str(self.sock.getsockname()[0])

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(sockets=[self.sock]), name="web")
        while not self._server.started:
            if self._task.done():
                await self._task  # raises the start-up error
                raise RuntimeError("the web server stopped at start")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), 5)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None
        self.sock.close()
