"""Reading any PCM WAV (8/16/24/32-bit integer or 32/64-bit float, any rate and channel
count, WAVE_FORMAT_EXTENSIBLE included) and writing 16-bit WAVs atomically.

Python's `wave` module rejects extensible and float files, which sox and most recorders
write for 24-bit or multichannel audio, so the RIFF chunks are parsed here.
"""

from __future__ import annotations

import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from appliance.audio.format import PIPELINE_RATE, float_to_int16, resample, to_mono
from appliance.errors import AudioInputError

_FORMAT_PCM = 0x0001
_FORMAT_FLOAT = 0x0003
_FORMAT_EXTENSIBLE = 0xFFFE
# Streaming writers that do not know the length put one of these in the data chunk size.
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)


@dataclass(frozen=True)
class WavInfo:
    rate: int
    channels: int
    bits: int
    is_float: bool
    frames: int

    @property
    def duration(self) -> float:
        return self.frames / self.rate if self.rate else 0.0


@dataclass(frozen=True)
class WavAudio:
    info: WavInfo
    samples: np.ndarray
    """Float32 samples in [-1, 1], shape (frames, channels)."""


def read_wav(path: Path) -> WavAudio:
    """Read a WAV file, raising AudioInputError with a plain reason for anything wrong."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise AudioInputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise AudioInputError(f"{path}: is a directory, not a WAV file") from None
    except OSError as err:
        raise AudioInputError(f"{path}: cannot read it ({err.strerror})") from err
    return parse_wav(data, str(path))


def parse_wav(data: bytes, name: str = "<audio>") -> WavAudio:
    if len(data) == 0:
        raise AudioInputError(f"{name}: the file is empty (0 bytes); record or copy it again")
    if len(data) < 12 or data[:4] not in (b"RIFF", b"RF64") or data[8:12] != b"WAVE":
        raise AudioInputError(
            f"{name}: not a WAV file (no RIFF/WAVE header); convert it first, for example "
            f"`sox INPUT -r 16000 -c 1 -b 16 OUT.wav`"
        )
    fmt: tuple[int, int, int, int] | None = None
    audio: bytes | None = None
    offset = 12
    while offset + 8 <= len(data):
        chunk_id = data[offset : offset + 4]
        (size,) = struct.unpack_from("<I", data, offset + 4)
        body_start = offset + 8
        if chunk_id == b"fmt ":
            if size < 16 or body_start + size > len(data):
                raise AudioInputError(f"{name}: truncated WAV header (fmt chunk cut short)")
            code, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, body_start)
            if code == _FORMAT_EXTENSIBLE:
                if size < 40:
                    raise AudioInputError(f"{name}: truncated WAV header (extensible fmt)")
                (code,) = struct.unpack_from("<H", data, body_start + 24)
            fmt = (code, channels, rate, bits)
        elif chunk_id == b"data":
            available = len(data) - body_start
            if size in _UNKNOWN_SIZES:
                size = available
            elif size > available:
                raise AudioInputError(
                    f"{name}: truncated WAV file: the header announces {size} bytes of audio "
                    f"but only {available} are there; the recording was cut off"
                )
            audio = data[body_start : body_start + size]
            break
        offset = body_start + size + (size & 1)
    if fmt is None:
        raise AudioInputError(f"{name}: WAV file has no 'fmt ' chunk (truncated or corrupt)")
    if audio is None:
        raise AudioInputError(f"{name}: WAV file has no audio data ('data' chunk missing)")
    code, channels, rate, bits = fmt
    if channels < 1 or rate < 1000:
        raise AudioInputError(f"{name}: implausible WAV format ({channels} ch, {rate} Hz)")
    samples = _decode(audio, code, bits, name)
    frame_count = len(samples) // channels
    if frame_count == 0:
        raise AudioInputError(f"{name}: the WAV file holds no audio samples")
    frames = samples[: frame_count * channels].reshape(frame_count, channels)
    info = WavInfo(rate, channels, bits, code == _FORMAT_FLOAT, frame_count)
    return WavAudio(info, frames)


def _decode(raw: bytes, code: int, bits: int, name: str) -> np.ndarray:
    if code == _FORMAT_FLOAT and bits in (32, 64):
        width = bits // 8
        usable = len(raw) - len(raw) % width
        floats = np.frombuffer(raw[:usable], dtype=f"<f{width}")
        return np.nan_to_num(floats).clip(-1.0, 1.0).astype(np.float32)
    if code != _FORMAT_PCM:
        raise AudioInputError(
            f"{name}: WAV encoding {code:#06x} is not supported (only PCM and float); "
            f"convert with `sox INPUT -b 16 OUT.wav`"
        )
    if bits == 8:
        return (np.frombuffer(raw, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    if bits == 16:
        usable = len(raw) - len(raw) % 2
        return np.frombuffer(raw[:usable], dtype="<i2").astype(np.float32) / 32768.0
    if bits == 24:
        usable = len(raw) - len(raw) % 3
        triplets = np.frombuffer(raw[:usable], dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        values = triplets[:, 0] | (triplets[:, 1] << 8) | (triplets[:, 2] << 16)
        values = np.where(values >= 1 << 23, values - (1 << 24), values)
        return values.astype(np.float32) / float(1 << 23)
    if bits == 32:
        usable = len(raw) - len(raw) % 4
        return (np.frombuffer(raw[:usable], dtype="<i4").astype(np.float64) / 2**31).astype(
            np.float32
        )
    raise AudioInputError(f"{name}: {bits}-bit PCM is not supported (use 8, 16, 24 or 32)")


def load_for_pipeline(path: Path) -> np.ndarray:
    """Read a WAV and return it as 16 kHz mono int16, the pipeline's format."""
    wav = read_wav(path)
    mono = to_mono(wav.samples)
    return float_to_int16(resample(mono, wav.info.rate, PIPELINE_RATE))


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    """A complete 16-bit mono PCM WAV file in memory."""
    pcm = np.asarray(samples, dtype="<i2").tobytes()
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + len(pcm),
        b"WAVE",
        b"fmt ",
        16,
        _FORMAT_PCM,
        1,
        rate,
        rate * 2,
        2,
        16,
        b"data",
        len(pcm),
    )
    return header + pcm


def write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    """Write 16-bit mono PCM atomically: a crash never leaves a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.fchmod(fd, 0o644)  # mkstemp makes 0600; a reply WAV is meant to be shared
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(wav_bytes(samples, rate))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
