"""Convert a CTranslate2 Whisper model directory into a whisper.cpp ``ggml`` file.

The output is the legacy single-file ggml format that whisper.cpp loads
(``whisper_model_load``): a header of hyper-parameters, the mel filterbank, the
byte-level vocabulary and then every weight tensor.  Only float16/float32/bfloat16
CTranslate2 exports can be converted; quantized (int8/int16) exports cannot.

Usage::

    python -m appliance.prepare.whisper_convert SRC_DIR DST_FILE
"""

from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["ConversionReport", "WhisperConversionError", "convert_ct2_whisper_to_ggml", "main"]

# CTranslate2 binary layout versions whose variable records carry a dtype id and a
# byte count and that end with an alias table (CTranslate2 >= 2.x writes 4..6).
_MIN_CT2_VERSION = 4
_MAX_CT2_VERSION = 6
_WHISPER_SPEC = "WhisperSpec"

# CTranslate2 DataType enum order (include/ctranslate2/types.h).
_CT2_DTYPE_NAMES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
_CT2_FLOAT32, _CT2_INT8, _CT2_INT16, _CT2_INT32, _CT2_FLOAT16, _CT2_BFLOAT16 = range(6)
_CT2_ITEMSIZE = (4, 1, 2, 4, 2, 2)

_GGML_MAGIC = 0x67676D6C  # "ggml"
_GGML_F32 = 0
_GGML_F16 = 1

# whisper's front end: 16 kHz audio, 25 ms (400 sample) FFT window.
_SAMPLE_RATE = 16000
_N_FFT = 400

# whisper.cpp derives its special tokens from n_vocab: the vocabulary section must
# hold exactly the tokens before <|endoftext|> (50256 English-only, 50257 multilingual).
_EOT_TOKEN = "<|endoftext|>"
_MULTILINGUAL_MIN_VOCAB = 51865


class WhisperConversionError(Exception):
    """The source model cannot be converted; the message says why and how to fix it."""


@dataclass(frozen=True)
class ConversionReport:
    """Summary of a finished conversion."""

    tensors: int
    n_vocab: int
    n_audio_layer: int
    n_text_layer: int
    bytes_written: int


@dataclass(frozen=True)
class _Var:
    """Location of one variable inside model.bin."""

    name: str
    shape: tuple[int, ...]
    dtype: int
    offset: int
    nbytes: int


