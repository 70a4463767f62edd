"""The config page's upload and "Try it" with the real engines and models."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from appliance.audio.wav import parse_wav
from appliance.config import default_models_dir
from appliance.engines import load_engines, pipeline_settings
from tests.fakes import repeatable_config
from tests.web_harness import running_web

pytestmark = pytest.mark.e2e
DEMO = Path(__file__).parents[1] / "appliance" / "samples" / "demo_request.wav"


def test_a_wav_upload_and_a_typed_request_through_the_real_pipeline(tmp_path, monkeypatch):
    models = default_models_dir()
    monkeypatch.setenv("APPLIANCE_MODELS_DIR", str(models))
    monkeypatch.setenv("APPLIANCE_DATA_DIR", str(tmp_path / "data"))
    config = repeatable_config()
    engines = load_engines(config)
    with running_web(tmp_path, engines=engines, settings=pipeline_settings(config)) as web:
        client = web.session()
        headers = {"X-CSRF-Token": web.csrf(client), "Content-Type": "audio/wav"}
        response = client.post(web.url + "/api/listen", data=DEMO.read_bytes(), headers=headers)
        body = response.json()
        assert response.status_code == 200, body
        [turn] = body["turns"]
        assert "capital of france" in turn["transcript"].lower()
        assert "paris" in turn["reply"].lower()
        assert turn["timings"]["stt"] > 0
        csrf = {"X-CSRF-Token": headers["X-CSRF-Token"]}
        question = {"text": "What is the capital of Germany?", "audio": True}
        asked = client.post(web.url + "/api/ask", headers=csrf, json=question)
        reply = asked.json()
        assert "berlin" in reply["reply"].lower(), reply
        wav = parse_wav(base64.b64decode(reply["audio_wav_base64"]))
        assert wav.info.rate == engines.tts.sample_rate and wav.info.duration > 0.5
        turns = client.get(web.url + "/api/status").json()["turns"]
        assert [t["turn"] for t in turns] == [turn["turn"] + 1, turn["turn"]]
