"""whisper.cpp's C API through ctypes, on the `libwhisper` that the pywhispercpp wheel
ships.

pywhispercpp's own bindings cover transcription, but not the decoder: its `whisper_decode`
takes one token and its logits come back as one float. Scoring a sentence against what
was said ("how likely is *turn on the porch light* for this audio?") needs both, so the
engine talks to the library directly. The parameter struct is declared from whisper.h
(1.8) and checked against the library's own defaults when it loads: a library whose
layout differs is refused with a clear error instead of being called wrongly.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from appliance.errors import ModelError

SUPPORTED_VERSIONS = ("1.8.",)
"""whisper.cpp releases whose `whisper_full_params` layout `FullParams` declares."""


class FullParams(ctypes.Structure):
    """`struct whisper_full_params` of whisper.h 1.8 (304 bytes on 64-bit Linux)."""

    _fields_ = [
        ("strategy", ctypes.c_int),
        ("n_threads", ctypes.c_int),
        ("n_max_text_ctx", ctypes.c_int),
        ("offset_ms", ctypes.c_int),
        ("duration_ms", ctypes.c_int),
        ("translate", ctypes.c_bool),
        ("no_context", ctypes.c_bool),
        ("no_timestamps", ctypes.c_bool),
        ("single_segment", ctypes.c_bool),
        ("print_special", ctypes.c_bool),
        ("print_progress", ctypes.c_bool),
        ("print_realtime", ctypes.c_bool),
        ("print_timestamps", ctypes.c_bool),
        ("token_timestamps", ctypes.c_bool),
        ("thold_pt", ctypes.c_float),
        ("thold_ptsum", ctypes.c_float),
        ("max_len", ctypes.c_int),
        ("split_on_word", ctypes.c_bool),
        ("max_tokens", ctypes.c_int),
        ("debug_mode", ctypes.c_bool),
        ("audio_ctx", ctypes.c_int),
        ("tdrz_enable", ctypes.c_bool),
        ("suppress_regex", ctypes.c_char_p),
        ("initial_prompt", ctypes.c_char_p),
        ("carry_initial_prompt", ctypes.c_bool),
        ("prompt_tokens", ctypes.c_void_p),
        ("prompt_n_tokens", ctypes.c_int),
        ("language", ctypes.c_char_p),
        ("detect_language", ctypes.c_bool),
        ("suppress_blank", ctypes.c_bool),
        ("suppress_nst", ctypes.c_bool),
        ("temperature", ctypes.c_float),
        ("max_initial_ts", ctypes.c_float),
        ("length_penalty", ctypes.c_float),
        ("temperature_inc", ctypes.c_float),
        ("entropy_thold", ctypes.c_float),
        ("logprob_thold", ctypes.c_float),
        ("no_speech_thold", ctypes.c_float),
        ("greedy_best_of", ctypes.c_int),
        ("beam_size", ctypes.c_int),
        ("beam_patience", ctypes.c_float),
        ("new_segment_callback", ctypes.c_void_p),
        ("new_segment_callback_user_data", ctypes.c_void_p),
        ("progress_callback", ctypes.c_void_p),
        ("progress_callback_user_data", ctypes.c_void_p),
        ("encoder_begin_callback", ctypes.c_void_p),
        ("encoder_begin_callback_user_data", ctypes.c_void_p),
        ("abort_callback", ctypes.c_void_p),
        ("abort_callback_user_data", ctypes.c_void_p),
        ("logits_filter_callback", ctypes.c_void_p),
        ("logits_filter_callback_user_data", ctypes.c_void_p),
        ("grammar_rules", ctypes.c_void_p),
        ("n_grammar_rules", ctypes.c_size_t),
        ("i_start_rule", ctypes.c_size_t),
        ("grammar_penalty", ctypes.c_float),
        ("vad", ctypes.c_bool),
        ("vad_model_path", ctypes.c_char_p),
        ("vad_threshold", ctypes.c_float),
        ("vad_min_speech_duration_ms", ctypes.c_int),
        ("vad_min_silence_duration_ms", ctypes.c_int),
        ("vad_max_speech_duration_s", ctypes.c_float),
        ("vad_speech_pad_ms", ctypes.c_int),
        ("vad_samples_overlap", ctypes.c_float),
    ]


_EXPECTED_DEFAULTS = {
    "n_max_text_ctx": 16384,
    "greedy_best_of": 5,
    "beam_size": -1,
    "grammar_penalty": 100.0,
    "vad_threshold": 0.5,
    "vad_min_speech_duration_ms": 250,
    "vad_speech_pad_ms": 30,
}
"""whisper.cpp's defaults for fields spread over the whole struct: if the library reports
these at these offsets, the declared layout is the library's."""


