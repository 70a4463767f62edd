"""Everything the web app works with, passed in (nothing global)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.config import AppConfig
from appliance.events import EventBus
from appliance.web.auth import LoginLimiter, PairingStore
from appliance.web.live import LiveTargets
from appliance.web.logbuffer import LogBuffer
from appliance.web.pairing import Announce
from appliance.web.settings import ConfigStore
from appliance.web.status import StatusTracker

UPLOAD_LIMIT = 20 * 1024 * 1024
"""Largest WAV accepted by /api/listen: 20 MiB is 10 minutes of 16 kHz 16-bit mono."""


@dataclass
class WebContext:
    config: AppConfig
    """The configuration in effect (replaced after every save)."""
    store: ConfigStore
    pairing: PairingStore
    logs: LogBuffer
    tracker: StatusTracker
    bus: EventBus = field(default_factory=EventBus)
    """The appliance's event bus (the pipeline's), followed by /api/events."""
    pipeline: Any = None
    """The running Pipeline (None: the page works, "Try it" says the engines are off)."""
    live: LiveTargets = field(default_factory=LiveTargets)
    limiter: LoginLimiter = field(default_factory=LoginLimiter)
    notice: str = ""
    """A banner for every page, e.g. the config file was broken at start."""
    upload_limit: int = UPLOAD_LIMIT
    sysroot: Path = Path("/")
    started: float = field(default_factory=time.time)
    announce: Announce | None = None
    """Speaks a new pairing code (after "Reset pairing")."""
    microphone_levels: Callable[[float], Awaitable[list[float]]] | None = None
    """Records the microphone for some seconds and returns its level per 100 ms (dBFS),
    for the "test microphone" meter; None where no microphone is attached."""
    background: set[asyncio.Task[Any]] = field(default_factory=set)
    """Tasks started by requests that outlive them (speaking a new pairing code)."""
    secure_cookies: bool = False
    """Mark cookies Secure (only when served behind HTTPS)."""
    vision: Any = None
    """The running VisionService (POST /api/vision); None when vision is off."""
    test_endpoints: bool = False
    """Add the image tests' routes (web/debug.py): never on a shipped card."""
