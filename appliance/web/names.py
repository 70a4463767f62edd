"""The device's name as people see it."""

from __future__ import annotations

import socket

from appliance.config import AppConfig


def device_name(config: AppConfig) -> str:
    """web.device_name, else the system's hostname."""
    return config.web.device_name or socket.gethostname().split(".")[0] or "appliance"
