"""Building the vision hook from the configuration (nothing when it is off)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from appliance import events as ev
from appliance.config import AppConfig, data_dir
from appliance.vision.camera import open_camera
from appliance.vision.errors import VisionModelMissing
from appliance.vision.ocr import RapidOcrReader
from appliance.vision.service import VisionService
from appliance.vision.vlm import HOW_TO_ADD, LlamaCppVlm, SceneDescriber, choose_vision_model

if TYPE_CHECKING:
    from appliance.pipeline import Pipeline

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
async def vision_hook(config: AppConfig, pipeline: Pipeline) -> AsyncIterator[VisionService | None]:
    """While the pipeline runs: the vision service, its spoken trigger tried before the
    language model, and its events on the pipeline's bus. Nothing when vision is off."""
    from appliance.vision.handler import VisionHandler

    service, note = build_vision(config, publish=pipeline.bus.publish)
    _LOGGER.info("vision: %s", note)
    if service is None:
        yield None
        return
    handler = VisionHandler(service)
    pipeline.handlers.append(handler)
    try:
        if config.vision.ocr_at_start:
            await service.preload()
        yield service
    finally:
        if handler in pipeline.handlers:
            pipeline.handlers.remove(handler)
        service.close()