class _Ct2Reader:
    """Parses a CTranslate2 ``model.bin`` and hands out zero-copy numpy views of it.

    Layout (little-endian): u32 version, str spec, u32 revision, u32 count, then per
    variable str name, u8 rank, rank x u32 dims, u8 dtype, u32 nbytes, raw data; then
    u32 alias count and (alias, target) str pairs. A str is a u16 length that counts a
    trailing NUL, followed by the bytes.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.size = path.stat().st_size
        if self.size < 4:
            raise WhisperConversionError(
                f"{path} is {self.size} bytes long, too short to be a CTranslate2 model.bin; "
                "re-copy the model directory."
            )
        self._buf = np.memmap(path, dtype=np.uint8, mode="r")
        self._pos = 0
        self.version = 0
        self.spec = ""
        self.revision = 0
        self.variables: dict[str, _Var] = {}
        self.aliases: dict[str, str] = {}
        self._parse()

    # -- low-level reads -------------------------------------------------------------
    def _need(self, n: int, what: str) -> int:
        start = self._pos
        if n < 0 or start + n > self.size:
            raise WhisperConversionError(
                f"{self.path} is truncated: reading {what} needs {n} bytes at offset {start}, "
                f"but the file is only {self.size} bytes. Re-copy or re-export the model."
            )
        self._pos += n
        return start

    def _unpack(self, fmt: str, what: str) -> tuple[int, ...]:
        start = self._need(struct.calcsize(fmt), what)
        return struct.unpack_from(fmt, self._buf, start)

    def _u8(self, what: str) -> int:
        return self._unpack("<B", what)[0]

    def _u32(self, what: str) -> int:
        return self._unpack("<I", what)[0]

    def _string(self, what: str) -> str:
        (length,) = self._unpack("<H", what)
        start = self._need(length, what)
        raw = bytes(self._buf[start : start + length])
        if length == 0 or raw[-1] != 0:
            raise WhisperConversionError(
                f"{self.path} is corrupt: {what} at offset {start} is not NUL-terminated. "
                "Re-export the model with CTranslate2."
            )
        try:
            return raw[:-1].decode("utf-8")
        except UnicodeDecodeError:
            raise WhisperConversionError(
                f"{self.path} is corrupt: {what} at offset {start} is not valid UTF-8."
            ) from None

    # -- structure -------------------------------------------------------------------
    def _parse(self) -> None:
        self.version = self._u32("the format version")
        if not _MIN_CT2_VERSION <= self.version <= _MAX_CT2_VERSION:
            hint = (
                "it was written by a CTranslate2 too old for this converter; re-convert the model "
                "with a current ctranslate2"
                if 0 < self.version < _MIN_CT2_VERSION
                else "this does not look like a CTranslate2 model.bin at all"
            )
            raise WhisperConversionError(
                f"{self.path}: unsupported CTranslate2 format version {self.version} "
                f"(this converter reads versions {_MIN_CT2_VERSION}-{_MAX_CT2_VERSION}); {hint}."
            )
        self.spec = self._string("the model spec name")
        self.revision = self._u32("the spec revision")
        if self.spec != _WHISPER_SPEC:
            raise WhisperConversionError(
                f"{self.path} holds a CTranslate2 '{self.spec}' model, not a Whisper model "
                f"('{_WHISPER_SPEC}'); point the converter at a CTranslate2 Whisper export."
            )
        count = self._u32("the variable count")
        for index in range(count):
            what = f"variable #{index}"
            name = self._string(f"the name of {what}")
            rank = self._u8(f"the rank of '{name}'")
            shape = tuple(self._unpack(f"<{rank}I", f"the shape of '{name}'")) if rank else ()
            dtype = self._u8(f"the dtype of '{name}'")
            nbytes = self._u32(f"the size of '{name}'")
            if dtype >= len(_CT2_DTYPE_NAMES):
                raise WhisperConversionError(
                    f"{self.path}: variable '{name}' has unknown dtype code {dtype}; the file is "
                    "corrupt or from a newer CTranslate2 than this converter knows."
                )
            expected = int(np.prod(shape, dtype=np.int64)) * _CT2_ITEMSIZE[dtype]
            if nbytes != expected:
                raise WhisperConversionError(
                    f"{self.path} is corrupt: variable '{name}' {list(shape)} "
                    f"{_CT2_DTYPE_NAMES[dtype]} should be {expected} bytes, header says {nbytes}."
                )
            offset = self._need(nbytes, f"the data of '{name}'")
            self.variables[name] = _Var(name, shape, dtype, offset, nbytes)
        alias_count = self._u32("the alias count")
        for _ in range(alias_count):
            alias = self._string("an alias name")
            self.aliases[alias] = self._string(f"the target of alias '{alias}'")
        if self._pos != self.size:
            raise WhisperConversionError(
                f"{self.path} has {self.size - self._pos} unexpected trailing bytes after the "
                "alias table; the file is corrupt. Re-copy or re-export the model."
            )

    # -- access ----------------------------------------------------------------------
    def resolve(self, name: str) -> str:
        """Follow aliases to the stored variable name."""
        seen = set()
        while name in self.aliases and name not in seen:
            seen.add(name)
            name = self.aliases[name]
        return name

    def has(self, name: str) -> bool:
        return self.resolve(name) in self.variables

    def var(self, name: str) -> _Var:
        real = self.resolve(name)
        if real not in self.variables:
            raise WhisperConversionError(
                f"{self.path} is not a complete Whisper model: variable '{name}' is missing. "
                "Re-export the model with CTranslate2's Whisper converter."
            )
        return self.variables[real]

    def float_array(self, name: str) -> np.ndarray:
        """Return a float16/float32 view (bfloat16 is widened to float32)."""
        var = self.var(name)
        raw = self._buf[var.offset : var.offset + var.nbytes]
        if var.dtype == _CT2_FLOAT16:
            return raw.view(np.float16).reshape(var.shape)
        if var.dtype == _CT2_FLOAT32:
            return raw.view(np.float32).reshape(var.shape)
        if var.dtype == _CT2_BFLOAT16:
            wide = raw.view(np.uint16).astype(np.uint32) << 16
            return wide.view(np.float32).reshape(var.shape)
        raise WhisperConversionError(
            f"{self.path}: '{name}' is stored as {_CT2_DTYPE_NAMES[var.dtype]}; quantized "
            "CTranslate2 models are not supported. Use a float16 or float32 export "
            "(ct2-transformers-converter --quantization float16)."
        )

    def int_scalar(self, name: str) -> int | None:
        """Return an integer scalar variable, or None if it is absent."""
        if not self.has(name):
            return None
        var = self.var(name)
        if var.shape not in ((), (1,)) or var.dtype not in (_CT2_INT8, _CT2_INT16, _CT2_INT32):
            return None
        raw = self._buf[var.offset : var.offset + var.nbytes]
        kind = {_CT2_INT8: np.int8, _CT2_INT16: np.int16, _CT2_INT32: np.int32}[var.dtype]
        return int(raw.view(kind)[0])


@dataclass(frozen=True)
class _HParams:
    n_vocab: int
    n_audio_ctx: int
    n_audio_state: int
    n_audio_head: int
    n_audio_layer: int
    n_text_ctx: int
    n_text_state: int
    n_text_head: int
    n_text_layer: int
    n_mels: int

    def pack(self, ftype: int) -> bytes:
        return struct.pack(
            "<12i",
            _GGML_MAGIC,
            self.n_vocab,
            self.n_audio_ctx,
            self.n_audio_state,
            self.n_audio_head,
            self.n_audio_layer,
            self.n_text_ctx,
            self.n_text_state,
            self.n_text_head,
            self.n_text_layer,
            self.n_mels,
            ftype,
        )


def _count_layers(model: _Ct2Reader, prefix: str) -> int:
    n = 0
    while any(name.startswith(f"{prefix}/layer_{n}/") for name in model.variables):
        n += 1
    return n


def _check_not_quantized(model: _Ct2Reader) -> None:
    for var in model.variables.values():
        quantized_weight = var.name.endswith("weight") and var.dtype in (_CT2_INT8, _CT2_INT16)
        if quantized_weight or var.name.endswith("weight_scale"):
            raise WhisperConversionError(
                f"{model.path} is a quantized CTranslate2 model ('{var.name}' is "
                f"{_CT2_DTYPE_NAMES[var.dtype]}); quantized CTranslate2 models are not supported. "
                "Use a float16 or float32 export "
                "(ct2-transformers-converter --quantization float16)."
            )


def _shape_of(model: _Ct2Reader, name: str, rank: int) -> tuple[int, ...]:
    shape = model.var(name).shape
    if len(shape) != rank:
        raise WhisperConversionError(
            f"{model.path}: '{name}' has shape {list(shape)}, expected rank {rank}; "
            "this is not a Whisper model layout this converter understands."
        )
    return shape


def _hparams(model: _Ct2Reader) -> _HParams:
    n_vocab, n_text_state = _shape_of(model, "decoder/embeddings/weight", 2)
    n_audio_ctx, n_audio_state = _shape_of(model, "encoder/position_encodings/encodings", 2)
    n_text_ctx, pos_state = _shape_of(model, "decoder/position_encodings/encodings", 2)
    conv_out, n_mels, _kernel = _shape_of(model, "encoder/conv1/weight", 3)
    n_audio_layer = _count_layers(model, "encoder")
    n_text_layer = _count_layers(model, "decoder")
    if pos_state != n_text_state or conv_out != n_audio_state or n_audio_state != n_text_state:
        raise WhisperConversionError(
            f"{model.path}: inconsistent model widths (embeddings {n_text_state}, encoder "
            f"{n_audio_state}, decoder positions {pos_state}, conv1 {conv_out}); whisper.cpp "
            "needs one shared width. Re-export the model."
        )
    if n_audio_layer == 0 or n_text_layer == 0:
        raise WhisperConversionError(
            f"{model.path} has {n_audio_layer} encoder and {n_text_layer} decoder layers; "
            "a Whisper model needs both. Re-export the model."
        )
    # Whisper heads are 64 wide in every released size; newer CT2 specs also record them.
    n_audio_head = model.int_scalar("encoder/num_heads") or n_audio_state // 64
    n_text_head = model.int_scalar("decoder/num_heads") or n_text_state // 64
    for label, state, heads in (
        ("encoder", n_audio_state, n_audio_head),
        ("decoder", n_text_state, n_text_head),
    ):
        if heads <= 0 or state % heads:
            raise WhisperConversionError(
                f"{model.path}: {label} width {state} is not divisible by {heads} heads."
            )
    return _HParams(
        n_vocab=n_vocab,
        n_audio_ctx=n_audio_ctx,
        n_audio_state=n_audio_state,
        n_audio_head=n_audio_head,
        n_audio_layer=n_audio_layer,
        n_text_ctx=n_text_ctx,
        n_text_state=n_text_state,
        n_text_head=n_text_head,
        n_text_layer=n_text_layer,
        n_mels=n_mels,
    )


def _check_projection(model: _Ct2Reader) -> None:
    """whisper.cpp reuses the token embedding as output projection; the model must too."""
    name = "decoder/projection/weight"
    if not model.has(name) or model.resolve(name) == model.resolve("decoder/embeddings/weight"):
        return
    if not np.array_equal(model.float_array(name), model.float_array("decoder/embeddings/weight")):
        raise WhisperConversionError(
            f"{model.path}: the decoder output projection is not tied to the token embeddings, "
            "which whisper.cpp requires; this model cannot be converted."
        )


# -- ggml tensor plan ---------------------------------------------------------------------

# (ggml tensor, array in CTranslate2 layout) pairs, produced lazily.
_Tensor = tuple[str, np.ndarray]


def _split_rows(array: np.ndarray, parts: int) -> list[np.ndarray]:
    if array.shape[0] % parts:
        raise WhisperConversionError(
            f"cannot split a fused attention tensor of shape {list(array.shape)} into {parts}."
        )
    return np.split(array, parts, axis=0)


def _linear(model: _Ct2Reader, src: str, dst: str) -> Iterator[_Tensor]:
    yield f"{dst}.weight", model.float_array(f"{src}/weight")
    yield f"{dst}.bias", model.float_array(f"{src}/bias")


def _norm(model: _Ct2Reader, src: str, dst: str) -> Iterator[_Tensor]:
    yield f"{dst}.weight", model.float_array(f"{src}/gamma")
    yield f"{dst}.bias", model.float_array(f"{src}/beta")


def _self_attention(model: _Ct2Reader, src: str, dst: str) -> Iterator[_Tensor]:
    """CT2 fuses q/k/v into linear_0; Whisper's key projection has no bias."""
    yield from _norm(model, f"{src}/layer_norm", f"{dst}_ln")
    q_w, k_w, v_w = _split_rows(model.float_array(f"{src}/linear_0/weight"), 3)
    q_b, _k_b, v_b = _split_rows(model.float_array(f"{src}/linear_0/bias"), 3)
    yield f"{dst}.query.weight", q_w
    yield f"{dst}.query.bias", q_b
    yield f"{dst}.key.weight", k_w
    yield f"{dst}.value.weight", v_w
    yield f"{dst}.value.bias", v_b
    yield from _linear(model, f"{src}/linear_1", f"{dst}.out")


