"""The composition root: the one place that assembles the appliance.

Every command (`run`, `listen`, `ask`, `demo`, `web`) and the benchmarks build it here,
from a configuration and its engines, and leave out what they do not need (`Parts`).
`App` owns the start and the shutdown of everything it built, in reverse order.

The request handlers get their turn on a request in this order, before the language
model's free text:

1. **vision** ("what do you see?", "read this"): only a camera question;
2. **the understanding**: the house's sentences (devices, timers, lists, weather, …);
3. **the language model's tool calls**, when `actions.llm_tools` lets the model act.

The pipeline core knows none of these features: they attach themselves to it here.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance import events as ev
from appliance.audio.aec import EchoCanceller
from appliance.audio.sinks import AudioSink
from appliance.audio.volume import Volume, VolumeSink
from appliance.config import AppConfig, ConfigFallback
from appliance.pipeline import Engines, Pipeline, PipelineSettings, TurnResult


@dataclass(frozen=True)
class WebOptions:
    """The config page, served beside the pipeline."""

    config_path: Path
    localhost_only: bool = False
    port: int | None = None
    """None: `web.port` of the configuration; 0: any free port."""
    mdns: bool | None = None
    """None: advertise unless serving on localhost only."""
    required: bool = True
    """False (`appliance run`): a page that cannot start is logged; the voice goes on."""
    microphone_levels: Any = None
    """The microphone's level meter for the page's "test microphone"."""


@dataclass(frozen=True)
class Parts:
    """What to build beside the pipeline; the default is a typed or spoken request's
    appliance without MQTT and the page (`listen`, `ask`)."""

    actions: bool = True
    vision: bool = True
    mqtt: bool = False
    look_button: bool = False
    """The GPIO buttons of a running service: the look button, and the action button's
    long press that resets the pairing (`appliance run`)."""
    origin: str = "voice"
    """Who asks, for the audit log: "voice" or "typed"."""
    pin_factory: Any = None
    """gpiozero's pin factory (None: the one `actions.pin_factory` names)."""
    data_dir: Path | None = None
    """Where actions keep their state (None: the appliance's data directory)."""
    web: WebOptions | None = None
    fallback: ConfigFallback | None = None
    """The configuration could not be read and this one stands in: said as an event and
    on the page."""
    satellite: bool = False
    """Serve Home Assistant's native API when `satellite.enabled` (`appliance run`)."""
    extra_handlers: tuple[Any, ...] = field(default_factory=tuple)
    """Request handlers tried after the built-in ones (tests, benchmarks)."""


