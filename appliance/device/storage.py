"""The writable data directory (on the image: the /data partition) and what to do when
it is full or read-only: keep running on what is loaded, and say why."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

LOW_SPACE_BYTES = 16 * 1024 * 1024
"""Below this much free space the data directory counts as full: config saves and imports
would fail half-way, so the service says so before they are tried."""


def check_writable(path: Path, *, low_space_bytes: int = LOW_SPACE_BYTES) -> str | None:
    """None if `path` can take new files (it is created if missing); otherwise one sentence
    that says what is wrong, that the appliance keeps running without saving, and how to
    fix it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        return (
            f"data directory {path} cannot be created ({err.strerror}): settings and imported "
            "models cannot be saved (set APPLIANCE_DATA_DIR to a writable directory)"
        )
    try:
        free = shutil.disk_usage(path).free
    except OSError as err:
        return f"data directory {path} cannot be read ({err.strerror}): running read-only"
    if free < low_space_bytes:
        return (
            f"data partition full: {free // 1024} KiB free in {path}; running read-only, "
            "settings and imported models are not saved (remove imported models with "
            "`appliance models remove NAME`)"
        )
    probe = path / f".write-probe-{os.getpid()}"
    try:
        with open(probe, "wb") as handle:
            handle.write(b"\0" * 4096)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as err:
        reason = {
            errno.ENOSPC: "no space left",
            errno.EROFS: "mounted read-only",
            errno.EACCES: "permission denied",
            errno.EDQUOT: "quota exceeded",
        }.get(err.errno or 0, err.strerror or str(err))
        return (
            f"data directory {path} cannot be written ({reason}): running read-only, "
            "settings and imported models are not saved"
        )
    finally:
        try:
            probe.unlink()
        except OSError:
            pass
    return None
