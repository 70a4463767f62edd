"""Home Assistant's native API, measured on loopback with the client Home Assistant uses
standing in for it, encrypted as by default (a key made in a temporary data directory):
wake word → the request's first audio at Home Assistant (mode home_assistant), and an
announcement asked → its first sound, against the appliance saying the same sentence
itself."""

from __future__ import annotations

import asyncio
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance import events as ev
from appliance.audio.wav import wav_bytes
from appliance.bench.latency import _FirstAudio, _TimedSource, recordings
from appliance.pipeline import Engines, PipelineSettings
from appliance.testing.media import MediaServer

SENTENCE = "Dinner is ready."
ANNOUNCEMENTS = 6


async def satellite_figures(
    engines: Engines, settings: PipelineSettings, progress: Callable[[str], None] = print
) -> dict[str, Any]:
    from aioesphomeapi import APIClient, VoiceAssistantEventType

    from appliance.app import App, Parts
    from appliance.config import AppConfig
    from appliance.satellite.keys import key_file
    from appliance.sections.satellite import SatelliteConfig

    voice = engines.tts
    files = MediaServer({"/answer.wav": wav_bytes(voice.synthesize(SENTENCE), voice.sample_rate)})
    url = f"{files.base}/answer.wav"
    config = AppConfig(
        satellite=SatelliteConfig(
            enabled=True, host="127.0.0.1", port=0, mdns=False, mode="home_assistant"
        )
    )
    bus = ev.EventBus()
    wakes: list[float] = []
    bus.subscribe(lambda e: wakes.append(time.monotonic()) if e.type == "wake" else None)
    sink = _FirstAudio()
    first_chunk: list[float] = []
    data = Path(tempfile.mkdtemp(prefix="bench-satellite-"))
    parts = Parts(actions=False, vision=False, satellite=True, data_dir=data)
    rows: list[dict[str, Any]] = []
    E = VoiceAssistantEventType  # noqa: N806
    with files:
        async with App(config, engines, sink, bus, settings=settings, parts=parts) as app:
            key = key_file(data).read_text(encoding="ascii").strip()
            client = APIClient("127.0.0.1", app.satellite.port, None, client_info="bench",
                               noise_psk=key)  # fmt: skip
            await client.connect(login=True)

            async def start(*args: object) -> int:
                return 0

            async def audio(data: bytes, data2: bytes | None) -> None:
                if not first_chunk:
                    first_chunk.append(time.monotonic())

            async def stop(abort: bool) -> None:
                for kind, data in (
                    (E.VOICE_ASSISTANT_STT_END, {"text": "bench"}),
                    (E.VOICE_ASSISTANT_INTENT_END, {"continue_conversation": "0"}),
                    (E.VOICE_ASSISTANT_TTS_START, {"text": SENTENCE}),
                    (E.VOICE_ASSISTANT_TTS_END, {"url": url}),
                    (E.VOICE_ASSISTANT_RUN_END, {}),
                ):
                    client.send_voice_assistant_event(kind, data)

            client.subscribe_voice_assistant(handle_start=start, handle_stop=stop,
                                             handle_audio=audio)  # fmt: skip
            await asyncio.sleep(0.3)
            for recording in recordings(engines)[:6]:
                wakes.clear()
                first_chunk.clear()
                await app.pipeline.run(_TimedSource(recording.samples, realtime=True))
                if wakes and first_chunk:
                    seconds = first_chunk[0] - wakes[0]
                    rows.append({"text": recording.text, "wake_to_first_audio_s": seconds})
                    progress(f"{recording.text!r}: wake word → Home Assistant's first audio "
                             f"{seconds * 1000:.0f} ms")  # fmt: skip
            announce, local = [], []
            for index in range(ANNOUNCEMENTS):  # alternating, so neither is always warm
                for way in ("api", "local") if index % 2 == 0 else ("local", "api"):
                    sink.first = None
                    asked = time.monotonic()
                    if way == "api":
                        done = await client.send_voice_assistant_announcement_await_response(
                            url, 10, text=SENTENCE
                        )
                        if done.success and sink.first is not None:
                            announce.append(sink.first - asked)
                    else:
                        await app.pipeline.say(SENTENCE)
                        if sink.first is not None:
                            local.append(sink.first - asked)
            await client.disconnect()
    shutil.rmtree(data, ignore_errors=True)
    wake = [r["wake_to_first_audio_s"] for r in rows]
    report: dict[str, Any] = {
        "rows": rows,
        "wake_to_first_audio_median_s": statistics.median(wake) if wake else None,
        "announcement_first_sound_median_s": statistics.median(announce) if announce else None,
        "local_say_first_sound_median_s": statistics.median(local) if local else None,
    }
    if announce and local:
        report["announcement_over_local"] = statistics.median(announce) / statistics.median(local)
    return report


def table_rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    def ms(value: float | None) -> str:
        return "–" if value is None else f"{value * 1000:.0f} ms"

    ratio = report.get("announcement_over_local")
    return [
        ("Wake word → first audio at Home Assistant (median)",
         ms(report["wake_to_first_audio_median_s"]), ""),
        ("Announcement asked → first sound (median)",
         ms(report["announcement_first_sound_median_s"]), ""),
        ("The same sentence said by the appliance → first sound",
         ms(report["local_say_first_sound_median_s"]), ""),
        ("Announcement / said here", "–" if ratio is None else f"{ratio:.2f}", ""),
    ]  # fmt: skip
