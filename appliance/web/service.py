"""The web server as part of the appliance: first-start pairing code, the app, the
server, the mDNS advertisement, and their clean shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance import events as ev
from appliance.config import AppConfig, ConfigFallback
from appliance.errors import ConfigError
from appliance.web.app import create_app
from appliance.web.auth import PairingStore
from appliance.web.context import WebContext
from appliance.web.debug import ENVIRONMENT as TEST_ENDPOINTS
from appliance.web.live import LiveTargets
from appliance.web.logbuffer import LogBuffer
from appliance.web.pairing import announce_new_code
from appliance.web.paths import web_dir
from appliance.web.server import WebServer, bind
from appliance.web.settings import ConfigStore
from appliance.web.status import StatusTracker

_LOGGER = logging.getLogger(__name__)


class WebService:
    """`async with WebService(...)`: serves the page while the block runs."""

    def __init__(
        self,
        config: AppConfig,
        config_path: Path,
        *,
        pipeline: Any = None,
        bus: ev.EventBus | None = None,
        localhost_only: bool = False,
        port: int | None = None,
        fallback: ConfigFallback | None = None,
        logs: LogBuffer | None = None,
        mdns: bool | None = None,
        microphone_levels: Any = None,
        required: bool = True,
        vision: Any = None,
        engine_settings: dict[str, Callable[[Any], bool]] | None = None,
    ) -> None:
        """`engine_settings`: "section.key" → apply(value) -> applied?, for the settings
        the engines declare (`app.engine_settings`), applied live from the page."""
        self.bus = bus or (pipeline.bus if pipeline is not None else ev.EventBus())
        self.tracker = StatusTracker()
        self.tracker.keep_transcripts = config.web.keep_transcripts
        self.logs = logs or LogBuffer()
        self._own_logs = logs is None
        self.localhost_only = localhost_only
        self.required = required
        """False inside `appliance run`: a port in use must not stop the voice appliance."""
        self.port = config.web.port if port is None else port
        self.mdns = (config.web.mdns and not localhost_only) if mdns is None else mdns
        say = getattr(pipeline, "say", None)
        self.ctx = WebContext(
            config=config,
            store=ConfigStore(config_path),
            pairing=PairingStore(web_dir(), code_minutes=config.web.pairing_code_minutes),
            logs=self.logs,
            tracker=self.tracker,
            bus=self.bus,
            pipeline=pipeline,
            notice=fallback.message if fallback else "",
            announce=say,
            microphone_levels=microphone_levels,
            vision=vision,
            test_endpoints=os.environ.get(TEST_ENDPOINTS) == "1",
        )
        if self.ctx.test_endpoints:
            _LOGGER.warning("%s=1: the test routes (/api/debug/…) are on", TEST_ENDPOINTS)
        self.ctx.live = LiveTargets(
            pipeline=pipeline,
            on_device_name=self._rename,
            on_keep_transcripts=self._keep_transcripts,
            extra=dict(engine_settings or {}),
        )
        self.app = create_app(self.ctx)
        self.server: WebServer | None = None
        self.advertiser: Any = None
        self._unsubscribe: Callable[[], None] | None = None
        self._advertising: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host = "127.0.0.1" if self.server.host in ("0.0.0.0", "") else self.server.host
        return f"http://{host}:{self.server.port}"

    def _keep_transcripts(self, keep: bool) -> None:
        self.tracker.keep_transcripts = keep
        if not keep:
            self.tracker.forget_transcripts()

    def _rename(self, name: str) -> None:
        if self.advertiser is not None:
            self.advertiser.rename(name)

    async def __aenter__(self) -> WebService:
        if self._own_logs:
            self.logs.attach(logging.getLogger("appliance"))
        self._unsubscribe = self.bus.subscribe(self.tracker)
        self.tracker.state = "idle" if self.ctx.pipeline is not None else "no engines"
        try:
            first = not self.ctx.pairing.status().paired
            code = self.ctx.pairing.ensure_code()
        except OSError as err:  # a full or read-only data partition: no pairing for now
            _LOGGER.error(
                "cannot save the pairing state (%s): the page cannot be paired with until "
                "the data partition has space again",
                err.strerror or err,
            )
            code = None
        host = "127.0.0.1" if self.localhost_only else self.ctx.config.web.host
        try:
            sock = bind(host, self.port)
        except OSError as err:
            message = f"cannot serve the config page on {host}:{self.port}: {err.strerror or err}"
            if self.required:
                raise ConfigError(f"{message} (set web.port, or use --web-port)") from None
            # The voice appliance keeps working without its page.
            _LOGGER.error("%s; the appliance runs without it (set web.port)", message)
            return self
        self.server = WebServer(self.app, sock)
        await self.server.start()
        _LOGGER.warning("config page on %s", self.url if self.localhost_only or host != "0.0.0.0"
                        else f"port {self.server.port} of every interface")  # fmt: skip
        if code is not None:
            by = "first start" if first else "start: the last code expired, nobody is paired"
            speaking = announce_new_code(code, self.ctx.announce, by=by)
            if speaking is not None:
                self.ctx.background.add(speaking)
                speaking.add_done_callback(self.ctx.background.discard)
        if self.mdns:
            from appliance.discovery.mdns import Advertiser

            # An empty device name follows the system's hostname, also when it changes.
            self.advertiser = Advertiser(self.ctx.config.web.device_name, self.server.port)
            self._advertising = asyncio.create_task(self._advertise(), name="mdns-start")
        return self

    async def _advertise(self) -> None:
        try:
            await self.advertiser.start()
        except Exception as err:  # no multicast here: the page still works by address
            _LOGGER.warning("mDNS advertisement failed: %s", err)

    async def __aexit__(self, *exc: object) -> None:
        for task in list(self.ctx.background):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._advertising is not None:
            # Probing for the name takes seconds: a stop does not wait for it (systemd
            # gives a stop 90 s, a person pressing Ctrl-C less).
            self._advertising.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._advertising
            self._advertising = None
        if self.advertiser is not None:
            await self.advertiser.close()
            self.advertiser = None
        if self.server is not None:
            await self.server.stop()
        if self._unsubscribe is not None:
            self._unsubscribe()
        if self._own_logs:
            self.logs.detach(logging.getLogger("appliance"))
