"""Reading text in an image: RapidOCR (PP-OCRv4 ONNX models carried inside the
`rapidocr-onnxruntime` wheel: nothing is downloaded) on onnxruntime, on the CPU.

The models are loaded on first use, not at import: a board without a camera never pays
for them (see docs/vision.md for the RAM figures)."""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True)
class TextLine:
    text: str
    confidence: float
    """0–1, as the recogniser scored it."""
    top: float
    """Vertical position of the line's box (pixels from the top), for reading order."""
    left: float


class TextReader(Protocol):
    name: str

    def read(self, image: np.ndarray) -> list[TextLine]:
        """Lines of text in an RGB image, top to bottom. Blocking."""
        ...


class RapidOcrReader:
    """rapidocr-onnxruntime, loaded lazily (or at once with `load()`)."""

    name = "rapidocr"

    def __init__(self, *, threads: int = 0) -> None:
        self.threads = threads
        self._engine: Any = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._engine is not None

    def load(self) -> None:
        with self._lock:
            if self._engine is None:
                from rapidocr_onnxruntime import RapidOCR

                options: dict[str, Any] = {"print_verbose": False}
                if self.threads > 0:
                    options["intra_op_num_threads"] = self.threads
                self._engine = RapidOCR(**options)

    def read(self, image: np.ndarray) -> list[TextLine]:
        self.load()
        bgr = np.ascontiguousarray(image[..., ::-1])  # RapidOCR takes arrays in BGR order
        result, _ = self._engine(bgr)
        lines = []
        for box, text, score in result or []:
            points = np.asarray(box, dtype=np.float32)
            lines.append(
                TextLine(
                    text=str(text).strip(),
                    confidence=float(score),
                    top=float(points[:, 1].min()),
                    left=float(points[:, 0].min()),
                )
            )
        _give_back_memory()
        return reading_order([line for line in lines if line.text])


def _give_back_memory() -> None:
    """Return the ~100–350 MB of buffers freed after a read to the system. glibc keeps
    freed memory of the worker threads' arenas otherwise: measured, resident memory stays
    at +100–350 MB after a read without this, and falls back to the models' own size with
    it (docs/vision.md)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def reading_order(lines: list[TextLine]) -> list[TextLine]:
    """Top to bottom; boxes whose tops are within half a line of each other are one row,
    read left to right."""
    rows: list[list[TextLine]] = []
    for line in sorted(lines, key=lambda item: item.top):
        if rows and abs(line.top - rows[-1][0].top) < 12:
            rows[-1].append(line)
        else:
            rows.append([line])
    return [line for row in rows for line in sorted(row, key=lambda item: item.left)]
