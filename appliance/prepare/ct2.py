"""A CTranslate2 ``model.bin`` (the Whisper export faster-whisper uses) read for the Whisper
converter: its variables as zero-copy numpy views, each checked against the file."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# CTranslate2 binary layout versions whose variable records carry a dtype id and a
# byte count and that end with an alias table (CTranslate2 >= 2.x writes 4..6).
_MIN_CT2_VERSION = 4
_MAX_CT2_VERSION = 6
_WHISPER_SPEC = "WhisperSpec"

# CTranslate2 DataType enum order (include/ctranslate2/types.h).
_CT2_DTYPE_NAMES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
_CT2_FLOAT32, _CT2_INT8, _CT2_INT16, _CT2_INT32, _CT2_FLOAT16, _CT2_BFLOAT16 = range(6)
_CT2_ITEMSIZE = (4, 1, 2, 4, 2, 2)


class WhisperConversionError(Exception):
    """The source model cannot be converted; the message says why and how to fix it."""


@dataclass(frozen=True)
class _Var:
    """Location of one variable inside model.bin."""

    name: str
    shape: tuple[int, ...]
    dtype: int
    offset: int
    nbytes: int


class Ct2Reader:
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


def check_not_quantized(model: Ct2Reader) -> None:
    for var in model.variables.values():
        quantized_weight = var.name.endswith("weight") and var.dtype in (_CT2_INT8, _CT2_INT16)
        if quantized_weight or var.name.endswith("weight_scale"):
            raise WhisperConversionError(
                f"{model.path} is a quantized CTranslate2 model ('{var.name}' is "
                f"{_CT2_DTYPE_NAMES[var.dtype]}); quantized CTranslate2 models are not supported. "
                "Use a float16 or float32 export "
                "(ct2-transformers-converter --quantization float16)."
            )