def _cross_attention(model: _Ct2Reader, src: str, dst: str) -> Iterator[_Tensor]:
    """CT2 keeps the query in linear_0 and fuses k/v into linear_1."""
    yield from _norm(model, f"{src}/layer_norm", f"{dst}_ln")
    yield from _linear(model, f"{src}/linear_0", f"{dst}.query")
    k_w, v_w = _split_rows(model.float_array(f"{src}/linear_1/weight"), 2)
    _k_b, v_b = _split_rows(model.float_array(f"{src}/linear_1/bias"), 2)
    yield f"{dst}.key.weight", k_w
    yield f"{dst}.value.weight", v_w
    yield f"{dst}.value.bias", v_b
    yield from _linear(model, f"{src}/linear_2", f"{dst}.out")


def _mlp(model: _Ct2Reader, src: str, dst: str) -> Iterator[_Tensor]:
    yield from _norm(model, f"{src}/layer_norm", f"{dst}.mlp_ln")
    yield from _linear(model, f"{src}/linear_0", f"{dst}.mlp.0")
    yield from _linear(model, f"{src}/linear_1", f"{dst}.mlp.2")


def _tensors(model: _Ct2Reader, hp: _HParams) -> Iterator[_Tensor]:
    """Yield every tensor whisper.cpp expects, in whisper's own naming."""
    yield "encoder.positional_embedding", model.float_array("encoder/position_encodings/encodings")
    for conv in ("conv1", "conv2"):
        yield f"encoder.{conv}.weight", model.float_array(f"encoder/{conv}/weight")
        bias = model.float_array(f"encoder/{conv}/bias")
        yield f"encoder.{conv}.bias", bias.reshape(bias.shape[0], 1)
    for i in range(hp.n_audio_layer):
        src, dst = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        yield from _self_attention(model, f"{src}/self_attention", f"{dst}.attn")
        yield from _mlp(model, f"{src}/ffn", dst)
    yield from _norm(model, "encoder/layer_norm", "encoder.ln_post")

    yield "decoder.positional_embedding", model.float_array("decoder/position_encodings/encodings")
    yield "decoder.token_embedding.weight", model.float_array("decoder/embeddings/weight")
    for i in range(hp.n_text_layer):
        src, dst = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        yield from _self_attention(model, f"{src}/self_attention", f"{dst}.attn")
        yield from _cross_attention(model, f"{src}/attention", f"{dst}.cross_attn")
        yield from _mlp(model, f"{src}/ffn", dst)
    yield from _norm(model, "decoder/layer_norm", "decoder.ln")


