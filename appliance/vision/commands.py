"""`appliance vision read|describe|capture`: the vision hook from the command line."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from appliance import events as ev
from appliance.config import config_from_args
from appliance.vision.errors import EXIT_VISION, CameraError, ImageError


def add_vision_commands(vision: argparse.ArgumentParser) -> None:
    sub = vision.add_subparsers(dest="vision_command", metavar="ACTION", required=True)
    for name, help_text in (
        ("read", "read the text in view (OCR), or in --image"),
        ("describe", "say what is in view (needs an imported vision model; else reads text)"),
    ):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--image", type=Path, metavar="FILE", help="look at this image file")
        p.add_argument(
            "--events", metavar="OUT.jsonl|-", help="write the vision event as JSON Lines"
        )
        if name == "describe":
            p.add_argument("--question", default="", help='e.g. "is anyone at the door?"')
        p.set_defaults(handler=cmd_look, kind=name)
    p = sub.add_parser("capture", help="grab one frame from the camera and save it (a test)")
    p.add_argument("out", type=Path, metavar="OUT.jpg", help="where to write the frame")
    p.set_defaults(handler=cmd_capture)


def cmd_look(args: argparse.Namespace) -> int:
    from appliance.vision.build import build_vision

    config = config_from_args(args)
    data = None
    if args.image is not None:
        try:
            data = args.image.read_bytes()
        except OSError as err:
            raise ImageError(f"cannot read {args.image}: {err.strerror or err}") from err
    bus = ev.EventBus()
    if args.events == "-":
        bus.subscribe(ev.JsonLinesWriter(sys.stdout))
    handle = None
    if args.events and args.events != "-":
        handle = open(args.events, "w", encoding="utf-8")  # noqa: SIM115 - closed below
        bus.subscribe(ev.JsonLinesWriter(handle))
    try:
        if data is None and not config.vision.enabled:
            raise CameraError(
                'no camera is configured (vision.camera = "none"): set [vision] camera in '
                "the config, or give an image with --image FILE"
            )
        service, note = build_vision(config, publish=bus.publish, force=True)
        if service is None or (data is None and service.camera is None):
            raise CameraError(f"{note}; give an image with --image FILE")

        async def look():  # -> VisionAnswer
            try:
                return await service.look(
                    args.kind, image=data, question=getattr(args, "question", "")
                )
            finally:
                service.close()

        answer = asyncio.run(look())
    finally:
        if handle is not None:
            handle.close()
    args.say(answer.text)
    if answer.lines and args.kind == "read":
        for line in answer.lines:
            args.say(f"  | {line}")
    kept = f", image kept at {answer.image_saved}" if answer.image_saved else ""
    args.say(f"  ({answer.backend}, {answer.seconds:.2f} s{kept})")
    problems_with_input = ("camera", "image", "image_too_large", "nothing_visible")
    return EXIT_VISION if answer.problem in problems_with_input else 0


def cmd_capture(args: argparse.Namespace) -> int:
    import time

    from appliance.vision.camera import open_camera
    from appliance.vision.image import check_frame, encode_jpeg

    config = config_from_args(args)
    camera, note = open_camera(config.vision)
    if camera is None:
        raise CameraError(note)
    started = time.monotonic()
    try:
        frame = camera.capture()
    finally:
        camera.close()
    seconds = time.monotonic() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(encode_jpeg(frame))
    check = check_frame(frame)
    args.say(
        f"{camera.name}: {frame.shape[1]}×{frame.shape[0]} in {seconds:.2f} s → {args.out} "
        f"(brightness {check.brightness:.0f}, contrast {check.contrast:.0f}"
        + (f"; looks {check.reason}: nothing to see" if not check.usable else "")
        + ")"
    )
    return 0 if check.usable else EXIT_VISION
