"""Building the vision hook from the configuration (nothing when it is off)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from appliance import events as ev
from appliance.config import AppConfig
from appliance.vision.camera import open_camera
from appliance.vision.errors import VisionModelMissing
from appliance.vision.ocr import RapidOcrReader
from appliance.vision.service import VisionService
from appliance.vision.vlm import HOW_TO_ADD, LlamaCppVlm, SceneDescriber, choose_vision_model

_LOGGER = logging.getLogger(__name__)


def data_dir() -> Path:
    """The appliance's writable state directory (same rule as the lead's
    `appliance.config.data_dir`, which replaces this once it is on main)."""
    env = os.environ.get("APPLIANCE_DATA_DIR")
    if env:
        return Path(env).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "appliance"


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
