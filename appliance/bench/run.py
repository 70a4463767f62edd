"""`appliance bench`: latency, CPU and memory of the real pipeline, measured in one run.

Figures that compare two things are printed as ratios measured in the same run, because
the machines are noisy. Nothing here asserts a target; docs/benchmark.md lists them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance.bench.loading import cold_start, llm_figures
from appliance.bench.table import Say, action_rows, print_table, say_table
from appliance.bench.turns import measure, without_memory
from appliance.config import AppConfig
from appliance.engines import load_engines, pipeline_settings


def run_bench(
    config: AppConfig,
    *,
    config_path: Path | None,
    turns: int,
    listen_seconds: float,
    self_speech_minutes: float = 2.0,
    json_path: Path | None,
    say: Say,
    progress: Callable[[str], None],
    only: str = "",
) -> int:
    report: dict[str, Any] = {"cores": os.cpu_count(), "turns": turns}
    if only == "actions":
        from appliance.bench.actions import action_latency, actions_runs

        say("Loading models …")
        engines = load_engines(config, progress=progress)
        say("Actions: end of speech → action done, fast path vs the language model's call …")
        settings = without_memory(pipeline_settings(config))
        report["actions"] = asyncio.run(action_latency(engines, settings, actions_runs(turns)))
        say_table(action_rows(report), say)
        _save(report, json_path, say)
        return 0
    if only == "understanding":
        from appliance.bench.understanding import table_rows, understanding_figures

        # What is understood, not how fast: one thread per engine where the config says
        # "every core", so that neighbours on a shared machine do not stall the threads
        # whisper.cpp and llama.cpp spin on (30 s for one transcription was seen).
        config = dataclasses.replace(
            config,
            stt=dataclasses.replace(config.stt, threads=config.stt.threads or 1),
            llm=dataclasses.replace(config.llm, threads=config.llm.threads or 1),
        )
        report["threads"] = {"stt": config.stt.threads, "llm": config.llm.threads}
        say("Loading models …")
        engines = load_engines(config, progress=progress)
        say("Understanding: spoken commands through whisper, the handler and the model …")
        settings = without_memory(pipeline_settings(config))
        figures = understanding_figures(engines, settings, config, progress=progress)
        report["understanding"] = asyncio.run(figures)
        say_table(table_rows(report["understanding"]), say)
        _save(report, json_path, say)
        return 0
    if only == "satellite":
        from appliance.bench.satellite import satellite_figures, table_rows

        say("Loading models …")
        engines = load_engines(config, progress=progress)
        say("Home Assistant satellite: wake word → first audio there; announcement → sound …")
        settings = without_memory(pipeline_settings(config))
        report["satellite"] = asyncio.run(satellite_figures(engines, settings, progress))
        say_table(table_rows(report["satellite"]), say)
        _save(report, json_path, say)
        return 0
    if only == "rooms":
        import tempfile

        from appliance.audio.wav import write_wav
        from appliance.testing.rooms_net import run_trials
        from appliance.testing.speech import compose, tts_phrase

        if os.geteuid() != 0:
            say("the rooms bench needs root: it makes three network namespaces (ip netns)")
            return 1
        say("Loading the voice …")
        voice = load_engines(config, progress=progress, need_listening=False).tts
        say("Three rooms in three network namespaces, the same wake word at three levels …")
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "hey.wav"
            write_wav(wav, compose(0.3, tts_phrase(voice, "Hey Jarvis."), 0.4), 16_000)
            report["rooms"] = rooms = run_trials(wav, trials=100)
        say_table([
            ("Trials answered by the nearest box only",
             f"{rooms['only_the_nearest_answered']}/{rooms['trials']}", ""),
            ("Arbitration delay (median / max)",
             f"{rooms['waited_median_ms']:.1f} / {rooms['waited_max_ms']:.1f} ms",
             f"against a fixed {rooms['window_ms']:.0f} ms window"),
        ], say)  # fmt: skip
        _save(report, json_path, say)
        return 0
    if only == "remote":
        from appliance.bench.remote import remote_figures, table_rows

        say("Loading models …")
        engines = load_engines(config, progress=progress)
        say("A bigger box on loopback: felt latency through its servers vs the own engines …")
        settings = without_memory(pipeline_settings(config))
        figures = remote_figures(engines, settings, config, progress)
        report["remote"] = asyncio.run(figures)
        say_table(table_rows(report["remote"]), say)
        _save(report, json_path, say)
        return 0
    if only == "latency":
        from appliance.bench.latency import felt_latency, table_rows

        say("Cold start in a fresh process …")
        report["cold_start"] = cold_start(config, config_path)
        cold = report["cold_start"]
        shares = ", ".join(f"{k} {v:.2f} s" for k, v in cold["models_s"].items())
        say(
            f"  listening after {cold['cold_start_s']:.2f} s, every model loaded after "
            f"{cold['all_loaded_s']:.2f} s (imports {cold['imports_s']:.2f} s; {shares})"
        )

        say("Loading models …")
        engines = load_engines(config, progress=progress)
        say("Felt latency: last word → first reply audio, smart end-of-turn vs 0.7 s silence …")
        settings = without_memory(pipeline_settings(config))
        report["latency"] = asyncio.run(felt_latency(engines, settings, progress))
        say_table(table_rows(report["latency"]), say)
        _save(report, json_path, say)
        return 0
    say("Benchmark: cold start in a fresh process …")
    report["cold_start"] = cold_start(config, config_path)
    say("Loading models …")
    engines = load_engines(config, progress=progress)
    measured = measure(engines, config, turns, listen_seconds, say, progress, self_speech_minutes)
    report.update(asyncio.run(measured))
    say("Language models: mmap vs read, first token, tokens/s …")
    report["llm_backends"] = llm_figures(config)
    say('Vision: "read this" with OCR, and the RAM of the OCR models …')
    from appliance.bench.vision import vision_figures

    report["vision"] = vision_figures(engines.tts, threads=config.vision.ocr_threads)

    print_table(report, say)
    _save(report, json_path, say)
    return 0


def _save(report: dict[str, Any], json_path: Path | None, say: Say) -> None:
    text = json.dumps(report, indent=2)
    say(text)
    if json_path:
        json_path.write_text(text + "\n", "utf-8")
