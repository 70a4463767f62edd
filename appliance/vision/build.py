"""Building the vision hook from the configuration (nothing when it is off)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from appliance import events as ev
from appliance.config import AppConfig, data_dir
from appliance.errors import ConfigError
from appliance.vision.camera import open_camera
from appliance.vision.errors import VisionModelMissing
from appliance.vision.ocr import RapidOcrReader
from appliance.vision.service import VisionService
from appliance.vision.vlm import HOW_TO_ADD, LlamaCppVlm, SceneDescriber, choose_vision_model

if TYPE_CHECKING:
    from appliance.pipeline import Pipeline
    from appliance.vision.button import LookButton

_LOGGER = logging.getLogger(__name__)


def build_vision(
    config: AppConfig,
    *,
    publish: Callable[[ev.Event], None] | None = None,
    force: bool = False,
) -> tuple[VisionService | None, str]:
    """The vision service the configuration asks for, and a line saying what it uses.
    None when vision is off or no camera is there (`force` builds one anyway, for looking
    at given images). Loads nothing heavy: OCR and the vision model load on first use."""
    vision = config.vision
    camera, camera_note = open_camera(vision)
    if camera is None and not force:
        return None, camera_note
    describer, missing = pick_describer(config)
    service = VisionService(
        vision,
        camera,
        RapidOcrReader(threads=vision.ocr_threads),
        describer=describer,
        describer_missing=missing,
        publish=publish,
        images_dir=data_dir() / "vision",
    )
    scene = describer.name if describer is not None else "no vision model (OCR only)"
    return service, f"{camera_note}; text: rapidocr; scenes: {scene}"


def pick_describer(config: AppConfig) -> tuple[SceneDescriber | None, str]:
    """The imported vision model if one fits the memory budget, else why not."""
    from appliance.models.budget import this_machine
    from appliance.models.catalog import ModelStore
    from appliance.system import llm_threads

    vision = config.vision
    try:
        choice = choose_vision_model(
            ModelStore(config.models_path()), vision.vision_model, this_machine(),
            vision.vlm_context,
        )  # fmt: skip
    except VisionModelMissing as err:
        return None, str(err)
    except Exception as err:  # a broken model file must not stop the voice appliance
        _LOGGER.warning("vision model unusable: %s", err)
        return None, f"My vision model cannot be used: {err}. {HOW_TO_ADD}"
    _LOGGER.info("vision model: %s", choice.message)
    return (
        LlamaCppVlm(
            choice.model_path,
            choice.projector_path,
            threads=config.llm.threads or llm_threads(),
            context=vision.vlm_context,
            max_tokens=vision.vlm_max_tokens,
        ),
        "",
    )


@contextlib.asynccontextmanager
async def vision_hook(
    config: AppConfig, pipeline: Pipeline, *, button: bool = False, pin_factory: Any = None
) -> AsyncIterator[VisionService | None]:
    """While the pipeline runs: the vision service, its spoken trigger tried before the
    language model, and its events on the pipeline's bus. With `button` (`appliance
    run`), also the look button of `vision.button_pin`, on `pin_factory` (default: the
    one `actions.pin_factory` names). Nothing when vision is off."""
    from appliance.vision.handler import VisionHandler

    service, note = build_vision(config, publish=pipeline.bus.publish)
    _LOGGER.info("vision: %s", note)
    if service is None:
        if button and config.vision.button_pin is not None:
            _LOGGER.warning("vision.button_pin is set, but vision is off: %s", note)
        yield None
        return
    handler = VisionHandler(service)
    pipeline.handlers.append(handler)
    look_button = None
    try:
        if button and config.vision.button_pin is not None:
            look_button = _look_button(config, pipeline, service, pin_factory)
        if config.vision.ocr_at_start:
            await service.preload()
        yield service
    finally:
        if look_button is not None:
            await look_button.aclose()
        if handler in pipeline.handlers:
            pipeline.handlers.remove(handler)
        service.close()


def _look_button(
    config: AppConfig, pipeline: Pipeline, service: VisionService, pin_factory: Any
) -> LookButton | None:
    """The look button, or None (logged and published as an `error` event) when its pin
    cannot be used: the rest of the appliance works without it."""
    from appliance.pins import make_pin_factory
    from appliance.vision.button import LookButton

    vision = config.vision
    assert vision.button_pin is not None
    try:
        if pin_factory is None:
            pin_factory = make_pin_factory(config.actions.pin_factory, config.actions.gpio_chip)
        return LookButton(
            vision.button_pin,
            service,
            pipeline.say,
            asyncio.get_running_loop(),
            kind="describe" if vision.button_look == "describe" else "read",
            pull_up=vision.button_pull_up,
            pin_factory=pin_factory,
        )
    except ConfigError as err:
        from appliance.pins import no_gpio_here

        if no_gpio_here(err):  # a machine without GPIO (a PC, a VM): nothing to wire it to
            _LOGGER.warning("no GPIO on this machine: the look button (vision.button_pin "
                            "%d) is not used", vision.button_pin)  # fmt: skip
            return None
        _LOGGER.error("the look button is off: %s", err)
        message = f"the look button is off: {err}"
        pipeline.bus.publish(
            ev.Error(turn=0, stream_time=0.0, stage="actions", code="look_button", message=message)
        )
        return None
