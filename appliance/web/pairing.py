"""Telling people a new pairing code: once in the journal, and aloud."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Protocol

from appliance.web.logbuffer import SECRET_LOGGER

_LOGGER = logging.getLogger(__name__)


class Announce(Protocol):
    """`Pipeline.say`: speak `text`; events carry `shown` instead when given."""

    def __call__(self, text: str, *, shown: str | None = None) -> Awaitable[None]: ...


PAIRING_ANNOUNCEMENT = "Your pairing code is"
"""How the spoken code starts."""
SHOWN = f"{PAIRING_ANNOUNCEMENT} … (said aloud only; also in the journal)"
"""What the `announcement` event says instead of the code: events are written to files,
published over MQTT and streamed to the config page."""


def spoken_code(code: str) -> str:
    """ "12345678" → "1 2 3 4, 5 6 7 8": said digit by digit, in two groups."""
    half = len(code) // 2
    return f"{' '.join(code[:half])}, {' '.join(code[half:])}"


def announce_new_code(
    code: str, announce: Announce | None, *, by: str
) -> asyncio.Task[None] | None:
    """Log a new pairing code once (to the journal only: its logger never reaches the
    logs page) and start saying it aloud (the returned task; keep a reference)."""
    logging.getLogger(SECRET_LOGGER).warning(
        "new pairing code (%s): %s — enter it on the config page", by, code
    )
    if announce is None:
        return None
    said = spoken_code(code)

    async def speak() -> None:
        try:
            await announce(f"{PAIRING_ANNOUNCEMENT} {said}. Again: {said}.", shown=SHOWN)
        except Exception as err:
            _LOGGER.warning("could not speak the pairing code: %s", err)

    return asyncio.create_task(speak(), name="say-pairing-code")


def reset_pairing(announce: Announce | None) -> asyncio.Task[None] | None:
    """ "Reset pairing" from anywhere in the appliance process, e.g. a long press of the
    GPIO button: a new code (logged once, spoken), every session and API token signed
    out. Call it on the event loop (from a gpiozero callback thread, through
    `loop.call_soon_threadsafe`); pass `pipeline.say` as `announce`."""
    from appliance.web.auth import PairingStore
    from appliance.web.paths import web_dir

    return announce_new_code(PairingStore(web_dir()).reset(), announce, by="the button")
