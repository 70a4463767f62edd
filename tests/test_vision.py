"""The camera vision hook: frame checks, image decoding, camera sources, the service with
fakes, real OCR (rapidocr) on signs the tests draw, the spoken triggers, the CLI, and the
vision-model path up to where a real model is needed."""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path

import numpy as np
import pytest

from appliance import events as ev
from appliance.config import AppConfig, load_config
from appliance.errors import ConfigError
from appliance.sections.vision import VisionConfig
from appliance.testing.images import dark_frame, noise_frame, render_sign, save_image
from appliance.vision.camera import FileCamera, V4l2Camera, open_camera
from appliance.vision.errors import CameraError, ImageError, VisionModelMissing
from appliance.vision.fake import FakeCamera, FakeDescriber, FakeReader
from appliance.vision.image import check_frame, decode_image
from appliance.vision.intents import vision_kind
from appliance.vision.ocr import RapidOcrReader
from appliance.vision.service import VisionService
from tests.fakes import Recorder, appliance

SIGN = "PLATFORM 4\nTRAINS TO YORK"


def letters(text: str) -> str:
    """Upper-case letters and digits only: the recogniser may drop a narrow space."""
    return re.sub(r"[^A-Z0-9]", "", text.upper())


def png_bytes(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def service(camera=None, reader=None, describer=None, **config) -> tuple[VisionService, Recorder]:
    recorder = Recorder()
    bus = ev.EventBus()
    bus.subscribe(recorder)
    images_dir = config.pop("images_dir", None)
    vision = VisionConfig(**config)
    return (
        VisionService(vision, camera, reader or FakeReader(), describer=describer,
                      publish=bus.publish, images_dir=images_dir),
        recorder,
    )  # fmt: skip


def look(svc: VisionService, kind: str = "read", **kwargs):
    return asyncio.run(svc.look(kind, **kwargs))


@pytest.fixture(scope="module")
def ocr() -> RapidOcrReader:
    reader = RapidOcrReader()
    reader.load()
    return reader


# ---- configuration ---------------------------------------------------------------------


def test_vision_is_off_by_default_and_parsed_from_toml(tmp_path: Path) -> None:
    assert AppConfig().vision.camera == "none" and not AppConfig().vision.enabled
    assert not AppConfig().vision.save_images
    path = tmp_path / "c.toml"
    path.write_text('[vision]\ncamera = "file"\npath = "/tmp/x.png"\nsave_images = true\n')
    vision = load_config(path).vision
    assert vision.camera == "file" and vision.save_images and vision.enabled


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('camera = "webcam"', "vision.camera must be one of"),
        ('camera = "file"', "needs vision.path"),
        ("max_image_bytes = 10", "max_image_bytes"),
        ("keep_open = 1", "vision.keep_open must be bool"),
        ("colour = true", "unknown setting"),
    ],
)
def test_bad_vision_settings_are_refused(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f"[vision]\n{toml}\n")
    with pytest.raises(ConfigError, match=message):
        load_config(path)


# ---- frames and images -----------------------------------------------------------------


def test_frame_check_tells_a_picture_from_dark_blank_and_noise() -> None:
    assert check_frame(render_sign("HELLO")).usable
    gradient = np.tile(np.linspace(0, 255, 640, dtype=np.uint8), (480, 1))
    assert check_frame(np.stack([gradient] * 3, axis=2)).usable
    assert check_frame(dark_frame()).reason == "dark"
    assert check_frame(np.full((480, 640, 3), 230, np.uint8)).reason == "blank"
    assert check_frame(noise_frame()).reason == "noise"
    assert check_frame(np.zeros((4, 4, 3), np.uint8)).reason == "blank"


