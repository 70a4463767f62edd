"""The native API's encryption key when the config gives none: made on first start and
kept in the data directory, so that Home Assistant, once given it, keeps working across
restarts. The status page and `appliance satellite status` show it."""

from __future__ import annotations

import base64
import binascii
import logging
import os
import secrets
from pathlib import Path

from appliance.config import data_dir
from appliance.sections.satellite import SatelliteConfig

_LOGGER = logging.getLogger(__name__)
KEY_FILE = "satellite.key"


def new_key() -> str:
    """32 random bytes in base64: what ESPHome and Home Assistant call an API key."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


def key_file(data: Path | None = None) -> Path:
    return (data or data_dir()) / KEY_FILE


def stored_key(data: Path | None = None) -> str | None:
    """The key made here before, or None (none yet, or the file is not a key)."""
    try:
        text = key_file(data).read_text(encoding="ascii").strip()
        if len(binascii.a2b_base64(text, strict_mode=True)) == 32:
            return text
    except (OSError, ValueError, binascii.Error):
        pass
    return None


def key_in_use(config: SatelliteConfig, data: Path | None = None) -> str:
    """The key the API is encrypted with ("" = plaintext): the config's, else the one
    made here before, else a new one, written before it is used (mode 0600, renamed
    into place so that a power cut leaves the old file or the new, never half)."""
    if config.plaintext:
        return ""
    if config.encryption_key:
        return config.encryption_key.strip()
    path = key_file(data)
    key = stored_key(data)
    if key is not None:
        return key
    if path.exists():
        _LOGGER.error("%s is not a key; a new one is made, and Home Assistant will ask for "
                      "it (the old file is kept as %s.bad)", path, path.name)  # fmt: skip
        os.replace(path, path.with_name(path.name + ".bad"))
    key = new_key()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".new")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(key + "\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)
    _LOGGER.info("a new encryption key for Home Assistant is in %s", path)
    return key