class App:
    """The appliance, assembled. `async with App(...) as app:` starts it; leaving the
    block stops everything it started."""

    def __init__(
        self,
        config: AppConfig,
        engines: Engines,
        sink: AudioSink,
        bus: ev.EventBus,
        *,
        settings: PipelineSettings | None = None,
        echo: EchoCanceller | None = None,
        parts: Parts | None = None,
    ) -> None:
        from appliance.engines import pipeline_settings

        self.config = config
        self.engines = engines
        self.bus = bus
        self.parts = parts or Parts()
        self.volume = Volume()
        """The speaker's volume (Home Assistant's media player sets it)."""
        self.pipeline = Pipeline(
            engines,
            VolumeSink(sink, self.volume),
            bus,
            settings or pipeline_settings(config),
            echo=echo,
        )
        self.vision: Any = None
        self.mqtt: Any = None
        self.actions: Any = None
        self.web: Any = None
        self.satellite: Any = None
        self.remotes: Any = None
        self.rooms: Any = None
        self._stack = contextlib.AsyncExitStack()

    async def __aenter__(self) -> App:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def _start(self) -> None:
        from appliance.house import actions_for
        from appliance.mqtt.service import mqtt_service
        from appliance.remote.stages import remote_stages
        from appliance.vision.build import vision_hook

        config, parts, pipeline, stack = self.config, self.parts, self.pipeline, self._stack
        await stack.enter_async_context(pipeline)
        # A bigger box's engines in front of this board's, before anything takes the LLM.
        self.remotes = await stack.enter_async_context(
            remote_stages(config, self.engines, self.bus)
        )
        if parts.vision:  # 1. vision's spoken trigger
            self.vision = await stack.enter_async_context(
                vision_hook(
                    config, pipeline, button=parts.look_button, pin_factory=parts.pin_factory
                )  # fmt: skip
            )
        if parts.mqtt:
            self.mqtt = await stack.enter_async_context(
                mqtt_service(config.mqtt, pipeline, vision=self.vision)
            )
        if config.rooms.enabled:  # other rooms' boxes: the best-placed one answers
            from appliance.rooms.build import room_arbiter

            link = self.mqtt.link if self.mqtt is not None else None
            self.rooms = await stack.enter_async_context(room_arbiter(config, self.bus, link))
            pipeline.arbiter = self.rooms
        if parts.actions:  # 2. the understanding, 3. the model's tool calls
            make_mqtt = self.mqtt.devices.make_mqtt_backend if self.mqtt else None
            self.actions = await stack.enter_async_context(
                actions_for(
                    config,
                    pipeline,
                    origin=parts.origin,
                    make_mqtt=make_mqtt,
                    vision=self.vision,
                    pin_factory=parts.pin_factory,
                    data=parts.data_dir,
                )  # fmt: skip
            )
            if parts.look_button:
                from appliance.web.pairing import reset_pairing

                # Holding the action button resets the pairing (a new code, spoken).
                self.actions.long_press_hooks.append(lambda: reset_pairing(pipeline.say))
        pipeline.handlers.extend(parts.extra_handlers)
        if parts.fallback is not None:
            publish_fallback(self.bus, parts.fallback)
        if parts.web is not None:
            await self._start_web(parts.web)
        if parts.satellite and config.satellite.enabled:
            from appliance.satellite.build import satellite_for

            wake = self.engines.wake
            self.satellite = await stack.enter_async_context(
                satellite_for(
                    config,
                    pipeline,
                    self.bus,
                    wake_threshold=lambda: None if wake is None else wake.threshold,
                    set_wake_threshold=engine_settings(self.engines)["wake.threshold"],
                    volume=self.volume,
                    sample_rate=self.engines.tts.sample_rate,
                    data=parts.data_dir,
                    status_light=self.actions.status_light if self.actions else None,
                )
            )

    async def _start_web(self, options: WebOptions) -> None:
        from appliance.web.service import WebService

        self.web = await self._stack.enter_async_context(
            WebService(
                self.config,
                options.config_path,
                pipeline=self.pipeline,
                localhost_only=options.localhost_only,
                port=options.port,
                fallback=self.parts.fallback,
                mdns=options.mdns,
                microphone_levels=options.microphone_levels,
                required=options.required,
                vision=self.vision,
                engine_settings=engine_settings(self.engines),
            )  # fmt: skip
        )

    async def ask(self, text: str) -> TurnResult:
        """A typed request, answered as a spoken one would be."""
        return await self.pipeline.ask(text)


def engine_settings(engines: Engines | None) -> dict[str, Callable[[Any], bool]]:
    """The settings the engines declare, for the page to change live: the wake word's
    threshold (`WakeWordDetector.threshold`) and the voice's speaking rate
    (`TextToSpeech.set_length_scale`). Each returns False when it cannot apply."""

    def wake_threshold(value: Any) -> bool:
        if engines is None or engines.wake is None:  # typed requests only: nothing listens
            return False
        engines.wake.threshold = float(value)
        return True

    def speaking_rate(value: Any) -> bool:
        if engines is None:
            return False
        engines.tts.set_length_scale(float(value))
        return True

    return {"wake.threshold": wake_threshold, "tts.length_scale": speaking_rate}


def load(
    config: AppConfig,
    bus: ev.EventBus,
    *,
    progress: Callable[[str], None],
    listening: bool = True,
    defer: bool = False,
) -> Engines:
    """The configuration's engines, each model's plan published as an event and a
    `ready` event when they are loaded. `defer`: the voice finishes loading on its own
    thread (`appliance.deferred`); `listening=False`: no wake word, VAD or STT (typed
    requests)."""
    from appliance.engines import load_engines

    started = time.monotonic()
    engines = load_engines(
        config, progress=progress, need_listening=listening, on_plan=plan_publisher(bus),
        defer=defer,
    )  # fmt: skip
    if listening:
        load_seconds = round(time.monotonic() - started, 3)
        bus.publish(ev.Ready(turn=0, stream_time=0.0, load_seconds=load_seconds))
    return engines


def plan_publisher(bus: ev.EventBus) -> Callable[[Any], None]:
    """Each model's memory plan (kept, shrunk, refused) as a `model_planned` event."""

    def publish(plan: Any) -> None:
        bus.publish(
            ev.ModelPlanned(
                turn=0,
                stream_time=0.0,
                model=plan.model,
                decision=plan.decision,
                context=plan.context or 0,
                message=plan.message,
            )
        )

    return publish


def publish_fallback(bus: ev.EventBus, fallback: ConfigFallback) -> None:
    bus.publish(ev.ConfigFallback(turn=0, stream_time=0.0, path=fallback.path,
                                  used=fallback.used, message=fallback.message))  # fmt: skip
