"""`appliance satellite key|status`: the native API's key and what the config says."""

from __future__ import annotations

import argparse
import base64
import secrets

from appliance.config import config_from_args


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


def new_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def cmd_key(args: argparse.Namespace) -> int:
    print(new_key())
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    satellite = config_from_args(args).satellite
    if not satellite.enabled:
        print("off: set [satellite] enabled = true to serve Home Assistant's native API")
        return 0
    kind = "encrypted" if satellite.encryption_key else "plaintext (no encryption_key)"
    print(f"on: {satellite.host}:{satellite.port}, {kind}, at most {satellite.max_clients} "
          "clients")  # fmt: skip
    return 0