def test_decode_image_refuses_what_it_cannot_use() -> None:
    sign = render_sign("HI", size=(320, 200), font_size=40)
    data = png_bytes(sign)
    assert decode_image(data, max_bytes=10**7, max_pixels=10**7).shape == (200, 320, 3)
    with pytest.raises(ImageError, match="limit is") as too_big:
        decode_image(data, max_bytes=len(data) - 1, max_pixels=10**7)
    assert too_big.value.code == "image_too_large"
    with pytest.raises(ImageError, match="megapixels") as too_many:
        decode_image(data, max_bytes=10**7, max_pixels=10_000)
    assert too_many.value.code == "image_too_large"
    with pytest.raises(ImageError, match="not an image"):
        decode_image(b"PK\x03\x04 a zip file really", max_bytes=10**7, max_pixels=10**7)
    with pytest.raises(ImageError, match="empty"):
        decode_image(b"", max_bytes=10**7, max_pixels=10**7)
    with pytest.raises(ImageError, match="cannot be decoded"):
        decode_image(data[: len(data) // 2], max_bytes=10**7, max_pixels=10**7)


def test_a_small_file_that_decodes_to_a_huge_image_is_refused_before_decoding() -> None:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (8000, 8000)).save(buffer, format="PNG")  # 64 Mpx in ~70 kB
    assert len(buffer.getvalue()) < 200_000
    with pytest.raises(ImageError, match="8000×8000"):
        decode_image(buffer.getvalue(), max_bytes=10**7, max_pixels=24_000_000)


# ---- camera sources --------------------------------------------------------------------


def test_file_camera_reads_a_file_or_the_newest_image_of_a_folder(tmp_path: Path) -> None:
    import os

    first = save_image(render_sign("ONE"), tmp_path / "a.png")
    second = save_image(render_sign("TWO"), tmp_path / "b.jpg")
    os.utime(first, ns=(1, 1))
    (tmp_path / "notes.txt").write_text("not an image")
    camera = FileCamera(tmp_path, max_bytes=10**7, max_pixels=10**8)
    assert camera.current_file() == second
    assert camera.capture().shape == (720, 1280, 3)
    assert FileCamera(first, max_bytes=10**7, max_pixels=10**8).capture().shape == (720, 1280, 3)


def test_file_camera_problems_are_camera_errors(tmp_path: Path) -> None:
    with pytest.raises(CameraError, match="does not exist"):
        FileCamera(tmp_path / "gone.png", max_bytes=10**7, max_pixels=10**8).capture()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CameraError, match="has no image"):
        FileCamera(empty, max_bytes=10**7, max_pixels=10**8).capture()
    garbage = tmp_path / "frame.jpg"
    garbage.write_bytes(np.random.default_rng(1).bytes(5000))
    with pytest.raises(CameraError, match="unusable.*not an image"):
        FileCamera(garbage, max_bytes=10**7, max_pixels=10**8).capture()


def test_a_v4l2_camera_that_is_not_there_is_a_clear_error() -> None:
    camera = V4l2Camera("/dev/video97")
    with pytest.raises(CameraError, match="cannot open the camera /dev/video97.*busy"):
        camera.capture()
    camera.close()
    camera.close()  # idempotent


def test_open_camera_follows_the_configuration(tmp_path: Path) -> None:
    assert open_camera(VisionConfig())[0] is None
    camera, note = open_camera(VisionConfig(camera="file", path=str(tmp_path)))
    assert isinstance(camera, FileCamera) and str(tmp_path) in note
    assert isinstance(open_camera(VisionConfig(camera="v4l2", device="0"))[0], V4l2Camera)


def test_auto_without_any_camera_turns_vision_off() -> None:
    from appliance.vision.camera import picamera2_available, v4l2_devices

    if v4l2_devices() or picamera2_available():
        pytest.skip("this machine has a camera")
    camera, note = open_camera(VisionConfig(camera="auto"))
    assert camera is None and "no camera found" in note


# ---- the service, with fakes -----------------------------------------------------------


def test_read_speaks_the_text_and_publishes_a_vision_event() -> None:
    svc, recorder = service(FakeCamera([render_sign("X")]), FakeReader(["EXIT", "Stairs"]))
    answer = look(svc, "read", turn=3)
    assert answer.ok and answer.text == "It says: EXIT Stairs."
    assert answer.lines == ("EXIT", "Stairs") and answer.backend == "fake-ocr"
    (event,) = recorder.of("vision")
    assert (event.turn, event.kind, event.backend, event.text) == (3, "read", "fake-ocr",
                                                                    answer.text)  # fmt: skip
    assert event.image_saved == "" and event.seconds >= 0
    assert ev.to_dict(event)["type"] == "vision"