def _tensor_count(hp: _HParams) -> int:
    # encoder: 1 pos + 4 conv + 2 ln_post, 15 per block; decoder: 1 pos + 1 emb + 2 ln, 24 per block
    return 7 + 15 * hp.n_audio_layer + 4 + 24 * hp.n_text_layer


def _is_f32_tensor(name: str, array: np.ndarray) -> bool:
    """whisper.cpp allocates biases, norms, conv biases and positional embeddings as f32."""
    return array.ndim < 2 or name.endswith(".bias") or name.endswith("positional_embedding")


def _tensor_record(name: str, array: np.ndarray) -> tuple[bytes, np.ndarray]:
    f32 = _is_f32_tensor(name, array)
    data = np.ascontiguousarray(array, dtype=np.float32 if f32 else np.float16)
    encoded = name.encode("utf-8")
    header = struct.pack("<3i", data.ndim, len(encoded), _GGML_F32 if f32 else _GGML_F16)
    header += struct.pack(f"<{data.ndim}i", *reversed(data.shape)) + encoded
    return header, data


# -- mel filterbank and vocabulary ------------------------------------------------------------


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


def _mel_filterbank(
    n_mels: int, sample_rate: int = _SAMPLE_RATE, n_fft: int = _N_FFT
) -> np.ndarray:
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


