"""What can go wrong when looking: each error says what happened and what to do."""

from __future__ import annotations

from appliance.errors import ApplianceError

EXIT_VISION = 10


class VisionError(ApplianceError):
    """The camera or an image could not be used. The voice pipeline is not affected."""

    code = "vision"
    exit_code = EXIT_VISION


class CameraError(VisionError):
    """No camera, a busy one, or one that stopped answering."""

    code = "camera"


class ImageError(VisionError):
    """A given image that is too large, not an image, or damaged."""

    code = "image"


class VisionModelMissing(VisionError):
    """Describing a scene needs a vision model that is not imported (or does not fit)."""

    code = "vision_model"
