"""Speech-to-text on a bigger box over a link slower than loopback: the request's audio
sent while it is heard (`stt.wyoming.LiveRequest`, what `appliance run` does) against
sent whole when speech ends (what it did before). Needs root.

The box is the real `wyoming-faster-whisper`, in a network namespace behind a veth pair
that a token bucket (`tc … tbf`) holds to `RATE` each way, about what a Pi gets on a busy
2.4 GHz Wi-Fi (netem, which would add a delay too, is not in every kernel). The figure
is the wait from the end of speech to the transcript; the audio is fed in real time,
80 ms at a time, as the microphone gives it."""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from appliance.audio.format import PIPELINE_RATE, int16_to_float
from appliance.bench.latency import Recording
from appliance.stt.wyoming import CHUNK_SAMPLES, WyomingStt
from appliance.testing.servers import WyomingProcess

RATE = "20mbit"
LINK = ("tbf", "rate", RATE, "burst", "32kbit", "latency", "50ms")
"""The shaping of each direction."""
BOX, BOARD = "10.78.0.2", "10.78.0.1"
PRE_ROLL = 0.5
"""Seconds of the request the live request starts with (as at the start of speech)."""


def _run(*args: str) -> None:
    subprocess.run(list(args), check=True, capture_output=True, text=True)


@contextlib.contextmanager
def slow_link() -> Iterator[str]:
    """A namespace for the box, joined to this one by a shaped veth pair; its name."""
    tag = f"l{os.getpid() % 100000}"
    box = f"{tag}box"
    subprocess.run(["ip", "netns", "del", box], capture_output=True)
    try:
        _run("ip", "netns", "add", box)
        _run("ip", "link", "add", f"{tag}a", "type", "veth", "peer", "name", f"{tag}b",
             "netns", box)  # fmt: skip
        _run("ip", "addr", "add", f"{BOARD}/30", "dev", f"{tag}a")
        _run("ip", "link", "set", f"{tag}a", "up")
        _run("ip", "-n", box, "addr", "add", f"{BOX}/30", "dev", f"{tag}b")
        _run("ip", "-n", box, "link", "set", f"{tag}b", "up")
        _run("ip", "-n", box, "link", "set", "lo", "up")
        _run("tc", "qdisc", "add", "dev", f"{tag}a", "root", *LINK)
        _run("ip", "netns", "exec", box, "tc", "qdisc", "add", "dev", f"{tag}b", "root", *LINK)
        yield box
    finally:
        subprocess.run(["ip", "link", "del", f"{tag}a"], capture_output=True)
        subprocess.run(["ip", "netns", "del", box], capture_output=True)


def _whole(stt: WyomingStt, speech: np.ndarray) -> tuple[float, str]:
    time.sleep(len(speech) / PIPELINE_RATE)  # the request is heard, then sent
    ended = time.monotonic()
    text = stt.transcribe(int16_to_float(speech))
    return time.monotonic() - ended, text


def _live(stt: WyomingStt, speech: np.ndarray) -> tuple[float, str]:
    first = int(PRE_ROLL * PIPELINE_RATE)
    live = stt.listen(speech[:first])
    for start in range(first, len(speech), CHUNK_SAMPLES):
        time.sleep(CHUNK_SAMPLES / PIPELINE_RATE)
        live.feed(speech[start : start + CHUNK_SAMPLES])
    ended = time.monotonic()
    text = live.finish(int16_to_float(speech))
    assert text is not None, "the live request was not used"
    return time.monotonic() - ended, text


def live_stt_figures(
    made: list[Recording], whisper_model: Path, progress: Callable[[str], None] = print
) -> dict[str, Any]:
    """Each recording's request (from the end of the wake word to its last word) both
    ways, in alternating order."""
    waits: dict[str, list[float]] = {"live": [], "whole": []}
    ways = {"live": _live, "whole": _whole}
    with slow_link() as box, tempfile.TemporaryDirectory() as tmp:
        progress(f"wyoming-faster-whisper in namespace {box}, over a link of {RATE}/s …")
        with WyomingProcess.faster_whisper(whisper_model, Path(tmp), netns=box,
                                           host=BOX) as whisper:  # fmt: skip
            stt = WyomingStt(whisper.uri, timeout=5.0, deadline=30.0)
            speeches = [_request(r) for r in made]
            _whole(stt, speeches[0][:PIPELINE_RATE])  # warm-up, not counted
            for index, speech in enumerate(speeches):
                order = ("live", "whole") if index % 2 == 0 else ("whole", "live")
                for name in order:
                    waited, text = ways[name](stt, speech)
                    waits[name].append(waited)
                    progress(f"{name} {index + 1}/{len(speeches)}: {waited * 1000:.0f} ms "
                             f"({text!r})")  # fmt: skip
    live, whole = statistics.median(waits["live"]), statistics.median(waits["whole"])
    seconds = [len(s) / PIPELINE_RATE for s in speeches]
    saved = [w - v for v, w in zip(waits["live"], waits["whole"], strict=True)]
    return {"link": f"{RATE}/s", "requests": len(speeches),
            "request_seconds_median": statistics.median(seconds),
            "live_median_s": live, "whole_median_s": whole,
            "saved_median_s": statistics.median(saved),
            "live_over_whole": live / whole, "waits": waits}  # fmt: skip


def _request(recording: Recording) -> np.ndarray:
    """The recording from after the wake word to a short tail after its last word."""
    start = int(recording.request_starts * PIPELINE_RATE)
    return recording.samples[start : int((recording.last_voiced + 0.3) * PIPELINE_RATE)]


def table_rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        ("End of speech → transcript, audio sent while heard (median)",
         f"{report['live_median_s'] * 1000:.0f} ms", f"over a link of {report['link']}"),
        ("End of speech → transcript, audio sent whole at the end (median)",
         f"{report['whole_median_s'] * 1000:.0f} ms",
         f"{report['requests']} requests of {report['request_seconds_median']:.1f} s"),
        ("Saved per turn (median)", f"{report['saved_median_s'] * 1000:.0f} ms",
         f"live / whole {report['live_over_whole']:.2f}"),
    ]  # fmt: skip
