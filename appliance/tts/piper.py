"""Piper TTS on an ONNX voice from the models directory (the voice downloader is never used)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np

from appliance.errors import ModelError, TextToSpeechError


class PiperTts:
    def __init__(
        self,
        voice_path: Path,
        *,
        length_scale: float = 1.0,
        threads: int = 1,
        vary: bool = True,
    ) -> None:
        """`vary=False` turns off the voice's random noise (VITS noise and phoneme-width
        noise), so the same text gives the same samples every time: tests and benchmarks
        then hear one voice, not a new draw per run."""
        try:
            import onnxruntime as ort
            from piper import PiperVoice
            from piper.config import PiperConfig, SynthesisConfig
        except ImportError as err:
            raise ModelError(f"piper-tts is not installed ({err}); run ./setup.sh") from err
        voice_path = Path(voice_path)
        config_path = voice_path.with_name(voice_path.name + ".json")
        for needed in (voice_path, config_path):
            if not needed.is_file():
                raise ModelError(f"Piper voice file {needed} is missing; run ./setup.sh")
        try:
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            if threads != 1:
                # Idle pool threads sleep instead of spinning: the wake word, the VAD and
                # whisper (a barge-in, the next request) need those cores between sentences.
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            # Every sentence has another input length: planned memory patterns only waste.
            options.enable_mem_pattern = False
            config = PiperConfig.from_dict(json.loads(config_path.read_text("utf-8")))
            session = ort.InferenceSession(
                str(voice_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
            self._voice = PiperVoice(config=config, session=session)
        except Exception as err:
            raise ModelError(f"Piper cannot load the voice {voice_path}: {err}") from err
        self.voice_path = voice_path
        self.sample_rate = int(config.sample_rate)
        self._vary = vary
        self._synthesis_config_type = SynthesisConfig
        self._syn = self._synthesis_config(length_scale)
        self._lock = threading.Lock()

    def set_length_scale(self, length_scale: float) -> None:
        """Change the speaking rate from the next sentence on (the config page)."""
        with self._lock:
            self._syn = self._synthesis_config(length_scale)

    def _synthesis_config(self, length_scale: float) -> Any:
        make = self._synthesis_config_type
        if self._vary:
            return make(length_scale=length_scale)
        return make(length_scale=length_scale, noise_scale=0.0, noise_w_scale=0.0)

    def synthesize(self, text: str) -> np.ndarray:
        try:
            with self._lock:
                chunks = [c.audio_int16_array for c in self._voice.synthesize(text, self._syn)]
        except Exception as err:
            raise TextToSpeechError(f"Piper failed to speak {text[:40]!r}: {err}") from err
        if not chunks:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(chunks).astype(np.int16, copy=False)
