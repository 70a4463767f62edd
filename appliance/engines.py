"""Building the real engines from the configuration and the models directory."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from appliance.audio.vad import EndpointSettings, SileroVad
from appliance.config import AppConfig, resolve_threads
from appliance.models.catalog import ModelStore
from appliance.pipeline import Engines, PipelineSettings

_LOGGER = logging.getLogger(__name__)
Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


def load_engines(
    config: AppConfig,
    store: ModelStore | None = None,
    progress: Progress = _quiet,
    *,
    need_listening: bool = True,
) -> Engines:
    """Load every engine, checking each model file first. Raises ModelError with a fix.

    `need_listening=False` (for `appliance ask`) skips the wake word, VAD and STT.
    """
    store = store or ModelStore(config.models_path())
    started = time.monotonic()

    def step(label: str) -> Callable[[], None]:
        begun = time.monotonic()
        progress(f"loading {label} …")
        return lambda: progress(f"loaded {label} in {time.monotonic() - begun:.2f} s")

    wake = vad = stt = None
    if need_listening:
        from appliance.stt.whispercpp import WhisperCppStt
        from appliance.wake.openwakeword import OpenWakeWordDetector

        done = step(f"wake word {config.wake.model}")
        wake = OpenWakeWordDetector(
            store.path(config.wake.model, "wake"),
            store.path("oww-melspectrogram", "wake-features"),
            store.path("oww-embedding", "wake-features"),
            threshold=config.wake.threshold,
            name=config.wake.model,
        )
        done()
        done = step("voice activity detector silero-vad")
        vad = SileroVad(store.path("silero-vad", "vad"))
        done()
        done = step(f"speech-to-text {config.stt.model}")
        stt = WhisperCppStt(
            store.path(config.stt.model, "stt"),
            threads=resolve_threads(config.stt.threads),
            language=config.stt.language,
            fit_context=config.stt.fit_context,
        )
        done()

    from appliance.llm.llamacpp import LlamaCppLlm
    from appliance.tts.piper import PiperTts

    done = step(f"language model {config.llm.model}")
    llm = LlamaCppLlm(
        store.path(config.llm.model, "llm"),
        threads=resolve_threads(config.llm.threads),
        context=config.llm.context,
        max_tokens=config.llm.max_tokens,
        temperature=config.llm.temperature,
    )
    done()
    done = step(f"voice {config.tts.voice}")
    tts = PiperTts(
        store.path(config.tts.voice, "tts"),
        length_scale=config.tts.length_scale,
        threads=resolve_threads(config.tts.threads),
    )
    done()
    _LOGGER.info("all engines loaded in %.2f s", time.monotonic() - started)
    return Engines(llm=llm, tts=tts, wake=wake, vad=vad, stt=stt)


def pipeline_settings(config: AppConfig) -> PipelineSettings:
    listen = config.listen
    return PipelineSettings(
        endpoint=EndpointSettings(
            threshold=listen.vad_threshold,
            silence_seconds=listen.silence_seconds,
            pre_roll_seconds=listen.pre_roll_seconds,
            max_speech_seconds=listen.max_speech_seconds,
            no_speech_timeout=listen.no_speech_timeout,
        ),
        system_prompt=config.llm.system_prompt,
        wake_phrase=config.wake.model.replace("_", " "),
        tts_threads=resolve_threads(config.tts.threads),
    )
