"""Engines that finish loading while the appliance listens (`appliance.deferred`)."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from appliance.config import AppConfig
from appliance.deferred import Deferred, DeferredVoice, finish_loading
from appliance.engines import load_engines
from appliance.errors import ModelError
from appliance.talk import _serve_while_loading


class _Engine:
    def speak(self) -> str:
        return "spoken"


def test_a_call_waits_for_the_load_and_then_reaches_the_engine():
    release = threading.Event()

    def load() -> _Engine:
        release.wait(5)
        return _Engine()

    engine = Deferred("test engine", load)
    assert not engine.loaded
    release.set()
    assert engine.speak() == "spoken"
    finish_loading(engine, "not deferred")  # returns once loaded; other objects pass
    assert engine.loaded


def test_a_failed_load_is_a_model_error_for_every_caller():
    def load() -> _Engine:
        raise RuntimeError("onnxruntime says no")

    engine = Deferred("voice", load)
    with pytest.raises(ModelError, match="cannot load the voice: onnxruntime says no"):
        engine.speak()
    with pytest.raises(ModelError, match="onnxruntime says no"):
        finish_loading(engine)


def test_a_voice_knows_its_sample_rate_before_it_is_loaded(tmp_path):
    voice = tmp_path / "v.onnx"
    voice.with_name("v.onnx.json").write_text(json.dumps({"audio": {"sample_rate": 22050}}))
    release = threading.Event()
    deferred = DeferredVoice("voice", voice, lambda: release.wait(5))
    assert deferred.sample_rate == 22050 and not deferred.loaded
    release.set()
    voice.with_name("v.onnx.json").write_text("{")
    with pytest.raises(ModelError, match="unreadable"):
        DeferredVoice("voice", voice, lambda: None)


def test_the_service_stops_with_the_error_of_a_model_that_failed_to_load():
    class Engines:
        tts = Deferred("voice", lambda: (_ for _ in ()).throw(RuntimeError("bad voice")))
        llm = Deferred("language model", _Engine)

    async def serve_forever() -> None:
        await asyncio.sleep(3600)

    with pytest.raises(ModelError, match="bad voice"):
        asyncio.run(asyncio.wait_for(_serve_while_loading(Engines(), serve_forever()), 10))


@pytest.mark.e2e
def test_the_real_engines_listen_before_the_voice_and_model_are_loaded():
    times: dict[str, float] = {}
    engines = load_engines(AppConfig(), defer=True, load_times=times)
    assert isinstance(engines.tts, DeferredVoice)
    assert not isinstance(engines.llm, Deferred)  # llama.cpp silences stderr as it loads
    assert engines.tts.sample_rate == 22050  # without waiting for the load
    assert "speech-to-text whisper-tiny.en" in times
    assert len(engines.tts.synthesize("Ready.")) > 1000  # waits for it, then speaks
    finish_loading(engines.tts)
    assert {"voice en_US-joe-medium", "language model smollm2-135m-instruct (llama.cpp)"} <= set(
        times
    )


_EXIT_WHILE_LOADING = """
import sys, time
from appliance.config import AppConfig
from appliance.engines import load_engines
load_engines(AppConfig(), defer=True)
time.sleep(float(sys.argv[1]))  # stopped while the voice still loads
"""


@pytest.mark.e2e
@pytest.mark.parametrize("after", [0.1, 0.5, 0.9])
def test_a_process_stopped_while_the_voice_loads_exits_cleanly(after):
    # Exiting with onnxruntime still setting up the voice's session on a daemon thread
    # crashed the process (SIGSEGV, seen as `appliance run` stopped a second after start).
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _EXIT_WHILE_LOADING, str(after)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
