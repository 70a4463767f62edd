"""Everything of "doing things", put together from the configuration: the devices, the
tool registry, the timers, the audit log, the fast path, the language model's tool calls,
and the GPIO button, mute switch and status light. `attach` joins it to a pipeline.

It lives outside `actions/` because it also puts the understanding together, which itself
uses the actions' tools: so each package imports the other one way only."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance import events as ev
from appliance.actions.audit import AuditLog
from appliance.actions.builtin import register_builtin_tools
from appliance.actions.devices import DeviceBackend, DeviceDirectory, MqttFactory, build_devices
from appliance.actions.lists import ItemLists, register_list_tools
from appliance.actions.timers import Timers, TimerStore
from appliance.actions.tools import CallContext, Outcome, ToolRegistry
from appliance.config import data_dir
from appliance.errors import ConfigError
from appliance.pipeline import Pipeline
from appliance.sections.devices import ActionsConfig, DeviceConfig
from appliance.understanding.handler import IntentHandler
from appliance.understanding.library import load_library
from appliance.understanding.recognizer import Recognizer
from appliance.understanding.responses import Responses
from appliance.understanding.vocabulary import bias_prompt

if TYPE_CHECKING:
    from appliance.config import AppConfig

_LOGGER = logging.getLogger(__name__)


class Actions:
    def __init__(
        self,
        devices: Sequence[DeviceConfig],
        config: ActionsConfig,
        bus: ev.EventBus,
        data_dir: Path,
        *,
        pin_factory: Any = None,
        make_mqtt: MqttFactory | None = None,
        origin: str = "voice",
        now: Callable[[], dt.datetime] = dt.datetime.now,
        clock: Callable[[], float] = time.time,
        vision: Any = None,
        language: str = "en",
    ) -> None:
        """`vision` (a VisionService, when a camera is on) adds the `look` tool for the
        language model. `language` chooses the sentence library commands are matched
        with; a library that cannot be loaded raises ModelError naming its package."""
        self.config = config
        self.bus = bus
        self.pin_factory = pin_factory
        self._pipeline: Any = None
        self._controls: Any = None
        self._status: Any = None
        self._unsubscribe: Callable[[], None] | None = None
        self.long_press_hooks: list[Callable[[], Any]] = []
        """Called when the button is held (the web engineer's "reset pairing")."""
        self._pins_problem = ""
        needs_gpio = any(d.gpio is not None for d in devices)
        if needs_gpio and pin_factory is None:
            from appliance.pins import make_pin_factory

            try:
                self.pin_factory = make_pin_factory(config.pin_factory, config.gpio_chip)
            except ConfigError as err:
                # No pins: each GPIO device answers why; the rest works.
                _LOGGER.error("%s", err)
                self._pins_problem = str(err)
        self.audit = AuditLog(
            data_dir / "audit.sqlite3",
            retention_days=config.audit_retention_days,
            max_rows=config.audit_max_rows,
        )
        try:
            self.devices: DeviceDirectory = build_devices(
                devices, make_gpio=self._gpio_backend, make_mqtt=make_mqtt
            )
        except BaseException:
            self.audit.close()
            raise
        self.registry = ToolRegistry(bus, self.audit)
        self.timers = Timers(
            TimerStore(data_dir / "timers.sqlite3"),
            bus,
            self._announce,
            max_seconds=config.max_timer_hours * 3600,
            clock=clock,
        )
        register_builtin_tools(self.registry, self.devices, self.timers, now=now, stop=self._stop)
        if vision is not None:
            from appliance.vision.tool import look_tool

            self.registry.register(look_tool(vision))
        self.lists = ItemLists(data_dir / "lists.sqlite3")
        register_list_tools(self.registry, self.lists)
        self.origin = origin
        try:
            library = load_library(language)
            self.recognizer = Recognizer(library, devices)
        except BaseException:
            self.lists.close()
            self.audit.close()
            self.devices.close()
            raise
        self.intents = IntentHandler(
            self.recognizer,
            self.registry,
            self.devices,
            timers=self.timers,
            max_timer_hours=config.max_timer_hours,
            origin=origin,
            responses=None if language.split("-")[0] == "en" else Responses(library, now=now),
        )
        self.llm_tools: Any = None
        self.handlers: list[Any] = [self.intents] if config.fast_path else []

    def _gpio_backend(self, config: DeviceConfig) -> DeviceBackend:
        from appliance.actions.gpio import GpioOutputBackend, UnavailableBackend

        if self._pins_problem:
            return UnavailableBackend(config.name, self._pins_problem)
        try:
            return GpioOutputBackend(config, self.pin_factory)
        except ConfigError as err:
            # One bad pin must not take the appliance down: the device answers why.
            _LOGGER.error("%s", err)
            return UnavailableBackend(config.name, str(err))

    # ---- joining a pipeline ------------------------------------------------------------

    def attach(self, pipeline: Any) -> None:
        """Handlers before the language model, announcements through `pipeline.say`, the
        button / mute switch / status light on the pipeline's controls."""
        self._pipeline = pipeline
        for handler in self.handlers:
            if handler not in pipeline.handlers:
                pipeline.handlers.append(handler)
        llm = getattr(getattr(pipeline, "engines", None), "llm", None)
        if self.config.llm_tools and llm is not None and self.llm_tools is None:
            from appliance.actions.llm_tools import LlmToolCaller

            async def on_llm_thread(fn: Callable[..., Any], *args: Any) -> Any:
                return await pipeline.in_stage("llm", fn, *args)

            self.llm_tools = LlmToolCaller(
                llm, self.registry, self.devices, on_llm_thread, origin=self.origin
            )
            pipeline.handlers.append(self.llm_tools)
        loop = asyncio.get_running_loop()
        light = self.config.status_light
        if light.pin is not None or light.red is not None:
            from appliance.actions.gpio import StatusLight

            self._status = StatusLight(light, self._factory())
            self._unsubscribe = self.bus.subscribe(self._status)
        if self.config.button.pin is not None or self.config.mute_switch.pin is not None:
            from appliance.actions.gpio import GpioControls

            self._controls = GpioControls(
                self.config,
                self._factory(),
                loop,
                on_press=self.push_to_talk,
                on_hold=self.long_press,
                on_mute=self.mute,
            )

    @property
    def status_light(self) -> Any:
        """The status light (appliance.actions.gpio.StatusLight), or None."""
        return self._status

    def _factory(self) -> Any:
        if self.pin_factory is None:
            from appliance.pins import make_pin_factory

            self.pin_factory = make_pin_factory(self.config.pin_factory, self.config.gpio_chip)
        return self.pin_factory

    async def start(self) -> None:
        """Re-arm the timers kept from before a restart; apply the audit retention. A data
        partition that cannot keep them is an `error` event; the actions work on."""
        for problem in (self.audit.problem, self.timers.store.problem, self.lists.problem):
            if problem:
                self.bus.publish(
                    ev.Error(turn=0, stream_time=0.0, stage="actions", code="not_saved",
                             message=problem)
                )  # fmt: skip
        with contextlib.suppress(sqlite3.Error):  # a full card: the prune can wait
            await asyncio.to_thread(self.audit.prune)
        await self.timers.start()
        # hassil builds its number words and tries on first use: not in the first turn.
        await asyncio.to_thread(self.recognizer.warm_up)

    async def close(self) -> None:
        await self.timers.close()
        if self._unsubscribe is not None:
            self._unsubscribe()
        for part in (self._controls, self._status):
            if part is not None:
                part.close()
        self.devices.close()
        self.timers.store.close()
        self.lists.close()
        self.audit.close()

    async def __aenter__(self) -> Actions:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- what the hardware controls do -------------------------------------------------

    def push_to_talk(self) -> None:
        if self._pipeline is not None and not self._pipeline.listen_now(by="button"):
            _LOGGER.info("button pressed, but the appliance is muted or not listening")

    def long_press(self) -> None:
        ok = bool(self.long_press_hooks)
        for hook in self.long_press_hooks:
            try:
                result = hook()
                if asyncio.iscoroutine(result):
                    asyncio.ensure_future(result)  # noqa: RUF006 - the hook owns its task
            except Exception:
                ok = False
                _LOGGER.exception("long-press hook failed")
        result = "pairing reset" if ok else "no long-press action is set up"
        self.registry.record(
            Outcome(ok, result, "reset_pairing"), CallContext("button", origin="button")
        )

    def mute(self, muted: bool) -> None:
        if self._pipeline is None:
            return
        self._pipeline.set_muted(muted, by="switch")
        self.registry.record(
            Outcome(True, "muted" if muted else "unmuted", "mute", {"muted": muted}),
            CallContext("button", origin="button"),
        )

    async def _announce(self, text: str) -> None:
        if self._pipeline is None:
            _LOGGER.warning("announcement with no pipeline attached: %s", text)
            return
        await self._pipeline.say(text, cue="timer")

    def _stop(self) -> bool:
        return bool(self._pipeline is not None and self._pipeline.interrupt("stop"))


@contextlib.asynccontextmanager
async def actions_for(
    config: AppConfig,
    pipeline: Any,
    *,
    origin: str = "voice",
    pin_factory: Any = None,
    make_mqtt: MqttFactory | None = None,
    vision: Any = None,
    data: Path | None = None,
) -> AsyncIterator[Actions]:
    """The actions of a configuration, attached to a running pipeline for as long as the
    block runs (`appliance.app.App`); with `vision` (the running VisionService) the
    language model may also look through the camera. `data`: where they keep their state
    (default: the appliance's data directory)."""
    actions = Actions(
        config.devices,
        config.actions,
        pipeline.bus,
        data or data_dir(),
        pin_factory=pin_factory,
        make_mqtt=make_mqtt,
        origin=origin,
        vision=vision,
        language=config.conversation.language,
    )
    async with actions:
        actions.attach(pipeline)
        if config.stt.weigh and isinstance(pipeline, Pipeline):
            actions.recognizer.scorer = pipeline.phrase_scorer()
            relistener = pipeline.relistener() if config.stt.relisten else None
            if relistener is not None:
                actions.recognizer.relisten = _with_the_house(relistener, actions, config)
        if config.stt.bias and hasattr(pipeline, "stt_prompt"):
            timer_names = [t.name for t in actions.timers.active() if t.name]
            pipeline.stt_prompt = bias_prompt(
                config.devices, timer_names=timer_names, language=config.conversation.language
            )
        yield actions


def _with_the_house(
    relistener: Callable[[str, str], str | None], actions: Actions, config: AppConfig
) -> Callable[[str], str | None]:
    """The second listen, prompted with the house's words and the timers running now."""

    def relisten(heard: str) -> str | None:
        names = [t.name for t in actions.timers.active() if t.name]
        prompt = bias_prompt(config.devices, timer_names=names,
                             language=config.conversation.language)  # fmt: skip
        return relistener(heard, prompt)

    return relisten
