"""The composition root (`appliance.app`): what `App` builds, in which order, and that
leaving it stops everything it started."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gpiozero.pins.mock import MockFactory, MockPWMPin

from appliance.actions.llm_tools import LlmToolCaller
from appliance.app import App, Parts
from appliance.audio.sinks import RecordingSink
from appliance.config import AppConfig
from appliance.events import EventBus
from appliance.handlers import Handled
from appliance.sections.devices import ActionsConfig, DeviceConfig, DeviceList, GpioOutput
from appliance.understanding.handler import IntentHandler
from tests.fakes import make_pipeline

HOUSE = AppConfig(
    devices=DeviceList([DeviceConfig("porch light", "light", (), "outside", GpioOutput(17))])
)


class Last:
    """A handler that takes whatever reaches it."""

    async def handle(self, text: str, turn: int) -> Handled | None:
        return Handled("Last one.", "last", "")


def engines():
    return make_pipeline([], ["A free answer."])[0].engines


def build(config: AppConfig, tmp_path: Path, **parts) -> tuple[str, list[type], list[type]]:
    """A typed request's reply, and the app's handlers while it ran and after."""
    pins = MockFactory(pin_class=MockPWMPin)

    async def main():
        parts.setdefault("pin_factory", pins)
        parts.setdefault("data_dir", tmp_path)
        app = App(config, engines(), RecordingSink(), EventBus(), parts=Parts(**parts))
        async with app:
            during = [type(h) for h in app.pipeline.handlers]
            reply = (await app.ask("turn on the porch light")).reply
        return reply, during, [type(h) for h in app.pipeline.handlers]

    try:
        return asyncio.run(main())
    finally:
        pins.reset()


def test_the_handlers_take_their_turn_in_the_documented_order(tmp_path):
    reply, during, _ = build(HOUSE, tmp_path, extra_handlers=(Last(),))
    assert during == [IntentHandler, LlmToolCaller, Last]
    assert reply == "The porch light is on."  # the understanding acted, before the rest
    assert (tmp_path / "audit.sqlite3").exists()  # the action was audited where it was told


def test_what_is_left_out_is_not_built(tmp_path):
    reply, during, _ = build(HOUSE, tmp_path, actions=False)
    assert during == []
    assert reply == "A free answer."  # nothing could act: the model's free text
    no_tools = AppConfig(devices=HOUSE.devices, actions=ActionsConfig(llm_tools=False))
    _, during, _ = build(no_tools, tmp_path)
    assert during == [IntentHandler]
