"""`appliance bench`: spoken turns through one long-lived pipeline, in real time and stage
by stage on its own stage threads, streaming vs the whole reply first, barge-in over a reply
in an echoing room, and the CPU of listening for the wake word."""

from __future__ import annotations

import dataclasses
import resource
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from appliance.app import App, Parts
from appliance.audio.format import int16_to_float
from appliance.audio.sinks import NullSink
from appliance.audio.sources import ArraySource
from appliance.bench.self_wakes import self_wakes
from appliance.bench.table import Say
from appliance.config import AppConfig
from appliance.engines import pipeline_settings
from appliance.events import EventBus
from appliance.llm.base import Message
from appliance.pipeline import Engines, Pipeline, PipelineSettings, TurnResult
from appliance.pipeline.sentences import SentenceSplitter
from appliance.testing.speech import add_noise, compose, tts_phrase

QUESTION = "What is the capital of France?"
LONG_REQUEST = "Tell me three facts about the moon."


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def without_memory(settings: PipelineSettings) -> PipelineSettings:
    """Every timed turn alike: no conversation memory (it lengthens later prompts) and no
    follow-up window."""
    quiet = dataclasses.replace(
        settings.conversation,
        history_tokens=0,
        follow_up_seconds=0.0,
        question_follow_up_seconds=0.0,
    )
    return dataclasses.replace(settings, conversation=quiet)


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
    stages "in isolation" run on that pipeline's own stage threads (`StageThread`)."""

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
        settings = without_memory(pipeline_settings(self.config))
        # The second wake word comes 1 s after the reply has been playing for 1 s, however
        # long the reply took to start (on a loaded machine it once came before it).
        room = EchoRoom(add_noise(long_request), sink.log, gain_db=-12.0,
                        hold_at=len(request) / 16_000 + 1.0)  # fmt: skip
        app = App(self.config, self.engines, sink, bus, settings=settings,
                  echo=SpeexEchoCanceller(), parts=Parts(actions=False, vision=False))  # fmt: skip
        try:
            async with app:
                await app.pipeline.run(room)
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


async def measure(
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
    settings = without_memory(pipeline_settings(config))
    bare = Parts(actions=False, vision=False)  # the stages alone, as the service runs them
    async with App(config, engines, NullSink(), EventBus(), settings=settings, parts=bare) as app:
        bench = _Bench(engines, config, app.pipeline)
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
        from appliance.bench.actions import action_latency, actions_runs

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
