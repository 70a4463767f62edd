"""`appliance bench`: latency, CPU and memory of the real pipeline, measured in one run.

Figures that compare two things are printed as ratios measured in the same run, because
the machines are noisy. Nothing here asserts a target; docs/benchmark.md lists them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from appliance.audio.format import int16_to_float
from appliance.audio.sinks import NullSink
from appliance.audio.sources import ArraySource
from appliance.config import AppConfig
from appliance.engines import load_engines, pipeline_settings
from appliance.events import EventBus
from appliance.llm.base import Message
from appliance.llm.sentences import SentenceSplitter
from appliance.pipeline import Engines, Pipeline, PipelineSettings, TurnResult
from appliance.testing.speech import add_noise, compose, tts_phrase

Say = Callable[..., None]
QUESTION = "What is the capital of France?"
LONG_REQUEST = "Tell me three facts about the moon."

_COLD_START_CHILD = """
import json, resource, sys, time
from dataclasses import replace
from pathlib import Path
from appliance.config import load_config
from appliance.deferred import finish_loading
from appliance.engines import load_engines
started, config_path, models_dir = float(sys.argv[1]), sys.argv[2], sys.argv[3]
config = replace(load_config(Path(config_path) if config_path else None), models_dir=models_dir)
imported = time.time() - started
times = {}
engines = load_engines(config, defer=True, load_times=times)
ready = time.time() - started
finish_loading(engines.tts)
print(json.dumps({"imports": imported, "ready": ready, "loaded": time.time() - started,
                  "models": times,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cold_start(config: AppConfig, config_path: Path | None) -> dict[str, Any]:
    """A fresh interpreter started as the service starts: until it listens (the listening
    engines and the language model loaded; the voice loads on), and until all are."""
    started = time.time()
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            _COLD_START_CHILD,
            repr(started),
            str(config_path or ""),
            str(config.models_path()),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(out.stdout.strip().splitlines()[-1])
    return {
        "cold_start_s": data["ready"],
        "all_loaded_s": data["loaded"],
        "imports_s": data["imports"],
        "models_s": data["models"],
        "rss_after_load_mb": data["rss_mb"],
    }


_LLM_CHILD = r"""
import json, sys, threading, time
from pathlib import Path
path, context, mmap = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
from appliance.system import llm_threads

def rss():
    out = {}
    for line in open("/proc/self/status"):
        key, _, rest = line.partition(":")
        if key in ("RssFile", "RssAnon"):
            out[key] = int(rest.split()[0]) / 1024
    return out

from llama_cpp import Llama
before = rss()
started = time.monotonic()
llm = Llama(model_path=str(path), n_ctx=context, use_mmap=mmap, n_threads=llm_threads(),
            n_threads_batch=llm_threads(), verbose=False)
load = time.monotonic() - started
loaded = rss()
asked = time.monotonic()
first = None
tokens = 0
for chunk in llm.create_completion("The moon is", max_tokens=64, temperature=0.0, stream=True):
    tokens += 1
    if first is None:
        first = time.monotonic() - asked
total = time.monotonic() - asked
print(json.dumps({
    "load_s": load, "file_mb": loaded["RssFile"] - before["RssFile"],
    "anon_mb": loaded["RssAnon"] - before["RssAnon"], "ttft_s": first,
    "tokens_per_s": (tokens - 1) / (total - first) if tokens > 1 else 0.0,
}))
"""


def llm_figures(config: AppConfig) -> dict[str, Any]:
    """Per prepared GGUF: load time and RSS with mmap vs read into memory, time to first
    token and decode speed; each in a fresh process. Plus the NPU backend's status."""
    from appliance.models.catalog import ModelStore
    from appliance.npu import detect_npu

    store = ModelStore(config.models_path())
    figures: dict[str, Any] = {}
    for entry in store.prepared("llm"):
        if entry.facts.get("backend") == "rkllm":
            continue
        path = store.root / entry.main_file.path
        row = {}
        for mode, flag in (("mmap", "1"), ("read", "0")):
            out = subprocess.run(
                [sys.executable, "-c", _LLM_CHILD, str(path), str(config.llm.context), flag],
                capture_output=True,
                text=True,
                check=True,
            )
            row[mode] = json.loads(out.stdout.strip().splitlines()[-1])
        figures[f"llama.cpp/{entry.name}"] = row
    npu = detect_npu()
    figures["rkllm"] = {"available": npu.available, "reason": npu.reason}
    return figures


_OWN_SPEECH = (
    "The capital of France is Paris.",
    "I am Jarvis, your voice assistant, and I run on this little board.",
    "The moon orbits the Earth about once every twenty seven days.",
    "Sure, I can set a timer for ten minutes.",
    "Hey, that is a good question; let me think about it.",
    "Jarvis here. The kitchen light is now on.",
    "Water boils at one hundred degrees Celsius at sea level.",
    "Sorry, something went wrong. Please try again.",
)


def _without_memory(settings: PipelineSettings) -> PipelineSettings:
    """Every timed turn alike: no conversation memory (it lengthens later prompts) and no
    follow-up window."""
    quiet = dataclasses.replace(
        settings.conversation,
        history_tokens=0,
        follow_up_seconds=0.0,
        question_follow_up_seconds=0.0,
    )
    return dataclasses.replace(settings, conversation=quiet)


def _room_echo(played: np.ndarray, gain_db: float = -6.0) -> np.ndarray:
    """The speaker's sound as the microphone hears it (as in testing.echo.EchoRoom)."""
    out = np.zeros(len(played), dtype=np.float64)
    for delay, gain in ((0.03, 1.0), (0.045, 0.4), (0.07, 0.15)):
        shift = int(delay * 16000)
        out[shift:] += gain * played[: len(played) - shift]
    return out * 10 ** (gain_db / 20)


_JARVIS_REPLIES = (
    "I am Jarvis, your voice assistant, and I run on this little board.",
    "Jarvis here. The kitchen light is now on.",
    "Hello, this is Jarvis. The timer is set for ten minutes.",
    "Sure. Jarvis can do that. The porch light is off now.",
    "The capital of France is Paris. Ask Jarvis anything else.",
    "Hey, Jarvis speaking! Seventeen times twenty three is three hundred and ninety one.",
)
"""Replies that say the wake word early, in the first seconds of a reply."""


def self_wakes(engines: Engines, minutes: float) -> dict[str, float]:
    """False wakes (and false "stop"s, with the keyword head) while the appliance's own
    speech (mentioning "Jarvis") plays back into the microphone at -6 dB, scored as the
    pipeline scores barge-ins (barge_in.barge_in_threshold), with and without the Speex
    echo canceller. Per hour of its own speech. Then replies that say "Jarvis" in their
    first seconds, one after another: with the canceller kept between replies and the
    double-talk gate (as the pipeline does), against the canceller reset before each reply
    and no gate (as it did before), in the same run."""
    from appliance.audio.aec import NoEchoCanceller, SpeexEchoCanceller
    from appliance.barge_in import KeptEnergy, barge_in_threshold
    from appliance.wake.stopword import WINDOW

    assert engines.wake is not None
    phrases = [tts_phrase(engines.tts, text) for text in _OWN_SPEECH]
    speech: list[np.ndarray] = []
    while sum(len(p) for p in speech) < minutes * 60 * 16000:
        speech += phrases
    played = np.concatenate(speech)
    rng = np.random.default_rng(3)

    def in_the_room(played: np.ndarray) -> np.ndarray:
        mic = np.clip(_room_echo(played) + rng.normal(0, 30, len(played)), -32768, 32767)
        return mic.astype(np.int16)

    mic = in_the_room(played)
    hours = len(played) / 16000 / 3600
    figures: dict[str, float] = {"own_speech_minutes": hours * 60}
    wake = engines.wake
    detector_threshold = getattr(wake, "threshold", 0.5)
    embeddings = getattr(wake, "embeddings", None)

    def listen(canceller, kept, mic, played, *, gate: bool = True) -> tuple[int, int]:
        wakes = stops = 0
        for i in range(0, len(mic) - 1279, 1280):
            cleaned = canceller.process(mic[i : i + 1280], played[i : i + 1280])
            kept.add(mic[i : i + 1280], cleaned)
            threshold = (
                barge_in_threshold(canceller.active, kept, None, detector_threshold)
                if gate
                else None
            )
            wakes += wake.process(cleaned, threshold) is not None
            if engines.stop is not None and embeddings is not None:
                # As the pipeline takes them: behind the double-talk gate with AEC.
                allowed = not canceller.active or kept.someone_else()
                stops += engines.stop.check(embeddings.recent(WINDOW), allowed=allowed) is not None
        return wakes, stops

    for name, canceller in (("speex", SpeexEchoCanceller()), ("no_aec", NoEchoCanceller())):
        wake.reset()
        wakes, stops = listen(canceller, KeptEnergy(chunks=WINDOW), mic, played)
        figures[f"{name}_wakes"] = float(wakes)
        figures[f"{name}_per_hour"] = wakes / hours
        if engines.stop is not None:
            figures[f"{name}_stops_per_hour"] = stops / hours

    replies = [np.concatenate([np.zeros(8000, np.int16), tts_phrase(engines.tts, text)])
               for text in _JARVIS_REPLIES]  # fmt: skip
    figures["jarvis_replies"] = float(len(replies))
    for name, reset_each, gate in (
        ("jarvis_woke", False, True),
        ("jarvis_woke_before", True, False),
    ):
        canceller = SpeexEchoCanceller()
        woke = 0
        for reply in replies:
            if reset_each:
                canceller.reset()
            wake.reset()
            wakes, _ = listen(canceller, KeptEnergy(chunks=WINDOW), in_the_room(reply), reply,
                              gate=gate)  # fmt: skip
            woke += wakes > 0
        figures[name] = float(woke)
    wake.reset()
    return figures


def _request_recording(engines: Engines) -> np.ndarray:
    wake = tts_phrase(engines.tts, "Hey Jarvis.")
    question = tts_phrase(engines.tts, QUESTION)
    return add_noise(compose(0.5, wake, 0.4, question, 2.5))


def _first_sentence(engines: Engines, messages: list[Message]) -> tuple[float, str]:
    """Time from asking the LLM to its first complete sentence (blocking)."""
    splitter = SentenceSplitter()
    started = time.monotonic()
    cancel = threading.Event()
    for piece in engines.llm.stream(messages, cancel):
        sentences = splitter.feed(piece)
        if sentences:
            cancel.set()
            return time.monotonic() - started, sentences[0]
    rest = splitter.flush()
    return time.monotonic() - started, rest[0] if rest else ""


def _timed(fn: Callable[..., Any], *args: Any) -> float:
    started = time.monotonic()
    fn(*args)
    return time.monotonic() - started


def _drain_llm(engines: Engines, messages: list[Message]) -> str:
    return "".join(engines.llm.stream(messages, threading.Event()))


class _Bench:
    """Every measurement goes through one long-lived pipeline, as in the service, and the
    stages "in isolation" run on that pipeline's own stage threads (see pipeline._Stage)."""

    def __init__(self, engines: Engines, config: AppConfig, pipeline: Pipeline) -> None:
        self.engines = engines
        self.config = config
        self.pipeline = pipeline
        self.system = Message("system", config.llm.system_prompt)

    async def same_starting_state(self) -> None:
        """Leave llama.cpp's prompt cache as a previous, different request would: the
        system prompt cached, this request's words not. Done before each timed run."""
        await self.pipeline.in_stage(
            "llm", _drain_llm, self.engines, [self.system, Message("user", "Hello there.")]
        )

    async def realtime_turn(self, samples: np.ndarray) -> TurnResult:
        results = await self.pipeline.run(ArraySource(samples, realtime=True))
        replied = [r for r in results if r.outcome == "replied"]
        if not replied:
            raise RuntimeError(f"the benchmark turn was not answered: {results}")
        return replied[0]

    async def critical_path(self, result: TurnResult) -> dict[str, float]:
        """The same turn's stages one after another, each alone on the machine."""
        stt = self.engines.stt
        assert stt is not None and result.utterance is not None
        started = time.monotonic()
        text = await self.pipeline.in_stage("stt", stt.transcribe, int16_to_float(result.utterance))
        stt_s = time.monotonic() - started
        llm_s, sentence = await self.pipeline.in_stage(
            "llm", _first_sentence, self.engines, [self.system, Message("user", text)]
        )
        tts_s = await self.pipeline.in_stage("tts", _timed, self.engines.tts.synthesize, sentence)
        return {
            "stt": stt_s,
            "llm_first_sentence": llm_s,
            "tts_first_sentence": tts_s,
            "total": stt_s + llm_s + tts_s,
        }

    async def streaming_vs_full(self) -> dict[str, float]:
        """Time to first audio on a multi-sentence reply: streamed vs whole reply first."""
        await self.same_starting_state()
        result = await self.pipeline.ask(LONG_REQUEST)
        await self.same_starting_state()
        started = time.monotonic()
        reply = await self.pipeline.in_stage(
            "llm", _drain_llm, self.engines, [self.system, Message("user", LONG_REQUEST)]
        )
        await self.pipeline.in_stage("tts", self.engines.tts.synthesize, " ".join(reply.split()))
        full = time.monotonic() - started
        return {
            "sentences": float(len(result.sentences)),
            "streaming_ttfa_s": result.timings["ttfa"],
            "full_reply_ttfa_s": full,
            "ratio_full_over_streaming": full / result.timings["ttfa"],
        }

    async def barge_in(self) -> dict[str, float]:
        """Time from the wake word being recognised over a reply to the speaker falling
        silent, on a virtual speaker that plays in real time (20 ms blocks)."""
        from appliance.audio.aec import SpeexEchoCanceller
        from appliance.audio.sinks import ClockSink
        from appliance.events import Interrupted
        from appliance.testing.echo import EchoRoom
        from appliance.testing.speech import espeak_phrase

        sink = ClockSink()
        marks: list[tuple[float, Interrupted]] = []
        bus = EventBus()
        bus.subscribe(
            lambda e: marks.append((time.monotonic(), e)) if isinstance(e, Interrupted) else None
        )
        request = compose(
            0.5,
            tts_phrase(self.engines.tts, "Hey Jarvis."),
            0.4,
            tts_phrase(self.engines.tts, LONG_REQUEST),
        )
        long_request = np.concatenate([
            request,
            compose(2.0, espeak_phrase("Hey Jarvis! What is the capital of France?", speed=130),
                    4.0),
        ])  # fmt: skip
        settings = _without_memory(pipeline_settings(self.config))
        # The second wake word comes 1 s after the reply has been playing for 1 s, however
        # long the reply took to start (on a loaded machine it once came before it).
        room = EchoRoom(add_noise(long_request), sink.log, gain_db=-12.0,
                        hold_at=len(request) / 16_000 + 1.0)  # fmt: skip
        pipeline = Pipeline(self.engines, sink, bus, settings, echo=SpeexEchoCanceller())
        try:
            async with pipeline:
                await pipeline.run(room)
        finally:
            sink.close()
        if not marks:
            # Held to the limit: the reply never played (it is the reply that failed).
            return {"interrupted": 0.0, "reply_waited_s": round(room.held_seconds, 2)}
        at, event = marks[0]
        starts = [start for start, _ in list(sink.log._blocks) if start <= at + 0.1]
        silent = max(starts) + sink.BLOCK_SECONDS if starts else at
        return {
            "interrupted": 1.0,
            "recognised_to_silence_s": max(0.0, silent - at) + event.reaction_seconds,
            "reply_waited_s": round(room.held_seconds, 2),
        }

    async def wake_listening_cpu(self, seconds: float) -> dict[str, float]:
        """CPU share of one core while only listening for the wake word, on non-speech
        audio (noise, hum, tones). Fed as fast as it is processed: CPU seconds per audio
        second is the share a microphone would cost, without waiting a minute."""
        rng = np.random.default_rng(1)
        n = int(seconds * 16000)
        t = np.arange(n) / 16000
        noise = rng.normal(0, 300, n) + 800 * np.sin(2 * np.pi * 50 * t)
        noise += 2000 * np.sin(2 * np.pi * 880 * t) * (np.sin(2 * np.pi * 0.2 * t) > 0.9)
        samples = np.clip(noise, -32768, 32767).astype(np.int16)
        cpu_before = time.process_time()
        wall_before = time.monotonic()
        results = await self.pipeline.run(ArraySource(samples, tail_silence=0.0))
        cpu = time.process_time() - cpu_before
        return {
            "audio_s": seconds,
            "cpu_s": cpu,
            "wall_s": time.monotonic() - wall_before,
            "cpu_share_of_one_core": cpu / seconds,
            "false_wakes": float(len(results)),
        }


async def _measure(
    engines: Engines,
    config: AppConfig,
    turns: int,
    listen_seconds: float,
    say: Say,
    progress: Callable[[str], None],
    self_speech_minutes: float,
) -> dict[str, Any]:
    report: dict[str, Any] = {}
    recording = _request_recording(engines)
    settings = _without_memory(pipeline_settings(config))
    async with Pipeline(engines, NullSink(), EventBus(), settings) as pipeline:
        bench = _Bench(engines, config, pipeline)
        await bench.same_starting_state()
        await bench.realtime_turn(recording)  # warm-up: first calls allocate buffers
        say(f"{turns} spoken turn(s) in real time …")
        per_turn = []
        for index in range(turns):
            await bench.same_starting_state()
            result = await bench.realtime_turn(recording)
            await bench.same_starting_state()
            isolated = await bench.critical_path(result)
            row: dict[str, Any] = {k: result.timings.get(k, float("nan")) for k in _STAGES}
            row["critical_path"] = isolated["total"]
            row["ttfa_over_critical_path"] = result.timings["ttfa"] / isolated["total"]
            row["isolated"] = isolated
            row["transcript"] = result.transcript
            row["reply"] = result.reply
            per_turn.append(row)
            progress(
                f"turn {index + 1}: TTFA {row['ttfa'] * 1000:.0f} ms, critical path "
                f"{row['critical_path'] * 1000:.0f} ms, ratio {row['ttfa_over_critical_path']:.2f}"
            )
        report["turns_detail"] = per_turn
        report["median"] = {
            key: statistics.median(r[key] for r in per_turn)
            for key in (*_STAGES, "critical_path", "ttfa_over_critical_path")
        }
        say("Streaming vs full reply …")
        report["streaming"] = await bench.streaming_vs_full()
        say(f"Wake-word listening on {listen_seconds:.0f} s of non-speech …")
        report["wake_listening"] = await bench.wake_listening_cpu(listen_seconds)
        # Peak with every model loaded and used, before the barge-in and self-wake runs
        # (which hold minutes of test audio in memory).
        report["peak_rss_mb"] = _rss_mb()
        say("Barge-in: the wake word over a reply, in a room that echoes …")
        report["barge_in"] = await bench.barge_in()
    if turns >= 2:  # `--turns 1` is the quick check: it skips the language model's tool call
        say("Actions: end of speech → action done, fast path vs the language model's call …")
        from appliance.bench.actions import action_latency

        report["actions"] = await action_latency(engines, settings, runs=actions_runs(turns))
    say(f"Its own speech played into the microphone ({self_speech_minutes:.0f} min) …")
    report["self_wakes"] = self_wakes(engines, self_speech_minutes)
    return report


_STAGES = (
    "stt",
    "llm_first_token",
    "llm_first_sentence",
    "tts_first_sentence",
    "ttfa",
    "llm_total",
    "turn",
)


def actions_runs(turns: int) -> int:
    """Turns of each path (fast, language model) for the actions figures: at least 2."""
    return max(2, min(turns, 3))


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
        from appliance.bench.actions import action_latency

        say("Loading models …")
        engines = load_engines(config, progress=progress)
        say("Actions: end of speech → action done, fast path vs the language model's call …")
        settings = _without_memory(pipeline_settings(config))
        report["actions"] = asyncio.run(action_latency(engines, settings, actions_runs(turns)))
        _say_table(_action_rows(report), say)
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
        settings = _without_memory(pipeline_settings(config))
        figures = understanding_figures(engines, settings, config, progress=progress)
        report["understanding"] = asyncio.run(figures)
        _say_table(table_rows(report["understanding"]), say)
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
        settings = _without_memory(pipeline_settings(config))
        report["latency"] = asyncio.run(felt_latency(engines, settings, progress))
        _say_table(table_rows(report["latency"]), say)
        _save(report, json_path, say)
        return 0
    say("Benchmark: cold start in a fresh process …")
    report["cold_start"] = cold_start(config, config_path)
    say("Loading models …")
    engines = load_engines(config, progress=progress)
    measured = _measure(engines, config, turns, listen_seconds, say, progress, self_speech_minutes)
    report.update(asyncio.run(measured))
    say("Language models: mmap vs read, first token, tokens/s …")
    report["llm_backends"] = llm_figures(config)
    say('Vision: "read this" with OCR, and the RAM of the OCR models …')
    from appliance.bench.vision import vision_figures

    report["vision"] = vision_figures(engines.tts, threads=config.vision.ocr_threads)

    _print_table(report, say)
    _save(report, json_path, say)
    return 0


def _save(report: dict[str, Any], json_path: Path | None, say: Say) -> None:
    text = json.dumps(report, indent=2)
    say(text)
    if json_path:
        json_path.write_text(text + "\n", "utf-8")


def _say_table(rows: list[tuple[str, str, str]], say: Say) -> None:
    width = max((len(r[0]) for r in rows), default=10)
    say(f"\n{'measure'.ljust(width)}  {'value':>10}  target")
    for name, value, target in rows:
        say(f"{name.ljust(width)}  {value:>10}  {target}")
    say("")


def _action_rows(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    acts = report.get("actions", {})
    if not acts:
        return []

    def ms(key: str) -> str:
        return f"{acts[key] * 1000:.0f} ms" if acts.get(key) else "no valid call"

    runs = acts.get("runs", 0)
    rows = [
        (f"End of speech → action done, fast path (median of {runs})", ms("fast_s"), ""),
        (f"End of speech → action done, LLM tool call (median of {runs})", ms("llm_s"), ""),
        ("End of speech → answer ready, fast path", ms("fast_answer_s"), ""),
        ("End of speech → answer ready, LLM call + phrasing", ms("llm_answer_s"), ""),
    ]
    if acts.get("llm_over_fast"):
        rows.append(("Action done: LLM path / fast path", f"{acts['llm_over_fast']:.1f}×", ""))
    if acts.get("llm_over_fast_answer"):
        rows.append(
            ("Answer ready: LLM path / fast path", f"{acts['llm_over_fast_answer']:.1f}×", "")
        )
    phrasing = acts.get("phrasing")
    if phrasing:
        rows.append(
            (
                "LLM phrasings that kept the facts (used)",
                f"{phrasing['accepted']}/{phrasing['requests']}",
                "",
            )
        )
    return rows


def _print_table(report: dict[str, Any], say: Say) -> None:
    median = report["median"]
    stream = report["streaming"]
    wake = report["wake_listening"]
    cold = report["cold_start"]
    rows = [
        ("STT (whisper.cpp)", f"{median['stt'] * 1000:.0f} ms", ""),
        ("LLM first token", f"{median['llm_first_token'] * 1000:.0f} ms", ""),
        ("LLM first sentence", f"{median['llm_first_sentence'] * 1000:.0f} ms", ""),
        ("TTS first sentence", f"{median['tts_first_sentence'] * 1000:.0f} ms", ""),
        ("End of speech → first audio (TTFA)", f"{median['ttfa'] * 1000:.0f} ms", ""),
        ("Critical path, stages in isolation", f"{median['critical_path'] * 1000:.0f} ms", ""),
        ("TTFA / critical path", f"{median['ttfa_over_critical_path']:.2f}", "≤ 1.10"),
        (
            f"First audio: full reply / streaming ({stream['sentences']:.0f} sentences)",
            f"{stream['ratio_full_over_streaming']:.2f}×",
            "≥ 2×",
        ),
        (
            "Wake listening CPU (share of one core)",
            f"{wake['cpu_share_of_one_core'] * 100:.1f} %",
            "≤ 5 %",
        ),
        ("Peak RSS, all models loaded", f"{report['peak_rss_mb']:.0f} MB", "≤ 800 MB"),
        ("Cold start to listening", f"{cold['cold_start_s']:.2f} s", "≤ 1.5 s"),
        ("Cold start to every model loaded", f"{cold['all_loaded_s']:.2f} s", ""),
    ]
    barge = report.get("barge_in", {})
    if barge.get("interrupted"):
        rows.append(
            (
                "Barge-in: wake recognised → speaker silent",
                f"{barge['recognised_to_silence_s'] * 1000:.0f} ms",
                "",
            )
        )
    rows += _action_rows(report)
    own = report.get("self_wakes")
    if own:
        rows.append(
            (
                f"False self-wakes/hour of own speech (Speex, {own['own_speech_minutes']:.0f} min)",
                f"{own['speex_per_hour']:.1f}",
                "",
            )
        )
        rows.append(
            (
                "False self-wakes/hour of own speech (no AEC, threshold 0.85)",
                f"{own['no_aec_per_hour']:.1f}",
                "",
            )
        )
        if "jarvis_replies" in own:
            rows.append(
                (
                    'Replies saying "Jarvis" early that woke it (Speex kept + gate / reset, '
                    "no gate)",
                    f"{own['jarvis_woke']:.0f} / {own['jarvis_woke_before']:.0f} of "
                    f"{own['jarvis_replies']:.0f}",
                    "",
                )
            )
        for name, label in (("speex", "Speex"), ("no_aec", "no AEC")):
            if f"{name}_stops_per_hour" in own:
                rows.append(
                    (
                        f'False "stop"s/hour of own speech ({label}, keyword head)',
                        f"{own[f'{name}_stops_per_hour']:.1f}",
                        "",
                    )
                )
    if "vision" in report:
        from appliance.bench.vision import table_rows

        rows += table_rows(report["vision"])
    _say_table(rows, say)
    say(
        "language model            load (mmap / read)   RSS file+anon (mmap / read)     "
        "first token  tokens/s"
    )
    for name, row in report["llm_backends"].items():
        if name == "rkllm":
            state = "available" if row["available"] else "not available"
            say(f"{name:<26} {state}: {row['reason']}")
            continue
        m, r = row["mmap"], row["read"]
        say(
            f"{name:<26} {m['load_s']:5.2f} s / {r['load_s']:5.2f} s     "
            f"{m['file_mb']:4.0f}+{m['anon_mb']:4.0f} / {r['file_mb']:4.0f}+{r['anon_mb']:4.0f} MB"
            f"          {m['ttft_s'] * 1000:5.0f} ms  {m['tokens_per_s']:6.1f}"
        )
    say("")
