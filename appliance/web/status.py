"""What the status page shows: the live state (followed on the event bus), the recent
turns with per-stage latency, errors, and the board's readings."""

from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from appliance import events as ev
from appliance.config import AppConfig, data_dir
from appliance.models.budget import read_memory_state

CHART_STAGES = ("stt", "llm_first_token", "tts_first_sentence", "ttfa", "turn")


@dataclass
class TurnSummary:
    turn: int
    outcome: str = ""
    transcript: str = ""
    reply: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    ended: float = 0.0


@dataclass(frozen=True)
class ErrorSummary:
    time: float
    stage: str
    code: str
    message: str


class StatusTracker:
    """A bus subscriber that keeps the state and the last turns and errors."""

    def __init__(self, *, keep_turns: int = 20, keep_errors: int = 20) -> None:
        self.state = "starting"
        self.muted = False
        self.keep_transcripts = True
        self.turns: deque[TurnSummary] = deque(maxlen=keep_turns)
        self.errors: deque[ErrorSummary] = deque(maxlen=keep_errors)
        self._open: dict[int, TurnSummary] = {}
        self._typed: list[str] = []
        self.events_seen = 0
        self.home_assistant: dict[str, str] = {}
        """Native API clients connected now (appliance/satellite): address → name."""
        self.remotes: dict[str, dict[str, Any]] = {}
        """Stage → its remote engine's state (appliance/remote): remote, up, reason."""
        self.satellite: dict[str, Any] | None = None
        """The native API as served by this process (port, encrypted, error); None: not
        served here."""

    def expect_typed(self, text: str) -> None:
        """A typed request is about to start: it publishes no transcript, so its text is
        given to the next turn that begins."""
        self._typed.append(text)

    def __call__(self, event: ev.Event) -> None:
        self.events_seen += 1
        kind = event.type
        if kind == "state":
            self.state = getattr(event, "state", self.state)
            if self._typed and event.turn and event.turn not in self._open and \
                    self.state == "thinking":  # fmt: skip
                self._turn(event.turn).transcript = self._typed.pop(0)
        elif kind == "muted":
            self.muted = bool(getattr(event, "muted", False))
        elif kind == "remote_state":
            self.remotes[getattr(event, "stage", "")] = {
                "remote": getattr(event, "remote", ""),
                "up": getattr(event, "up", False),
                "reason": getattr(event, "reason", ""),
            }
        elif kind == "satellite_serving":
            self.satellite = {
                "port": getattr(event, "port", 0),
                "encrypted": getattr(event, "encrypted", False),
                "error": getattr(event, "error", ""),
            }
        elif kind == "satellite_connection":
            peer = getattr(event, "peer", "")
            if getattr(event, "connected", False):
                self.home_assistant[peer] = getattr(event, "client", "")
            else:
                self.home_assistant.pop(peer, None)
        elif kind == "transcript":
            self._turn(event.turn).transcript = getattr(event, "text", "")
        elif kind == "reply":
            self._turn(event.turn).reply = getattr(event, "text", "")
        elif kind == "turn_end":
            summary = self._open.pop(event.turn, None) or TurnSummary(event.turn)
            summary.outcome = getattr(event, "outcome", "")
            summary.timings = dict(getattr(event, "timings", {}))
            summary.ended = event.wall_time
            if not self.keep_transcripts:
                summary.transcript = summary.reply = ""
            self.turns.append(summary)
        elif kind == "error":
            self.errors.append(
                ErrorSummary(
                    event.wall_time,
                    getattr(event, "stage", ""),
                    getattr(event, "code", ""),
                    getattr(event, "message", ""),
                )
            )

    def _turn(self, turn: int) -> TurnSummary:
        if turn not in self._open:
            self._open[turn] = TurnSummary(turn)
        return self._open[turn]

    def forget_transcripts(self) -> None:
        for summary in [*self.turns, *self._open.values()]:
            summary.transcript = summary.reply = ""


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def cpu_temperature(root: Path = Path("/")) -> float | None:
    """The hottest thermal zone in °C (a Pi has one, an RK3588 several); None without any."""
    temps = []
    for zone in sorted((root / "sys/class/thermal").glob("thermal_zone*")):
        text = _read(zone / "temp")
        if text and text.lstrip("-").isdigit():
            temps.append(int(text) / 1000)
    return max(temps) if temps else None


def load_average(root: Path = Path("/")) -> tuple[float, float, float] | None:
    text = _read(root / "proc/loadavg")
    if not text:
        return None
    parts = text.split()
    try:
        return float(parts[0]), float(parts[1]), float(parts[2])
    except (IndexError, ValueError):
        return None


