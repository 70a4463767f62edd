"""One box of the rooms test and bench: the appliance's real wake word detector and room
arbiter, fed a recording at a given gain each time it is told to go.

    python -m appliance.testing.rooms_trial --name kitchen --gain 0.5 --wav hey.wav
    stdin:  go <unix time>   (one trial, the recording starting then, in real time)
            quit
    stdout: one JSON line per trial: heard, won, winner, claims, waited_ms, level_db
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import numpy as np

from appliance.audio.format import AudioChunk
from appliance.audio.wav import load_for_pipeline
from appliance.config import AppConfig
from appliance.models.catalog import ModelStore
from appliance.pipeline.arbitration import speech_level
from appliance.rooms.arbiter import Decision, RoomArbiter
from appliance.rooms.messengers import Multicast

CHUNK = 1280


async def main(args: argparse.Namespace) -> None:
    from appliance.engines import _wake_detector

    config = AppConfig()
    wake = _wake_detector(config, ModelStore(config.models_path()))
    audio = load_for_pipeline(Path(args.wav)).astype(np.float64) * args.gain
    samples = np.clip(audio, -32768, 32767).astype(np.int16)
    decisions: list[dict] = []

    def decided(claim: object, d: Decision) -> None:
        decisions.append({"won": d.won, "winner": d.winner, "claims": d.claims,
                          "waited_ms": round(d.waited_s * 1000, 1), "early": d.early})  # fmt: skip

    arbiter = RoomArbiter(args.name, Multicast(args.group, args.port, args.interface),
                          window_ms=args.window, on_decision=decided)  # fmt: skip
    loop = asyncio.get_running_loop()
    async with arbiter:
        print(json.dumps({"ready": True}), flush=True)
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line or line.startswith("quit"):
                return
            start = float(line.split()[1])
            await asyncio.sleep(max(0.0, start - time.time()))
            wake.reset()
            decisions.clear()
            heard: list[AudioChunk] = []
            row: dict = {"heard": False}
            for index in range(0, len(samples) - CHUNK + 1, CHUNK):
                await asyncio.sleep(max(0.0, start + (index + CHUNK) / 16_000 - time.time()))
                chunk = AudioChunk(samples[index : index + CHUNK], index / 16_000)
                heard.append(chunk)
                found = await asyncio.to_thread(wake.process, chunk.samples)
                if found is not None:
                    level = speech_level(heard)
                    await arbiter.decide(found.wake_word, found.score, level)
                    row = {"heard": True, "level_db": round(level, 2),
                           "score": round(found.score, 3), **decisions[-1]}  # fmt: skip
                    break
            print(json.dumps(row), flush=True)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", required=True)
    parser.add_argument("--gain", type=float, default=1.0)
    parser.add_argument("--wav", required=True)
    parser.add_argument("--group", default="239.255.76.76")
    parser.add_argument("--port", type=int, default=10390)
    parser.add_argument("--window", type=float, default=150.0)
    parser.add_argument("--interface", default="0.0.0.0")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse()))
