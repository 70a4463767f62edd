"""What the first boot (and a later `appliance.txt`) left for the page: the settings it
applied and what it could not, each with its fix (`firstboot.json`, `settings.json` in
the data directory, written by appliance/device/firstboot.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

STATUS_NAME = "firstboot.json"
"""The first boot's record, in the data directory."""
LATER_NAME = "settings.json"
"""The record of an `appliance.txt` put on the card after the first boot."""
FIX = ("Put a corrected appliance.txt on the card's boot partition (the one a computer "
       "shows, beside config.txt) and restart: it is read again at the next start.")  # fmt: skip


def setup_status(data: Path) -> dict[str, Any] | None:
    """The newest record, for `/api/status` and the status page; None on a machine that
    was not set up from the image (no record)."""
    records = []
    for name in (STATUS_NAME, LATER_NAME):
        path = data / name
        try:
            text = path.read_text()
        except FileNotFoundError:
            continue
        except OSError as err:
            return _unreadable(path, str(err))
        try:
            record = json.loads(text)
            records.append((float(record.get("finished_at", 0.0)), name, record))
        except (ValueError, TypeError, AttributeError) as err:
            return _unreadable(path, str(err))
    if not records:
        return None
    when, name, record = max(records, key=lambda r: r[0])
    settings = record.get("settings_file") or {}
    problems = [str(p) for p in settings.get("problems", [])]
    failed = [{"step": str(s.get("name", "")), "message": str(s.get("message", ""))}
              for s in record.get("steps", [])
              if not s.get("ok", True) and s.get("name") != "settings"]  # fmt: skip
    return {
        "record": name,
        "finished_at": when,
        "file_found": bool(settings.get("found", False)),
        "applied": [str(a) for a in settings.get("applied", [])],
        "problems": problems,
        "failed_steps": failed,
        "ok": not problems and not failed,
        "fix": FIX if problems else "",
    }


def _unreadable(path: Path, why: str) -> dict[str, Any]:
    return {"record": path.name, "finished_at": 0.0, "file_found": False, "applied": [],
            "problems": [], "ok": False, "fix": "",
            "failed_steps": [{"step": "record",
                              "message": f"{path} cannot be read ({why})"}]}  # fmt: skip
