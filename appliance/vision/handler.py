"""Spoken triggers: "read this", "what does it say", "what do you see", "is anyone at the
door" and the like go to the vision service instead of the language model."""

from __future__ import annotations

from appliance.handlers import Handled
from appliance.vision.intents import vision_kind
from appliance.vision.service import VisionService


class VisionHandler:
    """A TextHandler for the pipeline: tried before the language model."""

    name = "vision"

    def __init__(self, service: VisionService) -> None:
        self.service = service

    async def handle(self, text: str, turn: int) -> Handled | None:
        kind = vision_kind(text)
        if kind is None:
            return None
        answer = await self.service.look(
            "read" if kind == "read" else "describe", question=text, turn=turn
        )
        return Handled(reply=answer.text, handler=self.name, action=f"vision_{kind}")
