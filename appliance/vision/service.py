"""`VisionService.look()`: the one entry point every trigger calls (a spoken request, the
GPIO button, MQTT, `POST /api/vision`, the CLI).

It captures a frame (or decodes the image it is given), checks that there is something to
see, reads the text in it (OCR) or describes it (a vision model, when one is imported and
fits), and answers in a sentence meant to be spoken. Expected problems (no camera, a busy
one, a dark or noisy frame, a damaged or enormous image, no vision model) never raise:
they come back as an answer that says what went wrong and what to do, with a `problem`
code for programs. Every look is published as a `vision` event.

Blocking work (camera, OCR, the vision model) runs on one worker thread of its own, so
looks queue behind each other and the event loop never waits.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np

from appliance import events as ev
from appliance.sections.vision import VisionConfig
from appliance.vision.camera import Camera
from appliance.vision.errors import CameraError, ImageError, VisionError
from appliance.vision.image import check_frame, decode_image, encode_jpeg
from appliance.vision.ocr import TextLine, TextReader
from appliance.vision.vlm import DESCRIBE_PROMPT, HOW_TO_ADD, SceneDescriber

_LOGGER = logging.getLogger(__name__)
T = TypeVar("T")
Kind = Literal["read", "describe"]
KINDS = ("read", "describe")

NOTHING_VISIBLE = {
    "dark": "I can't see anything: the picture is completely dark. Is the lens covered, "
    "or the light off?",
    "blank": "I can't see anything: the picture is one flat colour. Point the camera at something.",
    "noise": "I can't see anything: the camera sends only noise. Check its cable.",
}


@dataclass(frozen=True)
class VisionAnswer:
    kind: str
    """read or describe."""
    text: str
    """The answer, written to be spoken."""
    backend: str
    """rapidocr, the vision model's name, or none (nothing was looked at)."""
    seconds: float
    """From the request to the answer, capture included."""
    capture_seconds: float = 0.0
    lines: tuple[str, ...] = ()
    """The text lines OCR read, top to bottom."""
    problem: str = ""
    """"" when it looked; else camera, image, image_too_large, nothing_visible or
    no_vision_model."""
    image_saved: str = ""
    """Where the image was kept (only with vision.save_images), else ""."""

    @property
    def ok(self) -> bool:
        return not self.problem


@dataclass(frozen=True)
class _Frame:
    image: np.ndarray
    capture_seconds: float
    source: str = field(default="camera")


