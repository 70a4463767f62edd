"""What `appliance doctor` says about the camera hook: off, or which camera, whether it
gives a picture, and what "what do you see" will use."""

from __future__ import annotations

import importlib.util

from appliance.config import AppConfig
from appliance.vision.camera import open_camera
from appliance.vision.errors import VisionError
from appliance.vision.image import check_frame

AREA = "vision"


def vision_checks(config: AppConfig, *, probe_camera: bool) -> list[tuple[str, str, str, str]]:
    """(area, status, detail, fix) rows. Vision is optional: nothing here is a failure
    that stops the appliance, so problems are warnings."""
    vision = config.vision
    camera, note = open_camera(vision)
    if camera is None:
        if vision.camera == "none":
            return [(AREA, "ok", "off: no camera configured; the voice pipeline does not "
                     "use it", "")]  # fmt: skip
        return [(AREA, "warn", note, 'attach a camera, or set [vision] camera = "none"')]
    rows = []
    if importlib.util.find_spec("rapidocr_onnxruntime") is None:
        rows.append((AREA, "warn", "rapidocr-onnxruntime is not installed: cannot read text",
                     "run ./setup.sh"))  # fmt: skip
    if probe_camera:
        try:
            frame = camera.capture()
        except VisionError as err:
            rows.append((AREA, "warn", f"{note}: {err}", "see docs/vision.md"))
        else:
            check = check_frame(frame)
            size = f"{frame.shape[1]}×{frame.shape[0]}"
            if check.usable:
                rows.append((AREA, "ok", f"{camera.name}: a {size} picture", ""))
            else:
                rows.append((AREA, "warn", f"{camera.name}: the picture is {check.reason}",
                             "uncover the lens, light the scene, check the cable"))  # fmt: skip
        finally:
            camera.close()
    else:
        rows.append((AREA, "ok", note, ""))
    from appliance.vision.build import pick_describer

    describer, missing = pick_describer(config)
    if describer is None:
        rows.append((AREA, "ok", 'scenes: no vision model, so "what do you see" reads '
                     "text only", missing.split(". ", 1)[-1]))  # fmt: skip
    else:
        rows.append((AREA, "ok", f"scenes: {describer.name}", ""))
    return rows
