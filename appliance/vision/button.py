"""The "look" button: a GPIO push button that, when pressed, captures a frame and says
what it reads (or sees), through the same `VisionService.look` as every other trigger.

gpiozero calls `when_pressed` from its own thread; the press is handed to the event loop
with `loop.call_soon_threadsafe` and the look runs there as a task. A press while a look
is still running is ignored (the camera answers one look at a time anyway).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from appliance.errors import ConfigError
from appliance.vision.service import Kind, VisionService

_LOGGER = logging.getLogger(__name__)

Say = Callable[[str], Awaitable[None]]


class LookButton:
    def __init__(
        self,
        pin: int,
        service: VisionService,
        say: Say,
        loop: asyncio.AbstractEventLoop,
        *,
        kind: Kind = "read",
        pull_up: bool = True,
        pin_factory: Any = None,
    ) -> None:
        from gpiozero import Button

        from appliance.pins import pin_error

        self.service = service
        self.kind: Kind = kind
        self._say = say
        self._loop = loop
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.ignored = 0
        """Presses that came while a look was still running."""
        try:
            self.button = Button(pin, pull_up=pull_up, pin_factory=pin_factory)
        except Exception as err:
            raise ConfigError(pin_error("look button (vision.button_pin)", pin, err)) from err
        self.button.when_pressed = lambda: loop.call_soon_threadsafe(self.pressed)

    def pressed(self) -> None:
        """On the event loop: start a look unless one is running."""
        if self._closed:  # a press that was on its way while the button closed
            return
        if self._task is not None and not self._task.done():
            self.ignored += 1
            _LOGGER.info("look button pressed while a look is running: ignored")
            return
        self._task = self._loop.create_task(self._look(), name="vision-button")

    async def _look(self) -> None:
        try:
            answer = await self.service.look(self.kind)
            await self._say(answer.text)
        except asyncio.CancelledError:
            raise
        except Exception:  # a failing speaker must not stop the button
            _LOGGER.exception("the look button's answer could not be given")

    async def idle(self) -> None:
        """Wait for the running look, if any, to be answered (for tests and shutdown)."""
        if self._task is not None:
            await asyncio.wait({self._task})

    async def aclose(self) -> None:
        self._closed = True
        self.button.close()
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