def _read_vocabulary(src_dir: Path) -> list[str]:
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


def _vocab_section(tokens: list[str], n_vocab: int, src_dir: Path) -> tuple[bytes, int]:
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


# -- conversion ----------------------------------------------------------------------------


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _check_source(src_dir: Path) -> Path:
    if not src_dir.exists():
        raise WhisperConversionError(
            f"model directory {src_dir} does not exist; pass the CTranslate2 Whisper model "
            "directory (the one containing model.bin, config.json and vocabulary.txt)."
        )
    if not src_dir.is_dir():
        raise WhisperConversionError(
            f"{src_dir} is a file, not a directory; pass the CTranslate2 model directory "
            "that contains model.bin."
        )
    model_bin = src_dir / "model.bin"
    if not model_bin.is_file():
        raise WhisperConversionError(
            f"{src_dir} has no model.bin; it is not a CTranslate2 model directory "
            "(re-copy the whole model directory)."
        )
    config = src_dir / "config.json"
    if not config.is_file():
        raise WhisperConversionError(
            f"{src_dir} has no config.json; it is not a complete CTranslate2 Whisper model "
            "directory (re-copy the whole model directory)."
        )
    try:
        parsed = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WhisperConversionError(
            f"{config} is not valid JSON ({exc}); re-copy the model directory."
        ) from None
    if not isinstance(parsed, dict):
        raise WhisperConversionError(f"{config} should hold a JSON object; re-copy the model.")
    return model_bin


