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

from appliance.prepare.ct2 import Ct2Reader, WhisperConversionError, check_not_quantized
from appliance.prepare.whisper_tables import mel_filterbank, read_vocabulary, vocab_section

__all__ = ["ConversionReport", "WhisperConversionError", "convert_ct2_whisper_to_ggml", "main"]

_GGML_MAGIC = 0x67676D6C  # "ggml"
_GGML_F32 = 0
_GGML_F16 = 1


@dataclass(frozen=True)
class ConversionReport:
    """Summary of a finished conversion."""

    tensors: int
    n_vocab: int
    n_audio_layer: int
    n_text_layer: int
    bytes_written: int


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


def _count_layers(model: Ct2Reader, prefix: str) -> int:
    n = 0
    while any(name.startswith(f"{prefix}/layer_{n}/") for name in model.variables):
        n += 1
    return n


def _shape_of(model: Ct2Reader, name: str, rank: int) -> tuple[int, ...]:
    shape = model.var(name).shape
    if len(shape) != rank:
        raise WhisperConversionError(
            f"{model.path}: '{name}' has shape {list(shape)}, expected rank {rank}; "
            "this is not a Whisper model layout this converter understands."
        )
    return shape


def _hparams(model: Ct2Reader) -> _HParams:
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


def _check_projection(model: Ct2Reader) -> None:
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


def _linear(model: Ct2Reader, src: str, dst: str) -> Iterator[_Tensor]:
    yield f"{dst}.weight", model.float_array(f"{src}/weight")
    yield f"{dst}.bias", model.float_array(f"{src}/bias")


def _norm(model: Ct2Reader, src: str, dst: str) -> Iterator[_Tensor]:
    yield f"{dst}.weight", model.float_array(f"{src}/gamma")
    yield f"{dst}.bias", model.float_array(f"{src}/beta")


def _self_attention(model: Ct2Reader, src: str, dst: str) -> Iterator[_Tensor]:
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


def _cross_attention(model: Ct2Reader, src: str, dst: str) -> Iterator[_Tensor]:
    """CT2 keeps the query in linear_0 and fuses k/v into linear_1."""
    yield from _norm(model, f"{src}/layer_norm", f"{dst}_ln")
    yield from _linear(model, f"{src}/linear_0", f"{dst}.query")
    k_w, v_w = _split_rows(model.float_array(f"{src}/linear_1/weight"), 2)
    _k_b, v_b = _split_rows(model.float_array(f"{src}/linear_1/bias"), 2)
    yield f"{dst}.key.weight", k_w
    yield f"{dst}.value.weight", v_w
    yield f"{dst}.value.bias", v_b
    yield from _linear(model, f"{src}/linear_2", f"{dst}.out")


def _mlp(model: Ct2Reader, src: str, dst: str) -> Iterator[_Tensor]:
    yield from _norm(model, f"{src}/layer_norm", f"{dst}.mlp_ln")
    yield from _linear(model, f"{src}/linear_0", f"{dst}.mlp.0")
    yield from _linear(model, f"{src}/linear_1", f"{dst}.mlp.2")


def _tensors(model: Ct2Reader, hp: _HParams) -> Iterator[_Tensor]:
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
        model = Ct2Reader(model_bin)
    except OSError as exc:
        raise WhisperConversionError(
            f"cannot read {model_bin}: {exc}. Check the file's permissions or re-copy it."
        ) from None
    check_not_quantized(model)
    hp = _hparams(model)
    _check_projection(model)
    vocab_bytes, n_base_tokens = vocab_section(read_vocabulary(src_dir), hp.n_vocab, src_dir)
    say(
        f"model: {hp.n_audio_layer} encoder + {hp.n_text_layer} decoder layers, width "
        f"{hp.n_audio_state}, {hp.n_audio_head} heads, {hp.n_mels} mels, "
        f"{hp.n_vocab} tokens ({n_base_tokens} written, specials derived by whisper.cpp)"
    )

    filters = mel_filterbank(hp.n_mels)
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