class VisionService:
    def __init__(
        self,
        config: VisionConfig,
        camera: Camera | None,
        reader: TextReader,
        *,
        describer: SceneDescriber | None = None,
        describer_missing: str = "",
        publish: Callable[[ev.Event], None] | None = None,
        images_dir: Path | None = None,
    ) -> None:
        """`describer_missing` is why there is no describer (said instead of a description).
        `images_dir` is where images are kept when `config.save_images` is on."""
        self.config = config
        self.camera = camera
        self.reader = reader
        self.describer = describer
        self.describer_missing = describer_missing or f"I have no vision model. {HOW_TO_ADD}"
        self._publish = publish or (lambda _event: None)
        self.images_dir = images_dir
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vision")
        self._lock = asyncio.Lock()

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        if self.camera is not None:
            self.camera.close()
        close = getattr(self.describer, "close", None)
        if close is not None:
            close()

    async def preload(self) -> None:
        """Load the OCR models now rather than at the first "read this"."""
        load = getattr(self.reader, "load", None)
        if load is not None:
            await self._run(load)

    async def look(
        self,
        kind: Kind,
        *,
        image: bytes | None = None,
        question: str = "",
        turn: int = 0,
    ) -> VisionAnswer:
        """Look once: "read" the text in view, or "describe" the scene. `image` looks at
        these bytes (a JPEG, PNG, …) instead of the camera. `question` is what the user
        asked, given to the vision model ("is anyone at the door?")."""
        if kind not in KINDS:
            raise ValueError(f"kind must be read or describe, not {kind!r}")
        async with self._lock:
            started = time.monotonic()
            answer = await self._look(kind, image, question, started)
        self._publish(
            ev.VisionLooked(
                turn=turn,
                stream_time=0.0,
                kind=kind,
                backend=answer.backend,
                seconds=answer.seconds,
                text=answer.text,
                image_saved=answer.image_saved,
            )
        )
        return answer

    async def _look(
        self, kind: str, image: bytes | None, question: str, started: float
    ) -> VisionAnswer:
        def finish(text: str, backend: str = "none", **extra: Any) -> VisionAnswer:
            return VisionAnswer(kind, text, backend, round(time.monotonic() - started, 3), **extra)

        try:
            frame = await self._frame(image)
        except ImageError as err:
            return finish(f"I couldn't use that image: {err}.", problem=err.code)
        except CameraError as err:
            return finish(f"I can't use the camera: {err}.", problem="camera")
        captured = {"capture_seconds": round(frame.capture_seconds, 3)}
        check = check_frame(frame.image)
        saved = await self._save(frame.image, kind) if self.config.save_images else ""
        captured["image_saved"] = saved
        if not check.usable:
            return finish(NOTHING_VISIBLE[check.reason], problem="nothing_visible", **captured)
        if kind == "describe" and self.describer is not None:
            prompt = _prompt(question)
            try:
                text = await self._run(self.describer.describe, frame.image, prompt)
            except Exception as err:  # a model failure must not end the session
                _LOGGER.warning("the vision model failed: %s", err)
                return finish(f"My vision model failed: {err}.", self.describer.name,
                              problem="vision_model", **captured)  # fmt: skip
            return finish(text or "I can't tell what this is.", self.describer.name, **captured)
        lines = await self._read(frame.image)
        said = " ".join(lines)
        if kind == "read":
            text = f"It says: {said}" if lines else "I can't find any text to read here."
            return finish(_sentence(text), self.reader.name, lines=tuple(lines), **captured)
        # describe, without a vision model: be honest, and read what can be read.
        if lines:
            text = f"I can't describe scenes without a vision model, but I can read: {said}"
            return finish(_sentence(text), self.reader.name, lines=tuple(lines),
                          problem="no_vision_model", **captured)  # fmt: skip
        return finish(
            f"I can't describe scenes without a vision model, and I see no text to read. "
            f"{self.describer_missing}",
            self.reader.name,
            problem="no_vision_model",
            **captured,
        )

    async def _frame(self, image: bytes | None) -> _Frame:
        begun = time.monotonic()
        if image is not None:
            config = self.config
            decoded = await self._run(
                lambda: decode_image(
                    image, max_bytes=config.max_image_bytes, max_pixels=config.max_pixels
                )
            )
            return _Frame(decoded, time.monotonic() - begun, "given")
        if self.camera is None:
            raise CameraError(
                "there is no camera configured (set vision.camera in the [vision] "
                "settings, see docs/vision.md)"
            )
        camera = self.camera
        try:
            frame = await self._run(camera.capture)
        except VisionError:
            raise
        except Exception as err:  # a driver that fails in its own way
            raise CameraError(f"{camera.name} failed: {err}") from err
        return _Frame(frame, time.monotonic() - begun)

    async def _read(self, image: np.ndarray) -> list[str]:
        lines: list[TextLine] = await self._run(self.reader.read, image)
        return [line.text for line in lines if line.confidence >= self.config.min_confidence]

    async def _save(self, image: np.ndarray, kind: str) -> str:
        if self.images_dir is None:
            return ""

        def write() -> str:
            assert self.images_dir is not None
            self.images_dir.mkdir(parents=True, exist_ok=True)
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
            path = self.images_dir / f"{stamp}-{kind}.jpg"
            tmp = path.with_suffix(".part")
            tmp.write_bytes(encode_jpeg(image))
            os.replace(tmp, path)
            return str(path)

        try:
            return await self._run(write)
        except OSError as err:  # a full or read-only disk must not cost the answer
            _LOGGER.warning("could not keep the image: %s", err)
            return ""


def _prompt(question: str) -> str:
    question = question.strip()
    if not question or "what do you see" in question.lower():
        return DESCRIBE_PROMPT
    return f"{question} Answer in one or two short sentences."


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."
