"""The mel filterbank and the byte-level vocabulary a whisper.cpp ggml file carries before
its tensors."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from appliance.prepare.ct2 import WhisperConversionError

# whisper's front end: 16 kHz audio, 25 ms (400 sample) FFT window.
_SAMPLE_RATE = 16000
_N_FFT = 400

# whisper.cpp derives its special tokens from n_vocab: the vocabulary section must
# hold exactly the tokens before <|endoftext|> (50256 English-only, 50257 multilingual).
_EOT_TOKEN = "<|endoftext|>"
_MULTILINGUAL_MIN_VOCAB = 51865


def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / (200.0 / 3.0)
    log_part = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log_part, linear)


def _mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    linear = mel * (200.0 / 3.0)
    log_part = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
    return np.where(mel >= 15.0, log_part, linear)


def mel_filterbank(n_mels: int, sample_rate: int = _SAMPLE_RATE, n_fft: int = _N_FFT) -> np.ndarray:
    """Triangular Slaney-normalised mel filters, shape (n_mels, n_fft // 2 + 1), float32."""
    fft_hz = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    edges_hz = _mel_to_hz(np.linspace(0.0, _hz_to_mel(sample_rate / 2.0), n_mels + 2))
    lower, centre, upper = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]
    rising = (fft_hz[None, :] - lower) / (centre - lower)
    falling = (upper - fft_hz[None, :]) / (upper - centre)
    weights = np.clip(np.minimum(rising, falling), 0.0, None)
    weights *= 2.0 / (upper - lower)  # equal area per band ("slaney" norm)
    return weights.astype(np.float32)


def _byte_decoder() -> dict[str, int]:
    """Inverse of GPT-2's byte-to-printable-character table used by byte-level BPE."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("\u00a1"), ord("\u00ac") + 1),
        *range(ord("\u00ae"), ord("\u00ff") + 1),
    ]
    table = {chr(b): b for b in printable}
    spare = 256
    for b in range(256):
        if b not in printable:
            table[chr(spare)] = b
            spare += 1
    return table


def read_vocabulary(src_dir: Path) -> list[str]:
    txt, js = src_dir / "vocabulary.txt", src_dir / "vocabulary.json"
    try:
        if txt.is_file():
            text = txt.read_text(encoding="utf-8")
            # Only "\n" separates tokens: tokens may contain other Unicode line breaks.
            tokens = text.split("\n")
            if tokens and tokens[-1] == "":
                tokens.pop()
            return tokens
        if js.is_file():
            tokens = json.loads(js.read_text(encoding="utf-8"))
            if isinstance(tokens, list) and all(isinstance(t, str) for t in tokens):
                return tokens
            raise WhisperConversionError(f"{js} is not a JSON list of token strings.")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WhisperConversionError(
            f"cannot read the vocabulary in {src_dir}: {exc}. Re-copy the model directory."
        ) from None
    raise WhisperConversionError(
        f"{src_dir} has no vocabulary.txt (or vocabulary.json); it is not a complete "
        "CTranslate2 Whisper model directory. Re-copy the whole directory."
    )


def vocab_section(tokens: list[str], n_vocab: int, src_dir: Path) -> tuple[bytes, int]:
    if len(tokens) != n_vocab:
        raise WhisperConversionError(
            f"the vocabulary in {src_dir} has {len(tokens)} tokens but the model has {n_vocab} "
            "embeddings; the vocabulary does not belong to this model.bin."
        )
    expected_eot = 50256 + (n_vocab >= _MULTILINGUAL_MIN_VOCAB)
    if expected_eot >= n_vocab or tokens[expected_eot] != _EOT_TOKEN:
        raise WhisperConversionError(
            f"the vocabulary in {src_dir} does not have {_EOT_TOKEN} at index {expected_eot}, "
            "where whisper.cpp expects it; this is not a standard Whisper tokenizer."
        )
    decoder = _byte_decoder()
    parts = [struct.pack("<i", expected_eot)]
    for index, token in enumerate(tokens[:expected_eot]):
        try:
            raw = bytes(decoder[ch] for ch in token)
        except KeyError as exc:
            raise WhisperConversionError(
                f"vocabulary token #{index} {token!r} contains {exc.args[0]!r}, which is not a "
                "byte-level BPE character; this is not a Whisper/GPT-2 vocabulary."
            ) from None
        parts.append(struct.pack("<I", len(raw)))
        parts.append(raw)
    return b"".join(parts), expected_eot
