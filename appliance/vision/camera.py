"""Camera sources behind one interface: capture one frame on demand.

- `Picamera2Camera`: the Raspberry Pi camera (libcamera), when picamera2 is installed.
- `V4l2Camera`: any USB/V4L2 camera, through OpenCV (which rapidocr already brings).
- `FileCamera`: an image file, or the newest image in a folder: for tests, and for people
  without a camera (another program can drop snapshots into the folder).
- `FakeCamera` (in fake.py): scripted frames and failures for unit tests.

A capture opens the device, grabs a frame and closes it again, unless `keep_open` is set:
the LED is on only while it looks, and other programs can use the camera in between.
Captures are blocking; `VisionService` runs them on its own thread.
"""

from __future__ import annotations

import glob
import logging
import os
import re
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from appliance.sections.vision import VisionConfig
from appliance.vision.errors import CameraError, ImageError
from appliance.vision.image import decode_image

_LOGGER = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")
WARM_UP_FRAMES = 5
"""Frames thrown away after opening a USB camera: the first ones are dark or unfocused
while its auto-exposure settles."""


class Camera(Protocol):
    name: str
    """What it is, for events and `doctor` (e.g. "v4l2 /dev/video0")."""

    def capture(self) -> np.ndarray:
        """One RGB frame, (height, width, 3) uint8. Raises CameraError."""
        ...

    def close(self) -> None:
        """Release the device; safe to call twice."""
        ...


class FileCamera:
    """A file, or a folder whose newest image is the "current view"."""

    def __init__(self, path: Path, *, max_bytes: int, max_pixels: int) -> None:
        self.path = Path(path).expanduser()
        self.name = f"file {self.path}"
        self._max_bytes = max_bytes
        self._max_pixels = max_pixels

    def current_file(self) -> Path:
        if self.path.is_dir():
            images = [p for p in self.path.iterdir()
                      if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]  # fmt: skip
            if not images:
                raise CameraError(
                    f"the camera folder {self.path} has no image in it "
                    f"({', '.join(IMAGE_SUFFIXES)})"
                )
            return max(images, key=lambda p: p.stat().st_mtime_ns)
        if not self.path.exists():
            raise CameraError(
                f"the camera image {self.path} does not exist; set vision.path to an image "
                "file or a folder of images"
            )
        return self.path

    def capture(self) -> np.ndarray:
        path = self.current_file()
        try:
            data = path.read_bytes()
        except OSError as err:  # removed between listing and reading, or unreadable
            raise CameraError(f"cannot read the camera image {path}: {err.strerror}") from err
        try:
            return decode_image(data, max_bytes=self._max_bytes, max_pixels=self._max_pixels)
        except ImageError as err:
            raise CameraError(f"the camera image {path.name} is unusable: {err}") from err

    def close(self) -> None:
        return None


class V4l2Camera:
    """A USB (UVC) or other V4L2 camera, read through OpenCV."""

    def __init__(self, device: str = "", *, keep_open: bool = False) -> None:
        self.device = device
        self.keep_open = keep_open
        self.name = f"v4l2 {device or 'first camera'}"
        self._capture: Any = None

    def _open(self) -> Any:
        try:
            import cv2
        except ImportError as err:
            raise CameraError(
                "USB cameras are read through OpenCV, which is not installed "
                "(pip install rapidocr-onnxruntime brings it)"
            ) from err
        candidates = [self.device] if self.device else v4l2_devices()
        if not candidates:
            raise CameraError(
                "no camera found: no /dev/video* device. Plug in a USB camera "
                '(`v4l2-ctl --list-devices` lists them) or set vision.camera = "none"'
            )
        for candidate in candidates:
            target: int | str = int(candidate) if candidate.isdigit() else candidate
            if isinstance(target, str) and not os.path.exists(target):
                continue
            capture = cv2.VideoCapture(target, cv2.CAP_V4L2)
            if capture.isOpened():
                self.name = f"v4l2 {candidate}"
                return capture
            capture.release()
        which = self.device or ", ".join(candidates)
        raise CameraError(
            f"cannot open the camera {which}: it is missing, or busy in another program "
            "(`fuser /dev/video*` shows which), or this user may not use it (group video)"
        )

    def capture(self) -> np.ndarray:
        import cv2

        if self._capture is None:
            self._capture = self._open()
        try:
            frame = None
            for _ in range(1 if self.keep_open else WARM_UP_FRAMES):
                ok, frame = self._capture.read()
                if not ok:
                    self.close()  # unplugged: reopen next time
                    raise CameraError(f"the camera {self.name} stopped sending frames (unplugged?)")
            assert frame is not None
            if frame.ndim == 2:
                return np.ascontiguousarray(cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB))
            return np.ascontiguousarray(frame[..., 2::-1])
        finally:
            if not self.keep_open:
                self.close()

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


