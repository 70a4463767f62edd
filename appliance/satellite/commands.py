"""`appliance satellite key|status`: the native API's key and what the config says."""

from __future__ import annotations

import argparse

from appliance.config import config_from_args
from appliance.satellite.keys import key_file, new_key, stored_key


def add_satellite_commands(satellite: argparse.ArgumentParser) -> None:
    sub = satellite.add_subparsers(dest="satellite_command", metavar="ACTION", required=True)
    key = sub.add_parser(
        "key",
        help="print a new encryption key for satellite.encryption_key",
        description="Print a new random encryption key (32 bytes, base64) for "
        "satellite.encryption_key; Home Assistant asks for the same key when it adds "
        "the appliance.",
    )
    key.set_defaults(handler=cmd_key)
    status = sub.add_parser("status", help="say how the native API is configured")
    status.set_defaults(handler=cmd_status)


def cmd_key(args: argparse.Namespace) -> int:
    print(new_key())
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    satellite = config_from_args(args).satellite
    if not satellite.enabled:
        print("off: set [satellite] enabled = true to serve Home Assistant's native API")
        return 0
    if satellite.plaintext:
        kind = "plaintext (satellite.plaintext = true)"
    elif satellite.encryption_key:
        kind = "encrypted with satellite.encryption_key"
    else:
        made = stored_key()
        kind = (f"encrypted with the key made here ({key_file()}): {made}" if made else
                "encrypted with a key made on first start (`appliance run`)")  # fmt: skip
    print(f"on: {satellite.host}:{satellite.port}, {satellite.mode} mode, {kind}, at most "
          f"{satellite.max_clients} clients")  # fmt: skip
    return 0