def system_readings(root: Path = Path("/")) -> dict[str, Any]:
    memory = read_memory_state(root)
    mib = 1024 * 1024
    return {
        "cpu_temperature_c": cpu_temperature(root),
        "load_average": load_average(root),
        "cpu_cores": os.cpu_count(),
        "memory_total_mb": round(memory.mem_total / mib),
        "memory_available_mb": round(memory.mem_available / mib),
        "swap_total_mb": round(memory.swap_total / mib),
        "swap_free_mb": round(memory.swap_free / mib),
        "zram": [
            {
                "name": z.name,
                "size_mb": round(z.disksize / mib),
                "stored_mb": round(z.orig_data_size / mib),
                "algorithm": z.algorithm,
                "ratio": round(z.ratio, 2),
            }
            for z in memory.zram
        ],
    }


RAM_NOTES = {
    "measured": "measured: loaded alone in a fresh process and run once by appliance models "
    "measure (on x86_64, when the catalog was made)",
    "estimated": "estimated from the file's shape when it was imported (not measured)",
}


def model_rows(config: AppConfig) -> list[dict[str, Any]]:
    """The configured model per role, with the catalog's RAM figure and where it comes
    from: measured for the built-in models, estimated for imported ones."""
    from appliance.models.catalog import ModelStore

    try:
        store = ModelStore(config.models_path())
        catalog = store.catalog
    except Exception:  # a broken catalog must not take the status page down
        catalog = {}
    rows = []
    for role, name in (("wake", config.wake.model), ("stt", config.stt.model),
                       ("llm", config.llm.model), ("tts", config.tts.voice)):  # fmt: skip
        entry = catalog.get(name)
        ram = entry.ram if entry else None
        source = None if ram is None else "estimated" if entry.source == "import" else "measured"
        rows.append({"role": role, "name": name,
                     "ram_mb": round(ram.total_mb) if ram else None,
                     "ram_source": source,
                     "ram_context": ram.context if ram and ram.context else None})  # fmt: skip
    return rows


def process_memory(status_file: Path = Path("/proc/self/status")) -> dict[str, int] | None:
    """This process's resident memory now (MB), from the kernel: the total, its file pages
    (mmap'ed model weights) and anonymous pages, and the peak. None where unreadable."""
    values: dict[str, int] = {}
    text = _read(status_file)
    for line in (text or "").splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if key in ("VmRSS", "RssFile", "RssAnon", "VmHWM") and parts and parts[0].isdigit():
            values[key] = round(int(parts[0]) / 1024)
    if "VmRSS" not in values:
        return None
    return {"rss_mb": values["VmRSS"], "file_mb": values.get("RssFile", 0),
            "anon_mb": values.get("RssAnon", 0),
            "peak_mb": values.get("VmHWM", values["VmRSS"])}  # fmt: skip


def status_snapshot(
    tracker: StatusTracker, config: AppConfig, *, root: Path = Path("/"), started: float
) -> dict[str, Any]:
    """`setup`: what the first boot did with `appliance.txt` (None when this machine was
    not set up from the image)."""
    # Here, not at the top: the first boot (device/) uses the pairing store (web/).
    from appliance.device.setup_status import setup_status

    return {
        "state": "muted" if tracker.muted else tracker.state,
        "uptime_seconds": round(time.time() - started, 1),
        "models": model_rows(config),
        "process_memory": process_memory(),
        "system": system_readings(root),
        "turns": [asdict(t) for t in reversed(tracker.turns)],
        "errors": [asdict(e) for e in reversed(tracker.errors)],
        "home_assistant": home_assistant_status(tracker, config),
        "remotes": remote_status(tracker, config),
        "setup": setup_status(data_dir()),
    }


def home_assistant_status(tracker: StatusTracker, config: AppConfig) -> dict[str, Any]:
    """The native API as this process serves it: not served (off, or not started here),
    failed (`error`), or waiting for / connected to Home Assistant."""
    serving = tracker.satellite or {}
    return {
        "served": bool(serving) and not serving["error"],
        "enabled": config.satellite.enabled,
        "port": serving.get("port", config.satellite.port),
        "encrypted": serving.get("encrypted", not config.satellite.plaintext),
        "error": serving.get("error", ""),
        "clients": sorted(tracker.home_assistant.values()),
    }


def remote_status(tracker: StatusTracker, config: AppConfig) -> list[dict[str, Any]]:
    """Each stage with a remote engine: where, and whether it is up (None: not checked
    yet), or why not."""
    configured = {"stt": config.stt.remote, "llm": config.llm.remote, "tts": config.tts.remote}
    rows = []
    for stage, remote in configured.items():
        if not remote:
            continue
        seen = tracker.remotes.get(stage, {})
        rows.append({"stage": stage, "remote": remote, "up": seen.get("up"),
                     "reason": seen.get("reason", "")})  # fmt: skip
    return rows
