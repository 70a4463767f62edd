"""The `appliance` command as a user runs it: real models, a subprocess, exit codes."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from appliance.audio.devices import list_devices
from appliance.config import default_models_dir
from appliance.models.catalog import load_catalog
from tests.fakes import ANSWERED_TURN_EVENTS, appliance

pytestmark = pytest.mark.e2e


def no_traceback(proc: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr


def test_help_documents_commands_and_exit_codes():
    proc = appliance("--help")
    assert proc.returncode == 0
    for word in ("demo", "listen", "run", "ask", "bench", "exit codes"):
        assert word in proc.stdout
    listen_help = appliance("listen", "--help").stdout
    assert "--realtime" in listen_help and "--events" in listen_help


def test_demo_speaks_an_answer(tmp_path):
    reply = tmp_path / "reply.wav"
    events = tmp_path / "events.jsonl"
    proc = appliance("demo", "--no-play", "--reply-wav", str(reply), "--events", str(events))
    assert proc.returncode == 0, proc.stderr
    assert "capital" in proc.stdout.lower() and "reply" in proc.stdout
    assert reply.stat().st_size > 20_000
    kinds = [json.loads(line)["type"] for line in events.read_text().splitlines()]
    assert kinds[:2] == ["model_plan", "ready"] and "wake" in kinds
    assert kinds[-1] in ("state", "turn_end")


def test_listen_realtime_streams_json_events_to_stdout(tmp_path):
    demo = Path(__file__).parents[1] / "appliance" / "samples" / "demo_request.wav"
    proc = appliance("listen", str(demo), "--realtime", "--events", "-")
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    by_type = {e["type"]: e for e in events}
    for kind in ANSWERED_TURN_EVENTS:
        assert kind in by_type, kind
        assert {"turn", "stream_time", "wall_time"} <= set(by_type[kind])
    # Real time: the end of speech is seen roughly when the audio has played that far.
    assert by_type["speech_end"]["wall_time"] - by_type["ready"]["wall_time"] >= (
        by_type["speech_end"]["stream_time"] - 0.5
    )
    assert by_type["tts_first_audio"]["seconds_after_speech_end"] > 0
    assert "you said" in proc.stderr  # the human summary moves to stderr


def test_ask_answers_typed_text():
    proc = appliance("ask", "What is the capital of France?")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"just some text, not audio\n" * 20, "not a WAV"),
        (
            b"RIFF\x24\x10\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00"
            b"\x80>\x00\x00\x00}\x00\x00\x02\x00\x10\x00data\x00\x10\x00\x00\x00\x00",
            "truncated",
        ),
    ],
)
def test_bad_input_files_exit_3_with_a_reason(tmp_path, content, message):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    proc = appliance("listen", str(path))
    assert proc.returncode == 3
    assert message in proc.stderr
    no_traceback(proc)
    proc = appliance("listen", str(tmp_path / "missing.wav"))
    assert proc.returncode == 3 and "no such file" in proc.stderr


def _models_copy(tmp_path: Path) -> Path:
    """A models directory of links to the prepared files (fast, no copies)."""
    source = default_models_dir()
    target = tmp_path / "models"
    for entry in load_catalog().values():
        for model_file in entry.files:
            (target / model_file.path).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(source / model_file.path, target / model_file.path)
    return target


def test_a_corrupt_model_is_named_with_the_command_that_restores_it(tmp_path):
    models = _models_copy(tmp_path)
    jarvis = models / "wake" / "hey_jarvis_v0.1.onnx"
    data = bytearray(jarvis.read_bytes())
    jarvis.unlink()
    data[5000:5010] = b"0123456789"
    jarvis.write_bytes(bytes(data))
    proc = appliance(
        "--models-dir", str(models), "demo", "--no-play", "--reply-wav", str(tmp_path / "r.wav")
    )
    assert proc.returncode == 5
    assert "hey_jarvis_v0.1.onnx" in proc.stderr and "corrupt" in proc.stderr
    assert "appliance models prepare" in proc.stderr
    no_traceback(proc)
    verify = appliance("--models-dir", str(models), "models", "verify")
    assert verify.returncode == 5 and "corrupt" in verify.stdout


def test_a_missing_model_is_named(tmp_path):
    models = _models_copy(tmp_path)
    (models / "llm" / "SmolLM2-135M-Instruct.Q4_1.gguf").unlink()
    proc = appliance("--models-dir", str(models), "ask", "hello")
    assert proc.returncode == 5
    assert "SmolLM2-135M-Instruct.Q4_1.gguf" in proc.stderr and "missing" in proc.stderr
    no_traceback(proc)


def test_models_verify_passes_on_the_prepared_directory():
    proc = appliance("models", "verify")
    assert proc.returncode == 0, proc.stdout
    assert "intact" in proc.stdout


@pytest.mark.skipif(any(d.inputs for d in list_devices()), reason="this machine has a mic")
def test_run_without_an_audio_device_exits_4_and_says_what_it_found():
    proc = appliance("run", timeout=60)
    assert proc.returncode == 4
    assert "no microphone found" in proc.stderr and "Devices seen" in proc.stderr
    no_traceback(proc)


def test_an_invalid_config_exits_2_and_names_the_key(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[wake]\nthreshold = 3.0\n[stt]\nmodle = 'x'\n")
    proc = appliance("--config", str(config), "ask", "hi")
    assert proc.returncode == 2
    assert "config.toml" in proc.stderr
    no_traceback(proc)
    config.write_text("[wake\n")
    proc = appliance("--config", str(config), "ask", "hi")
    assert proc.returncode == 2 and "not valid TOML" in proc.stderr


def test_models_convert_whisper_refuses_a_non_model_directory(tmp_path):
    proc = appliance("models", "convert-whisper", str(tmp_path), str(tmp_path / "out.bin"))
    assert proc.returncode == 5
    no_traceback(proc)
    assert not (tmp_path / "out.bin").exists()


def test_espeak_and_sox_are_installed_for_the_tests():
    # ./setup.sh installs them; without them the end-to-end tests cannot make speech.
    assert shutil.which("espeak-ng") and shutil.which("sox")


def test_bench_runs_and_reports_every_figure(tmp_path):
    out = tmp_path / "bench.json"
    proc = appliance(
        "bench",
        "--turns",
        "1",
        "--listen-seconds",
        "5",
        "--self-speech-minutes",
        "0.3",
        "--json",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    for key in ("ttfa", "critical_path", "ttfa_over_critical_path", "stt"):
        assert report["median"][key] > 0
    assert report["streaming"]["ratio_full_over_streaming"] > 0
    assert 0 < report["wake_listening"]["cpu_share_of_one_core"] < 1
    cold = report["cold_start"]
    assert report["peak_rss_mb"] > 100 and 0 < cold["cold_start_s"] < cold["all_loaded_s"]
    assert {"voice en_US-joe-medium", "speech-to-text whisper-tiny.en"} <= set(cold["models_s"])
    assert "TTFA / critical path" in proc.stdout
    smollm2 = report["llm_backends"]["llama.cpp/smollm2-135m-instruct"]
    assert smollm2["mmap"]["tokens_per_s"] > 0 and smollm2["read"]["load_s"] > 0
    assert "available" in report["llm_backends"]["rkllm"]
    assert report["barge_in"]["interrupted"] == 1.0, report["barge_in"]
    assert 0 <= report["barge_in"]["recognised_to_silence_s"] < 1.0
    assert report["self_wakes"]["own_speech_minutes"] > 0.2
    assert "speex_per_hour" in report["self_wakes"]
    own = report["self_wakes"]
    assert own["jarvis_replies"] == 6 and 0 <= own["jarvis_woke"] <= 6
    assert 'Replies saying "Jarvis" early that woke it' in proc.stdout


def test_bench_only_actions_gives_the_fast_and_llm_paths_as_a_ratio_of_one_run(tmp_path):
    # One thread per engine: on a shared 2-core machine two threads each collapse
    # (docs/benchmark.md).
    # The same voice every run: with Piper's varied voice, tiny.en missed the command about
    # one run in six (the bench then says what it heard).
    config = tmp_path / "config.toml"
    config.write_text("[llm]\nthreads = 1\n[stt]\nthreads = 1\n[tts]\nvary = false\n")
    out = tmp_path / "bench.json"
    proc = appliance("--config", str(config), "bench", "--only", "actions", "--turns", "1",
                     "--json", str(out), timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    acts = json.loads(out.read_text())["actions"]
    assert acts["runs"] == 2  # at least 2 turns each, even with --turns 1
    assert len(acts["fast_runs_s"]) == len(acts["llm_runs_s"]) == 2, acts
    assert all("device_on({'device': 'porch light'}) ok=True" in t for t in acts["llm_tools"])
    assert 0 < acts["fast_s"] < acts["llm_s"]
    assert acts["llm_over_fast"] == acts["llm_s"] / acts["fast_s"]
    assert acts["llm_answer_s"] >= acts["llm_s"]  # the answer is phrased after the action
    assert acts["phrasing"]["requests"] == 15 and acts["phrasing"]["accepted"] >= 10
    assert len(acts["load_average_before"]) == 3
    assert "Action done: LLM path / fast path" in proc.stdout
    assert appliance("bench", "--turns", "0").returncode == 2


def _alsa_file_devices(tmp_path: Path, recording: Path) -> dict[str, str]:
    """A microphone that plays a raw file and a speaker that records to one, through
    ALSA's file plugin: real PortAudio and PyAudio streams with no sound card."""
    from appliance.audio.wav import load_for_pipeline

    raw_in = tmp_path / "mic.raw"
    raw_in.write_bytes(load_for_pipeline(recording).tobytes())
    rc = tmp_path / "asoundrc"
    rc.write_text(
        f'pcm.testmic {{ type file slave.pcm "null" file "/dev/null" infile "{raw_in}" '
        f'format "raw" }}\n'
        f'pcm.testspeaker {{ type file slave.pcm "null" file "{tmp_path / "speaker.raw"}" '
        f'format "raw" }}\n'
    )
    conf = tmp_path / "alsa.conf"
    conf.write_text(f"</usr/share/alsa/alsa.conf>\n<{rc}>\n")
    return {"ALSA_CONFIG_PATH": str(conf)}


