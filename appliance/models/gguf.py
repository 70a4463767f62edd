"""Read a GGUF model file's header, metadata and tensor table without loading the model.

A GGUF file is: the magic ``GGUF``, a uint32 version, an int64 tensor count, an int64
key/value count, the key/value pairs, one info record per tensor (name, dimensions, ggml
type, offset), then the tensor data, which starts at the end of the header rounded up to
``general.alignment`` (32 by default). Everything is little-endian here; versions 2 and 3
share this layout (version 1 had 32-bit counts and lengths and is no longer read by
llama.cpp either).

`read_gguf_info` walks the header with bounded buffered reads and seeks over long strings
and arrays (the tokenizer's vocabulary), so it reads a few MB of a multi-GB file and never
touches the tensor data. It refuses, with a `GgufError` that says what is wrong and what to
do, anything llama.cpp would fail to load in a less helpful way: a file that is empty, not
GGUF, corrupt, of an unsupported version, cut off, or of an architecture the appliance's
llama.cpp cannot run.

The tables below (ggml tensor types, `llama_ftype` values, architecture names) are those of
the llama.cpp that llama-cpp-python 0.3.36 bundles: ``ggml.h`` / ``llama.h`` and the
``LLM_ARCH_NAMES`` of ``src/llama-arch.cpp``.
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from appliance.errors import ModelError

__all__ = [
    "GGML_TYPES",
    "KNOWN_ARCHITECTURES",
    "LLAMA_FTYPE_NAMES",
    "GgmlType",
    "GgufError",
    "GgufInfo",
    "read_gguf_info",
]

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
MAX_DIMS = 4  # GGML_MAX_DIMS

# Sanity limits: beyond these a count or length can only come from a corrupt file.
_MAX_TENSORS = 1 << 20
_MAX_KV = 1 << 20
_MAX_STRING = 256 << 20
_MAX_NAME = 64 << 10  # metadata keys and tensor names
_MAX_ARRAY = 1 << 32
_MAX_ARRAY_DEPTH = 8
_KEPT_STRING = 1 << 20  # longer string values are skipped, not read
_KEPT_ARRAY_LEN = 4096  # numeric arrays up to this length are kept (per-layer head counts)
_CHUNK = 1 << 20


class GgufError(ModelError):
    """A GGUF model file is missing, not GGUF, corrupt, cut off or not runnable here."""

    code = "gguf_invalid"


@dataclass(frozen=True)
class GgmlType:
    """A ggml tensor type: `block_size` elements are stored in `type_size` bytes."""

    id: int
    name: str
    block_size: int
    type_size: int


def _ggml_types(*rows: tuple[int, str, int, int]) -> dict[int, GgmlType]:
    return {i: GgmlType(i, name, block, size) for i, name, block, size in rows}


# enum ggml_type with the block size and block byte size of ggml.c's type_traits.
# Ids 4, 5, 31-33 and 36-38 are types that were removed from GGUF files.
GGML_TYPES: dict[int, GgmlType] = _ggml_types(
    (0, "F32", 1, 4),
    (1, "F16", 1, 2),
    (2, "Q4_0", 32, 18),
    (3, "Q4_1", 32, 20),
    (6, "Q5_0", 32, 22),
    (7, "Q5_1", 32, 24),
    (8, "Q8_0", 32, 34),
    (9, "Q8_1", 32, 36),
    (10, "Q2_K", 256, 84),
    (11, "Q3_K", 256, 110),
    (12, "Q4_K", 256, 144),
    (13, "Q5_K", 256, 176),
    (14, "Q6_K", 256, 210),
    (15, "Q8_K", 256, 292),
    (16, "IQ2_XXS", 256, 66),
    (17, "IQ2_XS", 256, 74),
    (18, "IQ3_XXS", 256, 98),
    (19, "IQ1_S", 256, 50),
    (20, "IQ4_NL", 32, 18),
    (21, "IQ3_S", 256, 110),
    (22, "IQ2_S", 256, 82),
    (23, "IQ4_XS", 256, 136),
    (24, "I8", 1, 1),
    (25, "I16", 1, 2),
    (26, "I32", 1, 4),
    (27, "I64", 1, 8),
    (28, "F64", 1, 8),
    (29, "IQ1_M", 256, 56),
    (30, "BF16", 1, 2),
    (34, "TQ1_0", 256, 54),
    (35, "TQ2_0", 256, 66),
    (39, "MXFP4", 32, 17),
    (40, "NVFP4", 64, 36),
    (41, "Q1_0", 128, 18),
    (42, "Q2_0", 64, 18),
)
_REMOVED_GGML_TYPES = {
    4: "Q4_2",
    5: "Q4_3",
    31: "Q4_0_4_4",
    32: "Q4_0_4_8",
    33: "Q4_0_8_8",
    36: "IQ4_NL_4_4",
    37: "IQ4_NL_4_8",
    38: "IQ4_NL_8_8",
}

# enum llama_ftype (llama.h), the value of general.file_type, as the short names people use.
LLAMA_FTYPE_NAMES: dict[int, str] = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    4: "Q4_1_SOME_F16",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    19: "IQ2_XXS",
    20: "IQ2_XS",
    21: "Q2_K_S",
    22: "IQ3_XS",
    23: "IQ3_XXS",
    24: "IQ1_S",
    25: "IQ4_NL",
    26: "IQ3_S",
    27: "IQ3_M",
    28: "IQ2_S",
    29: "IQ2_M",
    30: "IQ4_XS",
    31: "IQ1_M",
    32: "BF16",
    36: "TQ1_0",
    37: "TQ2_0",
    38: "MXFP4_MOE",
    39: "NVFP4",
    40: "Q1_0",
    41: "Q2_0",
}
_FTYPE_GUESSED = 1024

# Text-generating architectures of LLM_ARCH_NAMES (src/llama-arch.cpp) in the llama.cpp of
# llama-cpp-python 0.3.36. Left out on purpose, although llama.cpp knows them: encoders and
# embedding models (bert family, t5encoder, gemma-embedding, llama-embed), encoder-decoder
# t5, vision/OCR/audio-only models (clip, cogvlm, chameleon, deepseek2-ocr, paddleocr,
# hunyuan_vl, wavtokenizer-dec, qwen3tts, pockettts), speculative-decoding heads (eagle3,
# dflash, gemma4-assistant), diffusion models (dream, llada, llada-moe, rnd1), recurrent
# models with no attention heads (mamba, mamba2, rwkv6, rwkv6qwen2, rwkv7, arwkv7), and
# names we could not identify. There is no "mistral" or "cohere": Mistral 7B-style files say
# "llama", Cohere's say "command-r" or "cohere2".
KNOWN_ARCHITECTURES: frozenset[str] = frozenset(
    {
        "afmoe",
        "apertus",
        "arcee",
        "arctic",
        "baichuan",
        "bailingmoe",
        "bailingmoe2",
        "bitnet",
        "bloom",
        "chatglm",
        "codeshell",
        "cohere2",
        "cohere2moe",
        "command-r",
        "dbrx",
        "deci",
        "deepseek",
        "deepseek2",
        "deepseek32",
        "deepseek4",
        "dots1",
        "ernie4_5",
        "ernie4_5-moe",
        "exaone",
        "exaone-moe",
        "exaone4",
        "falcon",
        "falcon-h1",
        "gemma",
        "gemma2",
        "gemma3",
        "gemma3n",
        "gemma4",
        "glm-dsa",
        "glm4",
        "glm4moe",
        "gpt-oss",
        "gpt2",
        "gptj",
        "gptneox",
        "granite",
        "granitehybrid",
        "granitemoe",
        "grok",
        "grovemoe",
        "hunyuan-dense",
        "hunyuan-moe",
        "internlm2",
        "jais",
        "jais2",
        "jamba",
        "kimi-linear",
        "lfm2",
        "lfm2moe",
        "llama",
        "llama4",
        "maincoder",
        "mellum",
        "mimo2",
        "minicpm",
        "minicpm3",
        "minimax-m2",
        "mistral3",
        "mistral4",
        "mpt",
        "nemotron",
        "nemotron_h",
        "nemotron_h_moe",
        "olmo",
        "olmo2",
        "olmoe",
        "openelm",
        "orion",
        "pangu-embedded",
        "phi2",
        "phi3",
        "phimoe",
        "plamo",
        "plamo2",
        "plamo3",
        "plm",
        "qwen",
        "qwen2",
        "qwen2moe",
        "qwen2vl",
        "qwen3",
        "qwen35",
        "qwen35moe",
        "qwen3moe",
        "qwen3next",
        "qwen3vl",
        "qwen3vlmoe",
        "refact",
        "seed_oss",
        "smallthinker",
        "smollm3",
        "stablelm",
        "starcoder",
        "starcoder2",
        "step35",
        "xverse",
    }
)

# GGUF metadata value types (enum gguf_type): id -> (name, struct format or None).
_UINT8, _INT8, _UINT16, _INT16, _UINT32, _INT32, _FLOAT32, _BOOL = range(8)
_STRING, _ARRAY, _UINT64, _INT64, _FLOAT64 = range(8, 13)
_SCALAR_FORMATS: dict[int, str] = {
    _UINT8: "<B",
    _INT8: "<b",
    _UINT16: "<H",
    _INT16: "<h",
    _UINT32: "<I",
    _INT32: "<i",
    _FLOAT32: "<f",
    _BOOL: "<b",
    _UINT64: "<Q",
    _INT64: "<q",
    _FLOAT64: "<d",
}
_INTEGER_TYPES = frozenset({_UINT8, _INT8, _UINT16, _INT16, _UINT32, _INT32, _UINT64, _INT64})


@dataclass(frozen=True)
class _Array:
    """A metadata array; `values` is kept only for short numeric arrays."""

    element_type: int
    count: int
    values: tuple[int | float | bool, ...] | None = None


@dataclass(frozen=True)
class _LongString:
    """A metadata string too long to be worth reading (skipped, only its length kept)."""

    length: int


_Value = int | float | bool | str | _Array | _LongString


@dataclass(frozen=True)
class GgufInfo:
    """What a GGUF file says about the model in it, read from the header alone."""

    path: Path
    file_size: int
    version: int
    architecture: str
    name: str
    parameter_count: int
    quantization: str
    context_length: int
    block_count: int
    embedding_length: int
    head_count: int
    head_count_kv: int
    key_length: int
    value_length: int
    has_chat_template: bool
    tensor_count: int
    tensor_data_bytes: int
    vocab_size: int = 0
    """Tokens in the vocabulary (the length of tokenizer.ggml.tokens; 0 if absent). The
    logits of a batch are sized by it, which dominates llama.cpp's compute buffer for
    small models."""

    def kv_cache_bytes(self, context: int, bytes_per_value: int = 2) -> int:
        """KV cache for `context` tokens: 2 (K and V) × layers × context × head_count_kv ×
        head dim × bytes (f16 default). With key_length != value_length, K and V rows are
        sized separately: layers × context × head_count_kv × (key_length + value_length)."""
        if context < 0 or bytes_per_value <= 0:
            raise ValueError("context must be >= 0 and bytes_per_value > 0")
        per_token_per_layer = self.head_count_kv * (self.key_length + self.value_length)
        return self.block_count * context * per_token_per_layer * bytes_per_value


class _Reader:
    """Little-endian reads from a file through a bounded buffer, with seeks to skip."""

    def __init__(self, file: BinaryIO, path: Path, file_size: int) -> None:
        self._file = file
        self._path = path
        self._size = file_size
        self._buf = b""
        self._pos = 0  # position in _buf
        self._base = 0  # file offset of _buf[0]

    def tell(self) -> int:
        return self._base + self._pos

    def remaining(self) -> int:
        return self._size - self.tell()

    def _ensure(self, n: int) -> None:
        available = len(self._buf) - self._pos
        if available >= n:
            return
        if n > self.remaining():
            raise _truncated(self._path, self.tell() + n, self._size)
        self._file.seek(self._base + len(self._buf))
        more = self._file.read(max(n - available, _CHUNK))
        self._base += self._pos
        self._buf = self._buf[self._pos :] + more
        self._pos = 0
        if len(self._buf) < n:  # the file shrank while we read it
            raise _truncated(self._path, self.tell() + n, self._base + len(self._buf))

    def unpack(self, fmt: str, size: int) -> tuple:
        self._ensure(size)
        values = struct.unpack_from(fmt, self._buf, self._pos)
        self._pos += size
        return values

    def u32(self) -> int:
        return self.unpack("<I", 4)[0]

    def i32(self) -> int:
        return self.unpack("<i", 4)[0]

    def u64(self) -> int:
        return self.unpack("<Q", 8)[0]

    def i64(self) -> int:
        return self.unpack("<q", 8)[0]

    def raw(self, n: int) -> bytes:
        self._ensure(n)
        data = self._buf[self._pos : self._pos + n]
        self._pos += n
        return data

    def skip(self, n: int) -> None:
        if n <= len(self._buf) - self._pos:
            self._pos += n
            return
        if n > self.remaining():
            raise _truncated(self._path, self.tell() + n, self._size)
        self._base = self.tell() + n
        self._buf = b""
        self._pos = 0

    def string_length(self, what: str, limit: int = _MAX_STRING) -> int:
        offset = self.tell()
        length = self.u64()
        if length > limit:
            raise _corrupt(self._path, f"{what} at byte {offset} claims a length of {length:,}")
        return length

    def string(self, what: str, limit: int = _MAX_STRING) -> str:
        return self.raw(self.string_length(what, limit)).decode("utf-8", errors="replace")

    def skip_strings(self, count: int, what: str) -> None:
        for _ in range(count):
            self.skip(self.string_length(what))


def read_gguf_info(path: Path, *, require_known_architecture: bool = True) -> GgufInfo:
    """Read and check a GGUF file's header, metadata and tensor table (not its tensor data).

    Raises GgufError if the file is missing, empty, not GGUF, corrupt, of an unsupported
    version, truncated, lacks the hyper-parameters the appliance needs, or (unless
    `require_known_architecture` is false) is of an architecture not in KNOWN_ARCHITECTURES.
    """
    path = Path(path)
    try:
        with path.open("rb") as file:
            file_size = _file_size(file)
            return _read(file, path, file_size, require_known_architecture)
    except FileNotFoundError:
        raise GgufError(f"model file {path} does not exist: download it or fix the path") from None
    except IsADirectoryError:
        raise GgufError(f"{path} is a directory, not a GGUF model file") from None
    except OSError as exc:
        raise GgufError(f"cannot read model file {path}: {exc.strerror or exc}") from exc


def _file_size(file: BinaryIO) -> int:
    file.seek(0, 2)
    size = file.tell()
    file.seek(0)
    return size


@dataclass(frozen=True)
class GgufProjector:
    """A multimodal projector (llama.cpp's mmproj file) that turns images into tokens."""

    path: Path
    file_size: int
    architecture: str
    """clip for every projector llama.cpp's mtmd loads."""
    tensor_data_bytes: int


def read_gguf_projector(path: Path) -> GgufProjector:
    """Check a projector file as thoroughly as a model (header, metadata, tensor table,
    size). It has no language-model hyper-parameters; its architecture must be clip."""
    path = Path(path)
    try:
        with path.open("rb") as file:
            file_size = _file_size(file)
            _version, metadata, _tensors, data_end = _read_layout(file, path, file_size)
    except FileNotFoundError:
        raise GgufError(f"projector file {path} does not exist") from None
    except IsADirectoryError:
        raise GgufError(f"{path} is a directory, not a projector file") from None
    except OSError as exc:
        raise GgufError(f"cannot read projector file {path}: {exc.strerror or exc}") from exc
    architecture = _architecture(path, metadata, require_known=False)
    if architecture != "clip":
        raise GgufError(
            f"{path} is not a multimodal projector (its architecture is '{architecture}', "
            "a projector's is 'clip'): give the model's mmproj file"
        )
    return GgufProjector(path, file_size, architecture, data_end)


def _read(file: BinaryIO, path: Path, file_size: int, require_known: bool) -> GgufInfo:
    version, metadata, tensors, data_end = _read_layout(file, path, file_size)
    architecture = _architecture(path, metadata, require_known)
    return _build_info(path, file_size, version, metadata, architecture, tensors, data_end)


def _read_layout(
    file: BinaryIO, path: Path, file_size: int
) -> tuple[int, dict[str, _Value], list[_TensorInfo], int]:
    """Header, metadata and tensor table, checked against the file's size."""
    if file_size == 0:
        raise GgufError(
            f"model file {path} is empty (0 bytes): the download or copy failed; "
            "download the model again"
        )
    reader = _Reader(file, path, file_size)
    magic = reader.raw(min(4, file_size))
    if magic != GGUF_MAGIC:
        file.seek(0)
        head = file.read(64)
        raise GgufError(
            f"{path} is not a GGUF model file: {_describe(head)}; "
            "the appliance runs llama.cpp models in GGUF format (a .gguf file)"
        )
    version = reader.u32()
    _check_version(path, version)
    tensor_count = reader.i64()
    kv_count = reader.i64()
    if not 0 <= tensor_count <= _MAX_TENSORS:
        raise _corrupt(path, f"the header claims {tensor_count:,} tensors")
    if not 0 <= kv_count <= _MAX_KV:
        raise _corrupt(path, f"the header claims {kv_count:,} metadata entries")

    metadata: dict[str, _Value] = {}
    for _ in range(kv_count):
        key = reader.string("a metadata key", _MAX_NAME)
        if not key:
            raise _corrupt(path, f"a metadata key at byte {reader.tell()} is empty")
        if key in metadata:
            raise _corrupt(path, f"the metadata key {_show(key)} appears twice")
        value_type = reader.i32()
        metadata[key] = _read_value(reader, path, key, value_type, depth=0)

    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if (
        not isinstance(alignment, int)
        or isinstance(alignment, bool)
        or alignment <= 0
        or alignment & (alignment - 1)
    ):
        raise _corrupt(path, f"general.alignment is {alignment!r}, not a power of two")

    tensors = [_read_tensor_info(reader, path) for _ in range(tensor_count)]
    _check_unique_names(path, tensors)
    data_start = _align(reader.tell(), alignment) if tensors else reader.tell()
    expected_offset = 0
    data_end = 0
    for name, _type, _elements, nbytes, offset in tensors:
        if offset != expected_offset:
            raise _corrupt(
                path,
                f"tensor {_show(name)} starts at data offset {offset:,}, "
                f"expected {expected_offset:,}",
            )
        expected_offset = _align(offset + nbytes, alignment)
        data_end = max(data_end, offset + nbytes)
    if data_start + data_end > file_size:
        raise _truncated(path, data_start + data_end, file_size, header=False)
    return version, metadata, tensors, data_end


def _check_version(path: Path, version: int) -> None:
    if version in SUPPORTED_VERSIONS:
        return
    if version and version & 0xFFFF == 0:
        raise GgufError(
            f"{path} is a big-endian GGUF file (for s390x and similar machines); "
            "download the little-endian version of the model"
        )
    if version == 1:
        raise GgufError(
            f"{path} is GGUF version 1, which llama.cpp no longer reads; "
            "download a newer conversion of the model (GGUF version 2 or 3)"
        )
    if version == 0 or version > 0xFF:
        raise _corrupt(path, f"the version field is {version}")
    raise GgufError(
        f"{path} is GGUF version {version}, which this appliance does not support yet "
        "(it reads versions 2 and 3); download a version 3 conversion or update the appliance"
    )


def _read_value(reader: _Reader, path: Path, key: str, value_type: int, depth: int) -> _Value:
    fmt = _SCALAR_FORMATS.get(value_type)
    if fmt is not None:
        value = reader.unpack(fmt, struct.calcsize(fmt))[0]
        return bool(value) if value_type == _BOOL else value
    if value_type == _STRING:
        length = reader.string_length(f"the string value of {_show(key)}")
        if length > _KEPT_STRING:
            reader.skip(length)
            return _LongString(length)
        return reader.raw(length).decode("utf-8", errors="replace")
    if value_type == _ARRAY:
        return _read_array(reader, path, key, depth)
    raise _corrupt(path, f"the metadata key {_show(key)} has an unknown value type {value_type}")


def _read_array(reader: _Reader, path: Path, key: str, depth: int) -> _Array:
    if depth >= _MAX_ARRAY_DEPTH:
        raise _corrupt(path, f"the metadata key {_show(key)} nests arrays more than 8 deep")
    element_type = reader.i32()
    count = reader.u64()
    if count > _MAX_ARRAY:
        raise _corrupt(path, f"the array {_show(key)} claims {count:,} elements")
    fmt = _SCALAR_FORMATS.get(element_type)
    if fmt is not None:
        size = struct.calcsize(fmt)
        if count > _KEPT_ARRAY_LEN:
            reader.skip(count * size)
            return _Array(element_type, count)
        values = reader.unpack(f"<{count}{fmt[1]}", count * size)
        if element_type == _BOOL:
            values = tuple(bool(v) for v in values)
        return _Array(element_type, count, values)
    if element_type == _STRING:
        reader.skip_strings(count, f"a string in the array {_show(key)}")
        return _Array(element_type, count)
    if element_type == _ARRAY:
        for _ in range(count):
            _read_array(reader, path, key, depth + 1)
        return _Array(element_type, count)
    raise _corrupt(path, f"the array {_show(key)} has an unknown element type {element_type}")


_TensorInfo = tuple[str, GgmlType, int, int, int]  # name, type, elements, bytes, offset


def _read_tensor_info(reader: _Reader, path: Path) -> _TensorInfo:
    name = reader.string("a tensor name", _MAX_NAME)
    n_dims = reader.u32()
    if n_dims > MAX_DIMS:
        raise _corrupt(
            path, f"tensor {_show(name)} claims {n_dims} dimensions (at most {MAX_DIMS})"
        )
    dims = reader.unpack(f"<{n_dims}q", 8 * n_dims) if n_dims else ()
    if any(d < 0 for d in dims):
        raise _corrupt(path, f"tensor {_show(name)} has a negative dimension {dims}")
    elements = 1
    for d in dims:
        elements *= d
    if elements >= 1 << 63:
        raise _corrupt(path, f"tensor {_show(name)} has an impossible shape {dims}")
    type_id = reader.i32()
    ggml_type = GGML_TYPES.get(type_id)
    if ggml_type is None:
        if type_id in _REMOVED_GGML_TYPES:
            raise GgufError(
                f"{path}: tensor {_show(name)} uses the ggml type {_REMOVED_GGML_TYPES[type_id]}, "
                "which llama.cpp has removed; download a current conversion of the model"
            )
        raise GgufError(
            f"{path}: tensor {_show(name)} has an unknown ggml type {type_id}: the file is corrupt "
            "or was made by a newer llama.cpp than this appliance's; download another "
            "conversion of the model"
        )
    row = dims[0] if dims else 1
    if row % ggml_type.block_size:
        raise _corrupt(
            path,
            f"tensor {_show(name)} of type {ggml_type.name} has rows of {row} elements, "
            f"not a multiple of its block size {ggml_type.block_size}",
        )
    nbytes = elements // ggml_type.block_size * ggml_type.type_size
    offset = reader.u64()
    return name, ggml_type, elements, nbytes, offset


def _check_unique_names(path: Path, tensors: list[_TensorInfo]) -> None:
    seen: set[str] = set()
    for name, *_ in tensors:
        if name in seen:
            raise _corrupt(path, f"the tensor name {_show(name)} appears twice")
        seen.add(name)


def _architecture(path: Path, metadata: dict[str, _Value], require_known: bool) -> str:
    architecture = metadata.get("general.architecture")
    if architecture is None:
        raise GgufError(
            f"{path} has no general.architecture in its metadata, so llama.cpp cannot load "
            "it; it is not a llama.cpp model (or a broken conversion): download another one"
        )
    if not isinstance(architecture, str) or not architecture:
        raise _corrupt(path, f"general.architecture is {architecture!r}, not a name")
    if require_known and architecture not in KNOWN_ARCHITECTURES:
        raise GgufError(
            f"{path}: architecture '{architecture}' is not supported by this appliance's "
            "llama.cpp; choose a model of a supported architecture such as llama, qwen2, "
            "qwen3, gemma3 or phi3"
        )
    return architecture


def _build_info(
    path: Path,
    file_size: int,
    version: int,
    metadata: dict[str, _Value],
    architecture: str,
    tensors: list[_TensorInfo],
    tensor_data_bytes: int,
) -> GgufInfo:
    def integer(suffix: str, *, required: bool, default: int = 0) -> int:
        key = f"{architecture}.{suffix}"
        value = metadata.get(key)
        if value is None:
            if required:
                raise GgufError(
                    f"{path} has no {key} in its metadata: the conversion is incomplete or "
                    "was made for another program; download another conversion of the model"
                )
            return default
        if isinstance(value, _Array) and value.values is not None:
            # Per-layer values (e.g. OpenELM head counts, hybrid models with 0 on
            # recurrent layers): the largest is what sizes the attention layers.
            value = max(value.values, default=0)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise _corrupt(path, f"{key} is {value!r}, not a positive whole number")
        return value

    context_length = integer("context_length", required=True)
    block_count = integer("block_count", required=True)
    embedding_length = integer("embedding_length", required=True)
    head_count = integer("attention.head_count", required=True)
    head_count_kv = integer("attention.head_count_kv", required=False, default=head_count)
    head_dim = embedding_length // head_count
    key_length = integer("attention.key_length", required=False, default=head_dim)
    value_length = integer("attention.value_length", required=False, default=head_dim)

    name = metadata.get("general.name")
    if not isinstance(name, str) or not name.strip():
        name = path.stem
    tokens = metadata.get("tokenizer.ggml.tokens")
    vocab_size = tokens.count if isinstance(tokens, _Array) else 0
    template = metadata.get("tokenizer.chat_template")
    has_chat_template = isinstance(template, _LongString) or (
        isinstance(template, str) and bool(template.strip())
    )

    return GgufInfo(
        path=path,
        file_size=file_size,
        version=version,
        architecture=architecture,
        name=name.strip(),
        parameter_count=sum(t[2] for t in tensors),
        quantization=_quantization(metadata.get("general.file_type"), tensors),
        context_length=context_length,
        block_count=block_count,
        embedding_length=embedding_length,
        head_count=head_count,
        head_count_kv=head_count_kv,
        key_length=key_length,
        value_length=value_length,
        has_chat_template=has_chat_template,
        tensor_count=len(tensors),
        tensor_data_bytes=tensor_data_bytes,
        vocab_size=vocab_size,
    )


def _quantization(file_type: _Value | None, tensors: list[_TensorInfo]) -> str:
    if isinstance(file_type, int) and not isinstance(file_type, bool):
        name = LLAMA_FTYPE_NAMES.get(file_type & ~_FTYPE_GUESSED)
        if name is not None:
            return name
    bytes_by_type: Counter[str] = Counter()
    for _name, ggml_type, _elements, nbytes, _offset in tensors:
        bytes_by_type[ggml_type.name] += nbytes
    if not bytes_by_type:
        return "unknown"
    return bytes_by_type.most_common(1)[0][0]


def _show(text: str, limit: int = 60) -> str:
    """`text` quoted for a message: unprintable characters replaced, cut to `limit`."""
    shown = "".join(c if c.isprintable() else "?" for c in text[:limit])
    return f"'{shown}'" + ("..." if len(text) > limit else "")


def _align(offset: int, alignment: int) -> int:
    return (offset + alignment - 1) // alignment * alignment


def _corrupt(path: Path, detail: str) -> GgufError:
    return GgufError(
        f"{path} claims to be a GGUF model file but is corrupt: {detail}; download the model again"
    )


def _truncated(path: Path, needed: int, size: int, *, header: bool = True) -> GgufError:
    """`header`: cut off inside the header, so `needed` is only a lower bound."""
    at_least = "at least " if header else ""
    return GgufError(
        f"{path} is truncated: needs {at_least}{needed:,} bytes, has {size:,}; "
        "the download or copy was cut off, download the model again"
    )


def _describe(head: bytes) -> str:
    """A guess at what a non-GGUF file is, from its first bytes."""
    start = head.lstrip()
    lowered = start[:64].lower()
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "it starts with PK (a zip archive, or a PyTorch checkpoint?)"
    if head.startswith(b"\x1f\x8b"):
        return "it is gzip-compressed (unpack it first?)"
    if head.startswith(b"\xfd7zXZ"):
        return "it is xz-compressed (unpack it first?)"
    if head.startswith(b"(\xb5/\xfd"):
        return "it is zstd-compressed (unpack it first?)"
    if head.startswith((b"lmgg", b"fmgg", b"tjgg", b"algg")):
        return "it is in llama.cpp's old GGML/GGJT format, from before GGUF"
    if head.startswith(b"version https://git-lfs"):
        return "it is a Git LFS pointer, not the model itself (fetch the LFS object)"
    if lowered.startswith((b"<!doctype html", b"<html", b"<?xml")):
        return "it is a web page (an error or login page saved instead of the model?)"
    if head.startswith(b"\x7fELF"):
        return "it is a program (ELF), not a model"
    if head.startswith(b"\x93NUMPY"):
        return "it is a NumPy array file"
    if len(head) >= 9 and head[8:9] == b"{" and struct.unpack_from("<Q", head)[0] < 1 << 30:
        return "it is a safetensors file (convert it to GGUF with llama.cpp first)"
    if start.startswith((b"{", b"[")):
        return "it looks like JSON text"
    if head.startswith(b"ONNX") or b"onnx" in head[:32].lower():
        return "it looks like an ONNX model"
    if len(head) < 4:
        return f"it is only {len(head)} bytes long"
    shown = "".join(chr(b) if 32 <= b < 127 else "." for b in head[:4])
    return f"it starts with {head[:4].hex(' ')} ('{shown}') instead of 'GGUF'"
