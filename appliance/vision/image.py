"""Images in and out: decoding given bytes safely, and telling a picture from nothing.

Every image inside the vision package is an RGB `uint8` array of shape (height, width, 3).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np

from appliance.vision.errors import ImageError

# A few formats a camera or a phone produces; anything else is refused by name.
ACCEPTED_FORMATS = ("JPEG", "PNG", "BMP", "GIF", "TIFF", "WEBP", "PPM")


def decode_image(data: bytes, *, max_bytes: int, max_pixels: int) -> np.ndarray:
    """Bytes of an image file → RGB array. Refuses, with the reason, anything too large,
    not an image, or truncated."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise ImageError("the image is empty (0 bytes)")
    if len(data) > max_bytes:
        raise ImageError(
            f"the image is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.1f} MB "
            "(vision.max_image_bytes): send a smaller or more compressed one",
            code="image_too_large",
        )
    try:
        with warnings.catch_warnings():
            # Pillow warns about, then refuses, decompression bombs: we refuse first.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise ImageError(
                    f"the image is {width}×{height} pixels; the limit is "
                    f"{max_pixels / 1e6:.0f} megapixels (vision.max_pixels): scale it down",
                    code="image_too_large",
                )
            if image.format not in ACCEPTED_FORMATS:
                raise ImageError(
                    f"{image.format} images are not accepted; use one of "
                    f"{', '.join(ACCEPTED_FORMATS)}"
                )
            image.load()
            rgb = image.convert("RGB")
    except UnidentifiedImageError:
        raise ImageError(f"this is not an image ({_describe(data)})") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise ImageError(f"the image cannot be decoded (truncated or damaged?): {err}") from None
    return np.asarray(rgb, dtype=np.uint8)


def encode_jpeg(image: np.ndarray, quality: int = 85) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _describe(data: bytes) -> str:
    head = data[:8]
    if head.startswith(b"PK"):
        return "starts with PK, a zip?"
    if head[:1] in (b"{", b"["):
        return "looks like JSON"
    if all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return f"starts with text {head.decode('ascii', 'replace')!r}"
    return f"starts with bytes {head.hex(' ')}"


@dataclass(frozen=True)
class FrameCheck:
    usable: bool
    reason: str
    """"" when usable; else dark, blank or noise."""
    brightness: float
    """Mean grey level, 0–255."""
    contrast: float
    """Standard deviation of the grey levels."""
    neighbour_correlation: float
    """Correlation of each pixel with the one to its right: near 1 for any real scene or
    text, near 0 for sensor noise or random garbage."""


def check_frame(image: np.ndarray) -> FrameCheck:
    """Is there anything to look at? A covered lens gives a dark frame, a blown-out or
    blank one a flat frame, a broken sensor or a garbage buffer noise."""
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 8 or image.shape[1] < 8:
        return FrameCheck(False, "blank", 0.0, 0.0, 0.0)
    step = max(1, max(image.shape[:2]) // 512)  # a thumbnail is enough, and fast
    grey = image[::step, ::step].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    brightness = float(grey.mean())
    contrast = float(grey.std())
    left, right = grey[:, :-1].ravel(), grey[:, 1:].ravel()
    spread = float(left.std() * right.std())
    correlation = (
        float(((left - left.mean()) * (right - right.mean())).mean() / spread) if spread else 1.0
    )
    if brightness < 12 and contrast < 8:
        reason = "dark"
    elif contrast < 4:
        reason = "blank"
    elif correlation < 0.3:
        reason = "noise"
    else:
        reason = ""
    return FrameCheck(not reason, reason, brightness, contrast, correlation)
