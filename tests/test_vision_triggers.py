"""The vision triggers beside the spoken one: the look button (gpiozero's MockFactory),
`POST /api/vision` (real HTTP on loopback), the MQTT `look` command (a real mosquitto)
and the language model's `look` tool. The camera is the file source pointing at signs the
tests draw, read by the real OCR (rapidocr); the pipeline has fake engines."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from gpiozero.pins.mock import MockFactory, MockPWMPin

from appliance import events as ev
from appliance.actions.llm_tools import LlmToolCaller
from appliance.config import AppConfig, load_config
from appliance.errors import ConfigError
from appliance.house import Actions
from appliance.llm.fake import ScriptedLlm
from appliance.mqtt.service import mqtt_service
from appliance.sections.devices import ActionsConfig, ButtonConfig, DeviceConfig, GpioOutput
from appliance.sections.mqtt import MqttConfig
from appliance.sections.vision import VisionConfig
from appliance.testing.images import render_sign, save_image
from appliance.vision.build import vision_hook
from appliance.vision.camera import FileCamera
from appliance.vision.intents import look_kind
from appliance.vision.ocr import RapidOcrReader
from appliance.vision.service import VisionService
from appliance.vision.tool import check_look
from tests.fakes import Recorder, make_pipeline
from tests.mqtt_broker import Mosquitto, subscriber
from tests.web_harness import running_web

SIGN = "NO PARKING"
LABEL = "SHAKE WELL"
BASE = "appliance/kitchen"


def letters(text: str) -> str:
    """Upper-case letters and digits only: the recogniser may drop a narrow space."""
    return re.sub(r"[^A-Z0-9]", "", text.upper())


def png(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def ocr() -> RapidOcrReader:
    reader = RapidOcrReader(threads=1)
    reader.load()
    return reader


@pytest.fixture
def view(tmp_path: Path) -> Path:
    """The file camera's folder, showing the sign."""
    save_image(render_sign(SIGN), tmp_path / "view" / "now.png")
    return tmp_path / "view"


def file_vision(view: Path, ocr: RapidOcrReader, publish: Any = None, **config: Any):
    vision = VisionConfig(camera="file", path=str(view), **config)
    camera = FileCamera(view, max_bytes=vision.max_image_bytes, max_pixels=vision.max_pixels)
    return VisionService(vision, camera, ocr, publish=publish)


async def until(condition: Any, seconds: float = 60) -> None:
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110 - the events have no awaitable
            await asyncio.sleep(0.02)


# ---- configuration ---------------------------------------------------------------------


