"""`appliance web` (the page on its own, with real or fake engines) and `appliance
pairing new-code|reset|show-status`."""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from typing import Any

from appliance.config import default_config_path, load_config_or_fallback


def add_web_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    web = command(
        "web",
        "Serve the config page and API without the microphone loop: with the real "
        "engines (typed requests, WAV uploads), or --fake-engines to try the page on a PC.",
    )
    add_web_options(web)
    web.add_argument(
        "--fake-engines",
        action="store_true",
        help="no models: a reply that repeats the request, tones for speech",
    )
    web.add_argument("--no-mdns", action="store_true", help="do not announce on the network")
    web.set_defaults(handler=cmd_web)

    pairing = command("pairing", "The pairing code that lets a browser in.")
    verbs = pairing.add_subparsers(dest="pairing_command", metavar="ACTION", required=True)
    renew = verbs.add_parser(
        "new-code", help="make a new code (printed, valid web.pairing_code_minutes); paired "
        "browsers and API tokens stay"
    )  # fmt: skip
    renew.set_defaults(handler=cmd_pairing_new_code)
    reset = verbs.add_parser(
        "reset", help="make a new code (printed), and sign out every browser and API token"
    )
    reset.set_defaults(handler=cmd_pairing_reset)
    show = verbs.add_parser("show-status", help="whether a code exists, sessions and tokens")
    show.set_defaults(handler=cmd_pairing_status)


def add_web_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--localhost-only", action="store_true",
                        help="serve the page (and, with `run`, Home Assistant's API) on "
                             "127.0.0.1 only (no LAN, no mDNS)")  # fmt: skip
    parser.add_argument(
        "--web-port",
        type=int,
        metavar="PORT",
        help="port for the page (default: web.port, 80; 0 = any free port)",
    )


def _pairing_store(args: argparse.Namespace) -> Any:
    """The store with the configured code lifetime (a broken config: its fallback)."""
    from appliance.web.auth import PairingStore
    from appliance.web.paths import web_dir

    try:
        config, _ = load_config_or_fallback(args.config or default_config_path())
        minutes = config.web.pairing_code_minutes
    except Exception:  # no usable config at all: pairing must still be possible
        minutes = PairingStore(web_dir()).code_minutes
    return PairingStore(web_dir(), code_minutes=minutes)


def cmd_pairing_new_code(args: argparse.Namespace) -> int:
    store = _pairing_store(args)
    code = store.new_code()
    args.say(f"New pairing code: {code}")
    args.say(f"Enter it on the config page (http://NAME.local) within "
             f"{store.code_minutes:g} minutes; paired browsers stay paired.")  # fmt: skip
    return 0


def cmd_pairing_reset(args: argparse.Namespace) -> int:
    store = _pairing_store(args)
    code = store.reset()
    args.say(f"New pairing code: {code}")
    args.say("Every paired browser and API token has been signed out. Enter this code on the "
             f"config page (http://NAME.local) within {store.code_minutes:g} minutes.")  # fmt: skip
    return 0


def cmd_pairing_status(args: argparse.Namespace) -> int:
    status = _pairing_store(args).status()
    if not status.paired:
        args.say("No pairing code yet: one is made (and spoken) when the appliance first "
                 "starts, or run `appliance pairing new-code`.")  # fmt: skip
        return 0
    created = time.strftime("%Y-%m-%d %H:%M", time.localtime(status.code_created or 0))
    left = (status.code_expires or 0) - time.time()
    until = (f"lets browsers in for {left / 60:.0f} more minute(s)" if left > 0
             else "has expired")  # fmt: skip
    args.say(f"Pairing code made on {created}: it {until} (stored hashed; `appliance pairing "
             "new-code` makes a new one).")  # fmt: skip
    args.say(f"Paired browser sessions: {status.sessions}; API tokens: {status.tokens}.")
    return 0


def fake_engines() -> Any:
    from appliance.audio.vad import EnergyVad
    from appliance.llm.fake import EchoLlm
    from appliance.pipeline import Engines
    from appliance.stt.fake import DescribingStt
    from appliance.tts.fake import ToneTts
    from appliance.wake.fake import MarkerWakeDetector

    return Engines(llm=EchoLlm(), tts=ToneTts(), wake=MarkerWakeDetector(), vad=EnergyVad(),
                   stt=DescribingStt())  # fmt: skip


def cmd_web(args: argparse.Namespace) -> int:
    from appliance import events as ev
    from appliance.app import App, Parts, WebOptions, load
    from appliance.audio.sinks import NullSink
    from appliance.config import default_config_path, user_config_path
    from appliance.console import progress, run_async

    path = args.config or default_config_path() or user_config_path()
    config, fallback = load_config_or_fallback(path if path.exists() else None)
    bus = ev.EventBus()
    if fallback is not None:
        args.say(f"warning: {fallback.message}")
    engines = fake_engines() if args.fake_engines else load(config, bus, progress=progress)
    mdns = False if args.no_mdns else None
    web = WebOptions(path, localhost_only=args.localhost_only, port=args.web_port, mdns=mdns)
    # The page beside a pipeline that hears nothing: typed requests and WAV uploads.
    parts = Parts(actions=False, web=web, fallback=fallback)

    async def main() -> int:
        async with App(config, engines, NullSink(), bus, parts=parts) as app:
            args.say(f"config page: {app.web.url}")
            await asyncio.Event().wait()
        return 0

    return run_async(main, args.say)