def test_run_answers_from_a_microphone_and_stops_cleanly_on_sigint(tmp_path):
    demo = Path(__file__).parents[1] / "appliance" / "samples" / "demo_request.wav"
    env = {**os.environ, **_alsa_file_devices(tmp_path, demo),
           "APPLIANCE_DATA_DIR": str(tmp_path / "data"),
           "APPLIANCE_MODELS_DIR": str(default_models_dir())}  # fmt: skip
    events = tmp_path / "events.jsonl"
    # The config page runs inside `run`: on loopback only here (no LAN, no mDNS).
    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance", "run", "--input-device", "testmic",
         "--output-device", "testspeaker", "--events", str(events),
         "--localhost-only", "--web-port", "0"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    errors: list[str] = []
    reader = threading.Thread(target=lambda: errors.extend(proc.stderr), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if events.exists() and '"turn_end"' in events.read_text():
                break
            time.sleep(0.2)
        page = _paired_status(errors)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    reader.join(5)
    err = "".join(errors)
    assert proc.returncode == 130, err
    kinds = [json.loads(line) for line in events.read_text().splitlines()]
    transcript = next(e["text"] for e in kinds if e["type"] == "transcript")
    assert "capital" in transcript.lower()
    assert next(e["text"] for e in kinds if e["type"] == "reply")
    # 16-bit mono at the voice's 22050 Hz: more than half a second reached the speaker.
    assert (tmp_path / "speaker.raw").stat().st_size > 22050
    assert "Traceback" not in err
    # The page shares the service's event bus: the spoken turn is on it.
    assert "capital" in page["turns"][0]["transcript"].lower(), page
    # The first start spoke the pairing code.
    assert any(e["type"] == "announcement" and "pairing code" in e["text"] for e in kinds)


def _paired_status(stderr_lines: list[str]) -> dict:
    """Pair with the code the journal got at first start, then read /api/status."""
    import requests

    text = "".join(stderr_lines)
    url = re.search(r"config page on (http://127\.0\.0\.1:\d+)", text).group(1)
    code = re.search(r"new pairing code \(first start\): (\d{8})", text).group(1)
    client = requests.Session()
    nonce = re.search(r'name="nonce" value="([^"]+)"', client.get(url + "/pair").text).group(1)
    client.post(url + "/pair", data={"nonce": nonce, "code": code})
    return client.get(url + "/api/status").json()