def test_low_confidence_lines_are_not_spoken() -> None:
    svc, _ = service(FakeCamera([render_sign("X")]), FakeReader(["smudge"], confidence=0.2))
    assert look(svc).text == "I can't find any text to read here."


def test_describe_without_a_vision_model_is_honest() -> None:
    svc, _ = service(FakeCamera([render_sign("X")]), FakeReader(["NO PARKING"]))
    answer = look(svc, "describe")
    assert answer.text == (
        "I can't describe scenes without a vision model, but I can read: NO PARKING."
    )
    assert answer.problem == "no_vision_model"
    svc, _ = service(FakeCamera([render_sign("X")]), FakeReader([]))
    answer = look(svc, "describe")
    assert "without a vision model" in answer.text and "models import" in answer.text


def test_describe_with_a_vision_model_passes_the_question() -> None:
    describer = FakeDescriber("A parcel lies on the doormat.")
    svc, recorder = service(FakeCamera([render_sign("X")]), FakeReader(), describer)
    answer = look(svc, "describe", question="Is anyone at the door?")
    assert answer.ok and answer.text == "A parcel lies on the doormat."
    assert describer.prompts[0].startswith("Is anyone at the door?")
    assert recorder.of("vision")[0].backend == "fake-vlm"


@pytest.mark.parametrize(
    ("frame", "expected"),
    [(dark_frame(), "completely dark"), (noise_frame(), "only noise"),
     (np.full((480, 640, 3), 128, np.uint8), "one flat colour")],
)  # fmt: skip
def test_nothing_to_see_is_said_and_not_read(frame: np.ndarray, expected: str) -> None:
    reader = FakeReader(["should not be read"])
    svc, recorder = service(FakeCamera([frame]), reader)
    answer = look(svc)
    assert answer.text.startswith("I can't see anything") and expected in answer.text
    assert answer.problem == "nothing_visible" and reader.images == []
    assert recorder.of("vision")[0].text == answer.text


def test_a_busy_or_vanishing_camera_is_answered_and_the_next_look_works() -> None:
    camera = FakeCamera(
        [CameraError("cannot open the camera /dev/video0: busy"), OSError("USB gone"),
         render_sign("X")]
    )  # fmt: skip
    svc, recorder = service(camera, FakeReader(["BACK AGAIN"]))
    first, second, third = look(svc), look(svc), look(svc)
    assert first.problem == "camera" and "busy" in first.text
    assert first.text.startswith("I can't use the camera")
    assert second.problem == "camera" and "USB gone" in second.text
    assert third.ok and third.text == "It says: BACK AGAIN."
    assert len(recorder.of("vision")) == 3


def test_no_camera_but_a_given_image_works() -> None:
    svc, _ = service(None, FakeReader(["MENU"]))
    assert look(svc).problem == "camera"
    assert look(svc, image=png_bytes(render_sign("MENU"))).text == "It says: MENU."


def test_given_images_are_bounded_and_checked() -> None:
    svc, recorder = service(None, FakeReader(["x"]), max_image_bytes=50_000)
    big = look(svc, image=np.random.default_rng(0).bytes(60_000))
    assert big.problem == "image_too_large" and "limit is 0.1 MB" in big.text
    garbage = look(svc, image=b"\x00\x01garbage" * 10)
    assert garbage.problem == "image" and "not an image" in garbage.text
    assert [e.backend for e in recorder.of("vision")] == ["none", "none"]


