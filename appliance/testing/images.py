"""Test pictures with known content, drawn with Pillow: signs with text, a dark frame,
sensor noise. Used by the vision tests and the benchmark."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SIGN_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


def render_sign(
    text: str,
    *,
    size: tuple[int, int] = (1280, 720),
    font_size: int = 80,
    wall: tuple[int, int, int] = (96, 112, 104),
) -> np.ndarray:
    """A white board with black text on a coloured wall, like a camera would see a sign.
    Several lines are separated by newlines. Returns RGB uint8."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", size, wall)
    draw = ImageDraw.Draw(image)
    try:  # Debian's fonts-dejavu-core: real word spacing, as on printed signs
        font = ImageFont.truetype(SIGN_FONT, font_size)
    except OSError:
        font = ImageFont.load_default(size=font_size)
    left, top, right, bottom = draw.multiline_textbbox((0, 0), text, font=font, spacing=30)
    width, height = right - left, bottom - top
    x, y = (size[0] - width) // 2, (size[1] - height) // 2
    pad = font_size // 2
    draw.rectangle((x - pad, y - pad, x + width + pad, y + height + pad), fill="white")
    draw.multiline_text((x - left, y - top), text, fill="black", font=font, spacing=30)
    return np.asarray(image, dtype=np.uint8)


def save_image(image: np.ndarray, path: Path) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path)
    return path


def noise_frame(size: tuple[int, int] = (640, 480), seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)


def dark_frame(size: tuple[int, int] = (640, 480), seed: int = 0) -> np.ndarray:
    """A covered lens: black with a little sensor noise."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 6, (size[1], size[0], 3), dtype=np.uint8)
