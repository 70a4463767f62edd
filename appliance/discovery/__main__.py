"""`python -m appliance.discovery advertise|browse`: announce a name, or list what is
announced (for checking a network, and for the tests, which run both in a network
namespace)."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys

from zeroconf import IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from appliance.discovery.mdns import ESPHOME_TYPE, HTTP_TYPE, OWN_TYPE, WYOMING_TYPE, Advertiser

TYPES = {"own": OWN_TYPE, "http": HTTP_TYPE, "esphome": ESPHOME_TYPE, "wyoming": WYOMING_TYPE}


async def advertise(args: argparse.Namespace) -> int:
    advertiser = Advertiser(args.name, args.port, poll_seconds=args.poll_seconds)
    announced = await advertiser.start()
    print(json.dumps({"announced": announced.name, "host": announced.host,
                      "addresses": announced.addresses}), flush=True)  # fmt: skip
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), args.seconds)
    except TimeoutError:
        pass
    finally:
        await advertiser.close()
    print(json.dumps({"closed": True}), flush=True)
    return 0


async def browse(args: argparse.Namespace) -> int:
    kind = TYPES[args.type]
    azc = AsyncZeroconf(ip_version=IPVersion.V4Only)
    found: dict[str, dict[str, object]] = {}
    pending: set[asyncio.Task[None]] = set()

    def report(event: str, name: str) -> None:
        if args.watch:
            entry = found.get(name, {"name": name.removesuffix("." + kind)})
            print(json.dumps({"event": event, **entry}), flush=True)

    async def resolve(name: str) -> None:
        info = AsyncServiceInfo(kind, name)
        if await info.async_request(azc.zeroconf, 3000):
            found[name] = {
                "name": name.removesuffix("." + kind),
                "addresses": info.parsed_addresses(),
                "port": info.port,
                "server": info.server,
                "txt": {k.decode(): (v or b"").decode() for k, v in info.properties.items()},
            }
            report("added", name)

    def on_change(zeroconf: Zeroconf, service_type: str, name: str,
                  state_change: ServiceStateChange) -> None:  # fmt: skip
        if state_change is ServiceStateChange.Removed:
            report("removed", name)
            found.pop(name, None)
        else:
            task = asyncio.ensure_future(resolve(name))
            pending.add(task)
            task.add_done_callback(pending.discard)

    browser = AsyncServiceBrowser(azc.zeroconf, [kind], handlers=[on_change])
    deadline = asyncio.get_running_loop().time() + args.timeout
    while asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.1)
        if not args.watch and args.expect and len(found) >= args.expect and not pending:
            break
    await browser.async_cancel()
    await azc.async_close()
    if not args.watch:
        print(json.dumps(sorted(found.values(), key=lambda s: str(s["name"]))), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m appliance.discovery")
    sub = parser.add_subparsers(dest="command", required=True)
    adv = sub.add_parser("advertise", help="announce NAME on PORT until SIGTERM (or --seconds)")
    adv.add_argument("--name", required=True)
    adv.add_argument("--port", type=int, default=80)
    adv.add_argument("--seconds", type=float, default=60.0)
    adv.add_argument("--poll-seconds", type=float, default=10.0)
    adv.set_defaults(run=advertise)
    look = sub.add_parser("browse", help="list announced appliances as JSON")
    look.add_argument("--type", choices=tuple(TYPES), default="own")
    look.add_argument("--timeout", type=float, default=5.0)
    look.add_argument("--expect", type=int, default=0, help="stop once this many are found")
    look.add_argument("--watch", action="store_true",
                      help="print services added or removed as JSON lines")  # fmt: skip
    look.set_defaults(run=browse)
    args = parser.parse_args(argv)
    return asyncio.run(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
