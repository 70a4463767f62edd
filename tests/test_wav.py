"""Reading every PCM WAV flavour, and refusing bad files with a clear reason."""

from __future__ import annotations

import shutil
import struct
import subprocess

import numpy as np
import pytest

from appliance.audio.wav import load_for_pipeline, read_wav, wav_bytes, write_wav
from appliance.errors import AudioInputError

RATE = 16000


def tone(rate: int, seconds: float = 0.5, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return 0.5 * np.sin(2 * np.pi * freq * t)


def make_wav(
    samples: np.ndarray,
    rate: int,
    *,
    bits: int,
    channels: int = 1,
    fmt: str = "pcm",
    extensible: bool = False,
) -> bytes:
    frames = np.repeat(samples[:, None], channels, axis=1)
    if fmt == "float":
        raw = frames.astype("<f4").tobytes()
        code = 3
    elif bits == 8:
        raw = (frames * 127 + 128).astype(np.uint8).tobytes()
        code = 1
    elif bits == 16:
        raw = (frames * 32767).astype("<i2").tobytes()
        code = 1
    elif bits == 24:
        ints = (frames * (2**23 - 1)).astype("<i4").reshape(-1)
        raw = b"".join(int(v).to_bytes(3, "little", signed=True) for v in ints)
        code = 1
    else:
        raw = (frames * (2**31 - 1)).astype("<i4").tobytes()
        code = 1
    block = channels * bits // 8
    if extensible:
        guid = struct.pack("<H", code) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
        fmt_body = (
            struct.pack(
                "<HHIIHHHHI", 0xFFFE, channels, rate, rate * block, block, bits, 22, bits, 0
            )
            + guid
        )
    else:
        fmt_body = struct.pack("<HHIIHH", code, channels, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt_body)) + fmt_body
    body += b"LIST" + struct.pack("<I", 4) + b"INFO"  # an extra chunk to skip
    body += b"data" + struct.pack("<I", len(raw)) + raw
    return b"RIFF" + struct.pack("<I", len(body)) + body


@pytest.mark.parametrize(
    ("bits", "fmt", "extensible"),
    [
        (8, "pcm", False),
        (16, "pcm", False),
        (24, "pcm", False),
        (32, "pcm", False),
        (32, "float", False),
        (24, "pcm", True),
        (16, "pcm", True),
    ],
)
def test_every_pcm_flavour_decodes_to_the_same_signal(tmp_path, bits, fmt, extensible):
    path = tmp_path / "x.wav"
    path.write_bytes(make_wav(tone(RATE), RATE, bits=bits, fmt=fmt, extensible=extensible))
    wav = read_wav(path)
    assert wav.info.rate == RATE and wav.info.frames == RATE // 2
    tolerance = 0.02 if bits == 8 else 1e-3
    np.testing.assert_allclose(wav.samples[:, 0], tone(RATE), atol=tolerance)


def test_44k1_stereo_is_converted_to_16k_mono(tmp_path):
    path = tmp_path / "stereo.wav"
    path.write_bytes(make_wav(tone(44100, 1.0), 44100, bits=16, channels=2))
    samples = load_for_pipeline(path)
    assert samples.dtype == np.int16 and len(samples) == 16000
    # Still a 440 Hz tone after resampling.
    spectrum = np.abs(np.fft.rfft(samples.astype(float)))
    assert abs(np.argmax(spectrum) * 16000 / len(samples) - 440) < 3


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox not installed")
def test_a_file_written_by_sox_in_24_bit_extensible_stereo_reads(tmp_path):
    path = tmp_path / "sox.wav"
    subprocess.run(
        [
            "sox",
            "-n",
            "-r",
            "48000",
            "-c",
            "2",
            "-b",
            "24",
            str(path),
            "synth",
            "0.5",
            "sine",
            "300",
        ],
        check=True,
    )
    samples = load_for_pipeline(path)
    assert len(samples) == 8000 and np.abs(samples).max() > 1000


def test_write_then_read_round_trips(tmp_path):
    samples = (tone(22050) * 32767).astype(np.int16)
    write_wav(tmp_path / "out" / "r.wav", samples, 22050)
    wav = read_wav(tmp_path / "out" / "r.wav")
    assert wav.info.rate == 22050
    np.testing.assert_allclose(wav.samples[:, 0] * 32768, samples, atol=1)
    assert not [p for p in (tmp_path / "out").iterdir() if p.name != "r.wav"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"ID3\x03\x00 this is an mp3" * 10, "not a WAV"),
        (b"RIFF\x00\x00\x00\x00WAVE", "no 'fmt '"),
        (wav_bytes(np.zeros(16000, np.int16), 16000)[:2000], "truncated"),
        (wav_bytes(np.zeros(16000, np.int16), 16000)[:30], "truncated WAV header"),
        (wav_bytes(np.zeros(0, np.int16), 16000), "no audio samples"),
    ],
)
def test_bad_files_get_a_clear_reason(tmp_path, content, message):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(AudioInputError, match=message):
        read_wav(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(AudioInputError, match="no such file"):
        read_wav(tmp_path / "nope.wav")
    with pytest.raises(AudioInputError, match="directory"):
        read_wav(tmp_path)


def test_streamed_wav_with_unknown_length_is_read_to_the_end(tmp_path):
    data = bytearray(wav_bytes((tone(RATE) * 32767).astype(np.int16), RATE))
    data[40:44] = b"\xff\xff\xff\xff"
    path = tmp_path / "stream.wav"
    path.write_bytes(bytes(data))
    assert read_wav(path).info.frames == RATE // 2