def test_the_button_pin_is_checked_and_may_not_take_an_actions_pin(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[vision]\ncamera = "file"\npath = "/x.png"\nbutton_pin = 26\n')
    assert load_config(path).vision.button_pin == 26
    assert AppConfig().vision.button_pin is None and AppConfig().vision.button_look == "read"
    cases = [
        ("[vision]\nbutton_pin = 60\n", "vision.button_pin must be a BCM pin number 0–53"),
        ("[vision]\nbutton_pin = -1\n", "0–53"),
        ('[vision]\nbutton_pin = "5"\n', "vision.button_pin must be int"),
        ('[vision]\nbutton_look = "dance"\n', "vision.button_look must be read or describe"),
        ("[vision]\nbutton_pin = 5\n[actions.button]\npin = 5\n",
         "vision.button_pin 5 is already the push-to-talk button (actions.button)'s pin"),
        ("[vision]\nbutton_pin = 6\n[actions.mute_switch]\npin = 6\n", "mute switch"),
        ("[vision]\nbutton_pin = 19\n[actions.status_light]\nred = 17\ngreen = 18\nblue = 19\n",
         "status light"),
        ('[vision]\nbutton_pin = 17\n[[devices]]\nname = "porch light"\ngpio = { pin = 17 }\n',
         'device "porch light"'),
    ]  # fmt: skip
    for text, message in cases:
        path.write_text(text)
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_config(path)


@pytest.mark.parametrize(
    ("question", "kind"),
    [("", "read"), ("PLEASE read this", "read"), ("what does the label say?", "read"),
     ("what do you see", "describe"), ("is the door open?", "describe")],
)  # fmt: skip
def test_what_a_look_asked_for_with_a_question_does(question: str, kind: str) -> None:
    assert look_kind(question) == kind


# ---- the look button ---------------------------------------------------------------------


@pytest.fixture
def factory():
    pins = MockFactory(pin_class=MockPWMPin)
    yield pins
    pins.reset()


def button_config(tmp_path: Path, view: Path, **vision: Any) -> AppConfig:
    return dataclasses.replace(
        AppConfig(models_dir=str(tmp_path / "models")),
        vision=VisionConfig(camera="file", path=str(view), button_pin=26, **vision),
    )


def test_pressing_the_look_button_says_what_the_sign_reads(tmp_path, view, factory) -> None:
    pipeline, recorder, _sink, tts, llm = make_pipeline([], [])
    config = button_config(tmp_path, view)

    async def main() -> None:
        async with (
            pipeline,
            vision_hook(config, pipeline, button=True, pin_factory=factory) as service,
        ):
            assert service is not None
            pin = factory.pin(26)
            pin.drive_low()  # pressed (pull-up: pressed is low)
            pin.drive_high()
            pin.drive_low()  # pressed again while it is still looking: ignored
            pin.drive_high()
            await until(lambda: bool(tts.spoken))
            await asyncio.sleep(0.3)

    asyncio.run(main())
    [looked] = recorder.of("vision")
    assert looked.kind == "read" and looked.backend == "rapidocr"
    assert letters(SIGN) in letters(looked.text)
    [said] = recorder.of("announcement")
    assert said.text == looked.text and tts.spoken == [looked.text]
    assert llm.prompts == []  # the language model was not involved


def test_the_button_can_describe_and_is_only_there_in_run(tmp_path, view, factory) -> None:
    pipeline, recorder, _sink, tts, _llm = make_pipeline([], [])
    config = button_config(tmp_path, view, button_look="describe")

    async def main() -> None:
        async with pipeline:
            async with vision_hook(config, pipeline, pin_factory=factory):  # listen, ask, …
                factory.pin(26).drive_low()
                await asyncio.sleep(0.5)
                factory.pin(26).drive_high()
            assert recorder.of("vision") == []  # no button outside `appliance run`
            async with vision_hook(config, pipeline, button=True, pin_factory=factory):
                factory.pin(26).drive_low()
                await until(lambda: bool(tts.spoken))

    asyncio.run(main())
    [looked] = recorder.of("vision")
    assert looked.kind == "describe"
    assert "vision model" in looked.text and letters(SIGN) in letters(looked.text)


def test_a_look_button_pin_in_use_is_reported_and_the_rest_works(tmp_path, view, factory) -> None:
    from gpiozero import LED

    pipeline, recorder, *_ = make_pipeline([], [])
    config = button_config(tmp_path, view)
    holder = LED(26, pin_factory=factory)  # another program has the pin

    async def main() -> Any:
        async with (
            pipeline,
            vision_hook(config, pipeline, button=True, pin_factory=factory) as hooked,
        ):
            return hooked, await pipeline.ask("What does the sign say?")

    try:
        hooked, result = asyncio.run(main())
    finally:
        holder.close()
    assert isinstance(hooked, VisionService)
    [error] = recorder.of("error")
    assert error.code == "look_button" and "GPIO pin 26" in error.message
    assert "already in use" in error.message
    assert letters(SIGN) in letters(result.reply)  # the spoken trigger still works


def test_on_a_machine_without_gpio_the_look_button_is_skipped_not_an_error(tmp_path, view):
    from appliance.pins import gpio_chips

    if gpio_chips():
        pytest.skip("this machine has GPIO")
    pipeline, recorder, *_ = make_pipeline([], [])
    config = button_config(tmp_path, view)

    async def main() -> Any:
        async with pipeline, vision_hook(config, pipeline, button=True) as hooked:
            return hooked

    assert isinstance(asyncio.run(main()), VisionService)
    assert recorder.of("error") == []  # gpiozero found no GPIO here: a warning only


# ---- the language model's look tool ----------------------------------------------------


@pytest.mark.parametrize(
    ("said", "kind"),
    [("could you check what the label on this says", "read"),
     ("can you tell me the writing on the box", "read"),
     ("tell me what the camera shows", "describe"),
     ("can you see anything out there", "describe"),
     ("see you later", None),
     ("check the weather for tomorrow", None),
     ("turn on the porch light", None)],
)  # fmt: skip
def test_the_look_call_is_checked_against_the_words(said: str, kind: str | None) -> None:
    checked = check_look({"kind": "describe" if kind == "read" else "read"}, said)
    assert (checked or {}).get("kind") == kind  # the words decide, not the model
    if checked is not None:
        assert checked["question"] == said


def tool_house(tmp_path: Path, vision: VisionService | None, replies: list[str]):
    bus = ev.EventBus()
    recorder = Recorder()
    bus.subscribe(recorder)
    actions = Actions([], ActionsConfig(), bus, tmp_path, vision=vision)
    llm = ScriptedLlm([], json_replies=replies)

    async def inline(fn, *args):
        return fn(*args)

    return actions, LlmToolCaller(llm, actions.registry, actions.devices, inline), recorder, llm


def test_the_look_tool_reads_through_the_camera_when_the_words_ask(tmp_path, ocr) -> None:
    save_image(render_sign(LABEL), tmp_path / "view" / "label.png")
    vision = file_vision(tmp_path / "view", ocr)
    look = json.dumps({"tool": "look", "arguments": {"kind": "describe"}})
    actions, caller, recorder, llm = tool_house(tmp_path, vision, [look, look, look])

    async def main() -> Any:
        async with actions:
            read = await caller.handle("could you check what the label on this says", 1)
            chat = await caller.handle("What is the capital of France?", 2)  # not asked
            bye = await caller.handle("see you later", 3)  # asked; its look is dropped
            screen = await caller.handle("can you check the weather on the screen", 4)
            return read, chat, bye, screen

    try:
        read, chat, bye, screen = asyncio.run(main())
    finally:
        vision.close()
    assert read.handler == "llm_tools" and read.action == "look"
    assert read.reply.startswith("It says:") and letters(LABEL) in letters(read.reply)
    assert chat is None and bye is None and len(llm.json_prompts) == 3
    offered = [o["properties"]["tool"]["const"] for o in llm.json_prompts[0][1]["anyOf"]]
    assert offered == ["look", "none"]
    # The question is not a free string the model fills: the words give it.
    assert llm.json_prompts[0][1]["anyOf"][0]["properties"]["arguments"]["properties"] == {
        "kind": {"type": "string", "description": "read or describe", "enum": ["read", "describe"]}
    }
    assert screen.action == "look"  # "screen": a reading request, so it reads
    actions_done = recorder.of("action")
    assert [(a.tool, a.path, a.ok, a.arguments["kind"]) for a in actions_done] == [
        ("look", "llm", True, "read"),
        ("look", "llm", True, "read"),
    ]
    assert actions_done[0].arguments["question"] == "could you check what the label on this says"


def test_no_look_tool_without_vision(tmp_path) -> None:
    actions, caller, _recorder, llm = tool_house(tmp_path, None, [])
    assert actions.registry.get("look") is None
    assert all(t.name != "look" for t in caller.tools)
    assert not caller.worth_asking("could you check what the label on this says")


def test_a_look_tool_call_without_a_usable_camera_is_a_failed_action(tmp_path, ocr) -> None:
    vision = VisionService(VisionConfig(), None, ocr)
    look = json.dumps({"tool": "look", "arguments": {"kind": "read"}})
    actions, caller, recorder, _llm = tool_house(tmp_path, vision, [look])

    async def main() -> Any:
        async with actions:
            return await caller.handle("what is written on the label", 1)

    handled = asyncio.run(main())
    vision.close()
    assert handled.reply.startswith("I can't use the camera")
    [action] = recorder.of("action")
    assert not action.ok and action.tool == "look"


# ---- MQTT ---------------------------------------------------------------------------------


@pytest.fixture
def broker(tmp_path: Path):
    server = Mosquitto(tmp_path / "broker").start()
    yield server
    server.stop()


def mqtt_settings(port: int) -> MqttConfig:
    return MqttConfig(host="127.0.0.1", port=port, device_name="Kitchen",
                      reconnect_min_seconds=0.05, reconnect_max_seconds=0.2)  # fmt: skip


async def online(service: Any) -> None:
    await until(lambda: service.link.connected, 10)


def test_the_mqtt_look_command_speaks_and_publishes_what_it_reads(
    broker, tmp_path, view, ocr
) -> None:
    pipeline, recorder, _sink, tts, _llm = make_pipeline([], [])
    vision = file_vision(view, ocr, publish=pipeline.bus.publish)

    async def main() -> None:
        async with (
            subscriber(broker.port, f"{BASE}/#", "homeassistant/button/#") as (client, seen),
            pipeline,
            mqtt_service(mqtt_settings(broker.port), pipeline, state_dir=tmp_path,
                         vision=vision) as service,
        ):  # fmt: skip
            await online(service)
            await client.publish(f"{BASE}/command/look", "read this", qos=1)
            await seen.wait_for(lambda s: bool(s.on(f"{BASE}/look/result")), seconds=60)
            await until(lambda: bool(tts.spoken))
            await client.publish(f"{BASE}/command/look", "PRESS", qos=1)  # Home Assistant
            await seen.wait_for(lambda s: len(s.on(f"{BASE}/look/result")) == 2, seconds=60)
            await client.publish(f"{BASE}/command/look", b"bell\x07", qos=1)
            await seen.wait_for(lambda s: bool(s.on(f"{BASE}/error")))
            await until(lambda: len(tts.spoken) == 2)

        first, pressed = (json.loads(p) for p in seen.on(f"{BASE}/look/result"))
        assert first["question"] == "read this" and first["kind"] == "read"
        assert first["backend"] == "rapidocr" and first["problem"] == ""
        assert letters(SIGN) in letters(first["text"]) and letters(SIGN) in letters(
            "".join(first["lines"])
        )
        assert pressed["question"] == "" and pressed["kind"] == "read"
        assert tts.spoken == [first["text"], pressed["text"]]
        assert [e.text for e in recorder.of("announcement")] == tts.spoken
        error = json.loads(seen.on(f"{BASE}/error")[0])
        assert error["code"] == "bad_command" and "control characters" in error["message"]
        look = json.loads(seen.on("homeassistant/button/kitchen/look/config")[0])
        assert look["command_topic"] == f"{BASE}/command/look" and look["name"] == "Look"

    try:
        asyncio.run(main())
    finally:
        vision.close()


def test_without_vision_mqtt_look_is_refused_and_not_announced(broker, tmp_path) -> None:
    pipeline, _recorder, _sink, tts, _llm = make_pipeline([], [])

    async def main() -> None:
        async with (
            subscriber(broker.port, f"{BASE}/error", "homeassistant/button/#") as (client, seen),
            pipeline,
            mqtt_service(mqtt_settings(broker.port), pipeline, state_dir=tmp_path) as service,
        ):
            await online(service)
            await client.publish(f"{BASE}/command/look", "read this", qos=1)
            await seen.wait_for(lambda s: bool(s.on(f"{BASE}/error")))
            await seen.wait_for(lambda s: bool(s.on("homeassistant/button/kitchen/listen/config")))
        error = json.loads(seen.on(f"{BASE}/error")[0])
        assert "vision is off" in error["message"] and tts.spoken == []
        assert seen.on("homeassistant/button/kitchen/look/config") == [""]  # removed

    asyncio.run(main())


# ---- POST /api/vision --------------------------------------------------------------------


@pytest.fixture
def web_env(tmp_path, monkeypatch):
    monkeypatch.setenv("APPLIANCE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


@pytest.fixture
def web(web_env, view, ocr):
    def vision(bus: ev.EventBus) -> VisionService:
        return file_vision(view, ocr, bus.publish, max_image_bytes=200_000, max_pixels=4_000_000)

    with running_web(web_env, vision=vision) as running:
        running.token = running.service.ctx.pairing.new_token("test")[0]
        yield running


def api(web, body: Any = None, *, data: bytes | None = None, headers: dict | None = None,
        params: dict | None = None) -> requests.Response:  # fmt: skip
    auth = {"Authorization": f"Bearer {web.token}", **(headers or {})}
    return requests.post(web.url + "/api/vision", json=body, data=data, headers=auth,
                         params=params, timeout=60)  # fmt: skip


def test_api_capture_now_reads_the_sign(web) -> None:
    response = api(web, {"capture": True, "question": "read this"})
    assert response.status_code == 200, response.text
    out = response.json()
    assert out["kind"] == "read" and out["backend"] == "rapidocr" and out["problem"] == ""
    assert letters(SIGN) in letters(out["text"]) and letters(SIGN) in letters("".join(out["lines"]))
    assert out["seconds"] >= out["capture_seconds"] > 0
    assert web.engines.tts.spoken == []  # not said unless asked


def test_api_reads_an_uploaded_image_and_speaks_when_asked(web) -> None:
    recorder = Recorder()
    web.pipeline.bus.subscribe(recorder)
    sign = png(render_sign(LABEL, size=(640, 360), font_size=60))
    response = api(web, data=sign, headers={"Content-Type": "image/png"},
                   params={"question": "what does the label say", "speak": "true"})  # fmt: skip
    assert response.status_code == 200, response.text
    out = response.json()
    assert out["capture_seconds"] >= 0 and letters(LABEL) in letters(out["text"])
    deadline = time.monotonic() + 30
    while not web.engines.tts.spoken and time.monotonic() < deadline:
        time.sleep(0.05)
    assert web.engines.tts.spoken == [out["text"]]
    assert [e.text for e in recorder.of("announcement")] == [out["text"]]
    assert [e.backend for e in recorder.of("vision")] == ["rapidocr"]


def test_api_refuses_bad_images_clearly(web) -> None:
    from PIL import Image

    huge = io.BytesIO()
    Image.new("L", (4000, 4000)).save(huge, format="PNG")  # 16 Mpx in a few kB
    cases = [
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 300_000, "image/png", 413, "vision.max_image_bytes"),
        (huge.getvalue(), "image/png", 413, "vision.max_pixels"),
        (b"PK\x03\x04 not an image", "image/jpeg", 422, "not an image"),
        (png(render_sign("X"))[:400], "image/png", 422, "cannot be decoded"),
        (b"", "image/png", 422, "empty"),
        (b"hello", "text/plain", 415, "send an image"),
    ]
    for data, kind, status, message in cases:
        response = api(web, data=data, headers={"Content-Type": kind})
        assert response.status_code == status, (message, response.text)
        assert message in json.dumps(response.json()), response.text
    bodies = [{"capture": False}, {"capture": True, "kind": "stare"}, {"question": "x"},
              {"capture": True, "question": "a\x07"}, {"capture": True, "extra": 1}]  # fmt: skip
    for body in bodies:
        assert api(web, body).status_code == 422, body
    broken = api(web, data=b"{not json", headers={"Content-Type": "application/json"})
    assert broken.status_code == 422
    # A declared 2 GB upload is refused before any of it is read.
    with requests.post(web.url + "/api/vision", data=iter([b"x" * 10]), timeout=10,
                       headers={"Authorization": f"Bearer {web.token}",
                                "Content-Type": "image/png",
                                "Content-Length": str(2 * 1024**3)}) as response:  # fmt: skip
        assert response.status_code == 413
    # And after all that the camera still answers.
    assert letters(SIGN) in letters(api(web, {"capture": True}).json()["text"])


def test_api_camera_trouble_is_a_503_and_csrf_is_needed_for_a_browser(web, view) -> None:
    for image in view.iterdir():
        image.unlink()
    response = api(web, {"capture": True})
    assert response.status_code == 503 and "has no image in it" in response.json()["detail"]
    browser = web.session()
    assert browser.post(web.url + "/api/vision", json={"capture": True}).status_code == 403
    unauthenticated = requests.post(web.url + "/api/vision", json={"capture": True}, timeout=10)
    assert unauthenticated.status_code == 401


def test_api_vision_off_is_a_503(web_env) -> None:
    with running_web(web_env) as running:
        token = running.service.ctx.pairing.new_token("t")[0]
        auth = {"Authorization": f"Bearer {token}"}
        response = requests.post(
            running.url + "/api/vision", json={"capture": True}, headers=auth, timeout=10
        )
    assert response.status_code == 503 and "vision is off" in response.json()["detail"]


def test_the_pin_check_covers_every_actions_pin() -> None:
    from appliance.config import DeviceList

    config = ActionsConfig(button=ButtonConfig(pin=5))
    devices = DeviceList([DeviceConfig("fan", "fan", gpio=GpioOutput(12))])
    with pytest.raises(ConfigError, match='device "fan"'):
        AppConfig(actions=config, devices=devices, vision=VisionConfig(button_pin=12))
    assert AppConfig(actions=config, vision=VisionConfig(button_pin=13)).vision.button_pin == 13