def v4l2_devices() -> list[str]:
    """/dev/videoN nodes, in number order (a USB camera's first node is its capture one)."""
    found = glob.glob("/dev/video*")
    return sorted((p for p in found if re.fullmatch(r"/dev/video\d+", p)),
                  key=lambda p: int(p.removeprefix("/dev/video")))  # fmt: skip


class Picamera2Camera:
    """The Raspberry Pi camera module (libcamera), through picamera2."""

    def __init__(self, *, keep_open: bool = False) -> None:
        self.keep_open = keep_open
        self.name = "picamera2"
        self._camera: Any = None

    def _open(self) -> Any:
        try:
            from picamera2 import Picamera2
        except ImportError as err:
            raise CameraError(
                "picamera2 is not installed: on Raspberry Pi OS, apt-get install "
                "python3-picamera2 and create the venv with --system-site-packages"
            ) from err
        if not Picamera2.global_camera_info():
            raise CameraError("no Raspberry Pi camera found (check the ribbon cable)")
        try:
            camera = Picamera2()
            camera.configure(camera.create_still_configuration(main={"format": "RGB888"}))
            camera.start()
        except Exception as err:  # libcamera raises RuntimeError/OSError when busy
            raise CameraError(
                f"cannot open the Raspberry Pi camera (busy in another program?): {err}"
            ) from err
        return camera

    def capture(self) -> np.ndarray:
        if self._camera is None:
            self._camera = self._open()
        try:
            frame = self._camera.capture_array("main")
        except Exception as err:
            self.close()
            raise CameraError(f"the Raspberry Pi camera stopped answering: {err}") from err
        finally:
            if not self.keep_open:
                self.close()
        # picamera2's "RGB888" is stored B, G, R in memory.
        return np.ascontiguousarray(frame[..., 2::-1])

    def close(self) -> None:
        if self._camera is not None:
            try:
                self._camera.close()
            except Exception as err:
                _LOGGER.debug("closing the Pi camera: %s", err)
            self._camera = None


def picamera2_available() -> bool:
    try:
        from picamera2 import Picamera2
    except ImportError:
        return False
    try:
        return bool(Picamera2.global_camera_info())
    except Exception:
        return False


def open_camera(config: VisionConfig) -> tuple[Camera | None, str]:
    """The camera the configuration names, and why; None when the hook is off.

    Nothing is opened here: a camera is opened at the first capture, so a camera that is
    unplugged at start-up costs nothing until someone asks to look."""
    kind = config.camera
    if kind == "none":
        return None, 'vision is off (vision.camera = "none")'
    if kind == "file":
        camera = FileCamera(
            Path(config.path), max_bytes=config.max_image_bytes, max_pixels=config.max_pixels
        )
        return camera, f"image source {camera.path}"
    if kind == "picamera2":
        return Picamera2Camera(keep_open=config.keep_open), "Raspberry Pi camera (picamera2)"
    if kind == "v4l2":
        return V4l2Camera(config.device, keep_open=config.keep_open), "V4L2 camera"
    # auto
    if picamera2_available():
        return Picamera2Camera(keep_open=config.keep_open), "Raspberry Pi camera (auto)"
    devices = [config.device] if config.device else v4l2_devices()
    if devices:
        return V4l2Camera(config.device, keep_open=config.keep_open), (
            f"V4L2 camera {devices[0]} (auto)"
        )
    return None, "no camera found (no Raspberry Pi camera, no /dev/video*): vision is off"
