"""Routes that exist only for the image's tests, when the service runs with
APPLIANCE_TEST_ENDPOINTS=1 (a drop-in the boot test writes; never on a shipped card):
hanging the event loop on purpose, to see systemd's watchdog restart the service."""

from __future__ import annotations

import logging
import time

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from appliance.web.deps import require_session_csrf

ENVIRONMENT = "APPLIANCE_TEST_ENDPOINTS"
"""Set to 1 in the service's environment to add these routes."""

_LOGGER = logging.getLogger(__name__)
router = APIRouter()


class Hang(BaseModel):
    seconds: float = Field(gt=0, le=600)


@router.post("/api/debug/hang", tags=["debug"], dependencies=[Depends(require_session_csrf)])
async def hang(body: Hang) -> dict[str, float]:
    """Block the event loop for `seconds`, as a deadlock would: no WATCHDOG=1 is sent
    meanwhile, so past WatchdogSec systemd kills and restarts the service."""
    _LOGGER.warning("blocking the event loop for %.0f s on purpose (a test)", body.seconds)
    time.sleep(body.seconds)  # noqa: ASYNC251 - the point: the loop stops
    return {"blocked": body.seconds}