def load_library() -> ctypes.CDLL:
    """The libwhisper that pywhispercpp loaded (by its soname, so the same copy)."""
    try:
        import _pywhispercpp  # noqa: F401  (loads libwhisper.so.1 into the process)
    except ImportError as err:
        raise ModelError(f"pywhispercpp is not installed ({err}); run ./setup.sh") from err
    try:
        lib = ctypes.CDLL("libwhisper.so.1")
    except OSError:
        import _pywhispercpp as module

        found = sorted(Path(str(module.__file__)).parent.glob("libwhisper.so*"))
        if not found:
            missing = "libwhisper.so.1 not found beside pywhispercpp; run ./setup.sh"
            raise ModelError(missing) from None
        lib = ctypes.CDLL(str(found[0]))
    _declare(lib)
    version = lib.whisper_version().decode()
    if not version.startswith(SUPPORTED_VERSIONS):
        supported = ", ".join(v + "x" for v in SUPPORTED_VERSIONS)
        raise ModelError(f"whisper.cpp {version} is not a supported version ({supported}); "
                         "run ./setup.sh")  # fmt: skip
    defaults = lib.whisper_full_default_params_by_ref(0)
    try:
        for name, value in _EXPECTED_DEFAULTS.items():
            if not math.isclose(getattr(defaults.contents, name), value):
                raise ModelError(f"whisper.cpp {version}'s parameters are not laid out as "
                                 f"whisper.h 1.8 declares ({name}); run ./setup.sh")  # fmt: skip
    finally:
        lib.whisper_free_params(defaults)
    return lib


def _declare(lib: ctypes.CDLL) -> None:
    c_ptr, c_int, c_float_p = ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_float)
    signatures = {
        "whisper_version": ([], ctypes.c_char_p),
        "whisper_init_from_file_no_state": ([ctypes.c_char_p], c_ptr),
        "whisper_init_state": ([c_ptr], c_ptr),
        "whisper_free_state": ([c_ptr], None),
        "whisper_free": ([c_ptr], None),
        "whisper_free_params": ([ctypes.POINTER(FullParams)], None),
        "whisper_full_default_params_by_ref": ([c_int], ctypes.POINTER(FullParams)),
        "whisper_full_with_state": ([c_ptr, c_ptr, FullParams, c_float_p, c_int], c_int),
        "whisper_full_n_segments_from_state": ([c_ptr], c_int),
        "whisper_full_get_segment_text_from_state": ([c_ptr, c_int], ctypes.c_char_p),
        "whisper_tokenize": ([c_ptr, ctypes.c_char_p, ctypes.POINTER(c_int), c_int], c_int),
        "whisper_decode_with_state": (
            [c_ptr, c_ptr, ctypes.POINTER(c_int), c_int, c_int, c_int],
            c_int,
        ),  # fmt: skip
        "whisper_get_logits_from_state": ([c_ptr], c_float_p),
        "whisper_n_vocab": ([c_ptr], c_int),
        "whisper_is_multilingual": ([c_ptr], c_int),
        "whisper_lang_id": ([ctypes.c_char_p], c_int),
        "whisper_token_sot": ([c_ptr], c_int),
        "whisper_token_eot": ([c_ptr], c_int),
        "whisper_token_not": ([c_ptr], c_int),
        "whisper_token_transcribe": ([c_ptr], c_int),
        "whisper_token_lang": ([c_ptr, c_int], c_int),
        "whisper_log_set": ([c_ptr, c_ptr], None),
    }
    for name, (args, result) in signatures.items():
        function = getattr(lib, name)
        function.argtypes = args
        function.restype = result


_LOG_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
_SILENT = _LOG_CALLBACK(lambda level, text, data: None)
"""whisper.cpp prints every load and timing line on stderr; the appliance logs its own."""


