"""Where the web server keeps its state (pairing secrets, hashed tokens)."""

from __future__ import annotations

from pathlib import Path

from appliance.config import data_dir


def web_dir() -> Path:
    return data_dir() / "web"
