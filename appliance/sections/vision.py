"""The `[vision]` settings: which camera, where images may be kept, and the limits."""

from __future__ import annotations

from dataclasses import dataclass

from appliance.errors import ConfigError

CAMERA_KINDS = ("none", "auto", "picamera2", "v4l2", "file")


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


@dataclass(frozen=True)
class VisionConfig:
    camera: str = "none"
    """none (the hook is off), auto (a Pi camera, else the first V4L2/USB camera),
    picamera2, v4l2, or file (an image file, or the newest image in a folder: `path`)."""
    device: str = ""
    """For v4l2: the device, `/dev/video0` or its index `0`; "" = the first that opens."""
    path: str = ""
    """For camera = "file": an image file, or a folder whose newest image is "captured"."""
    keep_open: bool = False
    """Keep the camera open between captures (faster, but its LED stays on and another
    program cannot use it). Off: open, grab one frame, close."""
    save_images: bool = False
    """Privacy: keep every captured or given image under the data directory's `vision/`
    folder. Off by default: images are looked at in memory and forgotten."""
    max_image_bytes: int = 10_000_000
    """Given images (API, MQTT, `--image`) larger than this are refused."""
    max_pixels: int = 24_000_000
    """Images with more pixels than this are refused (a small file can decode to gigabytes)."""
    ocr_at_start: bool = False
    """Load the OCR models when the appliance starts (about 1 s and some RAM) instead of on
    the first "read this"; see docs/vision.md for the figures."""
    ocr_threads: int = 1
    """CPU threads for OCR; 0 = every core. One leaves the other cores to the wake word,
    which keeps listening while it reads, and was not slower on the shared 2-core
    development machine (see docs/vision.md)."""
    min_confidence: float = 0.5
    """OCR lines read with less confidence than this are not spoken."""
    vision_model: str = ""
    """Catalog name of an imported vision model (GGUF + projector) for "what do you see";
    "" = the first imported one that fits the memory budget, if any."""
    vlm_context: int = 2048
    """Context of the vision model (an image takes several hundred tokens)."""
    vlm_max_tokens: int = 96
    """Longest scene description, in tokens."""
    button_pin: int | None = None
    """BCM pin of a "look" push button (`appliance run`); unset = none. Pressed: capture a
    frame and say what it reads (or sees: `button_look`)."""
    button_pull_up: bool = True
    """True when the button connects the pin to ground."""
    button_look: str = "read"
    """What the button does: read (the text in view) or describe (the scene)."""

    def __post_init__(self) -> None:
        kinds = ", ".join(CAMERA_KINDS)
        _check(self.camera in CAMERA_KINDS, f"vision.camera must be one of {kinds}")
        _check(
            self.camera != "file" or bool(self.path),
            'vision.camera = "file" needs vision.path (an image file or a folder of images)',
        )
        _check(self.max_image_bytes >= 1000, "vision.max_image_bytes must be at least 1000")
        _check(self.max_pixels >= 10_000, "vision.max_pixels must be at least 10000")
        _check(self.ocr_threads >= 0, "vision.ocr_threads must be 0 (every core) or more")
        _check(0.0 <= self.min_confidence < 1.0, "vision.min_confidence must be 0–1")
        _check(512 <= self.vlm_context <= 32768, "vision.vlm_context must be 512–32768")
        _check(1 <= self.vlm_max_tokens <= 1024, "vision.vlm_max_tokens must be 1–1024")
        _check(
            self.button_pin is None or 0 <= self.button_pin <= 53,
            "vision.button_pin must be a BCM pin number 0–53 (leave it out for no button)",
        )
        _check(
            self.button_look in ("read", "describe"), "vision.button_look must be read or describe"
        )

    @property
    def enabled(self) -> bool:
        return self.camera != "none"
