"""Vision figures for `appliance bench`: "read this" from capture to the first spoken
audio (OCR), and the RAM the OCR models take, loaded vs not, in one run."""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from appliance.pipeline.sentences import SentenceSplitter
from appliance.tts.base import TextToSpeech

BENCH_SIGN = "PLATFORM 4\nTRAINS TO YORK"

_RSS_CHILD = r"""
import json, sys
def rss():
    out = {}
    for line in open("/proc/self/status"):
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(rest.split()[0]) / 1024
    return out
from appliance.testing.images import render_sign
from appliance.vision.ocr import RapidOcrReader
image = render_sign(sys.argv[1])
before = rss()
reader = RapidOcrReader(threads=int(sys.argv[2]))
reader.load()
loaded = rss()
lines = reader.read(image)
used = rss()
print(json.dumps({"not_loaded_mb": before["VmRSS"], "loaded_mb": loaded["VmRSS"],
                  "after_read_mb": used["VmRSS"], "peak_mb": used["VmHWM"],
                  "lines": [line.text for line in lines]}))
"""


def ocr_memory(threads: int) -> dict[str, Any]:
    """RSS of a fresh process (the vision code imported, numpy and Pillow in) before the
    OCR models are loaded, after loading, and after reading one 1280×720 frame (its
    buffers handed back to the system); the peak is during the read."""
    command = [sys.executable, "-c", _RSS_CHILD, BENCH_SIGN, str(threads)]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


async def _looks(tts: TextToSpeech, runs: int, threads: int) -> dict[str, Any]:
    from appliance.sections.vision import VisionConfig
    from appliance.testing.images import render_sign, save_image
    from appliance.vision.camera import FileCamera
    from appliance.vision.ocr import RapidOcrReader
    from appliance.vision.service import VisionService

    with tempfile.TemporaryDirectory() as tmp:
        path = save_image(render_sign(BENCH_SIGN), Path(tmp) / "sign.png")
        config = VisionConfig(camera="file", path=str(path))
        camera = FileCamera(path, max_bytes=config.max_image_bytes, max_pixels=config.max_pixels)
        service = VisionService(config, camera, RapidOcrReader(threads=threads))
        rows = []
        try:
            for _ in range(runs + 1):  # the first one loads the OCR models
                started = time.monotonic()
                answer = await service.look("read")
                looked = time.monotonic() - started
                first = next(iter(SentenceSplitter().feed(answer.text + " ")), answer.text)
                tts_started = time.monotonic()
                await asyncio.to_thread(tts.synthesize, first)
                tts_seconds = time.monotonic() - tts_started
                rows.append(
                    {
                        "capture_s": answer.capture_seconds,
                        "ocr_s": looked - answer.capture_seconds,
                        "tts_first_sentence_s": tts_seconds,
                        "to_first_audio_s": looked + tts_seconds,
                        "answer": answer.text,
                    }
                )
        finally:
            service.close()
    warm = rows[1:]
    return {
        "first_look": rows[0],
        "median": {
            key: statistics.median(r[key] for r in warm)
            for key in ("capture_s", "ocr_s", "tts_first_sentence_s", "to_first_audio_s")
        },
        "runs": warm,
    }


def vision_figures(tts: TextToSpeech, *, threads: int = 1, runs: int = 3) -> dict[str, Any]:
    report = asyncio.run(_looks(tts, runs, threads))
    report["ocr_threads"] = threads
    report["ocr_memory"] = ocr_memory(threads)
    return report


def table_rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    median, first, memory = report["median"], report["first_look"], report["ocr_memory"]
    return [
        (
            '"Read this" (OCR): capture → first audio, warm / first',
            f"{median['to_first_audio_s'] * 1000:.0f} ms / "
            f"{first['to_first_audio_s'] * 1000:.0f} ms",
            "",
        ),
        (
            "  of which capture / OCR / TTS (warm)",
            f"{median['capture_s'] * 1000:.0f} / {median['ocr_s'] * 1000:.0f} / "
            f"{median['tts_first_sentence_s'] * 1000:.0f} ms",
            "",
        ),
        (
            "RSS without OCR / loaded / after a read (peak)",
            f"{memory['not_loaded_mb']:.0f} / {memory['loaded_mb']:.0f} / "
            f"{memory['after_read_mb']:.0f} ({memory['peak_mb']:.0f}) MB",
            "",
        ),
    ]