def test_images_are_kept_only_when_the_privacy_setting_allows(tmp_path: Path) -> None:
    frame = render_sign("X")
    svc, _ = service(FakeCamera([frame]), FakeReader(["A"]), images_dir=tmp_path / "v")
    assert look(svc).image_saved == "" and not (tmp_path / "v").exists()
    svc, recorder = service(
        FakeCamera([frame]), FakeReader(["A"]), images_dir=tmp_path / "v", save_images=True
    )
    answer = look(svc)
    saved = Path(answer.image_saved)
    assert saved.parent == tmp_path / "v" and saved.suffix == ".jpg"
    assert recorder.of("vision")[0].image_saved == str(saved)
    assert decode_image(saved.read_bytes(), max_bytes=10**7, max_pixels=10**8).shape == frame.shape
    assert [p.name for p in (tmp_path / "v").iterdir()] == [saved.name]  # no .part left


# ---- real OCR ----------------------------------------------------------------------------


def test_real_ocr_reads_a_rendered_sign_through_the_file_camera(tmp_path: Path, ocr) -> None:
    path = save_image(render_sign(SIGN), tmp_path / "sign.png")
    camera = FileCamera(path, max_bytes=10**7, max_pixels=10**8)
    svc, _ = service(camera, ocr)
    answer = look(svc)
    assert answer.ok and answer.backend == "rapidocr"
    assert [letters(line) for line in answer.lines] == ["PLATFORM4", "TRAINSTOYORK"]
    assert letters(answer.text) == "ITSAYSPLATFORM4TRAINSTOYORK"


def test_real_ocr_finds_no_text_in_a_picture_without_any(ocr) -> None:
    gradient = np.tile(np.linspace(40, 220, 640, dtype=np.uint8), (480, 1))
    assert ocr.read(np.stack([gradient] * 3, axis=2)) == []


# ---- the spoken triggers -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("said", "kind"),
    [
        ("Read this.", "read"),
        ("Hey Jarvis, read this", "read"),
        ("What does it say?", "read"),
        ("What does the sign say?", "read"),
        ("Could you read the label for me", "read"),
        ("What's written here?", "read"),
        ("What do you see?", "describe"),
        ("What can you see", "describe"),
        ("Tell me what you can see in front of you.", "describe"),
        ("Please read the sign for me.", "read"),
        ("Is anyone at the door?", "describe"),
        ("Who's at the door?", "describe"),
        ("Describe the room.", "describe"),
        ("What is the capital of France?", None),
        ("What time is it?", None),
        ("Read me a story", None),
        ("What is this song?", None),
        ("Turn on the kitchen light", None),
    ],
)
def test_which_requests_are_about_looking(said: str, kind: str | None) -> None:
    assert vision_kind(said) == kind


# ---- the vision model path -----------------------------------------------------------------


def test_no_vision_model_imported_is_a_clear_error(tmp_path: Path) -> None:
    from appliance.models.budget import this_machine
    from appliance.models.catalog import ModelStore
    from appliance.vision.vlm import choose_vision_model

    store = ModelStore(tmp_path / "models")
    with pytest.raises(VisionModelMissing, match="no vision model is imported.*--projector"):
        choose_vision_model(store, "", this_machine(), 2048)
    with pytest.raises(Exception, match="no vision model named 'moondream'"):
        choose_vision_model(store, "moondream", this_machine(), 2048)


# ---- the command line ----------------------------------------------------------------------


