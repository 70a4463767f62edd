"""Building the real engines from the configuration and the models directory.

The language model is the one load that can sink a small board, so it is planned first
against the memory the board really has (`models.budget`) after the other engines are
loaded: loaded as configured, with a smaller context, replaced by a smaller model of the
catalog, or refused with the numbers. Every plan is reported through `on_plan`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.audio.turn import SmartTurn, TurnDetector
from appliance.audio.vad import EndpointSettings, SileroVad
from appliance.config import AppConfig, resolve_threads
from appliance.deferred import DeferredVoice
from appliance.errors import ModelError
from appliance.llm.base import LanguageModel
from appliance.models.budget import (
    LoadPlan,
    MemoryState,
    gguf_need,
    plan_load,
    rkllm_need,
    this_machine,
)
from appliance.models.catalog import ModelEntry, ModelStore
from appliance.pipeline import Engines, PipelineSettings
from appliance.system import llm_threads

_LOGGER = logging.getLogger(__name__)
Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


def _ignore_plan(_: LoadPlan) -> None:
    return None


@dataclass(frozen=True)
class LlmChoice:
    entry: ModelEntry
    backend: str
    """llama.cpp or rkllm."""
    plan: LoadPlan


def load_engines(
    config: AppConfig,
    store: ModelStore | None = None,
    progress: Progress = _quiet,
    *,
    need_listening: bool = True,
    memory: Callable[[], MemoryState] = this_machine,
    on_plan: Callable[[LoadPlan], None] = _ignore_plan,
    defer: bool = False,
    load_times: dict[str, float] | None = None,
) -> Engines:
    """Load every engine, checking each model file first. Raises ModelError with a fix.

    `need_listening=False` (for `appliance ask`) skips the wake word, VAD and STT.
    `memory` reads the board's memory state just before the language model is planned.
    `defer=True` (the service) returns once the listening engines and the language model
    are loaded: the voice goes on loading on its own thread (`appliance.deferred`;
    `finish_loading` waits for it and raises a failure). `load_times` receives each
    model's load time in seconds (a deferred one's when it is done).
    """
    store = store or ModelStore(config.models_path())
    started = time.monotonic()
    times = load_times if load_times is not None else {}

    def step(label: str) -> Callable[[], None]:
        begun = time.monotonic()
        progress(f"loading {label} …")

        def done() -> None:
            times[label] = time.monotonic() - begun
            progress(f"loaded {label} in {times[label]:.2f} s")

        return done

    wake = vad = stt = stop = turn = None
    turn_unavailable = ""
    if need_listening:
        done = step(f"wake word {config.wake.model}")
        wake = _wake_detector(config, store)
        done()
        stop = _load_stop_keyword(config, store)
        done = step("voice activity detector silero-vad")
        vad = SileroVad(store.path("silero-vad", "vad"))
        done()
        turn, turn_unavailable = _load_turn_detector(config, store, step)
        done = step(f"speech-to-text {config.stt.model}")
        stt = _whisper(config, store)
        done()

    voice_path = store.path(config.tts.voice, "tts")

    def load_voice() -> Any:
        done = step(f"voice {config.tts.voice}")
        voice = _piper(config, voice_path)
        done()
        return voice

    if defer:
        # The plan below must count the voice, which is not in memory yet.
        state = _less(memory(), _ram_bytes(store.entry(config.tts.voice, "tts")))
    else:
        tts: Any = load_voice()
        state = memory()

    choice = choose_llm(config, store, state)
    on_plan(choice.plan)
    log = (
        _LOGGER.warning
        if choice.plan.decision in ("fallback", "smaller_context")
        else (_LOGGER.info)
    )
    log("language model: %s", choice.plan.message)
    if not choice.plan.ok:
        raise ModelError(choice.plan.message)
    # Never beside other work: llama-cpp-python sends the whole process's stdout and
    # stderr to /dev/null while it loads a model, so a log line or an event written by
    # another thread meanwhile would be lost.
    done = step(f"language model {choice.entry.name} ({choice.backend})")
    llm = _load_llm(config, store, choice)
    done()
    if defer:
        tts = DeferredVoice("voice", voice_path, load_voice)
        _LOGGER.info("listening engines loaded in %.2f s", time.monotonic() - started)
    else:
        _LOGGER.info("all engines loaded in %.2f s", time.monotonic() - started)
    return Engines(
        llm=llm,
        tts=tts,
        wake=wake,
        vad=vad,
        stt=stt,
        stop=stop,
        turn=turn,
        turn_unavailable=turn_unavailable,
    )


def speech_engines(
    config: AppConfig, store: ModelStore | None = None, progress: Progress = _quiet
) -> tuple[Any, Any, Any]:
    """Speech-to-text, the voice and the wake word, and nothing else (no language model,
    VAD or end of turn): what `appliance serve-wyoming` offers."""
    store = store or ModelStore(config.models_path())
    progress(f"loading speech-to-text {config.stt.model}, voice {config.tts.voice} and "
             f"wake word {config.wake.model} …")  # fmt: skip
    return (
        _whisper(config, store),
        _piper(config, store.path(config.tts.voice, "tts")),
        _wake_detector(config, store),
    )


def _wake_detector(config: AppConfig, store: ModelStore) -> Any:
    from appliance.wake.openwakeword import OpenWakeWordDetector

    return OpenWakeWordDetector(
        store.path(config.wake.model, "wake"),
        store.path("oww-melspectrogram", "wake-features"),
        store.path("oww-embedding", "wake-features"),
        threshold=config.wake.threshold,
        name=config.wake.model,
    )


def _whisper(config: AppConfig, store: ModelStore) -> Any:
    from appliance.stt.whispercpp import WhisperCppStt

    return WhisperCppStt(
        store.path(config.stt.model, "stt"),
        threads=resolve_threads(config.stt.threads),
        language=config.stt.language,
        fit_context=config.stt.fit_context,
    )


def _piper(config: AppConfig, voice_path: Path) -> Any:
    from appliance.tts.piper import PiperTts

    return PiperTts(
        voice_path,
        length_scale=config.tts.length_scale,
        threads=resolve_threads(config.tts.threads),
        vary=config.tts.vary,
    )


def _ram_bytes(entry: ModelEntry) -> int:
    """What the catalog measured a model to take once loaded and run (0 if unmeasured)."""
    return int(entry.ram.total_mb * 2**20) if entry.ram else 0


def _less(state: MemoryState, used: int) -> MemoryState:
    return dataclasses.replace(state, mem_available=max(0, state.mem_available - used))


TURN_MODEL = "smart-turn-v3.2"


def _load_turn_detector(
    config: AppConfig, store: ModelStore, step: Callable[[str], Callable[[], None]]
) -> tuple[TurnDetector | None, str]:
    """The end-of-turn model, or None and why (`listen.end_of_turn = "silence"` needs no
    reason). A missing or broken file is not fatal: requests end after a fixed silence."""
    if config.listen.end_of_turn != "smart":
        return None, ""
    done = step(f"end-of-turn model {TURN_MODEL}")
    try:
        detector = SmartTurn(store.path(TURN_MODEL, "turn"))
    except ModelError as err:
        _LOGGER.warning("end-of-turn model unavailable: %s", err)
        return None, str(err)
    done()
    return detector, ""


def _load_stop_keyword(config: AppConfig, store: ModelStore):  # -> StopWordDetector | None
    """The "stop" keyword head `models prepare` made; without it (or turned off), "stop"
    over a reply is left to the speech-to-text check."""
    from appliance.wake.stopword import FILE_NAME, StopWordDetector, StopWordModel

    threshold = config.conversation.stop_keyword_threshold
    path = store.root / FILE_NAME
    if threshold <= 0:
        return None
    if not path.is_file():
        _LOGGER.warning(
            "no stop keyword model at %s: run `appliance models prepare` to make it", path
        )
        return None
    return StopWordDetector(StopWordModel.load(path, threshold=threshold))


def choose_llm(config: AppConfig, store: ModelStore, state: MemoryState) -> LlmChoice:
    """Which language model, on which backend, with which context, given the memory."""
    from appliance.models.gguf import read_gguf_info

    entry = store.entry(config.llm.model, "llm")
    backend = _backend_for(config, store, entry)
    if backend == "rkllm":
        npu_entry = entry if entry.facts.get("backend") == "rkllm" else _first_rkllm(store)
        assert npu_entry is not None  # `_backend_for` said there is one
        size = store.path(npu_entry.name, "llm").stat().st_size
        need = rkllm_need(npu_entry.name, size, config.llm.context)
        plan = plan_load(need, state)
        if plan.ok:
            message = (f"{npu_entry.name} runs on the NPU, with {need.weights / 2**20:,.0f} MB "
                       "of the board's RAM for its weights, KV cache and runtime (the NPU "
                       "has no memory of its own)")  # fmt: skip
            return LlmChoice(npu_entry, "rkllm", dataclasses.replace(plan, message=message))
        if config.llm.backend == "rkllm" or entry.facts.get("backend") == "rkllm":
            raise ModelError(plan.message)
        _LOGGER.warning("%s; the CPU (llama.cpp) answers with %s instead", plan.message,
                        entry.name)  # fmt: skip
    if entry.facts.get("backend") == "rkllm":
        raise ModelError(f"{entry.name} is an NPU (.rkllm) model but {_npu_reason()}")
    info = read_gguf_info(store.path(entry.name, "llm"))
    need = gguf_need(entry.name, info, config.llm.context)
    plan = plan_load(need, state, smaller_context=lambda c: gguf_need(entry.name, info, c))
    if plan.ok:
        return LlmChoice(entry, "llama.cpp", plan)
    # Only now look at the other prepared language models (hashing files takes time).
    smaller = [
        gguf_need(e.name, read_gguf_info(store.root / e.main_file.path), config.llm.context)
        for e in store.prepared("llm")
        if e.name != entry.name and e.size < entry.size and e.facts.get("backend") != "rkllm"
    ]
    plan = plan_load(need, state, smaller_context=lambda c: gguf_need(entry.name, info, c),
                     fallbacks=smaller)  # fmt: skip
    chosen = store.catalog[plan.model] if plan.ok else entry
    return LlmChoice(chosen, "llama.cpp", plan)


def _backend_for(config: AppConfig, store: ModelStore, entry: ModelEntry) -> str:
    wanted = config.llm.backend
    has_model = entry.facts.get("backend") == "rkllm" or _first_rkllm(store) is not None
    if wanted == "llama.cpp" or (wanted == "auto" and not has_model):
        return "llama.cpp"  # no .rkllm model: no need to probe the NPU (it costs a start)
    from appliance.npu import detect_npu

    npu = detect_npu(declared=config.llm.rkllm_runtime)
    usable = npu.rkllm_supported and npu.usable_runtime
    if wanted == "rkllm":
        if not usable:
            raise ModelError(f"llm.backend is rkllm but the NPU path is off: {npu.reason}")
        if not has_model:
            raise ModelError(
                "llm.backend is rkllm but no .rkllm model is imported; convert one with "
                "Rockchip's rkllm-toolkit and `appliance models import MODEL.rkllm`"
            )
        return "rkllm"
    return "rkllm" if usable else "llama.cpp"


def _first_rkllm(store: ModelStore) -> ModelEntry | None:
    return next((e for e in store.user_entries.values() if e.facts.get("backend") == "rkllm"),
                None)  # fmt: skip


def _npu_reason() -> str:
    from appliance.npu import detect_npu

    return f"the NPU path is off: {detect_npu().reason}"


def _load_llm(config: AppConfig, store: ModelStore, choice: LlmChoice) -> LanguageModel:
    path = store.path(choice.entry.name, "llm")
    context = choice.plan.context or config.llm.context
    if choice.backend == "rkllm":
        from appliance.llm.rkllm import RkllmLlm

        return RkllmLlm(path, context=context, max_tokens=config.llm.max_tokens,
                        temperature=config.llm.temperature,
                        runtime=config.llm.rkllm_runtime)  # fmt: skip
    from appliance.llm.llamacpp import LlamaCppLlm

    threads = config.llm.threads or llm_threads()
    return LlamaCppLlm(
        path,
        threads=threads,
        context=context,
        max_tokens=config.llm.max_tokens,
        temperature=config.llm.temperature,
        mlock=choice.plan.mlock,
    )


def pipeline_settings(config: AppConfig) -> PipelineSettings:
    listen = config.listen
    return PipelineSettings(
        endpoint=EndpointSettings(
            threshold=listen.vad_threshold,
            silence_seconds=listen.silence_seconds,
            pause_seconds=listen.pause_seconds,
            max_pause_seconds=listen.max_pause_seconds,
            pre_roll_seconds=listen.pre_roll_seconds,
            max_speech_seconds=listen.max_speech_seconds,
            no_speech_timeout=listen.no_speech_timeout,
        ),
        system_prompt=config.llm.system_prompt,
        wake_phrase=config.wake.model.replace("_", " "),
        first_clause_chars=config.tts.first_clause_chars,
        conversation=config.conversation,
    )
