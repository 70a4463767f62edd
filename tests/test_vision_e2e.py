"""The vision hook in the real pipeline: "hey jarvis, read this" spoken by Piper, heard by
the real wake word and whisper.cpp, the sign read by real OCR through the file camera,
and the answer spoken by Piper."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import numpy as np
import pytest

from appliance import events as ev
from appliance.audio.sinks import RecordingSink
from appliance.audio.sources import ArraySource
from appliance.config import AppConfig
from appliance.engines import load_engines, pipeline_settings
from appliance.pipeline import Engines, Pipeline
from appliance.sections.vision import VisionConfig
from appliance.testing.images import render_sign, save_image
from appliance.testing.speech import add_noise, compose, tts_phrase
from appliance.vision.camera import FileCamera
from appliance.vision.handler import VisionHandler
from appliance.vision.ocr import RapidOcrReader
from appliance.vision.service import VisionService
from tests.fakes import Recorder, repeatable_config

pytestmark = pytest.mark.e2e


def letters(text: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", text.upper())


@pytest.fixture(scope="module")
def engines() -> Engines:
    return load_engines(repeatable_config())


def test_hey_jarvis_read_this_speaks_the_sign(engines: Engines, tmp_path: Path) -> None:
    camera_dir = tmp_path / "camera"
    save_image(render_sign("PLATFORM 4\nTRAINS TO YORK"), camera_dir / "now.png")
    config = VisionConfig(camera="file", path=str(camera_dir))
    camera = FileCamera(camera_dir, max_bytes=config.max_image_bytes, max_pixels=config.max_pixels)
    recording = add_noise(
        compose(
            # Longer requests than "read this": whisper tiny.en tends to repeat a very
            # short one ("What do you see? What do you see? …") and then decodes for long.
            0.5, tts_phrase(engines.tts, "Hey Jarvis."), 0.4,
            tts_phrase(engines.tts, "Please read this sign for me."),
            6.0,  # past the follow-up window, so the next one starts with the wake word
            tts_phrase(engines.tts, "Hey Jarvis."), 0.4,
            tts_phrase(engines.tts, "Tell me what you can see in front of you."), 2.0,
        )
    )  # fmt: skip
    bus = ev.EventBus()
    recorder = Recorder()
    bus.subscribe(recorder)
    sink = RecordingSink()
    service = VisionService(config, camera, RapidOcrReader(threads=1), publish=bus.publish)

    async def main():
        async with Pipeline(
            engines, sink, bus, pipeline_settings(AppConfig()),
            handlers=[VisionHandler(service)],
        ) as pipeline:  # fmt: skip
            return await pipeline.run(ArraySource(recording))

    try:
        results = asyncio.run(main())
    finally:
        service.close()
    transcripts = [e.text.lower() for e in recorder.of("transcript")]
    assert len(results) == 2, transcripts
    assert "read" in transcripts[0] and "sign" in transcripts[0]
    assert "what you can see" in transcripts[1]
    read, described = results
    assert letters("PLATFORM 4 TRAINS TO YORK") in letters(read.reply), read.reply
    assert read.reply.startswith("It says:")
    assert described.reply.startswith("I can't describe scenes without a vision model, but "
                                      "I can read:")  # fmt: skip
    looks = recorder.of("vision")
    assert [(e.kind, e.backend, e.turn) for e in looks] == [
        ("read", "rapidocr", read.turn), ("describe", "rapidocr", described.turn)
    ]  # fmt: skip
    assert [e.handler for e in recorder.of("handled")] == ["vision", "vision"]
    assert not recorder.of("llm_first_token")  # the language model was not asked
    assert sink.seconds > 3.0  # both answers were spoken
    audio, _rate = sink.audio()
    assert np.abs(audio).max() > 1000


def test_the_language_model_looks_when_the_spoken_trigger_does_not_catch_it(
    engines: Engines, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request the spoken trigger does not catch ("could you check what the label on this
    says"): the real language model (grammar-held) calls the look tool, the call is
    checked against the words, and the label is read by real OCR."""
    from appliance.house import actions_for
    from appliance.vision.intents import vision_kind

    monkeypatch.setenv("APPLIANCE_DATA_DIR", str(tmp_path / "data"))
    request = "Could you check what the label on this says?"
    assert vision_kind(request) is None  # the fast trigger leaves it to the model
    save_image(render_sign("SHAKE WELL"), tmp_path / "camera" / "label.png")
    vision = VisionConfig(camera="file", path=str(tmp_path / "camera"))
    config = repeatable_config(vision=vision)
    camera = FileCamera(tmp_path / "camera", max_bytes=vision.max_image_bytes,
                        max_pixels=vision.max_pixels)  # fmt: skip
    bus = ev.EventBus()
    recorder = Recorder()
    bus.subscribe(recorder)
    service = VisionService(vision, camera, RapidOcrReader(threads=1), publish=bus.publish)

    async def main():
        async with (
            Pipeline(engines, RecordingSink(), bus, pipeline_settings(config)) as pipeline,
            actions_for(config, pipeline, vision=service),
        ):
            return await pipeline.ask(request), await pipeline.ask("Tell me a joke.")

    try:
        looked, joke = asyncio.run(main())
    finally:
        service.close()
    assert looked.reply.startswith("It says:") and letters("SHAKE WELL") in letters(looked.reply)
    [handled] = recorder.of("handled")
    assert (handled.handler, handled.action, handled.turn) == ("llm_tools", "look", looked.turn)
    [action] = recorder.of("action")
    assert (action.tool, action.path, action.ok, action.arguments["kind"]) == (
        "look", "llm", True, "read",
    )  # fmt: skip
    assert [e.backend for e in recorder.of("vision")] == ["rapidocr"]
    assert joke.outcome == "replied" and "SHAKE" not in joke.reply.upper()