def test_cli_reads_an_image_and_refuses_a_bad_one(tmp_path: Path) -> None:
    sign = save_image(render_sign("FRESH BREAD TODAY"), tmp_path / "sign.png")
    env = {"APPLIANCE_CONFIG": str(tmp_path / "none.toml"), "APPLIANCE_DATA_DIR": str(tmp_path)}
    proc = appliance("vision", "read", "--image", str(sign), "--events", "-", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "It says: FRESH BREAD TODAY." in proc.stderr
    assert '"type": "vision"' in proc.stdout and '"backend": "rapidocr"' in proc.stdout
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    proc = appliance("vision", "read", "--image", str(bad), env=env)
    assert proc.returncode == 10 and "I couldn't use that image" in proc.stdout
    proc = appliance("vision", "read", env=env)
    assert proc.returncode == 10 and "no camera is configured" in proc.stderr
    proc = appliance("vision", "read", "--image", str(tmp_path / "missing.png"), env=env)
    assert proc.returncode == 10 and "cannot read" in proc.stderr


def test_cli_capture_from_the_file_camera_and_doctor(tmp_path: Path) -> None:
    save_image(render_sign("HELLO"), tmp_path / "cam" / "now.png")
    config = tmp_path / "c.toml"
    config.write_text(f'[vision]\ncamera = "file"\npath = "{tmp_path / "cam"}"\n')
    env = {"APPLIANCE_CONFIG": str(config)}
    out = tmp_path / "frame.jpg"
    proc = appliance("vision", "capture", str(out), env=env)
    assert proc.returncode == 0, proc.stderr
    assert "1280×720" in proc.stdout and out.stat().st_size > 1000
    proc = appliance("doctor", env=env)
    assert "vision  file" in proc.stdout and "a 1280×720 picture" in proc.stdout
    proc = appliance("doctor", env={"APPLIANCE_CONFIG": str(tmp_path / "none.toml")})
    assert "vision  off: no camera configured" in proc.stdout


# ---- in the pipeline, with fake engines ------------------------------------------------------


def test_the_vision_hook_answers_looking_requests_and_leaves_the_rest_to_the_llm() -> None:
    from appliance.vision.handler import VisionHandler
    from tests.fakes import make_pipeline

    pipeline, recorder, sink, _tts, _llm = make_pipeline([], ["Paris is the capital."])
    svc = VisionService(VisionConfig(), FakeCamera([render_sign("X")]), FakeReader(["GATE B12"]),
                        publish=pipeline.bus.publish)  # fmt: skip
    pipeline.handlers.append(VisionHandler(svc))

    async def main():
        async with pipeline:
            return [await pipeline.ask("What does the sign say?"),
                    await pipeline.ask("What is the capital of France?")]  # fmt: skip

    looked, asked = asyncio.run(main())
    assert looked.reply == "It says: GATE B12." and looked.outcome == "replied"
    assert asked.reply == "Paris is the capital."
    assert [e.handler for e in recorder.of("handled")] == ["vision"]
    assert [(e.kind, e.turn) for e in recorder.of("vision")] == [("read", looked.turn)]
    assert sink.seconds > 0


def test_vision_hook_adds_nothing_when_vision_is_off() -> None:
    from appliance.vision.build import vision_hook
    from tests.fakes import make_pipeline

    pipeline, *_ = make_pipeline([], [])

    async def main():
        async with vision_hook(AppConfig(), pipeline) as hooked:
            return hooked, list(pipeline.handlers)

    assert asyncio.run(main()) == (None, [])


def test_vision_hook_attaches_and_detaches_with_a_camera(tmp_path: Path) -> None:
    import dataclasses

    from appliance.vision.build import vision_hook
    from appliance.vision.handler import VisionHandler
    from tests.fakes import make_pipeline

    save_image(render_sign("X"), tmp_path / "now.png")
    config = dataclasses.replace(
        AppConfig(models_dir=str(tmp_path / "models")),
        vision=VisionConfig(camera="file", path=str(tmp_path)),
    )
    pipeline, *_ = make_pipeline([], [])

    async def main():
        async with vision_hook(config, pipeline) as hooked:
            during = list(pipeline.handlers)
        return hooked, during, list(pipeline.handlers)

    hooked, during, after = asyncio.run(main())
    assert isinstance(hooked, VisionService) and isinstance(during[0], VisionHandler)
    assert after == []


def test_ocr_models_load_at_the_first_read_unless_asked_at_start() -> None:
    class CountingReader(FakeReader):
        loads = 0

        def load(self) -> None:
            self.loads += 1

    reader = CountingReader(["A"])
    svc, _ = service(FakeCamera([render_sign("X")]), reader)
    assert reader.loads == 0  # building the service loads nothing
    asyncio.run(svc.preload())  # what `ocr_at_start = true` does when the pipeline starts
    assert reader.loads == 1
    lazy = RapidOcrReader()
    assert not lazy.loaded