class WhisperContext:
    """One model and one decoding state. Not thread safe: the caller holds a lock."""

    def __init__(self, lib: ctypes.CDLL, model_path: Path, *, language: str) -> None:
        self.lib = lib
        lib.whisper_log_set(ctypes.cast(_SILENT, ctypes.c_void_p), None)
        self.ctx = lib.whisper_init_from_file_no_state(str(model_path).encode())
        if not self.ctx:
            raise ModelError(f"whisper.cpp cannot load {model_path} (not a ggml whisper model?)")
        self.state = lib.whisper_init_state(self.ctx)
        if not self.state:
            lib.whisper_free(self.ctx)
            raise ModelError(f"whisper.cpp cannot allocate a state for {model_path}")
        self.language = language
        self.n_vocab = lib.whisper_n_vocab(self.ctx)
        prefix = [lib.whisper_token_sot(self.ctx)]
        if lib.whisper_is_multilingual(self.ctx):
            lang = lib.whisper_lang_id(language.encode())
            prefix += [lib.whisper_token_lang(self.ctx, max(0, lang)),
                       lib.whisper_token_transcribe(self.ctx)]  # fmt: skip
        self.prefix = [*prefix, lib.whisper_token_not(self.ctx)]
        self.eot = lib.whisper_token_eot(self.ctx)
        self._rows = 1

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at interpreter exit the library may be gone
            self.close()

    def close(self) -> None:
        if getattr(self, "state", None):
            self.lib.whisper_free_state(self.state)
            self.state = None
        if getattr(self, "ctx", None):
            self.lib.whisper_free(self.ctx)
            self.ctx = None

    def default_params(self) -> FullParams:
        pointer = self.lib.whisper_full_default_params_by_ref(0)
        try:
            return FullParams.from_buffer_copy(pointer.contents)
        finally:
            self.lib.whisper_free_params(pointer)

    def full(self, params: FullParams, audio: np.ndarray) -> list[str]:
        """Transcribe `audio` (float32, 16 kHz); the segments' texts. The encoder's output
        stays in the state for `sentence_logprobs`.

        Each clip gets a fresh state (15–20 ms). A state carries things over from the
        clip before (its sampler's random generator among them): with one state for
        every clip, the same recording was heard "vent light" alone and "satellite",
        "mid light" or "Met Light" after other clips. Now the same clip gives the same
        words whatever came before it."""
        fresh = self.lib.whisper_init_state(self.ctx)
        if not fresh:
            raise RuntimeError("whisper.cpp cannot allocate a state")
        self.lib.whisper_free_state(self.state)
        self.state = fresh
        samples = np.ascontiguousarray(audio, dtype=np.float32)
        pointer = samples.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        if self.lib.whisper_full_with_state(self.ctx, self.state, params, pointer, len(samples)):
            raise RuntimeError("whisper_full failed")
        count = self.lib.whisper_full_n_segments_from_state(self.state)
        texts = []
        for i in range(count):
            raw = self.lib.whisper_full_get_segment_text_from_state(self.state, i) or b""
            texts.append(raw.decode("utf-8", errors="replace"))
        return texts

    def tokenize(self, text: str) -> list[int]:
        room = max(16, 4 * len(text.encode()))
        buffer = (ctypes.c_int * room)()
        count = self.lib.whisper_tokenize(self.ctx, text.encode(), buffer, room)
        if count < 0:
            raise ValueError(f"cannot tokenize {text!r}")
        return list(buffer[:count])

    def sentence_logprobs(self, texts: Sequence[str], *, threads: int) -> list[float]:
        """log P(text | the audio of the last `full`) for each text, each token forced in
        turn (the decoder's KV cache keeps the prefix the texts share)."""
        sequences = [[*self.tokenize(" " + t.strip()), self.eot] for t in texts]
        prefix = self.prefix
        self._decode(prefix, 0, threads)
        first = self._logprobs()
        cache: list[int] = []  # the tokens after the prefix now in the KV cache
        steps: list[np.ndarray] = []  # steps[i]: log-probs after cache[:i]
        scores = [0.0] * len(sequences)
        # In token order, so that texts sharing a beginning follow each other and decode
        # it once ("turn on the porch light", "turn on the porch lights").
        for index in sorted(range(len(sequences)), key=lambda i: sequences[i]):
            tokens = sequences[index]
            shared = 0
            while shared < min(len(cache), len(tokens) - 1) and cache[shared] == tokens[shared]:
                shared += 1
            del cache[shared:], steps[shared:]
            total = float(first[tokens[0]])
            for i in range(1, len(tokens)):
                if i > len(cache):
                    self._decode([tokens[i - 1]], len(prefix) + len(cache), threads)
                    cache.append(tokens[i - 1])
                    steps.append(self._logprobs())
                total += float(steps[i - 1][tokens[i]])
            scores[index] = total
        return scores

    def _decode(self, tokens: list[int], n_past: int, threads: int) -> None:
        array = (ctypes.c_int * len(tokens))(*tokens)
        self._rows = len(tokens)
        if self.lib.whisper_decode_with_state(self.ctx, self.state, array, len(tokens), n_past,
                                              threads):  # fmt: skip
            raise RuntimeError("whisper_decode failed")

    def _logprobs(self) -> np.ndarray:
        pointer = self.lib.whisper_get_logits_from_state(self.state)
        rows = np.ctypeslib.as_array(pointer, shape=(self._rows, self.n_vocab))
        # whisper_decode copies out the last token's row only.
        logits = rows[-1].astype(np.float64)
        peak = logits.max()
        return logits - peak - math.log(float(np.exp(logits - peak).sum()))
