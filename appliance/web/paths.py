"""Where the web server keeps its state (pairing secrets, hashed tokens)."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """The appliance's writable state: $APPLIANCE_DATA_DIR, else ~/.local/share/appliance."""
    env = os.environ.get("APPLIANCE_DATA_DIR")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".local" / "share" / "appliance"


def web_dir() -> Path:
    return data_dir() / "web"