def convert_ct2_whisper_to_ggml(
    src_dir: Path,
    dst_file: Path,
    *,
    progress: Callable[[str], None] | None = None,
) -> ConversionReport:
    """Convert the CTranslate2 Whisper model in ``src_dir`` into a whisper.cpp ggml file.

    The file is written atomically: an existing ``dst_file`` is only replaced once the new
    file is complete and fsynced. Raises WhisperConversionError for unusable input.
    """
    say = progress or (lambda _line: None)
    src_dir, dst_file = Path(src_dir), Path(dst_file)
    model_bin = _check_source(src_dir)
    if dst_file.is_dir():
        raise WhisperConversionError(f"destination {dst_file} is a directory; give a file path.")

    started = time.monotonic()
    say(f"reading model.bin ({model_bin.stat().st_size / 1e6:.1f} MB)")
    try:
        model = _Ct2Reader(model_bin)
    except OSError as exc:
        raise WhisperConversionError(
            f"cannot read {model_bin}: {exc}. Check the file's permissions or re-copy it."
        ) from None
    _check_not_quantized(model)
    hp = _hparams(model)
    _check_projection(model)
    vocab_bytes, n_base_tokens = _vocab_section(_read_vocabulary(src_dir), hp.n_vocab, src_dir)
    say(
        f"model: {hp.n_audio_layer} encoder + {hp.n_text_layer} decoder layers, width "
        f"{hp.n_audio_state}, {hp.n_audio_head} heads, {hp.n_mels} mels, "
        f"{hp.n_vocab} tokens ({n_base_tokens} written, specials derived by whisper.cpp)"
    )

    filters = _mel_filterbank(hp.n_mels)
    expected = _tensor_count(hp)
    say(f"writing {expected} tensors")

    part = dst_file.with_suffix(dst_file.suffix + ".part")
    written = 0
    seen: set[str] = set()
    try:
        dst_file.parent.mkdir(parents=True, exist_ok=True)
        with open(part, "wb") as out:
            out.write(hp.pack(_GGML_F16))
            out.write(struct.pack("<2i", *filters.shape))
            out.write(filters.astype("<f4").tobytes())
            out.write(vocab_bytes)
            for name, array in _tensors(model, hp):
                header, data = _tensor_record(name, array)
                out.write(header)
                out.write(memoryview(data).cast("B"))
                seen.add(name)
            if len(seen) != expected:
                raise WhisperConversionError(
                    f"internal error: wrote {len(seen)} tensors, whisper.cpp expects {expected}."
                )
            out.flush()
            os.fsync(out.fileno())
            written = out.tell()
        os.replace(part, dst_file)
        _fsync_dir(dst_file.parent)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise WhisperConversionError(
            f"could not write {dst_file}: {exc}. Check free space and write permissions."
        ) from None
    except BaseException:
        part.unlink(missing_ok=True)
        raise

    say(f"wrote {dst_file} ({written / 1e6:.1f} MB) in {time.monotonic() - started:.1f} s")
    say("done")
    return ConversionReport(
        tensors=len(seen),
        n_vocab=hp.n_vocab,
        n_audio_layer=hp.n_audio_layer,
        n_text_layer=hp.n_text_layer,
        bytes_written=written,
    )


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: ``python -m appliance.prepare.whisper_convert SRC DST``."""
    parser = argparse.ArgumentParser(
        prog="python -m appliance.prepare.whisper_convert",
        description="Convert a CTranslate2 Whisper model directory to a whisper.cpp ggml file.",
    )
    parser.add_argument("src", type=Path, help="CTranslate2 model directory (has model.bin)")
    parser.add_argument("dst", type=Path, help="output ggml file, e.g. ggml-tiny.en.bin")
    args = parser.parse_args(argv)
    try:
        report = convert_ct2_whisper_to_ggml(args.src, args.dst, progress=print)
    except WhisperConversionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{report.tensors} tensors, {report.bytes_written} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
