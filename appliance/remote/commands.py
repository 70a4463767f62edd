"""`appliance serve-wyoming`: offer this board's engines to other machines (Wyoming)."""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
from typing import TYPE_CHECKING

from appliance.config import AppConfig, config_from_args

if TYPE_CHECKING:
    from appliance.discovery.mdns import Advertiser

_LOGGER = logging.getLogger(__name__)
DEFAULT_PORT = 10300


def add_serve_wyoming(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="0.0.0.0",
                        help="address to listen on (default: every interface)")  # fmt: skip
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"TCP port (default: {DEFAULT_PORT}, Wyoming's usual)")  # fmt: skip
    parser.add_argument("--no-mdns", action="store_true",
                        help="do not announce the services as _wyoming._tcp")  # fmt: skip
    parser.set_defaults(handler=cmd_serve_wyoming)


def cmd_serve_wyoming(args: argparse.Namespace) -> int:
    from wyoming.server import AsyncTcpServer

    from appliance.console import progress, run_async
    from appliance.engines import speech_engines
    from appliance.remote.serve import EngineHandler, Served

    config = config_from_args(args)
    stt, tts, wake = speech_engines(config, progress=progress)
    language = config.stt.language if config.stt.language != "auto" else "en"
    served = Served(stt, tts, wake, stt_name=config.stt.model, voice_name=config.tts.voice,
                    language=language)  # fmt: skip

    async def main() -> int:
        server = AsyncTcpServer(args.host, args.port)
        await server.start(functools.partial(EngineHandler, served))
        advertiser = None
        if not args.no_mdns and args.host not in ("127.0.0.1", "::1"):
            advertiser = await _advertise(config, args.port)
        args.say(f"Wyoming speech-to-text, voice and wake word on tcp://{args.host}:{args.port}")
        try:
            await asyncio.Event().wait()
        finally:
            if advertiser is not None:
                await advertiser.close()
            await server.stop()
        return 0

    return run_async(main, args.say)


async def _advertise(config: AppConfig, port: int) -> Advertiser | None:
    from appliance.discovery.mdns import WYOMING_TYPE, Advertiser, Service

    advertiser = Advertiser(config.web.device_name, port,
                            services=[Service(WYOMING_TYPE, port, lambda name: {})])  # fmt: skip
    try:
        await advertiser.start()
    except Exception as err:  # the address can still be given by hand
        _LOGGER.warning("the Wyoming services could not be announced over mDNS: %s", err)
        return None
    return advertiser
